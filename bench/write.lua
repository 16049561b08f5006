-- One consent write per request: a random subject among SUBJECTS, a random purpose,
-- granted or denied at random. Every write appends to the ledger and the audit chain.
local subjects = tonumber(os.getenv("SUBJECTS") or "1000")
local token = os.getenv("TOKEN")
local purposes = {"marketing.email", "analytics", "personalize.content", "marketing.push"}
local statuses = {"granted", "denied"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local id = string.format("demo-%06d", math.random(1, subjects))
  local purpose = purposes[math.random(1, #purposes)]
  local body = '{"status":"' .. statuses[math.random(1, 2)] .. '","source":"api"}'
  return wrk.format("PUT", "/v1/subjects/" .. id .. "/consents/" .. purpose, headers, body)
end
