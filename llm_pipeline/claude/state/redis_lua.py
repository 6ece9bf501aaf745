"""Lua twins of `gcra.py` and `circuit.py`, run atomically inside Redis with Redis's own clock.

Keep every formula in step with the Python versions (the backend tests run the same scenarios
against memory, SQLite and Redis). Numbers travel as `%.17g` strings so doubles round-trip.
"""

from __future__ import annotations

__all__ = ["BREAKER_LUA", "CLAIM_LUA", "LIMITER_LUA"]

_COMMON = r"""
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.17g', x) end
"""

LIMITER_LUA = (
    _COMMON
    + r"""
local FIELDS = {'tat0','tat1','tat2','paused_until','shift','last_start','end0','end1','end2','version',
                'iv0','iv1','iv2','n0','n1','n2'}
local N = #FIELDS
local key, op, t = KEYS[1], ARGV[1], now()
local v = redis.call('HMGET', key, unpack(FIELDS))
local r = {}
for i = 1, N do r[i] = tonumber(v[i]) or 0 end
-- r[1..3] tats, r[4] paused_until, r[5] shift, r[6] last_start, r[7..9] last_ends, r[10] version,
-- r[11..13] the intervals the tats are expressed in (0 = not known yet), r[14..16] units booked ever
-- (bookings and charges only)
local function save()
  local out = {}
  for i = 1, N do out[#out + 1] = FIELDS[i]; out[#out + 1] = fmt(r[i]) end
  redis.call('HSET', key, unpack(out))
end
local function with_backlogs(reply)
  for i = 1, 3 do reply[#reply + 1] = fmt(math.max(0, r[i] - t)) end
  return reply
end
local function adjust(d)
  local queued = r[6] > t
  for i = 1, 3 do
    if d[i] > 0 and r[10 + i] > 0 then r[13 + i] = r[13 + i] + d[i] / r[10 + i] end
    if d[i] > 0 then r[i] = math.max(r[i], t) + d[i]
    elseif queued then r[i] = math.min(r[i], math.max(r[i] + d[i], r[6 + i]))
    else r[i] = r[i] + d[i] end
  end
  r[10] = r[10] + 1
end
-- gcra.retune: express the row in the caller's intervals ARGV[k..k+2] (ARGV[k+3]: the cap on a
-- converted backlog), when given
local function retune(k)
  if not ARGV[k] then return end
  local iv = {tonumber(ARGV[k]), tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2])}
  if r[11] == iv[1] and r[12] == iv[2] and r[13] == iv[3] then return end
  local cap = tonumber(ARGV[k + 3]) or math.huge
  local base = math.max(t, r[4])
  local anchor = math.max(base, r[6])
  for i = 1, 3 do
    local old = r[10 + i]
    if old > 0 and old ~= iv[i] then
      local factor = iv[i] / old
      if r[i] > base then r[i] = base + math.min((r[i] - base) * factor, cap) end
      if r[6 + i] > anchor then r[6 + i] = anchor + (r[6 + i] - anchor) * factor end
    end
    r[10 + i] = iv[i]
  end
  r[10] = r[10] + 1
end

if op == 'reserve' then
  -- ARGV: 'reserve', costs[1..3], tolerance, horizon ('inf' = no horizon)[, credit[1..3][, intervals[1..3]]]
  local c, tol = {tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}, tonumber(ARGV[5])
  local version = r[10]
  retune(10)
  local changed = r[10] ~= version
  local horizon = ARGV[6] == 'inf' and math.huge or tonumber(ARGV[6])
  if ARGV[7] then
    local credit = {tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])}
    if credit[1] ~= 0 or credit[2] ~= 0 or credit[3] ~= 0 then
      adjust(credit)
      changed = true
    end
  end
  local before = {}
  for i = 1, N do before[i] = fmt(r[i]) end
  local start = math.max(t, r[4])
  for i = 1, 3 do
    local candidate = r[i] + c[i] - tol
    if candidate > start + 1e-6 then start = candidate end
  end
  local booked = start - t <= horizon + 1e-6
  if booked then
    for i = 1, 3 do
      r[i] = math.max(r[i], start) + c[i]
      r[6 + i] = math.max(r[6 + i], start + c[i])
      if r[10 + i] > 0 then r[13 + i] = r[13 + i] + c[i] / r[10 + i] end
    end
    r[6] = math.max(r[6], start)
    r[10] = r[10] + 1
    save()
  elseif changed then
    save()
  end
  local reply = with_backlogs({fmt(start - t)})
  for i = 1, N do reply[#reply + 1] = before[i] end
  reply[#reply + 1] = fmt(r[10])
  reply[#reply + 1] = fmt(r[5])
  reply[#reply + 1] = booked and '1' or '0'
  for i = 14, 16 do reply[#reply + 1] = fmt(r[i]) end
  return reply
elseif op == 'adjust' then
  retune(5)
  adjust({tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])})
elseif op == 'undo' then
  -- ARGV: 'undo', version, before[1..N], costs[1..3][, intervals[1..3]]
  if r[10] == tonumber(ARGV[2]) then
    for _, i in ipairs({1, 2, 3, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16}) do r[i] = tonumber(ARGV[2 + i]) end
    r[10] = r[10] + 1
    retune(6 + N)
  else
    retune(6 + N)
    adjust({-tonumber(ARGV[3 + N]), -tonumber(ARGV[4 + N]), -tonumber(ARGV[5 + N])})
  end
elseif op == 'cool_down' then
  local seconds, tol = tonumber(ARGV[2]), tonumber(ARGV[3])
  retune(4)
  local ext = math.max(0, t + seconds - math.max(r[4], t))
  r[4] = math.max(r[4], t + seconds)
  r[5] = r[5] + ext
  local queued = r[6] > t
  local push = queued or tol > 0
  for i = 1, 3 do
    if push then r[i] = math.max(r[i] + ext, t + tol) else r[i] = math.max(r[i], t + tol) end
  end
  if queued then
    for i = 6, 9 do r[i] = r[i] + ext end
  end
  r[10] = r[10] + 1
elseif op == 'raise_floor' then
  retune(5)
  for i = 1, 3 do
    local b = tonumber(ARGV[1 + i])
    if b then r[i] = math.max(r[i], t + b) end
  end
  r[10] = r[10] + 1
elseif op == 'catch_up' then
  -- ARGV: 'catch_up', age, shift, backlogs[1..3] ('-' = no news), marks[1..3], limits[1..3][, intervals]
  local version = r[10]
  retune(13)
  local given = {0, 0, 0}
  if r[5] == tonumber(ARGV[3]) and r[4] <= t then
    local sent, queued = t - tonumber(ARGV[2]), r[6] > t
    for i = 1, 3 do
      local b, limit = tonumber(ARGV[3 + i]), tonumber(ARGV[9 + i])
      if b and r[10 + i] > 0 and limit > 0 then
        local target = math.max(sent + b + (r[13 + i] - tonumber(ARGV[6 + i])) * r[10 + i], r[i] - limit)
        if queued then target = math.max(target, r[6 + i]) end
        if target < r[i] - 1e-6 then
          given[i] = r[i] - target
          r[i] = target
        end
      end
    end
    if given[1] > 0 or given[2] > 0 or given[3] > 0 then r[10] = r[10] + 1 end
  end
  if r[10] ~= version then save() end  -- as SQLite: a row nothing changed is not written
  return {fmt(given[1]), fmt(given[2]), fmt(given[3])}
elseif op == 'peek' then
  local reply = with_backlogs({fmt(math.max(0, r[4] - t))})
  reply[#reply + 1] = fmt(r[5])
  return reply
else
  return redis.error_reply('unknown op ' .. op)
end
save()
return with_backlogs({'0'})
"""
)

