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
  local cur = redis.call('HMGET', KEYS[1], ARGV[1], '@ids')
  if ARGV[1] ~= '' and cur[1] and tonumber(ARGV[2]) <= tonumber(cur[1]) then
    return true
  end
  local ids = cur[2] or ''
  local at = string.find(ids, ARGV[3], 1, true)
  while at do
    if at % 8 == 1 then -- a whole digest, not the end of one and the start of the next
      if ARGV[1] ~= '' then
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
      end
      return true
    end
    at = string.find(ids, ARGV[3], at + 1, true)
  end
  return false, ids
end

-- mark_applied records the event in the entity's hash: its partition's
-- offset (only reached when it is above the mark) and its digest, first;
-- fields (name, value pairs, may be nil) are written in the same HSET.
local function mark_applied(ids, fields)
  fields = fields or {}
  fields[#fields + 1] = '@ids'
  fields[#fields + 1] = ARGV[3] .. string.sub(ids, 1, 8 * (tonumber(ARGV[4]) - 1))
  if ARGV[1] ~= '' then
    fields[#fields + 1] = ARGV[1]
    fields[#fields + 1] = ARGV[2]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end

