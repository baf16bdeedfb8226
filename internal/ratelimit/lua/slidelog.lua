-- slidelog.lua: one Allow or Adjust of a SlidingLog, atomically. A mirror of log.go: the
-- admissions of the last window as a sorted set, one member per unit (unique: the caller's
-- id, then the unit's index) scored by its admission time in ticks. Units admitted at t count
-- at now while now < t + window, so the members scored now - window or less are dropped.
--
-- KEYS[1]  the sorted set; absent means an empty log
-- ARGV     mode ("allow" | "adjust"), limit, window (ticks), n (allow) or delta (adjust),
--          now (µs; < 0: server clock), tick (µs per tick), id (unique per call)
-- Returns  allow: {allowed (0|1), remaining, retry (µs), reset (µs)}; adjust: {}.
-- The set expires with its newest member, so idle logs vanish.

local key, mode = KEYS[1], ARGV[1]
local limit, window, n, now, tick = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local id = ARGV[7]
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local off = 0
if tick ~= 1 then
  local us = now
  now = math.floor(us / tick)
  off = us - now * tick
end
-- time never runs backwards for a log: an earlier now counts as its newest entry's time
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) > now then now = tonumber(newest[2]) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)

-- add k units at now
local function add(k)
  local i = 1
  while i <= k do
    local args = {}
    for j = i, math.min(i + 499, k) do
      args[#args + 1] = now
      args[#args + 1] = id .. ':' .. j
    end
    redis.call('ZADD', key, unpack(args))
    i = i + 500
  end
  used = used + k
end

local ok, retry = true, 0
if mode == 'adjust' then
  if n > 0 then
    add(math.min(n, limit - used))
  elseif n < 0 and used > 0 then
    redis.call('ZPOPMAX', key, math.min(-n, used))
    used = math.max(used + n, 0)
  end
elseif n > limit then
  ok = false
elseif used + n > limit then
  -- wait until the oldest used + n - limit units have expired
  ok = false
  local e = redis.call('ZRANGE', key, used + n - limit - 1, used + n - limit - 1, 'WITHSCORES')
  retry = tonumber(e[2]) + window - now
else
  add(n)
end

local remaining, reset = math.max(limit - used, 0), 0
if used > 0 then
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  reset = tonumber(last[2]) + window - now
  redis.call('PEXPIRE', key, math.floor((reset * tick - 1) / 1000) + 2)
end
if mode == 'adjust' then return {} end
if not ok and n > limit then retry = math.max(reset, window) end
if tick ~= 1 then
  if reset > 0 then reset = reset * tick - off end
  if retry > 0 then retry = retry * tick - off end
end
if ok then return {1, remaining, 0, reset} end
return {0, remaining, retry, reset}
