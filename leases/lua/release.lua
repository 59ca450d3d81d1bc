-- Give a lease up, only while it is held with the given fencing token.
-- KEYS[1] the lease hash; ARGV[1] token
-- Returns 1 if released, 0 if the lease is gone or held with another token.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
    return 0
end
redis.call('DEL', KEYS[1])
return 1
