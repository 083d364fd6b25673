-- ARGV: node, epoch, then operations: 'a', id, client, registered_at (a
-- session registered here) or 'r', id (one removed here). Applies them in
-- order. Returns {-1} when the node is fenced off (nothing applied), else
-- {applied, conflicting ids...}: an id a live node other than this one
-- holds is not taken over. Replaying a batch changes nothing more.
--
-- The operations are applied to the records in memory first and written
-- back with one command per kind, not one per session: a batch of hundreds
-- of changes costs a handful of commands.
keep_time()
local node, epoch = ARGV[1], tonumber(ARGV[2])
if not current(node, epoch) then return { -1 } end

-- Read every record the batch touches, at once.
local ids, index = {}, {}
local i = 3
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  if op ~= 'a' and op ~= 'r' then return redis.error_reply('unknown operation ' .. tostring(op)) end
  if index[id] == nil then
    table.insert(ids, id)
    index[id] = #ids
  end
  i = i + (op == 'a' and 4 or 2)
end
if #ids == 0 then return { 0 } end
local before, after, raw_before = {}, {}, redis.call('HMGET', SESSIONS, unpack(ids))
for n, id in ipairs(ids) do
  before[id] = raw_before[n] and decode(raw_before[n]) or false
  after[id] = before[id]
end

local alive = {}
local function other_alive(record)
  local key = record.n .. '\n' .. record.e
  if alive[key] == nil then alive[key] = holder_alive(record) end
  return alive[key]
end

local applied = 0
local result = { 0 }
i = 3
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  local now_held = after[id]
  if op == 'a' then
    local client, registered_at = ARGV[i + 2], tonumber(ARGV[i + 3])
    if now_held and now_held.n ~= node and other_alive(now_held) then
      table.insert(result, id)
    else
      if not (now_held and now_held.n == node and now_held.e == epoch and now_held.c == client) then
        after[id] = { c = client, n = node, e = epoch, t = registered_at }
      end
      applied = applied + 1
    end
    i = i + 4
  else
    if now_held and now_held.n == node then after[id] = false end
    applied = applied + 1
    i = i + 2
  end
end

-- Write back what changed, one command per kind.
local w = batch_writes()
for _, id in ipairs(ids) do
  local old, new = before[id], after[id]
  if old ~= new then
    if old then digest_change(old.n, old.e, id, old.c, -1) end
    if new then digest_change(node, epoch, id, new.c, 1) end
    if old then
      table.insert(w.zrem_client, lp(old.c) .. id)
      table.insert(w.zrem_node, lp(old.n) .. id)
      if not new then table.insert(w.hdel, id) end
    end
    if new then
      table.insert(w.hset, id)
      table.insert(w.hset, cjson.encode(new))
      table.insert(w.zadd_client, 0)
      table.insert(w.zadd_client, lp(new.c) .. id)
      table.insert(w.zadd_node, 0)
      table.insert(w.zadd_node, lp(new.n) .. id)
    end
  end
end
write_back(w)
save_digests()
result[1] = applied
return result
