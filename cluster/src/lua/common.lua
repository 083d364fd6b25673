-- Shared by every script of the directory (prepended to each).
-- KEYS: 1 sessions (HASH id -> record), 2 by-client (ZSET lp(client)..id),
--       3 by-node (ZSET lp(node)..id), 4 nodes (HASH node -> info),
--       5 leases (ZSET node -> deadline ms), 6 epoch (counter)
local SESSIONS, BY_CLIENT, BY_NODE, NODES, LEASES, EPOCH = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

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

local function forget(id, record)
  redis.call('HDEL', SESSIONS, id)
  redis.call('ZREM', BY_CLIENT, lp(record.c) .. id)
  redis.call('ZREM', BY_NODE, lp(record.n) .. id)
end

-- `old` is the record `id` holds now, if any (the caller read it already).
local function write(id, client, node, epoch, registered_at, old)
  if old then forget(id, old) end
  redis.call('HSET', SESSIONS, id, cjson.encode({ c = client, n = node, e = epoch, t = registered_at }))
  redis.call('ZADD', BY_CLIENT, 0, lp(client) .. id)
  redis.call('ZADD', BY_NODE, 0, lp(node) .. id)
end

-- Removes every record `node` holds; returns how many.
local function forget_node_sessions(node)
  local prefix = lp(node)
  local members = redis.call('ZRANGEBYLEX', BY_NODE, '[' .. prefix, '[' .. prefix .. '\255')
  local removed = 0
  for _, member in ipairs(members) do
    local id = string.sub(member, #prefix + 1)
    local record = decode(redis.call('HGET', SESSIONS, id))
    if record and record.n == node then
      redis.call('HDEL', SESSIONS, id)
      redis.call('ZREM', BY_CLIENT, lp(record.c) .. id)
      removed = removed + 1
    end
  end
  redis.call('ZREMRANGEBYLEX', BY_NODE, '[' .. prefix, '[' .. prefix .. '\255')
  return removed
end
