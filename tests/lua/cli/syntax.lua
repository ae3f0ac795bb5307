-- syntax.lua: a syntax error on line 3: exit 1, stderr names file and line.
local x = 1
local y = = 2
return x + y
