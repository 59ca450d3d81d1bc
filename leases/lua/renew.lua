-- Extend a lease, only while it is held with the given fencing token, and record now as
-- its renewal time (a holder's heartbeat).
-- KEYS[1] the lease hash; ARGV[1] token, ARGV[2] time to live in ms
-- Returns the new expiry in ms since the epoch, or false if the lease is gone or held
-- with another token.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
    return false
end
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local expires = string.format('%d', now_ms + ARGV[2])
redis.call('HSET', KEYS[1], 'expires', expires, 'renewed', string.format('%d', now_ms))
redis.call('PEXPIREAT', KEYS[1], expires)
return expires
