-- Applies one event's velocity operations to one entity's hash atomically
-- (see features.ApplyVelocity and features.ApplyLabels): the operations of
-- models.OrderOps / models.FailedPaymentOps / models.LabelOps on that
-- entity.
--
-- KEYS[1] entity hash {prefix}fv:{bucket}{kind}:{id}
-- ARGV[1..4] effectively-once bookkeeping (applied.lua)
-- ARGV[5] hash TTL, ms
-- ARGV[6..9] prune cutoffs: minute, hour, day, last-seen ms (models.PruneCutoffs)
-- ARGV[10] the size from which a hash is pruned (models.PruneAbove)
-- ARGV[11] how many counterparts a hash keeps at most (models.MaxCounterparts)
-- ARGV[12] '1' to return the hash as it was before (features.AssessOrder)
-- ARGV[13..] triples op, field, value (op '+' add, '>' max, '<' min)
-- Returns 1 when applied, 0 when skipped as already applied; with ARGV[12]
-- '1', {1 or 0, the hash's fields and values before}.
--
-- Every operation commutes, so events applied in any order give the same
-- hashes. Pruning only drops buckets outside every window (see
-- models.PruneCutoffs); a late event may recreate one, and reads ignore it.
local before
if ARGV[12] == '1' then
  before = redis.call('HGETALL', KEYS[1])
end
local seen, ids = already_applied()
if seen then
  if before then
    return {0, before}
  end
  return 0
end
local key = KEYS[1]
for a = 13, #ARGV, 3 do
  local op, f, v = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if op == '+' then
    redis.call('HINCRBY', key, f, v)
  else
    local cur = tonumber(redis.call('HGET', key, f))
    local n = tonumber(v)
    if cur == nil or (op == '>' and n > cur) or (op == '<' and n < cur) then
      redis.call('HSET', key, f, v)
    end
  end
end

local minuteCut, hourCut, dayCut, seenCut = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local cutoffs = {['c:m:'] = minuteCut, ['f:m:'] = minuteCut, ['c:h:'] = hourCut, ['f:h:'] = hourCut,
                 ['c:d:'] = dayCut, ['s:d:'] = dayCut, ['lc:d:'] = dayCut, ['lf:d:'] = dayCut,
                 ['lq:d:'] = dayCut}
local pruneAbove = tonumber(ARGV[10])
local all = {}
if redis.call('HLEN', key) > pruneAbove then
  -- The size counts state fields, not the bookkeeping ("@…"), as
  -- models.EntityState does.
  all = redis.call('HGETALL', key)
  local n = 0
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) ~= '@' then
      n = n + 1
    end
  end
  if n <= pruneAbove then
    all = {}
  end
end
if #all > 0 then
  local kept = {} -- counterparts still inside the retention
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    local prefix, idx = string.match(f, '^(%a+:%a:)(%-?%d+)$')
    if prefix and cutoffs[prefix] and tonumber(idx) < cutoffs[prefix] then
      redis.call('HDEL', key, f)
    elseif string.sub(f, 1, 2) == 'x:' then
      if tonumber(v) < seenCut then
        redis.call('HDEL', key, f)
      else
        kept[#kept + 1] = {f, tonumber(v)}
      end
    end
  end
  -- A hot entity (a shared IP) forgets its oldest counterparts beyond
  -- the cap, so that reads stay small (models.MaxCounterparts).
  local maxCounterparts = tonumber(ARGV[11])
  if #kept > maxCounterparts then
    table.sort(kept, function(x, y)
      if x[2] ~= y[2] then return x[2] < y[2] end
      return x[1] < y[1]
    end)
    for i = 1, #kept - maxCounterparts do
      redis.call('HDEL', key, kept[i][1])
    end
  end
end
mark_applied(ids)
redis.call('PEXPIRE', key, ARGV[5])
if before then
  return {1, before}
end
return 1
