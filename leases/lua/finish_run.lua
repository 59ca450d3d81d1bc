-- Finish a run: raise its attempt's finished flag, then release its lease (release.lua).
-- KEYS[1] the lease hash, KEYS[2] the finished flag
-- ARGV[1] token, ARGV[2] the flag's time to live in ms
-- Returns 1 if the lease was released, 0 if it was gone or held with another token.
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
    return 0
end
redis.call('DEL', KEYS[1])
return 1
