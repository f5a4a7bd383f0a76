-- Generic cell rate algorithm, atomically in Redis (one budget for every API replica).
-- KEYS[1]: the bucket; ARGV[1]: emission interval (ms per request); ARGV[2]: burst (requests).
-- Returns {allowed (0|1), retry_after_ms, remaining}. Time comes from Redis, not the callers.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + emission
local allow_at = new_tat - emission * burst
if allow_at > now then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {1, 0, math.floor((now - allow_at) / emission)}
