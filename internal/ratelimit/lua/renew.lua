-- renew.lua: extend a concurrency lease that is still held, atomically.
--
-- KEYS[1]  sorted set of lease ids scored by lease expiry (µs)
-- ARGV     lease TTL (µs), lease id, now (µs; < 0: server clock)
-- Returns  1 when the lease was extended to now + TTL, 0 when it is gone (released, or expired
--          and possibly already taken by someone else).

local key = KEYS[1]
local ttl, id, now = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local score = redis.call('ZSCORE', key, id)
if not score or tonumber(score) <= now then return 0 end
redis.call('ZADD', key, now + ttl, id)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) / 1000) + 1)
return 1
