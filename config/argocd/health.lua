-- Argo CD health check for oyl.dev/OylPlatform.
-- Install it as the argocd-cm key resource.customizations.health.oyl.dev_OylPlatform
-- (config/argocd/argocd-cm-patch.yaml embeds this file; tests/e2e/argocd_health.rs checks the
-- copies agree and runs it against real status objects in tests/e2e/fixtures/argocd/).
--
-- The operator's status: observedGeneration, and metav1 Conditions Ready, Progressing,
-- Degraded and BackupHealthy, each carrying the generation it describes. Rules, in order:
--   1. no status, or status.observedGeneration < metadata.generation  -> Progressing
--   2. Degraded=True for the current generation                       -> Degraded (its message)
--   3. BackupHealthy=False for the current generation                 -> Degraded (its message):
--      the newest backup failed; Argo CD would not see it otherwise (the backup Jobs are not
--      the Application's direct children)
--   4. Ready=True for the current generation                          -> Healthy (its message)
--   5. otherwise                                                      -> Progressing (Ready's message)
-- Only Lua 5.1 base functions are used: Argo CD opens the string library only with
-- resource.customizations.useOpenLibs.oyl.dev_OylPlatform.
local hs = {}
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "Waiting for the operator to observe the spec"
  end
  return hs
end

-- A condition describes the current spec unless it names an older generation.
local function current(condition)
  return condition.observedGeneration == nil or generation == nil
    or condition.observedGeneration >= generation
end

local function text(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

local ready = nil
local degraded = nil
local backup = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    elseif condition.type == "Degraded" then
      degraded = condition
    elseif condition.type == "BackupHealthy" then
      backup = condition
    end
  end
end

if degraded ~= nil and degraded.status == "True" and current(degraded) then
  hs.status = "Degraded"
  hs.message = text(degraded, "Degraded")
  return hs
end

if backup ~= nil and backup.status == "False" and current(backup) then
  hs.status = "Degraded"
  hs.message = "Backup failed: " .. text(backup, "the newest backup failed")
  return hs
end

if ready ~= nil and ready.status == "True" and current(ready) then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = text(ready, "Waiting for the platform to become ready")
return hs
