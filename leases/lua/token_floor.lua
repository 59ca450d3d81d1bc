-- Raise the global token counter to at least ARGV[1]; never lower it.
-- KEYS[1] the token counter; ARGV[1] the floor (a decimal integer below 2^53)
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
    redis.call('SET', KEYS[1], ARGV[1])
end
return 0
