-- ARGV: node, lease_ms, started_at, first. A node's start or return: a new
-- epoch, and whatever an earlier incarnation of the node left behind is
-- removed (the node re-asserts what it really holds next). Returns the
-- epoch, or -1 when `first` is '1' (a process joining, not a node
-- announcing again after being fenced off) and a live node goes by this id.
keep_time()
local node, lease_ms, started_at, first = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'

-- Junk in the namespace's keys never blocks a join: a key of a type this
-- directory does not write is removed, and an epoch counter that is not a
-- counter starts again above every epoch in use.
local function expect_type(key, wanted)
  local found = redis.call('TYPE', key).ok
  if found ~= 'none' and found ~= wanted then redis.call('DEL', key) end
end
expect_type(SESSIONS, 'hash')
expect_type(BY_CLIENT, 'zset')
expect_type(BY_NODE, 'zset')
expect_type(NODES, 'hash')
expect_type(LEASES, 'zset')
expect_type(EPOCH, 'string')
expect_type(REQUESTS, 'hash')
expect_type(ANSWERS, 'hash')
expect_type(CLOCK, 'hash')
expect_type(DOWNS, 'hash')
local counter = redis.call('GET', EPOCH)
if counter and not string.match(counter, '^%d+$') then
  local top = 0
  for _, raw in pairs(redis.call('HVALS', NODES)) do
    local ok, info = pcall(cjson.decode, raw)
    if ok and type(info) == 'table' and type(info.e) == 'number' and info.e > top then top = info.e end
  end
  redis.call('SET', EPOCH, top)
end

if first and node_info(node) ~= nil then
  local lease = redis.call('ZSCORE', LEASES, node)
  if lease ~= false and tonumber(lease) >= now then return -1 end
end

forget_node_sessions(node)
local epoch = redis.call('INCR', EPOCH)
redis.call('HSET', NODES, node, cjson.encode({ e = epoch, s = started_at, t = now }))
local third = math.floor(lease_ms / 3)
local kept_third = tonumber(redis.call('HGET', CLOCK, 'third'))
if kept_third == nil or third < kept_third then redis.call('HSET', CLOCK, 'third', third) end
set_markers(node, epoch)
redis.call('ZADD', LEASES, now + lease_ms, node)
return epoch
