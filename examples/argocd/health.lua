-- ArgoCD health check for OCRServing (ocrserving.io/v1alpha1).
-- Install as resource.customizations.health.ocrserving.io_OCRServing in argocd-cm
-- (argocd-cm.yaml next to this file). Maps the operator's conditions to ArgoCD health:
--   spec.paused                                  -> Suspended
--   no status yet, or an older generation        -> Progressing
--   Degraded=True                                -> Degraded
--   Progressing=True (rollout, mode transition)  -> Progressing
--     (except ScalingReplicas: an autoscaler's extra replicas starting; Ready decides)
--   Ready=True                                   -> Healthy
--   Ready=False and not progressing              -> Degraded
local hs = {}

local function condition_text(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "Paused: the operator leaves this stack as it is"
  return hs
end

if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end

local function is(type_, status)
  return conditions[type_] ~= nil and conditions[type_].status == status
end

if is("Degraded", "True") then
  hs.status = "Degraded"
  hs.message = condition_text(conditions["Degraded"])
  return hs
end

if is("Progressing", "True") and conditions["Progressing"].reason ~= "ScalingReplicas" then
  hs.status = "Progressing"
  hs.message = condition_text(conditions["Progressing"])
  return hs
end

if is("Ready", "True") then
  hs.status = "Healthy"
  local mode = obj.status.activeMode or "unknown"
  hs.message = "Ready in " .. mode .. " mode"
  local rec = obj.status.recommendation
  if is("TransitionRecommended", "True") and rec ~= nil and rec.mode ~= nil then
    hs.message = hs.message .. "; " .. rec.mode .. " mode recommended"
  end
  if is("AdvisorAvailable", "False") then
    hs.message = hs.message .. "; advisor unavailable (" .. (conditions["AdvisorAvailable"].reason or "") .. ")"
  end
  return hs
end

if is("Ready", "False") then
  hs.status = "Degraded"
  hs.message = condition_text(conditions["Ready"])
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the Ready condition"
return hs
