#!/usr/bin/env python3
"""End-to-end tests of pausing work: `awaitctl pause NAME [--key VALUE]` and
`resume` start no new job of the script (or of the key) while running ones
finish, hold across a restart, show in `awaitctl scripts`; jobs.pause backs
a key off from inside a job (a 429) so its retry waits for the pause while
other keys go on; bad requests are refused, saying why.

Usage: test_pause.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import signal
import time

from harness import run, SLOW, Daemon, check, make_root, poll, rpc

WORK = r'''
return { concurrency = 10, limits = { { by = "acct", concurrency = 5 } },
  run = function(ctx, args)
    async.sleep(args.ms or 1)
    return args.acct or "none"
  end }
'''

# attempt 1 meets a 429 and backs its provider off for 800 ms
PROVIDER = r'''
return { retries = 1, backoff = 1, limits = { { by = "provider", concurrency = 10 } },
  run = function(ctx, args)
    if args.limited and ctx.job.attempt == 1 then
      local ok, err = jobs.pause("provider", { key = args.provider, ms = 800 })
      if not ok then return nil, err end
      return nil, async.error("rate_limited", "429 from " .. args.provider)
    end
    return { provider = args.provider, attempt = ctx.job.attempt }
  end }
'''

BAD = r'''
return { run = function(ctx, args)
  local out = {}
  for _, a in ipairs({ { "work", {} }, { "work", { ms = 0 } }, { "work", { ms = "x" } },
                       { "work", { ms = 10, key = {} } }, { "nope", { ms = 10 } }, { 7, {} } }) do
    local ok, err = jobs.pause(a[1], a[2])
    out[#out + 1] = ok and "paused" or err.code
  end
  return out
end }
'''


def state(d, jid):
    return (d.cjson("show", jid)[1] or {}).get("state")


def enqueue(d, name, args):
    rc, out, err = d.ctl("enqueue", name, json.dumps(args))
    return int(out.split()[0]) if rc == 0 else None


def held(d, ids, secs=1.5):
    """Still queued after secs (a claim runs at least once a second)."""
    time.sleep(secs * SLOW)
    return all(state(d, i) == "queued" for i in ids)


def main():
    root = make_root("awaitd-pause-", {"scripts/work.lua": WORK, "scripts/provider.lua": PROVIDER,
                                       "scripts/bad.lua": BAD})
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())

        # the whole script: running ones finish, new ones wait, across a restart
        long_id = enqueue(d, "work", {"ms": 800})
        poll(lambda: state(d, long_id) == "running", 10)
        rc, out, err = d.ctl("pause", "work")
        check("awaitctl pause work", rc == 0 and out == "paused work\n", (rc, out, err))
        rc, out, err = d.ctl("pause", "work")
        check("... again: said so", rc == 0 and "already" in out, out)
        ids = [enqueue(d, "work", {"acct": "a%d" % i}) for i in range(3)]
        check("the running job finishes while paused",
              poll(lambda: state(d, long_id) == "succeeded", 10), state(d, long_id))
        check("new jobs stay queued while paused", held(d, ids), [state(d, i) for i in ids])
        rc, out, _ = d.ctl("scripts")
        check("awaitctl scripts shows the pause", "work: paused until resumed" in out, out)
        rc, out, _ = d.ctl("show", ids[0])
        check("show names the pause a queued job waits behind",
              "held:     paused until resumed" in out, out)
        rc, js, _ = d.cjson("scripts")
        w = [s for s in js if s["name"] == "work"][0]
        check("scripts --json: paused [{key: null, until: null}]",
              w["paused"] == [{"key": None, "until": None}], w)
        check("SIGTERM exits 0", d.stop() == 0)
        check("restarts", d.start(), open(d.log.name).read())
        check("the pause survived the restart", held(d, ids), [state(d, i) for i in ids])
        rc, out, err = d.ctl("resume", "work")
        check("awaitctl resume work", rc == 0 and out == "resumed work\n", (rc, out, err))
        check("... and the queued jobs run", poll(lambda: all(state(d, i) == "succeeded"
                                                             for i in ids), 10),
              [state(d, i) for i in ids])

        # one key: its jobs wait, the others go on
        rc, out, err = d.ctl("pause", "work", "--key", "slow-bank")
        check("awaitctl pause work --key slow-bank",
              rc == 0 and out == "paused work key slow-bank\n", (rc, out, err))
        a = [enqueue(d, "work", {"acct": "slow-bank"}) for _ in range(2)]
        b = [enqueue(d, "work", {"acct": "fast-bank"}) for _ in range(2)]
        c = enqueue(d, "work", {})
        check("the other key's jobs and a job without one run",
              poll(lambda: all(state(d, i) == "succeeded" for i in b + [c]), 10))
        check("the paused key's jobs wait", held(d, a, 1.2), [state(d, i) for i in a])
        rc, out, _ = d.ctl("show", a[0])
        check("... and show says which key", "held:     paused for key slow-bank until resumed"
              in out, out)
        rc, out, _ = d.ctl("scripts")
        check("scripts shows the key's pause", "work: paused for key slow-bank" in out, out)
        d.ctl("resume", "work", "--key", "slow-bank")
        check("resumed, they run", poll(lambda: all(state(d, i) == "succeeded" for i in a), 10))

        # held by two timed pauses, the script's and its key's: until the later one ends
        t0 = time.time() * 1000
        rpc(d.sock, {"id": 1, "cmd": "pause", "args": {"name": "work", "key": "k2",
                                                       "ms": 600000}})
        rpc(d.sock, {"id": 1, "cmd": "pause", "args": {"name": "work", "ms": 60000}})
        h = enqueue(d, "work", {"acct": "k2"})
        held_js = (d.cjson("show", h)[1] or {}).get("held") or {}
        check("show: held by two pauses, until the later one ends (%s)" % held_js.get("until"),
              held_js.get("kind") == "pause"
              and t0 + 590000 <= (held_js.get("until") or 0) <= t0 + 610000, held_js)
        d.ctl("resume", "work")
        d.ctl("resume", "work", "--key", "k2")
        check("... resumed, it runs", poll(lambda: state(d, h) == "succeeded", 10))

        # a timed pause over the protocol ends by itself
        rc, out, err = d.ctl("--json", "pause", "work")
        d.ctl("resume", "work")
        t0 = time.time()
        got = rpc(d.sock, {"id": 1, "cmd": "pause", "args": {"name": "work", "ms": 700}})
        check("pause {ms}: answered with until", got and got.get("ok")
              and got["result"]["until"] > t0 * 1000, got)
        x = enqueue(d, "work", {"acct": "t"})
        ok = poll(lambda: state(d, x) == "succeeded", 10)
        rc, js, _ = d.cjson("show", x)
        check("a timed pause ends by itself: the job started after it (%d ms)"
              % (js["started_at"] - t0 * 1000), ok and js["started_at"] >= t0 * 1000 + 650, js)

        # jobs.pause from inside a job: the key backs off, the retry waits for it
        p = enqueue(d, "provider", {"provider": "acme", "limited": True})
        q = None
        poll(lambda: (d.cjson("show", p)[1] or {}).get("attempt") == 2
             or (d.cjson("show", p)[1] or {}).get("state") == "failed", 10)
        q = enqueue(d, "provider", {"provider": "other"})
        check("another provider's job is not held",
              poll(lambda: state(d, q) == "succeeded", 10), state(d, q))
        check("the paused provider's retry succeeds",
              poll(lambda: state(d, p) == "succeeded", 20), d.cjson("show", p)[1])
        rc, js, _ = d.cjson("show", p)
        check("... after the 800 ms pause (attempt 2 started %d ms after the job was made)"
              % (js["started_at"] - js["created_at"]),
              js["attempt"] == 2 and js["started_at"] - js["created_at"] >= 780, js)

        # bad requests
        rc, out, err = d.ctl("pause", "nope")
        check("pause of no script: exit 4, no_such_script", rc == 4 and "no_such_script" in err,
              (rc, err))
        rc, out, err = d.ctl("pause", "work", "--key", "")
        check("an empty key: a usage error", rc == 2 and "must not be empty" in err, (rc, err))
        got = rpc(d.sock, {"id": 4, "cmd": "pause", "args": {"name": "work", "key": ""}})
        check("... and on the wire: invalid", got and got["error"]["code"] == "invalid", got)
        got = rpc(d.sock, {"id": 2, "cmd": "pause", "args": {"name": "work", "ms": -5}})
        check("ms out of range: invalid_request", got and got["error"]["code"] == "invalid_request",
              got)
        got = rpc(d.sock, {"id": 3, "cmd": "resume", "args": {"name": "work", "ms": 5}})
        check("resume takes no ms", got and got["error"]["code"] == "invalid_request", got)
        rc, out, err = d.ctl("run", "bad")
        check("jobs.pause with bad arguments answers nil, err",
              rc == 0 and json.loads(out) == ["invalid", "invalid", "invalid", "invalid",
                                              "no_such_script", "invalid"], (out, err))
        rc, out, _ = d.ctl("scripts")
        check("nothing stays paused", "paused" not in out, out)
        check("SIGTERM exits 0", d.stop() == 0)


if __name__ == "__main__":
    run(main)