BREAKER_LUA = (
    _COMMON
    + r"""
local key, op, t = KEYS[1], ARGV[1], now()
local v = redis.call('HMGET', key, 'opened_until', 'probe_until', 'failures', 'last_error')
local opened, probe = tonumber(v[1]) or 0, tonumber(v[2]) or 0
local failures = v[3] and cjson.decode(v[3]) or {}
local last = v[4] or ''
local function save()
  local encoded = #failures == 0 and '[]' or cjson.encode(failures)
  redis.call('HSET', key, 'opened_until', fmt(opened), 'probe_until', fmt(probe), 'failures', encoded,
             'last_error', last)
end
local function state()
  if opened == 0 then return 'closed' end
  if t < opened then return 'open' end
  return 'half_open'
end

if op == 'admit' then
  local claim, ttl = ARGV[2], tonumber(ARGV[3])
  local st = state()
  if st == 'closed' then return {'allow', st, last, '0', tostring(#failures)} end
  if st == 'open' then return {'reject', st, last, fmt(opened - t), '0'} end
  if probe > t then return {'reject', st, last, fmt(probe - t), '0'} end
  if claim == '0' then return {'allow', st, last, '0', '0'} end
  probe = t + ttl
  save()
  return {'probe', st, last, '0', '0'}
elseif op == 'failure' then
  local is_probe, err = ARGV[2], ARGV[3]
  local threshold, window, open_s = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  last = err
  if is_probe == '1' then
    opened, probe, failures = t + open_s, 0, {}
    save()
    return 'reopened'
  end
  if state() ~= 'closed' then save() return '' end
  local recent = {}
  for _, f in ipairs(failures) do if f > t - window then recent[#recent + 1] = f end end
  recent[#recent + 1] = t
  while #recent > threshold do table.remove(recent, 1) end
  failures = recent
  if #recent >= threshold then
    opened, probe, failures = t + open_s, 0, {}
    save()
    return 'opened'
  end
  save()
  return ''
elseif op == 'success' then
  if opened == 0 then
    if #failures > 0 then failures = {} save() end
    return ''
  end
  if ARGV[2] ~= '1' then return '' end
  opened, probe, failures = 0, 0, {}
  save()
  return 'closed'
elseif op == 'release' then
  probe = 0
  save()
  return ''
elseif op == 'renew' then
  if state() == 'half_open' and probe > 0 then
    probe = math.max(probe, t + tonumber(ARGV[2]))
    save()
  end
  return ''
end
return redis.error_reply('unknown op ' .. op)
"""
)

#: Claims on requests in flight (`ClaimStore`): one key per claim holding its owner, expiring with
#: its lease (PX, on the server's clock). ARGV[1] = op, ARGV[2] = owner, ARGV[3] = lease in ms;
#: for 'claim', KEYS[2] is the ledger entry and ARGV[4] '1' claims even when it exists.
CLAIM_LUA = r"""
local op, owner = ARGV[1], ARGV[2]
if op == 'claim' then
  if ARGV[4] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  local holder = redis.call('GET', KEYS[1])
  if holder and holder ~= owner then return 0 end
  redis.call('SET', KEYS[1], owner, 'PX', ARGV[3])
  return 1
elseif op == 'renew' then
  for _, key in ipairs(KEYS) do
    if redis.call('GET', key) == owner then redis.call('PEXPIRE', key, ARGV[3]) end
  end
  return 1
elseif op == 'release' then
  if redis.call('GET', KEYS[1]) == owner then redis.call('DEL', KEYS[1]) end
  return 1
end
return redis.error_reply('unknown op ' .. op)
"""
