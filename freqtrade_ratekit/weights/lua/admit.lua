-- KEYS: per pool (log, sum, pause). ARGV: force, member id, then per pool interval_ms,
-- capacity, weight. Returns {admitted (0/1), wait_ms as string}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local force = ARGV[1] == '1'
local member = ARGV[2]
local n = #KEYS / 3
local wait = 0
for i = 1, n do
  local log, sum, pause = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local interval = tonumber(ARGV[3*i])
  local cap = tonumber(ARGV[3*i+1])
  local w = tonumber(ARGV[3*i+2])
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - interval)
  local used = tonumber(redis.call('GET', sum) or '0')
  for _, m in ipairs(expired) do used = used - tonumber(string.match(m, ':([^:]+)$')) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - interval) end
  if redis.call('ZCARD', log) == 0 then used = 0 end
  redis.call('SET', sum, tostring(used), 'PX', math.ceil(interval) + 1000)
  local p = tonumber(redis.call('GET', pause) or '0')
  if p - now > wait then wait = p - now end
  if w > 0 and used > 0 and (w > cap or used + w > cap + 1e-9) then
    local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    local freed = 0
    local until_fit = nil
    for j = 1, #entries, 2 do
      freed = freed + tonumber(string.match(entries[j], ':([^:]+)$'))
      local stamp = tonumber(entries[j+1])
      if (w > cap and freed >= used - 1e-9) or (w <= cap and used - freed + w <= cap + 1e-9) then
        until_fit = stamp + interval - now
        break
      end
    end
    if until_fit == nil then until_fit = interval elseif until_fit <= 0 then until_fit = 1 end
    if until_fit > wait then wait = until_fit end
  end
end
if wait > 0 and not force then return {0, tostring(wait)} end
for i = 1, n do
  local log, sum = KEYS[3*i-2], KEYS[3*i-1]
  local interval = tonumber(ARGV[3*i])
  local w = tonumber(ARGV[3*i+2])
  if w > 0 then
    redis.call('ZADD', log, now, member .. ':' .. i .. ':' .. ARGV[3*i+2])
    local total = tonumber(redis.call('GET', sum) or '0') + w
    redis.call('SET', sum, tostring(total), 'PX', math.ceil(interval) + 1000)
    redis.call('PEXPIRE', log, math.ceil(interval) + 1000)
  end
end
return {1, '0'}
