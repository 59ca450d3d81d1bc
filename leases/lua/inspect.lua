-- The live leases among KEYS (Redis has already dropped the expired ones).
-- KEYS the lease hashes
-- Returns, per live lease: key number, owner, token, expiry in ms since the epoch.
local found = {}
for number, key in ipairs(KEYS) do
    local lease = redis.call('HMGET', key, 'owner', 'token', 'expires')
    if lease[1] and lease[2] and lease[3] then
        found[#found + 1] = number
        found[#found + 1] = lease[1]
        found[#found + 1] = lease[2]
        found[#found + 1] = lease[3]
    end
end
return found
