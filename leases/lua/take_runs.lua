-- Pop up to ARGV[3] items over several queues (queue_order.lua: highest priority, then
-- oldest) and take the run of each: nothing if its attempt's finished flag is up or a
-- live lease of ANY owner holds it (an owner never re-takes an attempt it holds), else
-- its lease with a new token, and its cancel flag. One round trip.
-- KEYS order set and items hash of each queue, in pairs, then the global token counter.
-- ARGV[1] owner, ARGV[2] time to live in ms, ARGV[3] limit, ARGV[4] the lease key
-- prefix of runs, ARGV[5] the finished flag prefix, ARGV[6] the cancel flag prefix.
-- The run keys are built here from the item (id, and the ticket's attempt): they carry
-- the queues' hash tag, so they are in the same Redis Cluster slot.
-- Returns a flat list, 4 entries per item: queue number (1-based), item id,
-- order key .. payload, and what was found: 'finished', 'held', 'unreadable', or
-- {token, expiry ms, renewal ms, cancelled (0 or 1)}.

local function attempt_of(stored)
    local ok, ticket = pcall(cjson.decode, string.sub(stored, ORDER_LENGTH + 1))
    if not ok or type(ticket) ~= 'table' or type(ticket['attempt']) ~= 'number' then
        return nil
    end
    return string.format('%d', ticket['attempt'])
end

local function take(id, stored, now_ms)
    local attempt = attempt_of(stored)
    if attempt == nil then
        return 'unreadable'
    end
    if redis.call('EXISTS', ARGV[5] .. id .. ':' .. attempt) == 1 then
        return 'finished'
    end
    local lease = ARGV[4] .. id
    if redis.call('EXISTS', lease) == 1 then
        return 'held'
    end
    local token = string.format('%d', redis.call('INCR', KEYS[#KEYS]))
    local renewed = string.format('%d', now_ms)
    local expires = string.format('%d', now_ms + ARGV[2])
    redis.call('HSET', lease, 'owner', ARGV[1], 'token', token, 'expires', expires,
        'renewed', renewed)
    redis.call('PEXPIREAT', lease, expires)
    return {token, expires, renewed, redis.call('EXISTS', ARGV[6] .. id)}
end

local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local reply = {}
for _ = 1, tonumber(ARGV[3]) do
    local number, id, stored = pop_best(#KEYS - 1)
    if number == nil then
        break
    end
    table.insert(reply, number)
    table.insert(reply, id)
    table.insert(reply, stored)
    table.insert(reply, take(id, stored, now_ms))
end
return reply
