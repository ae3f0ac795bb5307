-- deadlock.lua: the root waits on a channel nobody sends to: exit 1, "deadlock".
local ch = async.channel()
local v = ch:recv()
print("unreachable", v)
