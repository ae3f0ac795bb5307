#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium loads the page the
daemon serves (http_listen) and the test reads the DOM it rendered
(--dump-dom): the counts match `awaitctl status`, a job enqueued after the
page loaded appears without a reload, a running job's progress shows in
the list and on its page, a job's trace has one SVG bar per span, and a
job's args holding <script> show as text. Screenshots of the
dashboard and of a job page are saved in AWAITD_ARTIFACTS (default
build/artifacts) as test artifacts.

Usage: test_dashboard.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import html.parser
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from harness import run, SLOW, WRAP, Daemon, check, free_port, make_root, poll

SCRIPT = """
return { run = function(ctx, args)
  ctx.step("one", function() return 1 end)
  local t = async.spawn(function() async.sleep(5) return 2 end)
  t:await()
  if args and args.wait then return ctx.wait_signal("go") end
  if args and args.hold then
    ctx.progress(0.42, "item 42 of 100")
    async.sleep(600000)
  end
  return { note = args and args.note }
end }
"""

ARTIFACTS = os.environ.get("AWAITD_ARTIFACTS",
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                        "build", "artifacts"))


def browser():
    for b in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(b):
            return b
    return None


def chrome(url, *args, budget=3000):
    """Run headless Chromium on url; (returncode, stdout)."""
    cmd = [browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--user-data-dir=" + tempfile.mkdtemp(prefix="awaitd-chrome-"),
           "--virtual-time-budget=%d" % budget] + list(args) + [url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120 * SLOW)
    return r.returncode, r.stdout


class Dom(html.parser.HTMLParser):
    """What the tests look for in a dumped DOM."""

    def __init__(self, text):
        super().__init__()
        self.counts, self.rows, self.bars, self.scripts, self.attrs = {}, [], 0, 0, {}
        self.progress = []
        self._in = None
        self.text = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.attrs = a
        if tag == "div" and "data-state" in a:
            self._in = ("count", a["data-state"])
        elif tag == "span" and a.get("class") == "n" and self._in and self._in[0] == "count":
            self._in = ("n", self._in[1])
        elif tag == "tr" and "data-id" in a:
            self.rows.append(int(a["data-id"]))
        elif tag == "span" and a.get("class") == "progress":
            self.progress.append(int(a.get("data-pct", "-1")))
        elif tag == "rect" and a.get("class") == "bar":
            self.bars += 1
        elif tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.text.append(data)
        if self._in and self._in[0] == "n":
            self.counts[self._in[1]] = int(data) if data.strip().isdigit() else data
            self._in = None


def main():
    if not browser():
        check("chromium is installed (.ci/deps installs it)", False)
        return
    os.makedirs(ARTIFACTS, exist_ok=True)
    port = free_port()
    base = "http://127.0.0.1:%d/" % port
    root = make_root("awaitd-dash-", {"scripts/demo.lua": SCRIPT},
                     "http_listen = 127.0.0.1:%d\n" % port)
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())
        d.ctl("run", "demo", json.dumps({"note": "<script>document.title='pwned'</script>"}))
        d.ctl("run", "demo", "{}")
        d.ctl("enqueue", "demo", '{"wait":true}')
        poll(lambda: (d.cjson("status")[1] or {}).get("jobs", {}).get("waiting") == 1, 10)

        rc, out = chrome(base, "--dump-dom")
        dom = Dom(out)
        rc2, st, _ = d.cjson("status")
        check("the page renders (%d draws)" % int(dom.attrs.get("data-drawn", "0")),
              rc == 0 and int(dom.attrs.get("data-drawn", "0")) >= 1, out[:2000])
        check("the counts by state match awaitctl status",
              dom.counts == st["jobs"], (dom.counts, st["jobs"]))
        check("the job list shows the jobs, newest first", dom.rows == [3, 2, 1], dom.rows)

        # live: a job enqueued while the page is open shows up without a reload (not
        # under valgrind: the page's polling is the browser's; the timing is not)
        if WRAP:
            print("skip live update (under valgrind)")
        result = {} if not WRAP else None
        if result is not None:
            t = threading.Thread(target=lambda: result.update(
                out=chrome(base, "--dump-dom", budget=600000)[1]))
            t.start()
            time.sleep(1.0)
            rc, new, _ = d.cjson("enqueue", "demo", "{}")
            t.join()
            dom = Dom(result.get("out", ""))
            first = [int(x) for x in dom.attrs.get("data-firstjobs", "").split()]
            check("a job enqueued after the page loaded appears without a reload",
                  new and new["id"] in dom.rows and new["id"] not in first
                  and int(dom.attrs.get("data-drawn", "0")) > 1,
                  (new, dom.rows, first, dom.attrs.get("data-drawn")))

        # a running job's progress: in the list and on its page
        rc, held, _ = d.cjson("enqueue", "demo", '{"hold":true}')
        poll(lambda: ((d.cjson("show", held["id"])[1] or {}).get("progress") or {})
             .get("fraction") == 0.42, 10)
        rc, out = chrome(base, "--dump-dom")
        dom = Dom(out)
        check("the list shows the running job's progress (42%)", dom.progress == [42],
              (dom.progress, out[:3000]))
        rc, out = chrome(base + "#job/%d" % held["id"], "--dump-dom")
        check("its page shows the progress and its message",
              Dom(out).progress == [42] and "item 42 of 100" in out, out[:3000])
        d.ctl("cancel", held["id"])

        rc, tr, _ = d.cjson("trace", 1)
        rc, out = chrome(base + "#job/1", "--dump-dom")
        dom = Dom(out)
        check("a job's trace has one SVG bar per span (%d)" % len(tr["spans"]),
              dom.bars == len(tr["spans"]) and dom.bars >= 3, (dom.bars, len(tr["spans"])))
        text = "".join(dom.text)
        check("args holding <script> show as text, nothing injected",
              "<script>document.title='pwned'</script>" in text and dom.scripts == 1
              and "pwned</title>" not in out, (dom.scripts, out[:3000]))

        for name, url in (("dashboard.png", base), ("job.png", base + "#job/1")):
            path = os.path.join(ARTIFACTS, name)
            chrome(url, "--window-size=1200,800", "--screenshot=" + path)
            check("screenshot %s saved" % path, os.path.getsize(path) > 10000)
        check("SIGTERM exits 0 (and clean under valgrind)", d.stop() == 0)


if __name__ == "__main__":
    run(main)
