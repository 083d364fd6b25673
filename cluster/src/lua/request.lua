-- ARGV: node, epoch, id, message, channel. Records a remote request and
-- publishes it, only for a live member of the namespace (announced under
-- `epoch`, its lease running) whose message names it as the sender under
-- `id`. A node acts only on requests on record, so a message published by
-- anyone else is not obeyed. Returns 1, or 0 when the node is fenced off.
keep_time()
local node, epoch, id, message, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
if not current(node, epoch) then return 0 end
local lease = redis.call('ZSCORE', LEASES, node)
if lease == false or tonumber(lease) < now then return 0 end
local ok, decoded = pcall(cjson.decode, message)
if not ok or type(decoded) ~= 'table' or decoded.from ~= node or decoded.id ~= id then
  return redis.error_reply('a request must name its sender and its id')
end
redis.call('HSET', REQUESTS, id, message)
redis.call('PUBLISH', channel, message)
return 1
