-- Effectively-once bookkeeping, prepended to every applier script that
-- writes an entity hash (see features.newApplierScript). It lives in the
-- entity's own hash (KEYS[1]), in fields that start with "@":
--   "@{topic}/{partition}[/{topic id}]" the offset of the last record of
--        that partition applied to this entity: one field per partition
--        the entity got records from;
--   "@ids" the digests (8 bytes each) of the last features.RecentIDs
--        events applied to it, for events without a Kafka origin and for
--        the same event produced twice (a retried publish).
-- The first three arguments of every such script are:
-- ARGV[1] the mark field, "" when the event has no Kafka origin
-- ARGV[2] the record's offset (with ARGV[1])
-- ARGV[3] the event's digest: its id and applier (features.digest)
-- ARGV[4] how many digests "@ids" keeps

-- already_applied reports whether this entity applied the event before, and
-- returns the digests for mark_applied. A record skipped for its event id
-- moves the mark too, so that it is skipped by its offset from then on,
-- after its id has left "@ids".
local function already_applied()
  if ARGV[1] ~= '' then
    local mark = redis.call('HGET', KEYS[1], ARGV[1])
    if mark and tonumber(ARGV[2]) <= tonumber(mark) then
      return true
    end
  end
  local ids = redis.call('HGET', KEYS[1], '@ids') or ''
  for i = 1, #ids, 8 do
    if string.sub(ids, i, i + 7) == ARGV[3] then
      if ARGV[1] ~= '' then
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
      end
      return true
    end
  end
  return false, ids
end

-- mark_applied records the event in the entity's hash: its partition's
-- offset (only reached when it is above the mark) and its digest, first.
local function mark_applied(ids)
  ids = ARGV[3] .. string.sub(ids, 1, 8 * (tonumber(ARGV[4]) - 1))
  if ARGV[1] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], '@ids', ids)
  else
    redis.call('HSET', KEYS[1], '@ids', ids)
  end
end

