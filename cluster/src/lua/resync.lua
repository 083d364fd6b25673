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
-- as the count and hash of exactly what the node holds. Returns {-1} when
-- the node is fenced off (nothing applied), else {applied, conflicting
-- ids...}: an id a live node other than this one holds is left to it.
local node, epoch, reset = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local info = node_info(node)
if info == nil or info.e ~= epoch then return { -1 } end
if reset then
  info.dc = 0
  info.dh = 0
  set_markers(node, epoch)
end
local result = { 0 }
local applied = 0
local i = 4
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  local held = decode(redis.call('HGET', SESSIONS, id))
  if op == 'd' then
    if held and held.n == node then
      drop_record(id, held)
    else
      redis.call('ZREM', BY_NODE, lp(node) .. id)
    end
    applied = applied + 1
    i = i + 2
  elseif op == 'A' then
    local client, registered_at = ARGV[i + 2], tonumber(ARGV[i + 3])
    if held and held.n ~= node and holder_alive(held) then
      table.insert(result, id)
    else
      if not (held and held.n == node and held.e == epoch and held.c == client) then
        if held then drop_record(id, held) end
        redis.call('HSET', SESSIONS, id, cjson.encode({ c = client, n = node, e = epoch, t = registered_at }))
      end
      redis.call('ZADD', BY_CLIENT, 0, lp(client) .. id)
      redis.call('ZADD', BY_NODE, 0, lp(node) .. id)
      info.dc = (info.dc or 0) + 1
      info.dh = ((info.dh or 0) + record_hash(id, client)) % DIGEST_MOD
      applied = applied + 1
    end
    i = i + 4
  else
    return redis.error_reply('unknown operation ' .. tostring(op))
  end
end
redis.call('HSET', NODES, node, cjson.encode(info))
result[1] = applied
return result
