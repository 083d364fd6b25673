-- ARGV: id. Removes the record of `id` if the node holding it is not alive
-- (a leftover the reaper has not come to yet). Returns 1 if it went, 0 if
-- there was none, -1 if a live node holds it.
keep_time()
local id = ARGV[1]
local record = decode(redis.call('HGET', SESSIONS, id))
if not record then return 0 end
if holder_alive(record) then return -1 end
forget(id, record)
save_digests()
return 1
