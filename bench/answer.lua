-- One partial answer to the onboarding survey per request, for a random subject among
-- SUBJECTS: merged into the subject's response, answer rows rewritten, the role written
-- back to the profile and the whole audited, in one transaction.
local subjects = tonumber(os.getenv("SUBJECTS") or "1000")
local token = os.getenv("TOKEN")
local roles = {"founder", "marketing", "engineering", "support", "other"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

-- Demo subjects from SA on (n % 14 >= 7; see src/demo.rs) fall under the strict default
-- jurisdiction and have not allowed feedback surveys; they are left out.
local function subject()
  local n = math.random(1, subjects)
  while n % 14 >= 7 do n = math.random(1, subjects) end
  return string.format("demo-%06d", n)
end

function request()
  local id = subject()
  local body = '{"subject_id":"' .. id .. '","answers":{"role":"' .. roles[math.random(1, #roles)] .. '"},"finished":false}'
  return wrk.format("POST", "/v1/surveys/onboarding-profile/responses", headers, body)
end
