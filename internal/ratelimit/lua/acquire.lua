-- acquire.lua: take one of max concurrent slots, atomically.
--
-- KEYS[1]  sorted set of lease ids scored by lease expiry (µs)
-- ARGV     max, lease TTL (µs), lease id, now (µs; < 0: server clock)
-- Returns  1 when the lease was added, 0 when all slots are taken.
-- Expired leases (a crashed gateway's) are dropped first; the set expires with its last lease.

local key = KEYS[1]
local max, ttl, id, now = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= max then return 0 end
redis.call('ZADD', key, now + ttl, id)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) / 1000) + 1)
return 1
