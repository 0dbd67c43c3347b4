-- Records one order.placed event's order atomically (see
-- features.ApplyVelocity), before its entities are updated (velocity.lua):
-- the entities a label of it updates, and the join with a label that
-- arrived first, which the order's entity updates then count.
--
-- KEYS[1] order record hash {prefix}fo:{bucket}{orderID}
-- KEYS[2] label hash {prefix}fl:{bucket}{orderID} (the same hash tag)
-- ARGV[1] the record: "mark=offset" of its Kafka origin, else its digest
-- ARGV[2] the label signature "card device address store orderTimeMs"
-- ARGV[3] hash TTL, ms
-- Returns {1} when the order is recorded by this record, now or before (a
-- redelivery: its entity updates are made again, and skipped where they
-- were made), {1, label time ms, fraud 0/1} when, besides, a label that
-- arrived first is counted with it, and {2} when another record recorded
-- the order (a duplicate: nothing to do) or this record's entity updates
-- were all made ("@done", set by features.AssessOrder: an assessment's
-- record is never a stream record, so the stream's copy of an assessed
-- order is a duplicate however many events its entities saw since).
local rec, done = unpack(redis.call('HMGET', KEYS[1], '@rec', '@done'))
if rec and (rec ~= ARGV[1] or done) then
  return {2}
end
if not rec then
  redis.call('HSET', KEYS[1], 'sig', ARGV[2], '@rec', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('HGET', KEYS[2], 'joined') ~= '1' then
    redis.call('HSET', KEYS[2], 'joined', '1', '@by', 'order')
  end
end
local label = redis.call('HMGET', KEYS[2], '@by', 'lt', 'f')
if label[1] == 'order' then
  return {1, tonumber(label[2]), tonumber(label[3])}
end
return {1}
