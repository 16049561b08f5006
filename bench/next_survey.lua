-- The next-survey call for a random subject among SUBJECTS, reporting the onboarding
-- event: the first call per subject is offered the onboarding survey (a display is
-- recorded), later ones are throttled (204). Both do the whole eligibility work.
local subjects = tonumber(os.getenv("SUBJECTS") or "1000")
local token = os.getenv("TOKEN")
local headers = {["Authorization"] = "Bearer " .. token}

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
  return wrk.format("GET", "/v1/subjects/" .. id .. "/surveys/next?event=onboarding.step_completed", headers)
end
