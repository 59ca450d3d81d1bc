-- renew.lua for many leases at once: one round trip per renewal period per worker.
-- KEYS the lease hashes; ARGV[1] time to live in ms, ARGV[1 + n] the token of KEYS[n]
-- Returns one number per key: 1 if renewed, 0 if gone or held with another token.
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local expires = string.format('%d', now_ms + ARGV[1])
local renewed = string.format('%d', now_ms)
local results = {}
for number, key in ipairs(KEYS) do
    if redis.call('HGET', key, 'token') == ARGV[number + 1] then
        redis.call('HSET', key, 'expires', expires, 'renewed', renewed)
        redis.call('PEXPIREAT', key, expires)
        results[number] = 1
    else
        results[number] = 0
    end
end
return results
