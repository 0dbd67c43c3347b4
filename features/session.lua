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
-- ARGV[13] for a cart add, how many of the products added before it to
--          return (0 for other actions)
-- ARGV[14] how many of its latest cart adds the session remembers the
--          products returned for (features.CountedAddsKept)
-- Returns {result, product...}: result 1 when applied, 2 when skipped
-- because the session belongs to another user (recorded as applied), 0
-- when skipped as already applied and the session is the user's, 3 when
-- skipped as already applied and it is not. For results 1 and 0 of a cart
-- add, the products are the distinct ones the session added to its cart
-- before this add (by event time, most recent first, at most ARGV[13]):
-- what the live co-occurrence counts it with. A redelivery gets those the
-- first delivery returned: the session remembers them for its latest adds,
-- since its later events may have pushed the earlier adds out of its items.
--
-- The hash holds: user (the owner: the user of the first event, never
-- changed), items (item events "action:product:ms"
-- separated by spaces, in event-time order, the newest ARGV[12]), cart
-- (product ids separated by spaces) and adds (the latest ARGV[14] cart adds
-- "product:ms:before1:before2…", what each returned, oldest first,
-- separated by spaces). Ids never contain ":" or spaces.
-- An applied event publishes the session id on the change channel.
local function split(s)
  local out = {}
  for e in string.gmatch(s or '', '%S+') do
    out[#out + 1] = e
  end
  return out
end

-- added_before returns the distinct products of the cart adds before
-- position pos of items, most recent first, other than product.
local function added_before(items, pos, product)
  local out, seen = {}, {[product] = true}
  local limit = tonumber(ARGV[13])
  for i = pos - 1, 1, -1 do
    if #out >= limit then
      break
    end
    local _, _, action, p = string.find(items[i], '^(%a+):([^:]+):')
    if action == 'add' and not seen[p] then
      seen[p] = true
      out[#out + 1] = p
    end
  end
  return out
end

local entry = ARGV[5] .. ':' .. ARGV[7] .. ':' .. ARGV[8]
local owner = redis.call('HGET', KEYS[1], 'user')
local seen, ids = already_applied()
if seen then
  if owner ~= ARGV[6] then
    return {3}
  end
  local reply = {0}
  if ARGV[5] == 'add' then
    local adds = split(redis.call('HGET', KEYS[1], 'adds'))
    local this = ARGV[7] .. ':' .. ARGV[8]
    for i = #adds, 1, -1 do
      local a = adds[i]
      if a == this or string.sub(a, 1, #this + 1) == this .. ':' then
        for p in string.gmatch(string.sub(a, #this + 2), '[^:]+') do
          reply[#reply + 1] = p
        end
        break
      end
    end
  end
  return reply
end

local reply = {1}
local fields -- the session's, when the event is applied
if owner and owner ~= ARGV[6] then
  reply = {2}
else
  local action, product, t = ARGV[5], ARGV[7], tonumber(ARGV[8])
  local cur = redis.call('HMGET', KEYS[1], 'items', 'cart', 'adds')
  fields = {'user', ARGV[6]}
  if product ~= '' then
    -- Insert by event time, after entries at the same time, so a late event
    -- takes its place in the sequence; then keep the newest.
    local items = split(cur[1])
    local pos = #items + 1
    while pos > 1 do
      local _, _, ms = string.find(items[pos - 1], ':(%d+)$')
      if tonumber(ms) <= t then
        break
      end
      pos = pos - 1
    end
    table.insert(items, pos, entry)
    if action == 'add' then
      local added = {product, ARGV[8]}
      for _, p in ipairs(added_before(items, pos, product)) do
        reply[#reply + 1] = p
        added[#added + 1] = p
      end
      local adds = split(cur[3])
      adds[#adds + 1] = table.concat(added, ':')
      fields[#fields + 1] = 'adds'
      fields[#fields + 1] = table.concat(adds, ' ', math.max(1, #adds - tonumber(ARGV[14]) + 1), #adds)
    end
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
if reply[1] == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  redis.call('SPUBLISH', ARGV[10], ARGV[11])
end
return reply
