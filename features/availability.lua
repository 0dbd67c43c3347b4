-- Applies one availability event atomically (see features.ApplyAvailability).
-- It mirrors models.AvailabilityModel.ObservePick and ObserveFeed exactly.
--
-- KEYS[1] availability hash {prefix}avail:{store}:{product}
-- KEYS[2] dedup key {prefix}seen:{eventID}
-- KEYS[3] offsets watermark hash {prefix}offsets
-- ARGV[1] kind: "found", "not_found" or "feed"
-- ARGV[2] event time, unix milliseconds
-- ARGV[3] feed quantity (feed only)
-- ARGV[4] pick decay rate per second
-- ARGV[5] availability hash TTL, milliseconds
-- ARGV[6] dedup key TTL, milliseconds
-- ARGV[7] watermark field "topic/partition", "" when the event has no Kafka origin
-- ARGV[8] record offset (with ARGV[7])
-- ARGV[9] change channel
-- ARGV[10] change message "store:product"
-- Returns 1 when applied, 0 when skipped as already seen.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local field = ARGV[7]
local offset = tonumber(ARGV[8])
if field ~= '' then
  local mark = redis.call('HGET', KEYS[3], field)
  if mark and offset <= tonumber(mark) then
    return 0
  end
end

local t = tonumber(ARGV[2])
local changed = true
if ARGV[1] == 'feed' then
  local feedAt = tonumber(redis.call('HGET', KEYS[1], 'feed_at_ms'))
  -- Last writer wins by event time; a tie keeps the level already recorded.
  if feedAt == nil or t > feedAt then
    redis.call('HSET', KEYS[1], 'feed_qty', ARGV[3], 'feed_at_ms', ARGV[2])
  else
    changed = false
  end
else
  local cur = redis.call('HMGET', KEYS[1], 'found', 'not_found', 'at_ms')
  local found = tonumber(cur[1]) or 0
  local notFound = tonumber(cur[2]) or 0
  local at = tonumber(cur[3])
  local decay = tonumber(ARGV[4])
  local weight = 1
  if at == nil then
    found, notFound, at = 0, 0, t
  elseif t > at then
    -- Newer event: revalue the counts at t, then add a full observation.
    local scale = math.exp(-decay * ((t - at) / 1000))
    found = found * scale
    notFound = notFound * scale
    at = t
  else
    -- Older (or simultaneous) event: discount it to the reference time.
    weight = math.exp(-decay * ((at - t) / 1000))
  end
  if ARGV[1] == 'found' then
    found = found + weight
  else
    notFound = notFound + weight
  end
  -- %.17g keeps every bit of a double; tostring would round to 14 digits.
  redis.call('HSET', KEYS[1], 'found', string.format('%.17g', found),
    'not_found', string.format('%.17g', notFound), 'at_ms', string.format('%.0f', at))
end

redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[6])
if field ~= '' then
  -- Only reached when offset is above the stored watermark.
  redis.call('HSET', KEYS[3], field, ARGV[8])
end
if changed then
  redis.call('PUBLISH', ARGV[9], ARGV[10])
end
return 1
