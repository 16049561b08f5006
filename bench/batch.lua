-- BATCH decisions per request, random subjects and purposes.
local subjects = tonumber(os.getenv("SUBJECTS") or "100000")
local size = tonumber(os.getenv("BATCH") or "100")
local token = os.getenv("TOKEN")
local purposes = {"marketing.email", "analytics", "personalize.product_recommendations", "sale_and_sharing", "advertising.targeted"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local items = {}
  for i = 1, size do
    local id = string.format("demo-%06d", math.random(1, subjects))
    items[i] = '{"subject_id":"' .. id .. '","purpose":"' .. purposes[math.random(1, #purposes)] .. '"}'
  end
  return wrk.format("POST", "/v1/decisions/batch", headers, '{"items":[' .. table.concat(items, ",") .. ']}')
end
