-- ARGV: id, count, message, channel. The owner's answer to request `id`:
-- recorded (for a requester whose copy of the message is lost) only while
-- the request is on record, so an answer that comes after its requester
-- gave up (and took the request off the record) leaves nothing behind.
-- Returns 1 when recorded, 0 when the requester had given up.
local id, count, message, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local asked = redis.call('HDEL', REQUESTS, id) == 1
if asked then redis.call('HSET', ANSWERS, id, count) end
redis.call('PUBLISH', channel, message)
return asked and 1 or 0
