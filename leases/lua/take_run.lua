-- Take a run: no lease if its attempt's finished flag is up, else acquire.lua's step,
-- and whether its cancel flag is up. One round trip instead of three.
-- KEYS[1] the lease hash, KEYS[2] the global token counter, KEYS[3] the finished flag,
-- KEYS[4] the cancel flag
-- ARGV[1] owner, ARGV[2] time to live in ms
-- Returns {'finished'}, {'held'} (another owner holds it), or
-- {'taken', token, expiry ms, renewal ms, cancelled (0 or 1)}.
if redis.call('EXISTS', KEYS[3]) == 1 then
    return {'finished'}
end
local holder = redis.call('HGET', KEYS[1], 'owner')
if holder and holder ~= ARGV[1] then
    return {'held'}
end
local token = string.format('%d', redis.call('INCR', KEYS[2]))
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local renewed = string.format('%d', now_ms)
local expires = string.format('%d', now_ms + ARGV[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token, 'expires', expires,
    'renewed', renewed)
redis.call('PEXPIREAT', KEYS[1], expires)
return {'taken', token, expires, renewed, redis.call('EXISTS', KEYS[4])}
