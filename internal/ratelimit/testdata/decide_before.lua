-- decide.lua: one Allow or Adjust of one (key, rule), atomically. A mirror of algo.go: same
-- names, same integer arithmetic (every value stays below 2^53, so doubles are exact).
--
-- KEYS[1]  string holding the state (40 bytes, LAYOUT); absent means fresh
-- ARGV     mode ("allow" | "adjust"), algorithm tag (hy tb sw fw lb), limit, window (µs),
--          burst (units, resolved), n (allow) or delta (adjust), now (µs; < 0: server clock)
-- Returns  allow: {allowed 0|1, remaining, retry (µs), reset (µs)}; adjust: {reset (µs)}.
-- The key expires when the state would be fresh again (reset), so idle keys vanish.

local MAX = 1125899906842624 -- 2^50, maxScaled in ratelimit.go
local LAYOUT = '<ddddd'      -- the state: start, cur, prev, level, last as little-endian doubles

local key = KEYS[1]
local mode, alg = ARGV[1], ARGV[2]
local limit, window, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n, now = tonumber(ARGV[6]), tonumber(ARGV[7])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local isWindow = alg == 'hy' or alg == 'sw' or alg == 'fw'
local isBucket = alg == 'hy' or alg == 'tb' or alg == 'lb'
local fixed = alg == 'fw'

local s = {start = 0, cur = 0, prev = 0, level = 0, last = 0}
local raw = redis.call('GET', key)
if raw then s.start, s.cur, s.prev, s.level, s.last = struct.unpack(LAYOUT, raw) end

-- floor(a/b) for a >= 0, b > 0, exact even where a/b rounds.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function ceilDiv(a, b)
  if a <= 0 then return 0 end
  return idiv(a - 1, b) + 1
end

local function roll()
  local t = now
  if t < s.start then t = s.start end
  local start = t - t % window
  if start == s.start then
  elseif not fixed and start - window == s.start then
    s.prev, s.cur = s.cur, 0
  else
    s.prev, s.cur = 0, 0
  end
  s.start = start
  return t - start
end

local function drain()
  if now <= s.last then return end
  if s.level > 0 then
    local el = now - s.last
    if el * limit >= s.level then -- rounding is monotone: exact for this comparison
      s.level = 0
    else
      s.level = s.level - el * limit
    end
  end
  s.last = now
end

local function windowUsed(elapsed)
  local used = s.cur * window
  if not fixed then used = used + s.prev * (window - elapsed) end
  return used
end

local function windowRetry(elapsed)
  if fixed then return window - elapsed end
  if s.prev > 0 then
    local x = ceilDiv(windowUsed(elapsed) + (n - limit) * window, s.prev)
    if elapsed + x <= window then return x end
  end
  local d = (s.cur + n - limit) * window
  if d > 0 and s.cur > 0 then return window - elapsed + ceilDiv(d, s.cur) end
  return window - elapsed
end

local function windowStatus(elapsed)
  local remaining, reset = 0, 0
  local free = limit * window - windowUsed(elapsed)
  if free > 0 then remaining = idiv(free, window) end
  if s.cur > 0 and not fixed then
    reset = 2 * window - elapsed
  elseif s.cur > 0 or s.prev > 0 then
    reset = window - elapsed
  end
  return remaining, reset
end

local function bucketStatus()
  local remaining = 0
  local free = burst * window - s.level
  if free > 0 then remaining = idiv(free, window) end
  return remaining, ceilDiv(s.level, limit)
end

local function status(elapsed)
  if not isBucket then return windowStatus(elapsed) end
  if not isWindow then return bucketStatus() end
  local rw, tw = windowStatus(elapsed)
  local rb, tb = bucketStatus()
  return math.min(rw, rb), math.max(tw, tb)
end

local function save(reset)
  if reset <= 0 then
    redis.call('DEL', key)
    return
  end
  redis.call('SET', key, struct.pack(LAYOUT, s.start, s.cur, s.prev, s.level, s.last),
    'PX', ceilDiv(reset, 1000) + 1)
end

if mode == 'adjust' then
  local delta, elapsed = n, 0
  if isWindow then
    elapsed = roll()
    if delta > 0 then
      s.cur = math.min(s.cur + delta, idiv(MAX, window))
    else
      s.cur = s.cur + delta
      if s.cur < 0 then
        if not fixed then s.prev = math.max(s.prev + s.cur, 0) end
        s.cur = 0
      end
    end
  end
  if isBucket then
    drain()
    if delta > 0 then
      s.level = math.min(s.level + delta * window, MAX)
    else
      s.level = math.max(s.level + delta * window, 0)
    end
  end
  local _, reset = status(elapsed)
  save(reset)
  return {reset}
end

local ok, never, elapsed, retryWin, retryBkt = true, false, 0, 0, 0
if isWindow then
  elapsed = roll()
  if n > limit then
    ok, never = false, true
  elseif windowUsed(elapsed) + n * window > limit * window then
    ok = false
    retryWin = windowRetry(elapsed)
  end
end
if isBucket then
  drain()
  if n > burst then
    ok, never = false, true
  elseif s.level + n * window > burst * window then
    ok = false
    retryBkt = ceilDiv(s.level + n * window - burst * window, limit)
  end
end
if ok then
  if isWindow then s.cur = s.cur + n end
  if isBucket then s.level = s.level + n * window end
end
local remaining, reset = status(elapsed)
local retry = 0
if not ok then
  retry = math.max(retryWin, retryBkt)
  if never then retry = math.max(reset, window) end
end
if ok then
  save(reset) -- a rejection changes nothing that cannot be recomputed from the stored state
  return {1, remaining, retry, reset}
end
return {0, remaining, retry, reset}
