-- KEYS: pause. ARGV: ms (0 = only read). Returns remaining ms as string.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ms = tonumber(ARGV[1])
local p = tonumber(redis.call('GET', KEYS[1]) or '0')
if ms > 0 and now + ms > p then
  p = now + ms
  redis.call('SET', KEYS[1], tostring(p), 'PX', math.ceil(ms) + 1000)
end
local left = p - now
if left < 0 then left = 0 end
return tostring(left)
