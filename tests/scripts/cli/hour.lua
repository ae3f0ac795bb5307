-- an hour of virtual time, in order with a timeout around it
test("sleeps an hour", function()
  local t0 = async.now()
  async.sleep(3600 * 1000)
  test.ok(async.now() - t0 >= 3600 * 1000)
  local v, err = async.timeout(1000, async.sleep, 3600 * 1000)
  test.err(err, "timeout")
end, { timeout = 2 * 3600 * 1000 })
