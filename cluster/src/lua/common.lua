-- Shared by every script of the directory (prepended to each).
-- KEYS: 1 sessions (HASH id -> record), 2 by-client (ZSET lp(client)..id),
--       3 by-node (ZSET lp(node)..id), 4 nodes (HASH node -> info),
--       5 leases (ZSET node -> deadline ms), 6 epoch (counter),
--       7 requests (HASH request id -> message), 8 answers (HASH request id
--       -> count), 9 downs (HASH node..'\n'..epoch -> records removed),
--       10 clock (HASH: last = when a script last ran, third = the shortest
--       lease of a node that announced, divided by 3)
local SESSIONS, BY_CLIENT, BY_NODE, NODES, LEASES, EPOCH = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local REQUESTS, ANSWERS, DOWNS, CLOCK = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
-- How long a node declared down stays on record for `down` messages to match.
local DOWNS_KEPT_MS = 60000

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- A gap in the namespace's own activity: the nodes run scripts every
-- quarter lease at the least (reaps) and every third (heartbeats), so a
-- gap longer than a third of a lease means Redis itself stalled (or every
-- node was paused), and the nodes could not renew. Every lease that such a
-- gap could have cut short is moved on by the gap, before anything else
-- this script does: when Redis wakes and runs the commands queued on each
-- connection in turn, a reap that comes before another node's heartbeat
-- finds that node's lease moved on, and no healthy node is declared dead
-- because Redis stalled. A node that really died is reaped a gap later.
-- Every script that writes calls it first; lookups only read.
local function keep_time()
  local kept = redis.pcall('HMGET', CLOCK, 'last', 'third')
  if type(kept) ~= 'table' or kept.err then
    redis.call('DEL', CLOCK)
    kept = {}
  end
  redis.call('HSET', CLOCK, 'last', now)
  local last, third = tonumber(kept[1]), tonumber(kept[2])
  if last ~= nil and third ~= nil and now - last > third then
    local gap = now - last
    local leases = redis.pcall('ZRANGE', LEASES, 0, -1, 'WITHSCORES')
    if type(leases) == 'table' and not leases.err then
      for i = 1, #leases, 2 do
        redis.call('ZADD', LEASES, tonumber(leases[i + 1]) + gap, leases[i])
      end
    end
  end
end

-- Length-prefixed, so that no id is a prefix of another's member.
local function lp(text)
  return #text .. ':' .. text
end

-- A record, or nil when the field holds something this directory did not write.
local function decode(raw)
  if not raw then return nil end
  local ok, record = pcall(cjson.decode, raw)
  if not ok or type(record) ~= 'table' or type(record.c) ~= 'string' or type(record.n) ~= 'string'
    or type(record.e) ~= 'number' then
    return nil
  end
  return record
end

local function node_info(node)
  local raw = redis.call('HGET', NODES, node)
  if not raw then return nil end
  local ok, info = pcall(cjson.decode, raw)
  if not ok or type(info) ~= 'table' or type(info.e) ~= 'number' then return nil end
  return info
end

-- Each node's digest of its records (see digest.rs): `dc` records, `dh` the
-- sum modulo 2^40 of their hashes, in its entry of `nodes`, changed in the
-- same step as the records. Scripts that change records collect the entries
-- they touch here and write them back with `save_digests()`.
local DIGEST_MOD = 1099511627776
local touched = {}

local function record_hash(id, client)
  return tonumber(string.sub(redis.sha1hex(lp(id) .. client), 1, 10), 16)
end

-- Counts a record of `node` (written under `epoch`) in or out of its digest;
-- records of an epoch that is no longer the node's are in no digest.
local function digest_change(node, epoch, id, client, sign)
  local entry = touched[node]
  if entry == nil then
    entry = node_info(node) or false
    touched[node] = entry
  end
  if not entry or entry.e ~= epoch then return end
  entry.dc = (entry.dc or 0) + sign
  entry.dh = ((entry.dh or 0) + sign * record_hash(id, client)) % DIGEST_MOD
end

local function save_digests()
  for node, entry in pairs(touched) do
    if entry then redis.call('HSET', NODES, node, cjson.encode(entry)) end
  end
end

-- Whether `node` is announced under `epoch` (its writes are not fenced off).
local function current(node, epoch)
  local info = node_info(node)
  return info ~= nil and info.e == epoch
end

