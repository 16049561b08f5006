-- Reach questions: a random subject among SUBJECTS, a random purpose. With BATCH set,
-- that many per request to /v1/reach/batch.
local subjects = tonumber(os.getenv("SUBJECTS") or "100000")
local size = tonumber(os.getenv("BATCH") or "0")
local token = os.getenv("TOKEN")
local purposes = {"marketing", "marketing.email", "marketing.sms", "marketing.push"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

local function item()
  local id = string.format("demo-%06d", math.random(1, subjects))
  return '{"subject_id":"' .. id .. '","purpose":"' .. purposes[math.random(1, #purposes)] .. '"}'
end

function request()
  if size == 0 then
    return wrk.format("POST", "/v1/reach", headers, item())
  end
  local items = {}
  for i = 1, size do
    items[i] = item()
  end
  return wrk.format("POST", "/v1/reach/batch", headers, '{"items":[' .. table.concat(items, ",") .. ']}')
end
