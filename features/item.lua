-- Records that a session touched a product, in the product's index of
-- recent sessions (see features.ApplySessions), after session.lua applied
-- the event to the session. It needs no bookkeeping: applied again, it
-- leaves the index as it was (the latest time of each session, the newest
-- ones kept).
--
-- KEYS[1] the product's index {prefix}item:{bucket}{productID}
-- ARGV[1] event time, unix milliseconds
-- ARGV[2] session id
-- ARGV[3] most sessions kept per product index
-- ARGV[4] index TTL, milliseconds
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