-- Whether the node holding a record is alive: announced under that epoch, lease not lapsed.
local function holder_alive(record)
  if not current(record.n, record.e) then return false end
  local lease = redis.call('ZSCORE', LEASES, record.n)
  return lease ~= false and tonumber(lease) >= now
end

-- Markers that a node's records are still where its scripts wrote them: the
-- field '' of `sessions` (a map node -> epoch), the member '0:' .. node of
-- `by-client` and the member lp(node) of `by-node`. No session or client id
-- is empty, so no record or index entry is ever one of them. A key deleted
-- or evicted whole takes its marker with it, even when another node's
-- writes create the key again.
local function markers()
  local raw = redis.call('HGET', SESSIONS, '')
  if not raw then return {} end
  local ok, map = pcall(cjson.decode, raw)
  if not ok or type(map) ~= 'table' then return {} end
  return map
end

local function set_markers(node, epoch)
  local map = markers()
  map[node] = epoch
  redis.call('HSET', SESSIONS, '', cjson.encode(map))
  redis.call('ZADD', BY_CLIENT, 0, '0:' .. node)
  redis.call('ZADD', BY_NODE, 0, lp(node))
end

local function markers_intact(node, epoch)
  return markers()[node] == epoch and redis.call('ZSCORE', BY_CLIENT, '0:' .. node) ~= false
    and redis.call('ZSCORE', BY_NODE, lp(node)) ~= false
end

local function clear_markers(node)
  local map = markers()
  if map[node] ~= nil then
    map[node] = nil
    if next(map) == nil then
      redis.call('HDEL', SESSIONS, '')
    else
      redis.call('HSET', SESSIONS, '', cjson.encode(map))
    end
  end
  redis.call('ZREM', BY_CLIENT, '0:' .. node)
  redis.call('ZREM', BY_NODE, lp(node))
end

-- Writes back a batch's changes, one command per kind, removals first (a
-- record rewritten under another client loses its old index entry before
-- the new one is added): `w` holds the lists zrem_client, zrem_node, hdel,
-- hset, zadd_client and zadd_node.
local function write_back(w)
  local function bulk(command, key, args)
    if #args > 0 then redis.call(command, key, unpack(args)) end
  end
  bulk('ZREM', BY_CLIENT, w.zrem_client)
  bulk('ZREM', BY_NODE, w.zrem_node)
  bulk('HDEL', SESSIONS, w.hdel)
  bulk('HSET', SESSIONS, w.hset)
  bulk('ZADD', BY_CLIENT, w.zadd_client)
  bulk('ZADD', BY_NODE, w.zadd_node)
end

local function batch_writes()
  return { zrem_client = {}, zrem_node = {}, hdel = {}, hset = {}, zadd_client = {}, zadd_node = {} }
end

-- A record and its index entries, without the digest (the callers count).
local function drop_record(id, record)
  redis.call('HDEL', SESSIONS, id)
  redis.call('ZREM', BY_CLIENT, lp(record.c) .. id)
  redis.call('ZREM', BY_NODE, lp(record.n) .. id)
end

local function put_record(id, client, node, epoch, registered_at)
  redis.call('HSET', SESSIONS, id, cjson.encode({ c = client, n = node, e = epoch, t = registered_at }))
  redis.call('ZADD', BY_CLIENT, 0, lp(client) .. id)
  redis.call('ZADD', BY_NODE, 0, lp(node) .. id)
end

local function forget(id, record)
  drop_record(id, record)
  digest_change(record.n, record.e, id, record.c, -1)
end

-- `old` is the record `id` holds now, if any (the caller read it already).
local function write(id, client, node, epoch, registered_at, old)
  if old then forget(id, old) end
  put_record(id, client, node, epoch, registered_at)
  digest_change(node, epoch, id, client, 1)
end

-- Removes every record `node` holds; returns how many.
local function forget_node_sessions(node)
  local prefix = lp(node)
  local members = redis.call('ZRANGEBYLEX', BY_NODE, '[' .. prefix, '[' .. prefix .. '\255')
  local removed = 0
  for _, member in ipairs(members) do
    local id = string.sub(member, #prefix + 1)
    local record = id ~= '' and decode(redis.call('HGET', SESSIONS, id))
    if record and record.n == node then
      redis.call('HDEL', SESSIONS, id)
      redis.call('ZREM', BY_CLIENT, lp(record.c) .. id)
      removed = removed + 1
    end
  end
  redis.call('ZREMRANGEBYLEX', BY_NODE, '[' .. prefix, '[' .. prefix .. '\255')
  return removed
end
