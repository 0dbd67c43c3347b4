-- Records availability states in one store's at-risk index (see
-- features/atrisk.go): a sorted set of the store's products by their
-- probability at their latest update, lowest first.
--
-- KEYS[1] the index {prefix}atrisk:{bucket}{store}
-- KEYS[2] the version of each product's indexed state {prefix}atriskver:{bucket}{store}
-- ARGV[1] the most products the index keeps
-- ARGV[2] the index's TTL, milliseconds
-- ARGV[3..] triples of score, product id, version of the state scored
-- A product's score is replaced only by that of a state at least as new
-- (by the availability hash's version): a product's picks and feed levels
-- come from two topics, applied by workers that may finish in any order.
-- Returns how many products the bound evicted.
for i = 3, #ARGV, 3 do
  local product, ver = ARGV[i + 1], tonumber(ARGV[i + 2])
  local indexed = tonumber(redis.call('HGET', KEYS[2], product))
  if indexed == nil or ver >= indexed then
    redis.call('ZADD', KEYS[1], ARGV[i], product)
    redis.call('HSET', KEYS[2], product, ARGV[i + 2])
  end
end
local evicted = 0
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  -- The least at risk go first: they are the least likely to be asked for.
  local gone = redis.call('ZRANGE', KEYS[1], -over, -1)
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
  evicted = #gone
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return evicted
