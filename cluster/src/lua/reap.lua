-- ARGV: node, epoch. Removes every node whose lease lapsed, with its
-- records, in one step; idempotent. A caller that is fenced off, or whose
-- own lease lapsed (it may be the one that was cut off), reaps nothing.
-- Each dead node goes on record in `downs`, which the `down` message the
-- reaper sends must match. Returns {'fenced'} or {'ok', node, count, epoch,
-- node, count, epoch, ...}.
keep_time()
local node, epoch = ARGV[1], tonumber(ARGV[2])
if not current(node, epoch) then return { 'fenced' } end
local own = redis.call('ZSCORE', LEASES, node)
if own == false or tonumber(own) < now then return { 'fenced' } end
local result = { 'ok' }
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', '(' .. now)) do
  local info = node_info(dead)
  local dead_epoch = info and info.e or 0
  local removed = forget_node_sessions(dead)
  clear_markers(dead)
  redis.call('HDEL', NODES, dead)
  redis.call('ZREM', LEASES, dead)
  redis.call('HSET', DOWNS, dead .. '\n' .. dead_epoch, removed)
  redis.call('PEXPIRE', DOWNS, DOWNS_KEPT_MS)
  table.insert(result, dead)
  table.insert(result, removed)
  table.insert(result, dead_epoch)
end
return result
