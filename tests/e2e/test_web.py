#!/usr/bin/env python3
"""End-to-end tests of the daemon's HTTP front end (http_listen): /api/
answers what `awaitctl --json` prints, /metrics parses with Prometheus'
own parser (python3-prometheus-client) and its figures match the store,
bad requests get 4xx and leave the daemon serving, the actions (cancel,
retry, signal) work only with the bearer token, and a non-loopback address
is refused without a token.

Usage: test_web.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from harness import run, SLOW, Daemon, check, free_port, make_root, poll

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # Debian's package, seen from another python3 on PATH
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

HELLO = 'return { run = function(ctx, args) return { hi = args and args.name or "x" } end }\n'


def setup(conf):
    return make_root("awaitd-web-", {"scripts/hello.lua": HELLO}, conf)


def get(url, method="GET"):
    """(status, body text, content type) of one request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10 * SLOW) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")
    except OSError as e:
        return None, str(e), ""


def raw(port, data):
    """Send raw bytes to the HTTP port; the first line of what comes back."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        s.sendall(data)
        got = s.recv(4096)
        s.close()
        return got.split(b"\r\n")[0].decode(errors="replace")
    except OSError as e:
        return "error: %s" % e


def post(url, token=None, body=None):
    """(status, decoded JSON body) of a POST with an optional bearer token."""
    req = urllib.request.Request(url, method="POST", data=(body or "").encode())
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10 * SLOW) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


WAITER = """
return { run = function(ctx, args)
  local v = ctx.wait_signal("go")
  return { got = v }
end }
"""


def actions():
    """cancel, retry and signal over HTTP: only with the token, and they do what
    awaitctl's would."""
    port = free_port()
    base = "http://127.0.0.1:%d/api/jobs/" % port
    root = make_root("awaitd-web-act-", {"scripts/hello.lua": HELLO,
                                         "scripts/waiter.lua": WAITER},
                     "http_listen = 127.0.0.1:%d\nhttp_token = s3cret-token\n" % port)
    with Daemon(root) as d:
        check("daemon starts with a token", d.start(), open(d.log.name).read())
        rc, out, _ = d.ctl("enqueue", "hello", "{}", "--delay", "600000")
        jid = int(out.split()[0])
        for tok, what in ((None, "no Authorization"), ("wrong", "a wrong token"),
                          ("s3cret-tokenX", "a longer token"), ("", "an empty token")):
            code, body = post(base + "%d/cancel" % jid, tok)
            check("cancel with %s: 403" % what, code == 403, (code, body))
        check("... and the job is still queued",
              d.cjson("show", jid)[1]["state"] == "queued")
        code, before, _ = get(base + "%d" % jid)
        code, body = post(base + "%d/cancel" % jid, "s3cret-token")
        code2, after, _ = get(base + "%d" % jid)
        check("cancel with the token: 200, the job cancelled",
              code == 200 and body.get("state") == "cancelled"
              and d.cjson("show", jid)[1]["state"] == "cancelled", (code, body))
        check("... and GET shows it at once (an action clears the cached answers)",
              json.loads(before)["state"] == "queued" and json.loads(after)["state"] == "cancelled",
              (before, after))
        code, body = post(base + "%d/retry" % jid, "s3cret-token")
        check("retry with the token: 200, the job queued again",
              code == 200 and body.get("state") == "queued", (code, body))
        code, body = post(base + "999999/cancel", "s3cret-token")
        check("cancel of no job: 404", code == 404, (code, body))
        code, body, _ = get(base + "%d/cancel" % jid)
        check("GET of an action: 405", code == 405, (code, body))

        rc, out, _ = d.ctl("enqueue", "waiter")
        wid = int(out.split()[0])
        poll(lambda: d.cjson("show", wid)[1]["state"] == "waiting", 10)
        for bad in ("not json", "[1]", '{"payload": 1}', '{"name": 7}'):
            code, body = post(base + "%d/signal" % wid, "s3cret-token", bad)
            check("signal with body %r: 400" % bad, code == 400, (code, body))
        code, body = post(base + "%d/signal" % wid, None, '{"name": "go"}')
        check("signal without the token: 403", code == 403, (code, body))
        code, body = post(base + "%d/signal" % wid, "s3cret-token",
                          '{"name": "go", "payload": {"n": 1}}')
        check("signal with the token: 200", code == 200, (code, body))
        rc, out, _ = d.ctl("wait", wid, "--timeout", "10000")
        check("the waiting job got the payload and finished", rc == 0 and
              json.loads(out) == {"got": {"n": 1}}, out)
        code, body = post(base + "%d/signal" % wid, "s3cret-token", '{"name": "go"}')
        check("signal to a finished job: 409", code == 409, (code, body))
        log = open(d.log.name).read()
        check("actions are logged, the token never", "web: cancel of job %d" % jid in log
              and "s3cret-token" not in log, log[-2000:])
        check("SIGTERM exits 0", d.stop() == 0)


