-- ARGV: node, epoch, then operations: 'a', id, client, registered_at (a
-- session registered here) or 'r', id (one removed here). Applies them in
-- order. Returns {-1} when the node is fenced off (nothing applied), else
-- {applied, conflicting ids...}: an id a live node other than this one
-- holds is not taken over. Replaying a batch changes nothing more.
local node, epoch = ARGV[1], tonumber(ARGV[2])
if not current(node, epoch) then return { -1 } end
local applied = 0
local result = { 0 }
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'a' then
    local id, client, registered_at = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    local old = decode(redis.call('HGET', SESSIONS, id))
    if old and old.n == node and old.e == epoch and old.c == client then
      applied = applied + 1
    elseif old and old.n ~= node and holder_alive(old) then
      table.insert(result, id)
    else
      write(id, client, node, epoch, registered_at)
      applied = applied + 1
    end
    i = i + 4
  elseif op == 'r' then
    local id = ARGV[i + 1]
    local old = decode(redis.call('HGET', SESSIONS, id))
    if old and old.n == node then
      forget(id, old)
    end
    applied = applied + 1
    i = i + 2
  else
    return redis.error_reply('unknown operation ' .. tostring(op))
  end
end
result[1] = applied
return result
