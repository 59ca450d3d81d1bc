-- Queue an item unless its id is already in the queue, then wake waiting poppers.
-- KEYS[1] the queue's order (sorted set), KEYS[2] its items (hash), KEYS[3] the sequence
-- ARGV[1] item id, ARGV[2] rank (16 hex digits, smaller = higher priority),
-- ARGV[3] payload, ARGV[4] the queue's wake-up channel
-- Returns 1 if added, 0 if the id was there.
--
-- Every order member has score 0, so the sorted set orders members byte by byte:
-- rank, then a global sequence number (16 hex digits: FIFO among equal priorities, also
-- across queues), then the id. Exact for any 64-bit priority, unlike a float score.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
    return 0
end
local order = ARGV[2] .. string.format('%016x', redis.call('INCR', KEYS[3]))
redis.call('ZADD', KEYS[1], 0, order .. ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], order .. ARGV[3])
redis.call('PUBLISH', ARGV[4], '')
return 1
