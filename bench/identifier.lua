-- One decision per request, naming the subject by its CRM id (`consentry demo` gives
-- demo subject n the id CRM-n): a random subject among SUBJECTS, a random purpose.
local subjects = tonumber(os.getenv("SUBJECTS") or "100000")
local token = os.getenv("TOKEN")
local purposes = {"marketing.email", "analytics", "personalize.product_recommendations", "sale_and_sharing", "advertising.targeted"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local crm = string.format("CRM-%06d", math.random(1, subjects))
  local purpose = purposes[math.random(1, #purposes)]
  return wrk.format("POST", "/v1/decisions", headers, '{"identifier":{"type":"crm_id","value":"' .. crm .. '"},"purpose":"' .. purpose .. '"}')
end
