#!/usr/bin/env python3
"""End-to-end tests of job progress (ctx.progress): recorded durably but at
most a few times a second however often a script calls it, shown by
`awaitctl show` and `awaitctl jobs`, streamed to `awaitctl wait` as a bar on
a terminal (and never into piped or --json output), written before the
outcome, cleared by a new attempt, and bad arguments refused.

Usage: test_progress.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import os
import pty
import re
import signal
import socket
import subprocess
import time

from harness import run, AWAITCTL, SLOW, Daemon, check, make_root, poll

# calls ctx.progress 200,000 times over about 2 s (yielding every 250 calls: a slice
# stays short even under valgrind or on a loaded machine)
BUSY = r'''
return { run = function(ctx, args)
  local n = 200000
  for i = 1, n do
    ctx.progress(i / n, "item " .. i)
    if i % 250 == 0 then async.sleep(2) end
  end
  return "counted"
end }
'''

# progress then a wait for a signal: the job holds still at a known fraction
HOLD = r'''
return { run = function(ctx, args)
  ctx.progress(0.25, "a quarter")
  ctx.progress(0.5, "half way")
  async.sleep(args and args.ms or 60000)
  return "held"
end }
'''

# its last progress comes just before it ends: the write must not be lost
LAST = r'''
return { run = function(ctx, args)
  for i = 1, 5 do ctx.progress(i / 10) end
  ctx.progress(0.75, "last words")
  return "ended"
end }
'''

# the first attempt reports progress and fails; the second reports none
RETRY = r'''
return { retries = 1, backoff = 10, run = function(ctx, args)
  if ctx.job.attempt == 1 then
    ctx.progress(0.9, "almost")
    return nil, async.error("flaky", "first attempt fails")
  end
  async.sleep(60000)
end }
'''

BAD = r'''
return { run = function(ctx, args)
  local out = {}
  for _, a in ipairs({ {2}, {-0.1}, {0 / 0}, {"half"}, {0.5, 7}, {0.5, string.rep("x", 300)},
                       {0.5, "\xff\xfe"} }) do
    local ok, e = pcall(ctx.progress, a[1], a[2])
    out[#out + 1] = ok and "accepted" or (type(e) == "table" and e.code or tostring(e))
  end
  out[#out + 1] = tostring(ctx.progress(1, "fine"))
  return out
end }
'''


def db_progress(d, jid):
    rows = d.sql("SELECT progress, progress_msg FROM jobs WHERE id = ?", jid)
    if not rows:
        return None
    p, msg = rows[0]  # (psql shows NULL as "")
    return (None if p in (None, "") else float(p), None if msg in (None, "") else msg)


def wait_events(sock, jid, timeout):
    """`wait` with progress on, by the wire protocol: (events, final response)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    s.connect(sock)
    s.sendall((json.dumps({"id": 1, "cmd": "wait", "args": {"id": jid, "progress": True}})
               + "\n").encode())
    buf, events, final = b"", [], None
    while final is None:
        b = s.recv(65536)
        if not b:
            break
        buf += b
        *lines, buf = buf.split(b"\n")
        for line in lines:
            v = json.loads(line)
            if "event" in v:
                events.append((time.monotonic(), v["event"]))
            else:
                final = v
    s.close()
    return events, final


def on_pty(*args):
    """awaitctl with its stdout on a terminal: everything it wrote."""
    m, sl = pty.openpty()
    p = subprocess.Popen([AWAITCTL] + [str(a) for a in args], stdout=sl, stderr=sl,
                         env=dict(os.environ, COLUMNS="100"))
    os.close(sl)
    out = b""
    while True:
        try:
            b = os.read(m, 65536)
        except OSError:
            break
        if not b:
            break
        out += b
    p.wait(60 * SLOW)
    os.close(m)
    return p.returncode, out.decode(errors="replace")


