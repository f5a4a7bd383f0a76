-- Generic cell rate algorithm, atomically in Redis (one budget for every API replica).
-- KEYS[1]: the bucket; ARGV[1]: emission interval (ms per request); ARGV[2]: burst (requests);
-- ARGV[3]: how many requests to take at once (default 1; a replica's lease, see mod.rs).
-- Returns {granted (0: refused; else 1..ARGV[3], as many as fit now), retry_after_ms, remaining}.
-- Time comes from Redis, not the callers. Mirrors `gcra_take` in mod.rs.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = math.max(1, tonumber(ARGV[3] or '1') or 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local room = math.floor((now - tat) / emission) + burst
if room < 1 then
  return {0, tat + emission - emission * burst - now, 0}
end
local granted = math.min(want, room)
local new_tat = tat + granted * emission
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {granted, 0, room - granted}
