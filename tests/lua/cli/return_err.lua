-- return_err.lua: the root task returns nil, err: exit 1, "myerr: boom" on stderr.
async.sleep(1)
return nil, async.error("myerr", "boom")
