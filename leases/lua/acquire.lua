-- Take a lease with a new fencing token, unless another owner holds it.
-- KEYS[1] the lease hash, KEYS[2] the global token counter
-- ARGV[1] owner, ARGV[2] time to live in ms
-- Returns {token, expiry in ms since the epoch, now in ms (its renewal time)}, or false
-- if another owner holds it.
--
-- Expiry is Redis's own (PEXPIREAT, server clock), so an expired lease is simply absent.
-- The hash keeps the same expiry and renewal time as fields, so inspect reports exactly
-- what this returns.
-- Numbers are written with '%d': tostring would switch to exponent form past 1e14.
local holder = redis.call('HGET', KEYS[1], 'owner')
if holder and holder ~= ARGV[1] then
    return false
end
local token = string.format('%d', redis.call('INCR', KEYS[2]))
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local renewed = string.format('%d', now_ms)
local expires = string.format('%d', now_ms + ARGV[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token, 'expires', expires,
    'renewed', renewed)
redis.call('PEXPIREAT', KEYS[1], expires)
return {token, expires, renewed}
