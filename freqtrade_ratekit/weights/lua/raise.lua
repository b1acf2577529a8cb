-- KEYS: log, sum. ARGV: interval_ms, target, member. Returns used (after) as string.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local log, sum = KEYS[1], KEYS[2]
local interval = tonumber(ARGV[1])
local target = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - interval)
local used = tonumber(redis.call('GET', sum) or '0')
for _, m in ipairs(expired) do used = used - tonumber(string.match(m, ':([^:]+)$')) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - interval) end
if redis.call('ZCARD', log) == 0 then used = 0 end
if target > used + 1e-9 then
  local missing = target - used
  redis.call('ZADD', log, now, ARGV[3] .. ':' .. tostring(missing))
  used = target
  redis.call('PEXPIRE', log, math.ceil(interval) + 1000)
end
redis.call('SET', sum, tostring(used), 'PX', math.ceil(interval) + 1000)
return tostring(used)
