-- ARGV: node, epoch, id, client, registered_at, max_per_client (0: none).
-- The strict register: in one step, refuses an id a live node holds and a
-- client that holds max_per_client live sessions fleet-wide, else records
-- the session for this node. Returns {'ok'}, {'taken', node, client},
-- {'limit', count} or {'fenced'}.
keep_time()
local node, epoch, id, client = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local registered_at, max = tonumber(ARGV[5]), tonumber(ARGV[6])
if not current(node, epoch) then return { 'fenced' } end
local old = decode(redis.call('HGET', SESSIONS, id))
if old and holder_alive(old) then return { 'taken', old.n, old.c } end
if max > 0 then
  local prefix = lp(client)
  local members = redis.call('ZRANGEBYLEX', BY_CLIENT, '[' .. prefix, '[' .. prefix .. '\255')
  local live = 0
  for _, member in ipairs(members) do
    local record = decode(redis.call('HGET', SESSIONS, string.sub(member, #prefix + 1)))
    if record and record.c == client and holder_alive(record) then live = live + 1 end
  end
  if live >= max then return { 'limit', live } end
end
write(id, client, node, epoch, registered_at, old)
save_digests()
return { 'ok' }
