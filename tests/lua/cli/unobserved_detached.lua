-- unobserved_detached.lua: a detached task fails and nobody awaits it: it is
-- logged at once, with its traceback, while the root still runs.
async.detach(function()
  async.sleep(1)
  error("detached failure plugh")
end)
async.sleep(50)
io.stderr:write("ROOT-END-MARKER\n")
return true
