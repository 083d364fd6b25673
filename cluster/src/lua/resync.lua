-- ARGV: node, epoch, reset, then operations. A node's resync of its own
-- records, one bounded batch a call: with reset '1' the node's digest
-- starts over at zero; then
--   'd', id                          the node does not hold `id`: its record
--                                    (if the node's) and index entries go;
--   'A', id, client, registered_at   the node holds `id`: its record is
--                                    written if missing or different, its
--                                    index entries restored, and it is
--                                    counted in the digest.
-- Each id the node holds is asserted once in a resync, so the digest ends
-- as the count and hash of exactly what the node holds. Reads are one
-- HMGET and writes one command per kind, as in publish.lua. Returns {-1}
-- when the node is fenced off (nothing applied), else {applied,
-- conflicting ids...}: an id a live node other than this one holds is left
-- to it.
keep_time()
local node, epoch, reset = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local info = node_info(node)
if info == nil or info.e ~= epoch then return { -1 } end
if reset then
  info.dc = 0
  info.dh = 0
  set_markers(node, epoch)
end
info.dc = info.dc or 0
info.dh = info.dh or 0

local ids = {}
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  if op ~= 'd' and op ~= 'A' then return redis.error_reply('unknown operation ' .. tostring(op)) end
  table.insert(ids, ARGV[i + 1])
  i = i + (op == 'A' and 4 or 2)
end
local held = {}
if #ids > 0 then
  local raw = redis.call('HMGET', SESSIONS, unpack(ids))
  for n, id in ipairs(ids) do held[id] = raw[n] and decode(raw[n]) or false end
end

local result = { 0 }
local applied = 0
local w = batch_writes()
local function drop(id, record)
  table.insert(w.hdel, id)
  table.insert(w.zrem_client, lp(record.c) .. id)
  table.insert(w.zrem_node, lp(record.n) .. id)
end
i = 4
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  local record = held[id]
  if op == 'd' then
    if record and record.n == node then
      drop(id, record)
    else
      table.insert(w.zrem_node, lp(node) .. id)
    end
    applied = applied + 1
    i = i + 2
  else
    local client, registered_at = ARGV[i + 2], tonumber(ARGV[i + 3])
    if record and record.n ~= node and holder_alive(record) then
      table.insert(result, id)
    else
      if not (record and record.n == node and record.e == epoch and record.c == client) then
        if record then
          table.insert(w.zrem_client, lp(record.c) .. id)
          table.insert(w.zrem_node, lp(record.n) .. id)
        end
        table.insert(w.hset, id)
        table.insert(w.hset, cjson.encode({ c = client, n = node, e = epoch, t = registered_at }))
      end
      -- The index entries may be gone even where the record is fine.
      table.insert(w.zadd_client, 0)
      table.insert(w.zadd_client, lp(client) .. id)
      table.insert(w.zadd_node, 0)
      table.insert(w.zadd_node, lp(node) .. id)
      info.dc = info.dc + 1
      info.dh = (info.dh + record_hash(id, client)) % DIGEST_MOD
      applied = applied + 1
    end
    i = i + 4
  end
end
write_back(w)
redis.call('HSET', NODES, node, cjson.encode(info))
result[1] = applied
return result
