-- Acknowledged writes, one per request, to a random subject among SUBJECTS.
-- KIND: consents (a random purpose granted or denied), preferences (a random channel
-- document), or mixed (three consents to one preference write). Every write appends to
-- the audit chain in its transaction.
local subjects = tonumber(os.getenv("SUBJECTS") or "1000")
local kind = os.getenv("KIND") or "consents"
local token = os.getenv("TOKEN")
local purposes = {"marketing.email", "analytics", "personalize.content", "marketing.push"}
local statuses = {"granted", "denied"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

local function consent(id)
  local purpose = purposes[math.random(1, #purposes)]
  local body = '{"status":"' .. statuses[math.random(1, 2)] .. '","source":"api"}'
  return wrk.format("PUT", "/v1/subjects/" .. id .. "/consents/" .. purpose, headers, body)
end

local function preferences(id)
  local body = '{"channels":{"email":{"opted_in":' .. tostring(math.random(1, 2) == 1) ..
    ',"max_per_week":' .. math.random(1, 7) .. '},"sms":{"opted_in":' ..
    tostring(math.random(1, 2) == 1) .. '}},"timezone":"Europe/Berlin"}'
  return wrk.format("PUT", "/v1/subjects/" .. id .. "/preferences", headers, body)
end

function request()
  local id = string.format("demo-%06d", math.random(1, subjects))
  if kind == "preferences" or (kind == "mixed" and math.random(1, 4) == 1) then
    return preferences(id)
  end
  return consent(id)
end
