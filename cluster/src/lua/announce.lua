-- ARGV: node, lease_ms, started_at. A node's start or return: a new epoch,
-- and whatever an earlier incarnation of the node left behind is removed
-- (the node re-asserts what it really holds next). Returns the epoch.
local node, lease_ms, started_at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
forget_node_sessions(node)
local epoch = redis.call('INCR', EPOCH)
redis.call('HSET', NODES, node, cjson.encode({ e = epoch, s = started_at, t = now }))
set_markers(node, epoch)
redis.call('ZADD', LEASES, now + lease_ms, node)
return epoch
