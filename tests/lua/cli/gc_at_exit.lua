-- A finalizer run while the runtime closes tries to start a task: refused, no crash.
gc_anchor = setmetatable({}, {__gc = function()
  local t = async.detach(function() io.stderr:write("in detached task\n") async.sleep(1000) end)
  io.stderr:write("spawned ", tostring(t), "\n")
end})
print("root done")