def main():
    root = make_root("awaitd-progress-", {"scripts/busy.lua": BUSY, "scripts/hold.lua": HOLD,
                                          "scripts/last.lua": LAST, "scripts/retry.lua": RETRY,
                                          "scripts/bad.lua": BAD})
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())

        # throttled: 200,000 calls, a handful of writes a second
        rc, out, _ = d.ctl("enqueue", "busy")
        jid = int(out.split()[0])
        t0 = time.monotonic()
        events, final = wait_events(d.sock, jid, 120)
        took = time.monotonic() - t0
        fracs = [e["progress"] for _, e in events]
        check("wait streams the progress as events, then the job",
              final and final.get("ok") and final["result"]["state"] == "succeeded"
              and len(events) >= 2, (final, events[:5]))
        # one a quarter second, plus the first call's, the end's and the one stored
        # when the wait began (a timer that fires after the task wrote must not
        # write again: that doubled writes under ASan)
        check("200,000 calls in %.1f s made %d writes: at most ~4 a second" % (took, len(events)),
              len(events) <= took * 4 + 3,
              (took, len(events), [round(b[0] - a[0], 3) for a, b in zip(events, events[1:])]))
        check("the fractions rise and end at 1 with the last message",
              fracs == sorted(fracs) and fracs and fracs[-1] == 1.0
              and events[-1][1].get("message") == "item 200000", events[-3:])
        gaps = [b[0] - a[0] for a, b in zip(events, events[1:])]
        check("the writes are spaced (median gap >= 0.15 s)",
              not gaps or sorted(gaps)[len(gaps) // 2] >= 0.15, gaps)
        check("the store holds the last progress", db_progress(d, jid) == (1.0, "item 200000"),
              db_progress(d, jid))

        # a job holding at 50%: show, jobs, the wire, the store
        rc, out, _ = d.ctl("enqueue", "hold")
        hid = int(out.split()[0])
        ok = poll(lambda: db_progress(d, hid) == (0.5, "half way"), 10)
        check("the progress reaches the store within the throttle", ok, db_progress(d, hid))
        rc, show, _ = d.ctl("show", hid)
        check("awaitctl show prints it", re.search(r"^progress: +50%  half way$", show, re.M),
              show)
        rc, jobs, _ = d.ctl("jobs", "--name", "hold")
        check("awaitctl jobs shows a percent for the running job", "running 50%" in jobs, jobs)
        rc, js, _ = d.cjson("show", hid)
        check("show --json: progress {fraction, message}",
              js.get("progress") == {"fraction": 0.5, "message": "half way"}, js)

        # awaitctl wait: a bar on a terminal, nothing extra when piped or --json
        rc, out, _ = d.ctl("enqueue", "hold", '{"ms": 1500}')
        wid = int(out.split()[0])
        poll(lambda: db_progress(d, wid) is not None and db_progress(d, wid)[0] == 0.5, 10)
        rc, tty = on_pty("-s", d.sock, "wait", wid)
        check("wait on a terminal draws a bar, then the result",
              rc == 0 and re.search(r"\[#+-+\]  50%  half way", tty) and
              tty.rstrip().endswith('"held"'), repr(tty))
        check("... and erases the bar before the result", "\r\x1b[K\"held\"" in tty, repr(tty))
        rc, piped, err = d.ctl("wait", wid)
        check("wait piped: the result alone", rc == 0 and piped == '"held"\n', (piped, err))
        rc, jout, _ = d.ctl("--json", "wait", wid)
        check("wait --json: one JSON document, no bar",
              rc == 0 and len(jout.strip().splitlines()) == 1
              and json.loads(jout)["state"] == "succeeded", jout)

        # the last progress before the end is written before the outcome
        rc, out, _ = d.ctl("run", "last")
        rc, js, _ = d.cjson("jobs", "--name", "last")
        lid = js["jobs"][0]["id"]
        check("progress called just before the end is stored with the outcome",
              db_progress(d, lid) == (0.75, "last words"), db_progress(d, lid))

        # a new attempt starts without the old one's progress
        rc, out, _ = d.ctl("enqueue", "retry")
        rid = int(out.split()[0])
        ok = poll(lambda: (d.cjson("show", rid)[1] or {}).get("attempt") == 2 and
                  (d.cjson("show", rid)[1] or {}).get("state") == "running", 15)
        rc, js, _ = d.cjson("show", rid)
        check("a retry's attempt 2 runs without attempt 1's progress",
              ok and "progress" not in js and db_progress(d, rid) == (None, None), js)

        # bad arguments: invalid, nothing stored
        rc, out, err = d.ctl("run", "bad")
        got = json.loads(out) if rc == 0 else None
        check("bad fractions and messages raise invalid; a good call returns true",
              got == ["invalid"] * 7 + ["true"], (out, err))

        # it survives a restart (durable): the store keeps it, show prints it
        d.stop(signal.SIGKILL)
        check("restarts after SIGKILL", d.start(), open(d.log.name).read())
        check("the progress of a finished job is still there",
              d.cjson("show", jid)[1].get("progress") == {"fraction": 1.0,
                                                          "message": "item 200000"})
        d.ctl("cancel", hid)
        d.ctl("cancel", rid)
        check("SIGTERM exits 0", d.stop() == 0)


if __name__ == "__main__":
    run(main)
