-- Records availability states in one store's at-risk index (see
-- features/atrisk.go): a sorted set of the store's products by their
-- probability at their latest update, lowest first.
--
-- KEYS[1] the index {prefix}atrisk:{bucket}{store}: one key, in the store's slot
-- ARGV[1] the most products the index keeps
-- ARGV[2] the index's TTL, milliseconds
-- ARGV[3..] pairs of score, product id
-- Returns how many products the bound evicted.
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
local evicted = 0
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  -- The least at risk go first: they are the least likely to be asked for.
  evicted = redis.call('ZREMRANGEBYRANK', KEYS[1], -over, -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return evicted
