-- ARGV: 'session', id | 'client', client. Records of live holders only:
-- {id, raw record, id, raw record, ...}.
local kind, subject = ARGV[1], ARGV[2]
local result = {}
local function consider(id)
  local raw = redis.call('HGET', SESSIONS, id)
  local record = decode(raw)
  if record and holder_alive(record) then
    table.insert(result, id)
    table.insert(result, raw)
  end
end
if kind == 'session' then
  consider(subject)
else
  local prefix = lp(subject)
  for _, member in ipairs(redis.call('ZRANGEBYLEX', BY_CLIENT, '[' .. prefix, '[' .. prefix .. '\255')) do
    consider(string.sub(member, #prefix + 1))
  end
end
return result
