-- Applies one order.placed or payment.failed event atomically (see
-- features.ApplyVelocity): the velocity operations of models.OrderOps /
-- models.FailedPaymentOps on each entity hash, and for an order its record
-- and the join with a label that arrived first.
--
-- KEYS[1] dedup key {prefix}seen:{eventID}
-- KEYS[2] offsets watermark hash {prefix}offsets
-- KEYS[3] order record hash {prefix}fo:{orderID}
-- KEYS[4] label hash {prefix}fl:{orderID}
-- KEYS[5..] entity hashes {prefix}fv:{kind}:{id}
-- ARGV[1] watermark field "topic/partition", "" when the event has no Kafka origin
-- ARGV[2] record offset (with ARGV[1])
-- ARGV[3] dedup key TTL, ms
-- ARGV[4] entity, order and label hash TTL, ms
-- ARGV[5] 1 for order.placed, 0 for payment.failed
-- ARGV[6..9] prune cutoffs: minute, hour, day, last-seen ms (models.PruneCutoffs)
-- ARGV[10] the order record's label signature "card device address store" (order.placed)
-- ARGV[11] L, then L entity positions (1 = KEYS[5]) whose label risk a label updates
-- then per entity: n, then n triples op, field, value (op '+' add, '>' max, '<' min)
-- ARGV[#ARGV-1] the size from which a hash is pruned (models.PruneAbove)
-- ARGV[#ARGV] how many counterparts a hash keeps at most (models.MaxCounterparts)
-- Returns 1 when applied, 0 when skipped as already seen, 2 when the order
-- was already recorded under another event id (also skipped).
--
-- Every operation commutes, so events applied in any order give the same
-- hashes. Pruning only drops buckets outside every window (see
-- models.PruneCutoffs); a late event may recreate one, and reads ignore it.
if already_applied(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then
  return 0
end
local ttl = ARGV[4]
local function done(result)
  mark_applied(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
  return result
end

local isOrder = ARGV[5] == '1'
if isOrder then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return done(2)
  end
  redis.call('HSET', KEYS[3], 'sig', ARGV[10])
  redis.call('PEXPIRE', KEYS[3], ttl)
end

local minuteCut, hourCut, dayCut, seenCut = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local cutoffs = {['c:m:'] = minuteCut, ['f:m:'] = minuteCut, ['c:h:'] = hourCut, ['f:h:'] = hourCut,
                 ['c:d:'] = dayCut, ['s:d:'] = dayCut, ['lc:d:'] = dayCut, ['lf:d:'] = dayCut}
local pruneAbove = tonumber(ARGV[#ARGV - 1])
local maxCounterparts = tonumber(ARGV[#ARGV])

local nLabel = tonumber(ARGV[11])
local labelEntities = {}
for i = 1, nLabel do
  labelEntities[i] = tonumber(ARGV[11 + i])
end
local a = 12 + nLabel
for e = 5, #KEYS do
  local key = KEYS[e]
  local n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    local op, f, v = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    a = a + 3
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
  if redis.call('HLEN', key) > pruneAbove then
    local all = redis.call('HGETALL', key)
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
  redis.call('PEXPIRE', key, ttl)
end

-- A label that arrived before its order is counted now, once.
if isOrder and redis.call('EXISTS', KEYS[4]) == 1 and redis.call('HGET', KEYS[4], 'joined') ~= '1' then
  local label = redis.call('HMGET', KEYS[4], 'lt', 'f')
  local day = string.format('%.0f', math.floor(tonumber(label[1]) / 86400000))
  for _, pos in ipairs(labelEntities) do
    local key = KEYS[4 + pos]
    redis.call('HINCRBY', key, 'lc:d:' .. day, 1)
    redis.call('HINCRBY', key, 'lf:d:' .. day, label[2])
    redis.call('PEXPIRE', key, ttl)
  end
  redis.call('HSET', KEYS[4], 'joined', '1')
end
return done(1)
