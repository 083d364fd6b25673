-- ARGV: node, epoch, lease_ms. Renews the node's one lease; its cost does
-- not depend on how many sessions it holds. Returns {0} when the node is
-- fenced off (reaped, or announced again since) and must announce anew,
-- else {1, count, hash, intact}: the node's digest, and 0 for `intact` when
-- a key that holds its records was deleted or evicted whole since (its
-- marker is gone), so the digest cannot be trusted.
keep_time()
local node, epoch, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local info = node_info(node)
if info == nil or info.e ~= epoch then return { 0 } end
info.t = now
redis.call('HSET', NODES, node, cjson.encode(info))
redis.call('ZADD', LEASES, now + lease_ms, node)
local count, hash = info.dc or 0, info.dh or 0
local intact = markers_intact(node, epoch) and 1 or 0
return { 1, count, hash, intact }
