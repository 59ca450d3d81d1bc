-- Drop an item from a queue.
-- KEYS[1] the queue's order (sorted set), KEYS[2] its items (hash); ARGV[1] item id
-- Returns 1 if removed, 0 if the id was not there.
local item = redis.call('HGET', KEYS[2], ARGV[1])
if not item then
    return 0
end
redis.call('ZREM', KEYS[1], string.sub(item, 1, 32) .. ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
