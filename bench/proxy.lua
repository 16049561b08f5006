-- Through the gate to the recommendations upstream, for subjects who allow it (even ids).
local subjects = tonumber(os.getenv("SUBJECTS") or "100000")
local token = os.getenv("TOKEN")

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  local n = 2 * math.random(1, math.floor(subjects / 2))
  local headers = {["Authorization"] = "Bearer " .. token, ["X-Subject-Id"] = string.format("demo-%06d", n)}
  return wrk.format("GET", "/gate/recommendations/items?limit=3", headers)
end
