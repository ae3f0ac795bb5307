-- top-level code that waits for nothing: ends at the file's virtual day
async.channel():recv()
test("never runs", function() end)
