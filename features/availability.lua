-- Applies one availability event atomically (see features.ApplyAvailability).
-- It mirrors models.AvailabilityModel.ObservePick and ObserveCount exactly.
--
-- KEYS[1] availability hash {prefix}avail:{bucket}{store}:{product}
-- ARGV[1..4] effectively-once bookkeeping (applied.lua)
-- ARGV[5] kind: "found", "not_found" or "feed"
-- ARGV[6] event time, unix milliseconds
-- ARGV[7] feed quantity (feed only)
-- ARGV[8] pick decay rate per second
-- ARGV[9] availability hash TTL, milliseconds
-- ARGV[10] change channel: a shard channel in KEYS[1]'s slot
-- ARGV[11] the store-product, "store:product"
-- ARGV[12] the writer's clock, unix microseconds (the floor of the new version)
-- ARGV[13] when the feed quantity was counted, unix milliseconds (feed only)
-- ARGV[14] the level's snapshot (feed only): "level:{snapshot}" for a level
--          of a snapshot, "zero:{snapshot}" for the zero a complete
--          snapshot implies for a product it left out, "" for any other
--          level. The recorded level's is kept in the field feed_snap.
-- Returns {applied, state}: applied is 1 when the event was applied, 0 when
-- skipped as already applied; state is the hash's state after the call,
-- ver|found|not_found|at_ms|feed_qty|feed_at_ms|last_found|counted_at_ms|level_since_ms (the order of
-- features.stateFields; absent fields empty), from which the caller scores
-- the store's at-risk index (features/atrisk.go), also for a redelivery,
-- so that an index write lost after the apply is made again.
--
-- A change of the hash is published on the change channel with the new
-- state followed by |store:product. An event that changes nothing (an
-- older feed level) is not published.
local nfields = 9
local function state_of(cur)
  for i = 1, nfields do
    cur[i] = cur[i] or ''
  end
  return table.concat(cur, '|')
end

local seen, ids = already_applied()
if seen then
  return {0, state_of(redis.call('HMGET', KEYS[1], 'ver', 'found', 'not_found', 'at_ms', 'feed_qty', 'feed_at_ms', 'last_found', 'counted_at_ms', 'level_since_ms'))}
end

local t = tonumber(ARGV[6])
-- The state, in features.stateFields order; absent fields are false.
local cur = redis.call('HMGET', KEYS[1], 'ver', 'found', 'not_found', 'at_ms', 'feed_qty', 'feed_at_ms', 'last_found', 'counted_at_ms', 'level_since_ms')
local changed -- name, value pairs of the fields the event changes; nil if none
if ARGV[5] == 'feed' then
  -- The latest count wins; a tie keeps the level already recorded. A hash
  -- written before counts had their own time was counted at feed_at_ms.
  local countedAt = tonumber(cur[8]) or tonumber(cur[6])
  local later = countedAt == nil or tonumber(ARGV[13]) > countedAt
  local snap = ARGV[14]
  local recorded = redis.call('HGET', KEYS[1], 'feed_snap') or ''
  local kind, id = string.match(snap, '^(%a+):(.*)$')
  local wins
  if kind == 'zero' then
    -- The product had a level of this snapshot after all (it arrived while
    -- the completion was fanned out): the snapshot did not leave it out.
    wins = later and recorded ~= 'level:' .. id
  else
    -- A level of a snapshot replaces the zero the snapshot's completion
    -- implied before the level arrived, whenever it was counted.
    wins = later or (kind == 'level' and recorded == 'zero:' .. id)
  end
  if wins then
    -- level_since_ms: since when the level has stood at this quantity
    -- (models.ObserveCount): kept by a count of the quantity recorded, else
    -- this count's time. A hash written before it was kept had its level
    -- since its count.
    if not cur[6] or cur[5] ~= ARGV[7] then
      cur[9] = ARGV[13]
    else
      cur[9] = cur[9] or cur[8] or cur[6]
    end
    cur[5], cur[6], cur[8] = ARGV[7], ARGV[6], ARGV[13]
    changed = {'feed_qty', cur[5], 'feed_at_ms', cur[6], 'counted_at_ms', cur[8], 'level_since_ms', cur[9]}
    if snap ~= '' then
      changed[#changed + 1] = 'feed_snap'
      changed[#changed + 1] = snap
    elseif recorded ~= '' then
      redis.call('HDEL', KEYS[1], 'feed_snap')
    end
  end
else
  local found = tonumber(cur[2]) or 0
  local notFound = tonumber(cur[3]) or 0
  local at = tonumber(cur[4])
  local decay = tonumber(ARGV[8])
  local isFound = ARGV[5] == 'found'
  -- The latest pick's outcome, "1" found or "0" not; of simultaneous picks
  -- a not-found wins.
  local lastFound = cur[7] == '1'
  local weight = 1
  if at == nil then
    found, notFound, at, lastFound = 0, 0, t, isFound
  elseif t > at then
    -- Newer event: revalue the counts at t, then add a full observation.
    local scale = math.exp(-decay * ((t - at) / 1000))
    found = found * scale
    notFound = notFound * scale
    at, lastFound = t, isFound
  else
    -- Older (or simultaneous) event: discount it to the reference time.
    weight = math.exp(-decay * ((at - t) / 1000))
    if t == at then
      lastFound = lastFound and isFound
    end
  end
  if isFound then
    found = found + weight
  else
    notFound = notFound + weight
  end
  -- %.17g keeps every bit of a double; tostring would round to 14 digits.
  cur[2], cur[3], cur[4] = string.format('%.17g', found), string.format('%.17g', notFound), string.format('%.0f', at)
  cur[7] = lastFound and '1' or '0'
  changed = {'found', cur[2], 'not_found', cur[3], 'at_ms', cur[4], 'last_found', cur[7]}
end
if changed then
  -- The version orders the states of this hash for the API's near caches.
  -- It is the writer's clock in microseconds, raised when needed to exceed
  -- the previous version: it grows with every change, and a hash that was
  -- deleted or expired starts again above the versions cached before (unless
  -- a writer's clock is off by more than the time since). Redis's own clock
  -- (TIME) would cost a command per event: 10 % of BenchmarkIngest.
  cur[1] = string.format('%.0f', math.max(tonumber(ARGV[12]), (tonumber(cur[1]) or 0) + 1))
  table.insert(changed, 1, 'ver')
  table.insert(changed, 2, cur[1])
end

mark_applied(ids, changed)
redis.call('PEXPIRE', KEYS[1], ARGV[9])
local st = state_of(cur)
if changed then
  redis.call('SPUBLISH', ARGV[10], st .. '|' .. ARGV[11])
end
return {1, st}