def main():
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    root = setup("http_listen = 127.0.0.1:%d\n" % port)
    with Daemon(root) as d:
        check("daemon starts with http_listen", d.start(), open(d.log.name).read())
        for i in range(3):
            d.ctl("run", "hello", json.dumps({"name": "n%d" % i}))
        rc, st, _ = d.cjson("status")
        code, body, ctype = get(base + "/api/status")
        api = json.loads(body) if code == 200 else {}
        check("/api/status: 200 JSON with the jobs awaitctl status counts",
              code == 200 and ctype.startswith("application/json")
              and api.get("jobs") == st.get("jobs") and api.get("version") == st.get("version"),
              (code, body, st))
        rc, jobs, _ = d.cjson("jobs")
        code, body, _ = get(base + "/api/jobs")
        check("/api/jobs: the list awaitctl --json jobs prints",
              code == 200 and json.loads(body) == jobs, (body, jobs))
        jid = jobs["jobs"][0]["id"]
        code, body, _ = get(base + "/api/jobs?name=hello&state=succeeded&limit=2")
        check("/api/jobs with a query: filtered and limited",
              code == 200 and len(json.loads(body)["jobs"]) == 2, body)
        rc, show, _ = d.cjson("show", jid)
        code, body, _ = get(base + "/api/jobs/%d" % jid)
        check("/api/jobs/ID: the job awaitctl show prints", code == 200 and json.loads(body) == show,
              body)
        code, body, _ = get(base + "/api/jobs/%d/trace" % jid)
        check("/api/jobs/ID/trace: its spans", code == 200 and json.loads(body).get("spans"), body)
        code, body, _ = get(base + "/api/scripts")
        check("/api/scripts: the scripts", code == 200 and json.loads(body)[0]["name"] == "hello",
              body)

        stats0 = d.cjson("stats")[1]  # (batches go on meanwhile: claims, the heartbeat)
        code, body, ctype = get(base + "/metrics")
        fams = {}
        try:
            for fam in text_string_to_metric_families(body):
                for s in fam.samples:
                    fams[(s.name, tuple(sorted(s.labels.items())))] = s.value
            parsed = True
        except Exception as e:  # the parser's own errors
            parsed = repr(e)
        check("/metrics parses as Prometheus text", code == 200 and parsed is True
              and ctype.startswith("text/plain"), (parsed, body[:500]))
        rc, st, _ = d.cjson("status")
        stored = {(n, state): c for n, state, c in
                  d.sql("SELECT name, state, count(*) FROM jobs GROUP BY name, state")}
        want = all(fams.get(("awaitd_jobs", (("script", n), ("state", k)))) == v
                   for (n, k), v in stored.items())
        check("/metrics: jobs by script and state match the store", want and stored,
              (fams, stored))
        check("/metrics: their sum by state is what status counts",
              all(sum(v for (n, k2), v in stored.items() if k2 == k) == c
                  for k, c in st["jobs"].items()), (stored, st["jobs"]))
        check("/metrics: attempts by script and outcome count the three runs",
              fams.get(("awaitd_job_attempts_total", (("outcome", "succeeded"),
                                                     ("script", "hello")))) == 3, fams)
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in fams.items()
                         if k[0] == "awaitd_job_duration_seconds_bucket")
        check("/metrics: job durations as a histogram (3 observed, cumulative buckets)",
              fams.get(("awaitd_job_duration_seconds_count", (("script", "hello"),))) == 3
              and buckets[-1] == (float("inf"), 3)
              and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets)
        rc, stats, _ = d.cjson("stats")
        check("/metrics: store batch sizes, one per group commit",
              stats0["store"]["commits"] - 2 <= fams.get(("awaitd_store_batch_size_count", ()))
              <= stats["store"]["commits"]
              and fams.get(("awaitd_store_batch_size_count", ())) > 0,
              (fams, stats0["store"], stats["store"]))
        check("/metrics: fsync seconds, one per sync",
              fams.get(("awaitd_store_fsync_seconds_count", ())) > 0
              and fams.get(("awaitd_store_fsync_seconds_count", ())) <= stats["store"]["syncs"],
              (fams, stats["store"]))
        def lag_count():  # the probe runs every 100 ms: the first comes soon
            m = re.search(r"^awaitd_loop_lag_seconds_count (\S+)$", get(base + "/metrics")[1],
                          re.M)
            return m and float(m.group(1)) > 0
        check("/metrics: the loop's lag as a histogram",
              "awaitd_loop_lag_seconds_sum" in body and poll(lag_count, 10), body[-800:])
        check("/metrics: the workers", fams.get(("awaitd_workers", ())) >= 1, fams)
        bodies = [get(base + "/api/status")[1] for _ in range(20)]
        check("back-to-back GETs share a cached answer (uptime_s repeats)",
              len(set(bodies)) < len(bodies), bodies[:3])
        code, body, _ = get(base + "/api/jobs/%d/cancel" % jid, method="POST")
        check("an action without http_token: 403, saying how to turn them on",
              code == 403 and "http_token" in body, (code, body))

        for path, want in (("/nope", 404), ("/api/jobs/0", 400), ("/api/jobs/x", 400),
                           ("/api/jobs/999999", 404), ("/api/jobs?limit=-1", 400),
                           ("/api/jobs?bogus=1", 400), ("/api/jobs/1/nope", 404)):
            code, body, _ = get(base + path)
            check("GET %s: %d with an error object" % (path, want),
                  code == want and "error" in json.loads(body), (code, body))
        code, body, _ = get(base + "/api/status", method="POST")
        check("POST to a read path: 405", code == 405, (code, body))
        first = raw(port, b"NOT HTTP AT ALL\r\n\r\n")
        check("a malformed request: 400 (%s)" % first, " 400 " in first, first)
        first = raw(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        check("an oversized header: refused (%s)" % first, " 400 " in first or " 413 " in first
              or " 431 " in first or first == "", first)
        check("the daemon still serves", get(base + "/api/status")[0] == 200
              and d.ctl("ping")[0] == 0)
        check("SIGTERM exits 0 (and clean under valgrind)", d.stop() == 0)

    actions()

    # beyond loopback only with a token
    root = setup("http_listen = 0.0.0.0:%d\n" % free_port())
    with Daemon(root) as d:
        d.start()
        rc = d.proc.wait(15 * SLOW)
        log = open(d.log.name).read()
        check("a non-loopback http_listen without http_token stops start-up, saying why",
              rc != 0 and "not a loopback address" in log and "http_token" in log, (rc, log))


if __name__ == "__main__":
    run(main)
