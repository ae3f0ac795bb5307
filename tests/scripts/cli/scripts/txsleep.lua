-- a transaction that holds the writer across a (virtual) sleep
return {
  run = function(ctx)
    return ctx.db:tx(function(tx)
      tx:exec("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
      async.sleep(100)
      tx:exec("INSERT INTO held VALUES (1)")
      return "committed"
    end)
  end,
}
