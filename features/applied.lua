-- Effectively-once bookkeeping, prepended to every applier script (see
-- features.newApplierScript): an event is applied at most once, by its id
-- (the dedup key) and by its record's offset (the partition's watermark in
-- the offsets hash; field is "" for events that did not come from Kafka).

-- already_applied reports whether the event was seen before.
local function already_applied(seen_key, offsets_key, field, offset)
  if redis.call('EXISTS', seen_key) == 1 then
    return true
  end
  if field ~= '' then
    local mark = redis.call('HGET', offsets_key, field)
    if mark and tonumber(offset) <= tonumber(mark) then
      return true
    end
  end
  return false
end

-- mark_applied records the event id for seen_ttl milliseconds and moves the
-- watermark to its offset (only reached when the offset is above it).
local function mark_applied(seen_key, offsets_key, field, offset, seen_ttl)
  redis.call('SET', seen_key, '1', 'PX', seen_ttl)
  if field ~= '' then
    redis.call('HSET', offsets_key, field, offset)
  end
end

