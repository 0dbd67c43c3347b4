-- Records one order.labeled event atomically (see features.ApplyLabels):
-- the label, and whether its order is known. The first label of an order
-- wins. When the order is known the caller counts the label in the
-- delayed-label risk of the order's card, device, address and store
-- (velocity.lua, models.LabelOps); otherwise the label waits and order.lua
-- joins it when the order arrives. Both scripts run on the order's slot,
-- so exactly one of them joins.
--
-- KEYS[1] label hash {prefix}fl:{bucket}{orderID}
-- KEYS[2] order record hash {prefix}fo:{bucket}{orderID} (the same hash tag)
-- ARGV[1] the record: "mark=offset" of its Kafka origin, else its digest
-- ARGV[2] label time, unix ms
-- ARGV[3] 1 when fraud, else 0
-- ARGV[4] hash TTL, ms
-- Returns {1} when the label is recorded now and waits for its order,
-- {1, signature} when it is recorded now and joined with its order, {0} or
-- {0, signature} when this record recorded it in a try that failed before
-- reporting it ("@reported", set by features.ApplyLabels: the caller counts
-- it again where it was joined, skipped where it was counted), {3} when
-- this record's label was reported applied before (a redelivery), and {2}
-- when another record labelled the order first.
local cur = redis.call('HMGET', KEYS[1], '@rec', '@by', '@reported')
if cur[1] and cur[1] ~= ARGV[1] then
  return {2}
end
if cur[3] then
  return {3}
end
local result = 0
if not cur[1] then
  result = 1
  local joined, by = '0', ''
  if redis.call('EXISTS', KEYS[2]) == 1 then
    joined, by = '1', 'label'
  end
  redis.call('HSET', KEYS[1], 'lt', ARGV[2], 'f', ARGV[3], '@rec', ARGV[1], 'joined', joined, '@by', by)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  cur[2] = by
end
if cur[2] == 'label' then
  return {result, redis.call('HGET', KEYS[2], 'sig')}
end
return {result}
