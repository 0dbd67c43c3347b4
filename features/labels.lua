-- Applies one order.labeled event atomically (see features.ApplyLabels):
-- records the label and, when the order is known, counts it in the
-- delayed-label risk of the order's card, device, address and store
-- (models.LabelOps). A label that arrives first waits in its hash until
-- velocity.lua records the order and counts it then; exactly one of the two
-- scripts does the count. The first label of an order wins.
--
-- KEYS[1] dedup key {prefix}seen:{eventID}
-- KEYS[2] offsets watermark hash {prefix}offsets
-- KEYS[3] label hash {prefix}fl:{orderID}
-- KEYS[4] order record hash {prefix}fo:{orderID}
-- KEYS[5] the round's own guard {prefix}labels-round:{watermark field}:{round}
-- KEYS[6..9] the order's card, device, address and store hashes, as the
--            caller read them from the order record (absent when it read none)
-- ARGV[1] watermark field, "" when the event has no Kafka origin
-- ARGV[2] record offset (with ARGV[1])
-- ARGV[3] dedup key TTL, ms
-- ARGV[4] label and entity hash TTL, ms
-- ARGV[5] label time, unix ms
-- ARGV[6] 1 when fraud, else 0
-- ARGV[7] the order record's signature the caller read, "" when none
-- ARGV[8] the round: an id of the caller's pipeline of label scripts
-- ARGV[9] '1' for the round's last label of this partition, else '0'
-- Returns 1 when applied, 0 when skipped as already seen, 2 when the order
-- already had a label (skipped), -1 when the order record changed since the
-- caller read it, -2 when deferred because a label before it in the round
-- returned -1 (for both, nothing written: read again and retry).
--
-- A round applies a partition's labels in offset order. After a -1 the rest
-- of the round is deferred: applied now, their offsets would raise the
-- partition's watermark above the retried label's, which would then be
-- skipped as already applied and its count lost. The round's last label
-- clears the guard. The guard is the round's own key, so rounds that run
-- beside it on the same partition never delete or replace it.
local guard = redis.call('GET', KEYS[5])
if guard and ARGV[9] == '1' then
  redis.call('DEL', KEYS[5])
end
if guard then
  return -2
end
if already_applied(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then
  return 0
end
local function done(result)
  mark_applied(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
  return result
end

if redis.call('EXISTS', KEYS[3]) == 1 then
  return done(2)
end
local sig = redis.call('HGET', KEYS[4], 'sig')
local joined = '0'
if sig then
  if sig ~= ARGV[7] or #KEYS < 9 then
    if ARGV[9] ~= '1' then
      -- Outlives the round only if the caller dies in the middle of it.
      redis.call('SET', KEYS[5], ARGV[8], 'PX', 60000)
    end
    return -1
  end
  local day = string.format('%.0f', math.floor(tonumber(ARGV[5]) / 86400000))
  for i = 6, 9 do
    redis.call('HINCRBY', KEYS[i], 'lc:d:' .. day, 1)
    redis.call('HINCRBY', KEYS[i], 'lf:d:' .. day, ARGV[6])
    redis.call('PEXPIRE', KEYS[i], ARGV[4])
  end
  joined = '1'
end
redis.call('HSET', KEYS[3], 'lt', ARGV[5], 'f', ARGV[6], 'joined', joined)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return done(1)
