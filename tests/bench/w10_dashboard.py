#!/usr/bin/env python3
"""tests/bench/w10_dashboard.py: what serving the dashboard costs the loop.

    python3 w10_dashboard.py PORT PID [CLIENTS] [SECONDS]

CLIENTS browsers (default 50), each polling what the dashboard's page asks
for every second (/api/status, /api/stats and a page of /api/jobs), on one
keep-alive connection each, for SECONDS (default 10), after as long a span
with no client. The daemon's own loop-lag probe (/metrics,
awaitd_loop_lag_seconds: a timer due every 100 ms, the sum of how late it
ran) gives the lag per second in each span, and the clients' cost is the
difference (the daemon is not idle: 20 jobs report progress meanwhile);
/proc gives the daemon's CPU. Prints one JSON line. Target: the clients add
under 1 ms of lag per second.
"""
import http.client
import json
import os
import re
import sys
import threading
import time

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 50
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
PATHS = ("/api/status", "/api/stats", "/api/jobs?limit=50")
HZ = os.sysconf("SC_CLK_TCK")


def lag():
    """(sum of lag in s, probes, the largest bucket bound reached) from /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    s = float(re.search(r"^awaitd_loop_lag_seconds_sum (\S+)$", text, re.M).group(1))
    n = float(re.search(r"^awaitd_loop_lag_seconds_count (\S+)$", text, re.M).group(1))
    return s, n


def cpu():
    with open("/proc/%d/stat" % PID) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def span(seconds, clients):
    """Lag ms per second, CPU ms per second, requests, errors, latencies in ms."""
    stop = time.monotonic() + seconds
    counts = {"requests": 0, "errors": 0}
    lat = []
    mu = threading.Lock()

    def browser(i):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        nxt = time.monotonic() + (i / clients)  # spread over the second, as real pages are
        while True:
            now = time.monotonic()
            if nxt > now:
                time.sleep(nxt - now)
            if time.monotonic() >= stop:
                break
            for p in PATHS:
                t0 = time.monotonic()
                try:
                    conn.request("GET", p)
                    r = conn.getresponse()
                    body = r.read()
                    ok = r.status == 200 and body[:1] in (b"{", b"[")
                except OSError:
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                with mu:
                    counts["requests" if ok else "errors"] += 1
                    lat.append((time.monotonic() - t0) * 1000)
            nxt += 1.0
        conn.close()

    l0, n0, c0, t0 = *lag(), cpu(), time.monotonic()
    threads = [threading.Thread(target=browser, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    if not threads:
        time.sleep(seconds)
    for t in threads:
        t.join()
    l1, n1, c1, t1 = *lag(), cpu(), time.monotonic()
    lat.sort()
    return {"lag_ms_per_s": round((l1 - l0) * 1000 / (t1 - t0), 4),
            "lag_mean_ms": round((l1 - l0) * 1000 / max(1, n1 - n0), 4),
            "cpu_ms_per_s": round((c1 - c0) * 1000 / (t1 - t0), 1),
            "requests": counts["requests"], "errors": counts["errors"],
            "p50_ms": round(lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)], 2) if lat else None}


def main():
    idle = span(SECONDS / 2, 0)
    busy = span(SECONDS, CLIENTS)
    out = {"bench": "dashboard", "impl": "awaitd", "clients": CLIENTS, "seconds": SECONDS,
           "requests": busy["requests"], "errors": busy["errors"],
           "per_s": round(busy["requests"] / SECONDS, 1),
           "lag_ms_per_s": busy["lag_ms_per_s"], "lag_mean_ms": busy["lag_mean_ms"],
           "idle_lag_ms_per_s": idle["lag_ms_per_s"],
           "added_lag_ms_per_s": round(busy["lag_ms_per_s"] - idle["lag_ms_per_s"], 4),
           "cpu_ms_per_s": busy["cpu_ms_per_s"], "idle_cpu_ms_per_s": idle["cpu_ms_per_s"],
           "p50_ms": busy["p50_ms"], "p99_ms": busy["p99_ms"],
           "target_lag_ms_per_s": 1.0,
           "meets": busy["lag_ms_per_s"] - idle["lag_ms_per_s"] < 1.0 and busy["errors"] == 0}
    print(json.dumps(out), flush=True)


main()
