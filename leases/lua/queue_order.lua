-- Shared by pop.lua and take_runs.lua (RedisLeaseStore puts it in front of them):
-- taking the best item over several queues, highest priority, then oldest.
-- The queues' keys are KEYS[1 .. last]: order set and items hash of each, in pairs.
local ORDER_LENGTH = 32

-- Compares two order keys (32 hex digits) as numbers, 8 digits at a time: exact, and
-- independent of the server's locale (Lua's '<' on strings uses strcoll).
local function before(a, b)
    for first = 1, ORDER_LENGTH, 8 do
        local x = tonumber(string.sub(a, first, first + 7), 16)
        local y = tonumber(string.sub(b, first, first + 7), 16)
        if x ~= y then
            return x < y
        end
    end
    return false
end

-- Removes and returns the best item: queue number (1-based), item id, and the stored
-- value (order key .. payload); nil if every queue is empty.
local function pop_best(last)
    local best, best_at
    for at = 1, last, 2 do
        local head = redis.call('ZRANGE', KEYS[at], 0, 0)[1]
        if head and (best == nil or before(head, best)) then
            best, best_at = head, at
        end
    end
    if best == nil then
        return nil
    end
    local id = string.sub(best, ORDER_LENGTH + 1)
    local item = redis.call('HGET', KEYS[best_at + 1], id)
    redis.call('ZREM', KEYS[best_at], best)
    redis.call('HDEL', KEYS[best_at + 1], id)
    return (best_at + 1) / 2, id, item
end
