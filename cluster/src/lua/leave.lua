-- ARGV: node, epoch. The node leaves: its records and itself go at once.
-- Returns how many records went, or -1 when it was fenced off already.
keep_time()
local node, epoch = ARGV[1], tonumber(ARGV[2])
if not current(node, epoch) then return -1 end
local removed = forget_node_sessions(node)
clear_markers(node)
redis.call('HSET', DOWNS, node .. '\n' .. epoch, removed)
redis.call('PEXPIRE', DOWNS, DOWNS_KEPT_MS)
redis.call('HDEL', NODES, node)
redis.call('ZREM', LEASES, node)
return removed
