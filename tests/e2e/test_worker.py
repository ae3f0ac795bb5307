#!/usr/bin/env python3
"""End-to-end tests of async.worker in the daemon: job scripts hand CPU-bound
work to the worker pool (workers = 2), whose states get the scripts' sandbox
and modules from scripts/lib.

Usage: test_worker.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import os
import tempfile
import threading
import time

from harness import SLOW, WRAP, Daemon, check, finish, make_root, poll, rpc

CRUNCH_LIB = """
local M = {}
function M.hash(n)
  local h = 0
  for i = 1, n do
    for j = 1, 16 do h = (h * 31 + string.byte("abcdefghijklmnop", j) + i) % 4294967296 end
  end
  return h
end
function M.env()
  return { io = io ~= nil, execute = os.execute ~= nil, async = async ~= nil,
           jobs = jobs ~= nil, db = db ~= nil, http = http ~= nil, debug = debug ~= nil,
           json = json ~= nil and json.encode({ ok = true }) or false,
           lib = require("crunch") == M }
end
function M.forever() while true do end end
function M.version() return "v1" end
return M
"""

CRUNCH = """
return {
  concurrency = 10,
  timeout = 60000,
  run = function(ctx, args)
    local v, err = async.worker("crunch", args.fn, table.unpack(args.args or {}))
    if v == nil and err then return nil, err end
    return { value = v }
  end,
}
"""


def setup():
    # the timeout leaves a sanitizer build on a busy machine room for the two
    # 150,000-round calls (~0.25 s each in a release build), and stays under the
    # job's own 60 s timeout under valgrind, where the calls are 20 times shorter
    return make_root("awaitd-worker-",
                     {"scripts/lib/crunch.lua": CRUNCH_LIB, "scripts/crunch.lua": CRUNCH},
                     "workers = 2\nworker_timeout_ms = %d\nshutdown_timeout_ms = 200\n"
                     % (30000 if WRAP else 5000))


def run(d, fn, *args, timeout=60):
    return d.cjson("run", "crunch", json.dumps({"fn": fn, "args": list(args)}), timeout=timeout)


def main():
    root = setup()
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())
        rc, v, out = run(d, "hash", 1000)
        check("a job's worker call answers", rc == 0 and isinstance(v.get("value"), int), out)
        rc, v, out = run(d, "env")
        check("a worker state has the scripts' sandbox: json and lib modules, no io, "
              "os.execute, debug, async, jobs, db or http",
              rc == 0 and v["value"] == {"io": False, "execute": False, "async": False,
                                         "jobs": False, "db": False, "http": False,
                                         "debug": False, "json": '{"ok":true}', "lib": True},
              out)
        rc, st, out = d.cjson("status")
        check("status counts the workers", rc == 0 and st.get("workers") == 2
              and st.get("workers_busy") == 0, out)

        # the loop answers while both workers compute
        results = []
        calls = [threading.Thread(target=lambda: results.append(run(d, "hash", 150000 // SLOW)))
                 for _ in range(2)]
        for t in calls:
            t.start()
        busy = poll(lambda: (d.cjson("status")[1] or {}).get("workers_busy") == 2, 10)
        t0 = time.monotonic()
        rc, _, _ = d.ctl("ping")
        took = time.monotonic() - t0
        check("with both workers busy, status says so and ping answers in %.0f ms" % (took * 1e3),
              busy and rc == 0 and took < 1.0 * SLOW)
        for t in calls:
            t.join()
        check("both calls finish", len(results) == 2 and all(r[0] == 0 for r in results), results)

        # a runaway call is stopped; the pool keeps its size
        t0 = time.monotonic()
        rc, v, out = run(d, "forever")
        took = time.monotonic() - t0
        check("an endless worker call fails the job with timeout (%.1f s)" % took,
              rc != 0 and "timeout" in out and "worker_timeout_ms" in out, out)
        rc, st, out = d.cjson("stats")
        w = (st or {}).get("workers") or {}
        check("stats: the call was stopped and its state replaced, the pool keeps its size",
              w.get("size") == 2 and w.get("stopped", 0) >= 1 and w.get("replaced", 0) >= 1,
              out)
        rc, v, out = run(d, "hash", 10)
        check("the pool still answers", rc == 0, out)

        # the trace shows the call
        rc, out, _ = d.cjson("enqueue", "crunch", '{"fn":"hash","args":[100]}')
        jid = out["id"] if rc == 0 else 0
        d.ctl("wait", jid)
        rc, tr, out = d.cjson("trace", jid)
        names = [s.get("name", "") for s in (tr or {}).get("spans", [])]
        check("the job's trace shows the worker call", any(n == "worker crunch.hash"
                                                           for n in names), names)

        # reload: the workers take the new lib
        rc, v, _ = run(d, "version")
        before = v and v.get("value")
        with open(os.path.join(root, "scripts", "lib", "crunch.lua"), "w") as f:
            f.write(CRUNCH_LIB.replace('return "v1"', 'return "v2"'))
        d.ctl("reload")
        rc, v, out = run(d, "version")
        check("after a reload the workers run the new lib code",
              before == "v1" and rc == 0 and v["value"] == "v2", out)

        # a graceful stop with a call in flight: stopped, the job requeued
        rc, out, _ = d.cjson("enqueue", "crunch", '{"fn":"forever"}')
        jid = out["id"] if rc == 0 else 0
        poll(lambda: (d.cjson("status")[1] or {}).get("workers_busy") == 1, 10)
        check("SIGTERM with a worker call running exits 0 (and clean under valgrind)",
              d.stop() == 0)
        row = d.sql("SELECT state, attempt FROM jobs WHERE id = ?", jid)
        check("the job it interrupted was requeued, its attempt not counted",
              row == [("queued", 0)], row)


if __name__ == "__main__":
    main()
    finish()
