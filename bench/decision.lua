-- One decision per request: a random subject among SUBJECTS, a random purpose.
local subjects = tonumber(os.getenv("SUBJECTS") or "100000")
local token = os.getenv("TOKEN")
local purposes = {"marketing.email", "analytics", "personalize.product_recommendations", "sale_and_sharing", "advertising.targeted"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local id = string.format("demo-%06d", math.random(1, subjects))
  local purpose = purposes[math.random(1, #purposes)]
  return wrk.format("POST", "/v1/decisions", headers, '{"subject_id":"' .. id .. '","purpose":"' .. purpose .. '"}')
end
