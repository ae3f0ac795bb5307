#!/usr/bin/env python3
"""End-to-end tests of the daemon's HTTP front end (http_listen): /api/
answers what `awaitctl --json` prints, /metrics parses with Prometheus'
own parser (python3-prometheus-client) and its figures match the store,
bad requests get 4xx and leave the daemon serving, and a non-loopback
address is refused without a token.

Usage: test_web.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from harness import SLOW, Daemon, check, finish, free_port, make_root

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


def main():
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    root = setup("http_listen = 127.0.0.1:%d\n" % port)
    d = Daemon(root)
    try:
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
        want = all(fams.get(("awaitd_jobs", (("state", k),))) == v for k, v in st["jobs"].items())
        check("/metrics: jobs by state match the store", want, (fams, st["jobs"]))
        check("/metrics: outcome counters count the three runs",
              fams.get(("awaitd_job_outcomes_total", (("outcome", "succeeded"),))) == 3, fams)
        check("/metrics: the workers", fams.get(("awaitd_workers", ())) >= 1, fams)

        for path, want in (("/nope", 404), ("/api/jobs/0", 400), ("/api/jobs/x", 400),
                           ("/api/jobs/999999", 404), ("/api/jobs?limit=-1", 400),
                           ("/api/jobs?bogus=1", 400), ("/api/jobs/1/nope", 404)):
            code, body, _ = get(base + path)
            check("GET %s: %d with an error object" % (path, want),
                  code == want and "error" in json.loads(body), (code, body))
        code, body, _ = get(base + "/api/status", method="POST")
        check("POST: 405, read-only", code == 405, (code, body))
        first = raw(port, b"NOT HTTP AT ALL\r\n\r\n")
        check("a malformed request: 400 (%s)" % first, " 400 " in first, first)
        first = raw(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        check("an oversized header: refused (%s)" % first, " 400 " in first or " 413 " in first
              or " 431 " in first or first == "", first)
        check("the daemon still serves", get(base + "/api/status")[0] == 200
              and d.ctl("ping")[0] == 0)
        check("SIGTERM exits 0 (and clean under valgrind)", d.stop() == 0)
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)

    # beyond loopback only with a token
    root = setup("http_listen = 0.0.0.0:%d\n" % free_port())
    d = Daemon(root)
    try:
        d.start()
        rc = d.proc.wait(15 * SLOW)
        log = open(d.log.name).read()
        check("a non-loopback http_listen without http_token stops start-up, saying why",
              rc != 0 and "not a loopback address" in log and "http_token" in log, (rc, log))
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
    finish()
