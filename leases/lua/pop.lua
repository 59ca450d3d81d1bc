-- Take the best item over several queues: highest priority, then oldest (queue_order.lua).
-- KEYS order set and items hash of each queue, in pairs: order 1, items 1, order 2, ...
-- Returns {queue number (1-based), item id, order key .. payload}, or false if all are empty.
local number, id, item = pop_best(#KEYS)
if number == nil then
    return false
end
return {number, id, item}
