-- The live leases among KEYS (Redis has already dropped the expired ones).
-- KEYS the lease hashes
-- Returns, per live lease: key number, owner, token, expiry and renewal time in ms since
-- the epoch. The renewal time is false (nil to the client) for a lease taken by an older
-- build that did not record it, until its next renewal.
local found = {}
for number, key in ipairs(KEYS) do
    local lease = redis.call('HMGET', key, 'owner', 'token', 'expires', 'renewed')
    if lease[1] and lease[2] and lease[3] then
        found[#found + 1] = number
        found[#found + 1] = lease[1]
        found[#found + 1] = lease[2]
        found[#found + 1] = lease[3]
        found[#found + 1] = lease[4]
    end
end
return found
