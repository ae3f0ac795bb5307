#!/usr/bin/env python3
"""End-to-end tests of awaitd's input checks (issue 11, "Isolation").

Usage: test_input.py AWAITD AWAITCTL SCRIPTS_DIR

One daemon on a temporary directory (a copy of SCRIPTS_DIR plus this test's
scripts, its own database and a config with a small max_clients) is fed:
  - every bad enqueue option over the raw unix socket (enqueue and run),
    each answered ok:false, invalid_request, naming the option;
  - the same options from a script's jobs.enqueue, each raising with the
    message the socket gives;
  - a bad --delay to awaitctl (exit 2, before anything is sent);
  - a flood of connections over max_clients, after which the log holds a
    handful of refusal warnings and a "more refused" count;
and afterwards still answers ping, runs a job with the right result, lists
every job, and honours a valid delay, at and priority. Waits poll; timing
bounds are generous. Prints one line per check and "N passed, M failed".
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import AWAITCTL, AWAITD, check, Ctl, finish, MIGRATIONS, poll, SCRIPTS, SLOW, WRAP

MAX_CLIENTS = 4
FLOOD = 300

# a job whose run tries jobs.enqueue with each bad opts table and returns the messages
BADOPTS = r'''
return {
  timeout = 20000,
  run = function(ctx, args)
    local cases = {
      delay_big = {delay = 1e19},
      delay_max = {delay = math.maxinteger},
      delay_neg = {delay = -1},
      delay_frac = {delay = 1.5},
      delay_str = {delay = "x"},
      delay_nan = {delay = 0/0},
      at_neg = {at = -5},
      at_hour_ago = {at = args.now - 3600000},
      timeout_huge = {timeout = 1e300},
      timeout_inf = {timeout = math.huge},
      timeout_zero = {timeout = 0},
      prio_big = {priority = 1000000},
      unknown_delay_ms = {delay_ms = 5},
      unknown_run_at = {run_at = 5},
      key_empty = {key = ""},
      both = {delay = 5, at = args.now},
    }
    local out = {}
    for name, opts in pairs(cases) do
      local ok, err = pcall(jobs.enqueue, "hello", {}, opts)
      out[name] = ok and "accepted" or tostring(err)
    end
    return out
  end,
}
'''

# a job that records when it ran (ms, wall) so delays can be checked
STAMP = r'''
return {
  timeout = 5000,
  run = function(ctx, args)
    return {tag = args and args.tag}
  end,
}
'''


# a script whose backoff is far beyond any int64 of ms (scripts accept any number >= 0)
HUGE_BACKOFF = r'''
return {
  retries = 1,
  backoff = 1e300,
  run = function(ctx, args) return nil, async.error("nope", "fails on purpose") end,
}
'''


class Daemon(Ctl):
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="awaitd-input-")
        self.scripts = os.path.join(self.dir, "scripts")
        shutil.copytree(SCRIPTS, self.scripts, ignore=shutil.ignore_patterns("examples"))
        for name, text in (("badopts", BADOPTS), ("stamp", STAMP), ("hugebackoff", HUGE_BACKOFF)):
            with open(os.path.join(self.scripts, name + ".lua"), "w") as f:
                f.write(text)
        self.sock = os.path.join(self.dir, "awaitd.sock")
        self.logpath = os.path.join(self.dir, "log")
        self.conf = os.path.join(self.dir, "awaitd.conf")
        with open(self.conf, "w") as f:
            f.write("max_clients = %d\n" % MAX_CLIENTS)
        log = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            WRAP + [AWAITD, "-c", self.conf, "--scripts", self.scripts,
                    "--db", os.path.join(self.dir, "awaitd.db"), "--socket", self.sock,
                    "--migrations", MIGRATIONS],
            stdout=log, stderr=log, cwd=self.dir)
        log.close()

    def ready(self):
        return bool(poll(lambda: self.proc.poll() is not None or self.ctl("ping", timeout=5)[0] == 0,
                         15)) and self.proc.poll() is None



    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5 * SLOW)
        s.connect(self.sock)
        return s

    def request(self, cmd, args, raw=None):
        """One raw request line on a fresh connection; the decoded response (or None)."""
        try:
            s = self.connect()
        except OSError as ex:
            return {"exception": repr(ex)}
        try:
            line = raw if raw is not None else json.dumps({"id": 1, "cmd": cmd, "args": args})
            s.sendall(line.encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return json.loads(buf.split(b"\n")[0]) if buf else None
        except (OSError, ValueError) as ex:  # an answer that never comes fails the check
            return {"exception": repr(ex)}
        finally:
            s.close()

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def refused(resp, field):
    """True when resp is ok:false, invalid_request, with a message naming field."""
    if not isinstance(resp, dict) or resp.get("ok") is not False:
        return False
    e = resp.get("error") or {}
    return e.get("code") == "invalid_request" and field in (e.get("message") or "")


def test_flood(d):
    """More connections than max_clients; returns when the flood was sent (monotonic s)."""
    held = [d.connect() for _ in range(MAX_CLIENTS)]
    # wait until the daemon has admitted them all: one more is refused
    busy = None
    for _ in range(50):
        s = d.connect()
        data = s.recv(4096)
        s.close()
        if b"busy" in data or b"too many" in data:
            busy = data
            break
        time.sleep(0.05)
    check("flood: over max_clients a connection is refused with a reason", busy is not None, busy)
    t0 = time.monotonic()
    sent = 0
    for _ in range(FLOOD):
        try:
            s = d.connect()
            s.close()
            sent += 1
        except OSError:  # a full backlog under load: not a refusal the daemon saw
            pass
    time.sleep(1.0)  # let the daemon accept (and refuse) the backlog before slots free up
    for s in held:
        s.close()
    check("flood: the daemon answers once the held connections are gone",
          poll(lambda: d.ctl("ping", timeout=5)[0] == 0, 10), d.log()[-2000:])
    return t0, sent


def test_socket(d):
    now = int(time.time() * 1000)
    bad = [
        ("delay", {"delay": 1e19}),
        ("delay", {"delay": 9223372036854775807}),
        ("delay", {"delay": -1}),
        ("delay", {"delay": 1.5}),
        ("delay", {"delay": "x"}),
        ("delay", {"delay": None}),
        ("at", {"at": -5}),
        ("at", {"at": now - 3600000}),
        ("at", {"at": now + 11 * 366 * 86400000}),
        ("timeout", {"timeout": 1e300}),
        ("timeout", {"timeout": 0}),
        ("timeout", {"timeout": 31 * 86400000}),
        ("priority", {"priority": 1000000}),
        ("priority", {"priority": -1001}),
        ("priority", {"priority": 2.5}),
        ("delay_ms", {"delay_ms": 5}),
        ("run_at", {"run_at": now}),
        ("key", {"key": ""}),
        ("key", {"key": 5}),
        ("key", {"key": "k" * 600}),
        ("delay and at", {"delay": 5, "at": now}),
    ]
    for cmd in ("enqueue", "run"):
        for field, opts in bad:
            args = dict(opts, name="hello", args={})
            resp = d.request(cmd, args)
            check("socket %s %s: refused, invalid_request naming %s" % (cmd, json.dumps(opts)[:60], field),
                  refused(resp, field), resp)
    # the numbers are checked as sent, not as python would print them
    resp = d.request(None, None, raw='{"id":1,"cmd":"enqueue","args":{"name":"hello","delay":1e19}}')
    check("socket: delay 1e19 (raw) refused", refused(resp, "delay"), resp)
    resp = d.request("wait", {"id": 1, "timeout": 1e300})
    check("socket: wait with timeout 1e300 refused, naming timeout", refused(resp, "timeout"), resp)

    # a retry of a script with backoff 1e300 is due within 10 years, not at an overflowed time
    resp = d.request("enqueue", {"name": "hugebackoff"})
    jid = (resp or {}).get("result", {}).get("id")
    job = poll(lambda: (lambda r: r[1] if r[0] == 0 and r[1].get("state") == "failed" else None)(
        d.cjson("show", jid)), 20) if jid else None
    run_at = (job or {}).get("run_at") or 0
    check("socket: a huge backoff retries at most 10 years ahead",
          job is not None and now < run_at <= now + 3650 * 86400000 + 600000, job)
    resp = d.request("enqueue", {"name": "hello", "delay_ms": 5})
    check("socket: an unknown key is named in the message",
          refused(resp, '"delay_ms"'), resp)
    return resp


def test_script(d, socket_msg):
    rc, v, out = d.cjson("run", "badopts", json.dumps({"now": int(time.time() * 1000)}))
    check("script: the badopts job ran", rc == 0 and isinstance(v, dict), out)
    v = v if isinstance(v, dict) else {}
    want = {
        "delay_big": "delay must be", "delay_max": "delay must be", "delay_neg": "delay must be",
        "delay_frac": "delay must be", "delay_str": "delay must be", "delay_nan": "delay must be",
        "at_neg": "at must be", "at_hour_ago": "at must be", "timeout_huge": "timeout must be",
        "timeout_inf": "timeout must be", "timeout_zero": "timeout must be",
        "prio_big": "priority must be", "unknown_delay_ms": 'unknown option "delay_ms"',
        "unknown_run_at": 'unknown option "run_at"', "key_empty": "key must be",
        "both": "delay and at both given",
    }
    for case, text in sorted(want.items()):
        msg = v.get(case, "")
        check("script: jobs.enqueue %s raises naming it" % case,
              "jobs.enqueue: " in msg and text in msg, msg)
    # the very text the socket gives, after the "jobs.enqueue: " prefix
    sock_text = ((socket_msg or {}).get("error") or {}).get("message", "?")
    check("script: the message is the socket's", sock_text in v.get("unknown_delay_ms", ""),
          (sock_text, v.get("unknown_delay_ms")))


def test_cli(d):
    for flag, val in (("--delay", "1e19"), ("--delay", "-1"), ("--delay", "9223372036854775807"),
                      ("--priority", "5000")):
        rc, out, err = d.ctl("enqueue", "hello", "{}", flag, val)
        check("awaitctl enqueue %s %s: exit 2 naming %s" % (flag, val, flag),
              rc == 2 and flag in err, (rc, out, err))
    rc, v, out = d.cjson("enqueue", "hello", '{"name":"cli"}', "--delay", 1, "--priority", 7,
                         "--key", "cli-1")
    check("awaitctl enqueue with a valid --delay/--priority/--key works",
          rc == 0 and isinstance(v, dict) and v.get("id"), out)
    rc, v, out = d.cjson("run", "hello", '{"name":"cli"}', "--timeout", 10000)
    check("awaitctl run --timeout works", rc == 0 and isinstance(v, dict)
          and v.get("greeting") == "hello, cli", out)


def test_after(d, t_flood, sent):
    rc, out, err = d.ctl("ping")
    check("after: the daemon answers ping", rc == 0, (rc, out, err))
    rc, v, out = d.cjson("run", "hello", '{"name":"ann"}')
    check("after: a normal job runs with the right result",
          rc == 0 and isinstance(v, dict) and v.get("greeting") == "hello, ann", out)

    # a valid delay: runs after it, not at once (generous bounds)
    t0 = int(time.time() * 1000)
    resp = d.request("enqueue", {"name": "stamp", "args": {"tag": "delay"}, "delay": 1500})
    jid = (resp or {}).get("result", {}).get("id")
    check("after: delay 1500 accepted", bool(jid), resp)
    job = poll(lambda: (lambda r: r[1] if r[0] == 0 and r[1].get("state") == "succeeded" else None)(
        d.cjson("show", jid)), 20) if jid else None
    started = (job or {}).get("started_at") or 0
    check("after: the delayed job ran after its delay and within 15 s",
          job is not None and t0 + 1400 <= started <= t0 + 15000, (t0, job))

    # a valid at, a little in the past (runs now) and one ahead
    t0 = int(time.time() * 1000)
    resp = d.request("enqueue", {"name": "stamp", "args": {"tag": "at"}, "at": t0 + 1000,
                                 "priority": -1000, "key": "at-1", "timeout": 5000})
    jid = (resp or {}).get("result", {}).get("id")
    check("after: at (1 s ahead), priority, key and timeout accepted", bool(jid), resp)
    resp = d.request("enqueue", {"name": "stamp", "at": t0 - 30000, "priority": 1000})
    check("after: at 30 s ago is accepted (runs now)", bool((resp or {}).get("ok")), resp)
    resp = d.request("enqueue", {"name": "stamp", "delay": 0.0 + 2, "priority": 3.0})
    check("after: integral floats (2.0, 3.0) are accepted", bool((resp or {}).get("ok")), resp)
    job = poll(lambda: (lambda r: r[1] if r[0] == 0 and r[1].get("state") == "succeeded" else None)(
        d.cjson("show", jid)), 20) if jid else None
    check("after: the job at t+1 s ran after it", job is not None
          and (job.get("started_at") or 0) >= t0 + 900, job)
    check("after: it kept its priority", job is not None and job.get("priority") == -1000, job)

    rc, v, out = d.cjson("jobs", "--limit", 1000)
    names = [j.get("name") for j in (v or {}).get("jobs", v if isinstance(v, list) else [])] \
        if rc == 0 else []
    check("after: awaitctl jobs lists the jobs of every part",
          rc == 0 and {"hello", "badopts", "stamp", "hugebackoff"} <= set(names)
          and names.count("stamp") == 4, (rc, out[-2000:]))

    # the flood's count comes with the first refusal after the interval
    poll(lambda: time.monotonic() - t_flood > 10.5, 20, step=0.2)
    held = [d.connect() for _ in range(MAX_CLIENTS)]
    time.sleep(0.3)
    s = d.connect()
    s.recv(4096)
    s.close()
    for h in held:
        h.close()
    print("\n".join(l for l in d.log().splitlines() if "refused" in l), flush=True)
    log = poll(lambda: (lambda t: t if "more refused" in t else None)(d.log()), 10) or d.log()
    lines = [l for l in log.splitlines() if "connection refused" in l]
    check("flood: only a handful of refusal warnings for %d refusals" % FLOOD,
          1 <= len(lines) <= 4, "\n".join(lines[:10]))
    counted = [l for l in lines if "more refused in the last" in l]
    n = int(counted[-1].split("(")[-1].split()[0]) if counted else 0
    # many of the flood's connections (not all: on a loaded machine the backlog
    # fills, so some never connect, and some reach a slot freed later)
    check("flood: a later warning says how many more were refused (%d sent, %d counted)"
          % (sent, n), bool(counted) and sent >= 20 and n >= min(sent // 4, 50),
          "\n".join(lines[:10]))
    rc = poll(lambda: d.ctl("ping")[0] == 0, 10)  # once it has seen the held ones close
    check("flood: the daemon still answers", rc, d.ctl("ping"))


d = Daemon()
try:
    ok = d.ready()
    check("daemon starts with max_clients = %d" % MAX_CLIENTS, ok, d.log())
    if ok:
        try:
            t_flood, sent = test_flood(d)
            socket_msg = test_socket(d)
            test_script(d, socket_msg)
            test_cli(d)
            test_after(d, t_flood, sent)
        except Exception:  # a crash in a test is a failure, not an abort
            import traceback
            check("the checks ran to the end", False, traceback.format_exc())
        check("daemon still running at the end", d.proc.poll() is None, d.log()[-3000:])
finally:
    d.cleanup()
finish()
