-- The soak's mix, one request each: 90 % decisions, 8 % consent writes, 2 % survey
-- answers, on random demo subjects among SUBJECTS. The checker's own subjects (`soak-*`)
-- are never touched here.
local subjects = tonumber(os.getenv("SUBJECTS") or "10000")
local token = os.getenv("TOKEN")
local purposes = {"marketing.email", "analytics", "personalize.product_recommendations", "sale_and_sharing", "advertising.targeted"}
local written = {"marketing.email", "analytics", "personalize.content", "marketing.push"}
local statuses = {"granted", "denied"}
local roles = {"founder", "marketing", "engineering", "support", "other"}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

local function subject()
  return string.format("demo-%06d", math.random(1, subjects))
end

-- Demo subjects in the strict default jurisdiction (n % 14 >= 7; see src/demo.rs) have not allowed
-- feedback surveys: answers go to the others.
local function respondent()
  local n = math.random(1, subjects)
  while n % 14 >= 7 do n = math.random(1, subjects) end
  return string.format("demo-%06d", n)
end

function request()
  local roll = math.random(1, 100)
  if roll <= 90 then
    local body = '{"subject_id":"' .. subject() .. '","purpose":"' .. purposes[math.random(1, #purposes)] .. '"}'
    return wrk.format("POST", "/v1/decisions", headers, body)
  elseif roll <= 98 then
    local path = "/v1/subjects/" .. subject() .. "/consents/" .. written[math.random(1, #written)]
    return wrk.format("PUT", path, headers, '{"status":"' .. statuses[math.random(1, 2)] .. '","source":"api"}')
  else
    local body = '{"subject_id":"' .. respondent() .. '","answers":{"role":"' .. roles[math.random(1, #roles)] .. '"},"finished":false}'
    return wrk.format("POST", "/v1/surveys/onboarding-profile/responses", headers, body)
  end
end
