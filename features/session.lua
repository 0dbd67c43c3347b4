-- Applies one session event atomically (see features.ApplySessions).
--
-- KEYS[1] session hash {prefix}sess:{sessionID}
-- KEYS[2] dedup key {prefix}seen:{eventID}
-- KEYS[3] offsets watermark hash {prefix}offsets
-- KEYS[4] the product's index of recent sessions {prefix}item:{productID}
--         (only for events about a product)
-- ARGV[1] action: "view", "add", "remove", "search" or "checkout"
-- ARGV[2] user id
-- ARGV[3] product id ("" when none)
-- ARGV[4] event time, unix milliseconds
-- ARGV[5] session hash TTL, milliseconds
-- ARGV[6] dedup key TTL, milliseconds
-- ARGV[7] watermark field "topic/partition", "" when the event has no Kafka origin
-- ARGV[8] record offset (with ARGV[7])
-- ARGV[9] change channel
-- ARGV[10] session id
-- ARGV[11] most item events kept per session
-- ARGV[12] most sessions kept per product index
-- Returns 1 when applied, 0 when skipped as already seen, 2 when skipped
-- because the session belongs to another user (recorded as seen).
--
-- The hash holds: user (the owner: the user of the first event, never
-- changed), items (item events "action:product:ms"
-- separated by spaces, in event-time order, the newest ARGV[11]) and cart
-- (product ids separated by spaces). Ids never contain ":" or spaces.
-- An applied event publishes the session id on the change channel.
if already_applied(KEYS[2], KEYS[3], ARGV[7], ARGV[8]) then
  return 0
end

local result = 1
local owner = redis.call('HGET', KEYS[1], 'user')
if owner and owner ~= ARGV[2] then
  result = 2
else
  local action, product, t = ARGV[1], ARGV[3], tonumber(ARGV[4])
  local cur = redis.call('HMGET', KEYS[1], 'items', 'cart')
  local fields = {'user', ARGV[2]}
  if product ~= '' then
    -- Insert by event time, after entries at the same time, so a late event
    -- takes its place in the sequence; then keep the newest.
    local items = {}
    for e in string.gmatch(cur[1] or '', '%S+') do
      items[#items + 1] = e
    end
    local pos = #items + 1
    while pos > 1 do
      local _, _, ms = string.find(items[pos - 1], ':(%d+)$')
      if tonumber(ms) <= t then
        break
      end
      pos = pos - 1
    end
    table.insert(items, pos, action .. ':' .. product .. ':' .. ARGV[4])
    local keep = tonumber(ARGV[11])
    local from = math.max(1, #items - keep + 1)
    fields[#fields + 1] = 'items'
    fields[#fields + 1] = table.concat(items, ' ', from, #items)

    -- The cart follows the partition's order: a session's events share a
    -- key, so they arrive in the order they were produced.
    if action == 'add' or action == 'remove' then
      local cart = {}
      for p in string.gmatch(cur[2] or '', '%S+') do
        if p ~= product then
          cart[#cart + 1] = p
        end
      end
      if action == 'add' then
        cart[#cart + 1] = product
      end
      fields[#fields + 1] = 'cart'
      fields[#fields + 1] = table.concat(cart, ' ')
    end

    redis.call('ZADD', KEYS[4], 'GT', t, ARGV[10])
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[12]) - 1)
    redis.call('PEXPIRE', KEYS[4], ARGV[5])
  elseif action == 'checkout' then
    -- What was in the cart has been bought.
    fields[#fields + 1] = 'cart'
    fields[#fields + 1] = ''
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end

mark_applied(KEYS[2], KEYS[3], ARGV[7], ARGV[8], ARGV[6])
if result == 1 then
  redis.call('PUBLISH', ARGV[9], ARGV[10])
end
return result
