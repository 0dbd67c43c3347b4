-- Applies one session event to its session atomically (see
-- features.ApplySessions; the product's index of sessions is item.lua's).
--
-- KEYS[1] session hash {prefix}sess:{bucket}{sessionID}
-- ARGV[1..4] effectively-once bookkeeping (applied.lua)
-- ARGV[5] action: "view", "add", "remove", "search" or "checkout"
-- ARGV[6] user id
-- ARGV[7] product id ("" when none)
-- ARGV[8] event time, unix milliseconds
-- ARGV[9] session hash TTL, milliseconds
-- ARGV[10] change channel: a shard channel in KEYS[1]'s slot
-- ARGV[11] session id
-- ARGV[12] most item events kept per session
-- Returns 1 when applied, 2 when skipped because the session belongs to
-- another user (recorded as applied), 0 when skipped as already applied
-- and the session is the user's, 3 when skipped as already applied and it
-- is not.
--
-- The hash holds: user (the owner: the user of the first event, never
-- changed), items (item events "action:product:ms"
-- separated by spaces, in event-time order, the newest ARGV[11]) and cart
-- (product ids separated by spaces). Ids never contain ":" or spaces.
-- An applied event publishes the session id on the change channel.
local owner = redis.call('HGET', KEYS[1], 'user')
local seen, ids = already_applied()
if seen then
  if owner == ARGV[6] then
    return 0
  end
  return 3
end

local result = 1
local fields -- the session's, when the event is applied
if owner and owner ~= ARGV[6] then
  result = 2
else
  local action, product, t = ARGV[5], ARGV[7], tonumber(ARGV[8])
  local cur = redis.call('HMGET', KEYS[1], 'items', 'cart')
  fields = {'user', ARGV[6]}
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
    table.insert(items, pos, action .. ':' .. product .. ':' .. ARGV[8])
    local keep = tonumber(ARGV[12])
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

  elseif action == 'checkout' then
    -- What was in the cart has been bought.
    fields[#fields + 1] = 'cart'
    fields[#fields + 1] = ''
  end
end

mark_applied(ids, fields)
if result == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  redis.call('SPUBLISH', ARGV[10], ARGV[11])
end
return result
