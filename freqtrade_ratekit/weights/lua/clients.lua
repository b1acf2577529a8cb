-- The non-bot clients of a scope. KEYS: records (hash id -> JSON), expiries (zset id -> ms).
-- ARGV: id, record JSON ('' = only read), ttl_ms. Drops expired records, stores the given one
-- until now + ttl_ms (Redis' own TIME: hosts need not agree on the time), keeps both keys as
-- long as their longest-lived record, and returns every record left (JSON strings).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local records, expiries = KEYS[1], KEYS[2]
local expired = redis.call('ZRANGEBYSCORE', expiries, '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', records, id) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', expiries, '-inf', now) end
if ARGV[2] ~= '' then
  redis.call('HSET', records, ARGV[1], ARGV[2])
  redis.call('ZADD', expiries, now + tonumber(ARGV[3]), ARGV[1])
end
local last = redis.call('ZRANGE', expiries, -1, -1, 'WITHSCORES')
if #last == 0 then
  redis.call('DEL', records, expiries)
  return {}
end
local keep = math.ceil(tonumber(last[2]) - now) + 1000
redis.call('PEXPIRE', records, keep)
redis.call('PEXPIRE', expiries, keep)
return redis.call('HVALS', records)
