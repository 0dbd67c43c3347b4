-- Counts one session event into a live tally, effectively once (see
-- features.ApplySessions): a store's popularity (the products added to
-- carts there) or a product's co-occurrence (the products added to the
-- same carts).
--
-- KEYS[1] the tally's bookkeeping hash {prefix}<kind>:{bucket}{id}
-- KEYS[2] the tally's sorted set {prefix}<kind>z:{bucket}{id}, same slot
-- ARGV[1..4] effectively-once bookkeeping (applied.lua)
-- ARGV[5] most members the sorted set keeps (the highest counts); 0: all
-- ARGV[6] TTL of both keys, milliseconds
-- ARGV[7] 1 when the event is about the tally's own entity: count it in
--         the hash's "n" (how often the product was added to a cart)
-- ARGV[8..] members to count once each
-- Returns 1 when applied, 0 when skipped as already applied.
local seen, ids = already_applied()
if seen then
  return 0
end
for i = 8, #ARGV do
  redis.call('ZINCRBY', KEYS[2], 1, ARGV[i])
end
local keep = tonumber(ARGV[5])
if keep > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
end
if ARGV[7] == '1' then
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
mark_applied(ids)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return 1
