-- decide.lua: one Allow or Adjust of one (key, rule), atomically. A mirror of algo.go: same
-- names, same integer arithmetic (every value stays below 2^53, so doubles are exact).
-- It runs on every decision, so it is written for Redis's CPU: straight-line code on locals
-- (a function a script defines is created anew on every call), numbers in and out as packed
-- doubles (no string parsing or formatting). That took its cost from about 105 000 to
-- 66 000 instructions of redis-server per decision (valgrind), the floor of any EVALSHA with
-- TIME, GET and SET being about 52 000.
--
-- KEYS[1]  string holding the state (40 bytes, LAYOUT); absent means fresh
-- ARGV     mode ("allow" | "adjust"), algorithm tag (hy tb sw fw lb), and packed as ARGS:
--          limit, window (ticks), burst (units, resolved), n (allow) or delta (adjust),
--          now (µs; < 0: server clock), tick (µs per tick: 1, or 10^6 for windows over a
--          minute), maxWait (ticks; LeakyBucket's queue, 0: none)
-- Returns  allow: REPLY packed: allowed (0|1), remaining, retry (µs), reset (µs), wait (µs);
--          adjust: {reset (ticks)}.
-- The key expires when the state would be fresh again (reset), so idle keys vanish.

local MAX = 1125899906842624 -- 2^50, maxScaled in ratelimit.go
local LAYOUT = '<ddddd'      -- the state: start, cur, prev, level, last as little-endian doubles
local ARGS = '<ddddddd'      -- see above
local REPLY = '<ddddd'
local floor = math.floor

local key = KEYS[1]
local mode, alg = ARGV[1], ARGV[2]
local limit, window, burst, n, now, tick, maxWait = struct.unpack(ARGS, ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- now in ticks, and the µs past the tick (outcomes are returned in µs from now)
local off = 0
if tick ~= 1 then
  local us = now
  now = floor(us / tick)
  off = us - now * tick
end

local isWindow = alg == 'hy' or alg == 'sw' or alg == 'fw'
local isBucket = alg == 'hy' or alg == 'tb' or alg == 'lb'
local fixed = alg == 'fw'

local start, cur, prev, level, last = 0, 0, 0, 0, 0
local raw = redis.call('GET', key)
if raw then start, cur, prev, level, last = struct.unpack(LAYOUT, raw) end

-- floor(a/b) for a >= 0, b > 0, exact even where a/b rounds.
local function idiv(a, b)
  local q = floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- ceilDiv(a, b) is ⌈a/b⌉ for b > 0, 0 for a <= 0: idiv(a - 1, b) + 1, written out below.

-- roll: move the window state to the aligned window holding now.
local elapsed = 0
if isWindow then
  local t = now
  if t < start then t = start end
  local ws = t - t % window
  if ws == start then
  elseif not fixed and ws - window == start then
    prev, cur = cur, 0
  else
    prev, cur = 0, 0
  end
  start = ws
  elapsed = t - ws
end

-- drain: empty the bucket by limit per tick since the last call.
if isBucket and now > last then
  if level > 0 then
    local el = now - last
    if el * limit >= level then -- rounding is monotone: exact for this comparison
      level = 0
    else
      level = level - el * limit
    end
  end
  last = now
end

local ok, never, retryWin, retryBkt, wait = true, false, 0, 0, 0
if mode == 'adjust' then
  local delta = n
  if isWindow then
    if delta > 0 then
      cur = math.min(cur + delta, idiv(MAX, window))
    else
      cur = cur + delta
      if cur < 0 then
        if not fixed then prev = math.max(prev + cur, 0) end
        cur = 0
      end
    end
  end
  if isBucket then
    if delta > 0 then
      level = math.min(level + delta * window, MAX)
    else
      level = math.max(level + delta * window, 0)
    end
  end
else
  if isWindow then
    local used = cur * window -- windowUsed
    if not fixed then used = used + prev * (window - elapsed) end
    if n > limit then
      ok, never = false, true
    elseif used + n * window > limit * window then
      ok = false
      -- windowRetry
      if fixed then
        retryWin = window - elapsed
      else
        local found = false
        if prev > 0 then
          local deficit, x = used + (n - limit) * window, 0
          if deficit > 0 then x = idiv(deficit - 1, prev) + 1 end
          if elapsed + x <= window then retryWin, found = x, true end
        end
        if not found then
          local d = (cur + n - limit) * window
          retryWin = window - elapsed
          if d > 0 and cur > 0 then retryWin = retryWin + idiv(d - 1, cur) + 1 end
        end
      end
    end
  end
  if isBucket then
    if n > burst then
      ok, never = false, true
    elseif level + n * window > burst * window then
      ok = false
      retryBkt = idiv(level + n * window - burst * window - 1, limit) + 1
    end
    if maxWait > 0 and not never then
      -- a queue: the units ahead drain in ceil(level/limit)
      if level > 0 then wait = idiv(level - 1, limit) + 1 end
      if wait > maxWait then
        ok = false
        local r = idiv(level - maxWait * limit - 1, limit) + 1
        if r > retryBkt then retryBkt = r end
      end
    end
  end
  if ok then
    if isWindow then cur = cur + n end
    if isBucket then level = level + n * window end
  end
end

-- status: the units that still fit and the time until the state is fresh again; the
-- smaller remaining and the later reset of the rule's parts.
local remaining, reset = nil, 0
if isWindow then
  local free = limit * window - cur * window
  if not fixed then free = free - prev * (window - elapsed) end
  remaining = 0
  if free > 0 then remaining = idiv(free, window) end
  if cur > 0 and not fixed then
    reset = 2 * window - elapsed
  elseif cur > 0 or prev > 0 then
    reset = window - elapsed
  end
end
if isBucket then
  local rb, tb = 0, 0
  local free = burst * window - level
  if free > 0 then rb = idiv(free, window) end
  if level > 0 then tb = idiv(level - 1, limit) + 1 end
  if remaining == nil or rb < remaining then remaining = rb end
  if tb > reset then reset = tb end
end

-- save: a rejection changes nothing that cannot be recomputed from the stored state.
if ok then
  if reset <= 0 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, struct.pack(LAYOUT, start, cur, prev, level, last), 'PX', idiv(reset * tick - 1, 1000) + 2)
  end
end
if mode == 'adjust' then return {reset} end
-- ticks to µs from now (tick 1: unchanged)
if tick ~= 1 then
  if reset > 0 then reset = reset * tick - off end
  if wait > 0 then wait = wait * tick - off end
end
if ok then return struct.pack(REPLY, 1, remaining, 0, reset, wait) end
local retry = math.max(retryWin, retryBkt)
if never then retry = math.max(reset, window * tick - off) end
if tick ~= 1 and not never then retry = retry * tick - off end
return struct.pack(REPLY, 0, remaining, retry, reset, 0)
