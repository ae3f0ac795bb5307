-- args.lua: ARGS_JSON decoded as the root task's `...`.
local args = ...
print("name=" .. tostring(args.name))
print("n=" .. tostring(args.n))
print("second=" .. tostring(args.list and args.list[2]))
return true
