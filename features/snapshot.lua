-- Tracks one snapshot of a store's feed (see features.ApplyInventory): which
-- products got a level of it, and its completion. It lives in one hash, in
-- the store's bucket; every write is idempotent, so it needs no
-- effectively-once bookkeeping: a redelivered level or completion writes
-- what is already there.
--
-- KEYS[1] the snapshot's hash {prefix}snap:{bucket}{store}:{snapshot}; its
--         fields are the products that got a level, and the completion's
--         ":levels", ":counted_at_ms", ":time_ms" (ids hold no colon), or
--         ":done" once the snapshot's implied zeros were all applied.
-- ARGV[1] "level", "completed" or "finished"
-- ARGV[2] the product (level) or the completion's level count (completed)
-- ARGV[3] the completion's counted_at, unix milliseconds (completed)
-- ARGV[4] the completion's event time, unix milliseconds (completed)
-- ARGV[5] TTL, milliseconds
-- Returns {recorded} when there is nothing to fan out, else
-- {recorded, counted_at_ms, time_ms, product...}: the snapshot is complete
-- (the completion is known and at least :levels products got a level), and
-- these are the products that did. recorded is 1 when the call recorded
-- something new (the product's first level of the snapshot, the snapshot's
-- first completion), 0 when it was known.
if redis.call('HEXISTS', KEYS[1], ':done') == 1 then
  return {0}
end
local mode = ARGV[1]
if mode == 'finished' then
  -- The product fields are no longer needed: a level arriving now wins over
  -- its snapshot's zero in the availability hash itself.
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], ':done', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {0}
end
local recorded
if mode == 'level' then
  recorded = redis.call('HSET', KEYS[1], ARGV[2], '1')
else
  recorded = redis.call('HSETNX', KEYS[1], ':levels', ARGV[2])
  if recorded == 1 then
    -- The first completion of a snapshot counts; one store's completions
    -- travel on one partition, so every replay sees the same first.
    redis.call('HSET', KEYS[1], ':counted_at_ms', ARGV[3], ':time_ms', ARGV[4])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local c = redis.call('HMGET', KEYS[1], ':levels', ':counted_at_ms', ':time_ms')
if not c[1] or redis.call('HLEN', KEYS[1]) - 3 < tonumber(c[1]) then
  return {recorded}
end
local out = {recorded, c[2], c[3]}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 1) ~= ':' then
    out[#out + 1] = f
  end
end
return out
