#!/usr/bin/env python3
"""tests/bench/w5_pg.py: W5 on the PostgreSQL store, with 1, 2 and 3 daemons,
beside Graphile Worker 0.18 on the same PostgreSQL server, in one run.

    python3 tests/bench/w5_pg.py [BUILD_DIR]      (default build-bench, a Release build)

W5: N no-op jobs (W5_N, default 20,000) enqueued in bulk (jobs.enqueue from
100 tasks of a `bulk` job on the first daemon, each enqueue returning once
committed), completed by `noop` workers of concurrency 100 per daemon. The
clock runs from the bulk job's start to N jobs succeeded, read from the
database every 50 ms. Each run gets a fresh database on one server of the
bench's own (tests/e2e/pgserver.py: PostgreSQL 15, fsync on,
synchronous_commit on). Graphile Worker runs ../shared/peers/node/
graphile_jobs.mjs (its batching on) against its own fresh database on the
same server; it is installed with npm into W5_NODE_DIR (default
~/.cache/awaitd-w5-node) when missing.

One JSON line per run on stdout:
  {"bench":"w5_pg","impl":"awaitd","daemons":K,"n":N,"total_ms":..,"per_s":..}
  {"bench":"w5_pg","impl":"graphile-worker",...,"per_s":..}
and a summary:
  {"bench":"w5_pg","ratio_1_daemon_vs_graphile":..,"target":1,"met":..,
   "scales":[per_s for 1, 2, 3 daemons],"never_lower":..}
A peer that cannot run gives {"bench":"w5_pg","impl":..,"skipped":"why"}.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from pgserver import PgServer  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench"))
N = int(os.environ.get("W5_N", "20000"))
C = int(os.environ.get("W5_C", "100"))
PEERS = os.environ.get("PEERS", os.path.join(ROOT, "..", "shared", "peers"))
NODE_DIR = os.environ.get("W5_NODE_DIR", os.path.expanduser("~/.cache/awaitd-w5-node"))

NOOP = "return { concurrency = %d, run = function(ctx, args) return args.i * 2 end }\n" % C
BULK = os.path.join(HERE, "jobs", "w5_bulk.lua")  # shared with w5.sh


def emit(obj):
    print(json.dumps(obj), flush=True)


def build():
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=sys.stderr)
    subprocess.run(["cmake", "--build", BUILD, "-j2", "--target", "awaitd", "awaitctl"],
                   check=True, stdout=sys.stderr)


def fresh_db(pg, name):
    pg.psql("DROP DATABASE IF EXISTS %s" % name, db="postgres")
    pg.psql("CREATE DATABASE %s" % name, db="postgres")
    return pg.uri.replace("/%s?" % pg.dbname, "/%s?" % name)


def run_awaitd(pg, k, tmp):
    uri = fresh_db(pg, "w5_%d" % k)
    scripts = os.path.join(tmp, "scripts")
    os.makedirs(scripts, exist_ok=True)
    with open(os.path.join(scripts, "noop.lua"), "w") as f:
        f.write(NOOP)
    shutil.copy(BULK, os.path.join(scripts, "bulk.lua"))
    procs, socks = [], []
    try:
        for i in range(k):
            sock = os.path.join(tmp, "s%d-%d" % (k, i))
            log = open(os.path.join(tmp, "log%d-%d" % (k, i)), "w")
            procs.append(subprocess.Popen(
                [os.path.join(BUILD, "awaitd"), "--scripts", scripts, "--db", uri,
                 "--migrations", os.path.join(ROOT, "migrations"), "--socket", sock],
                stdout=log, stderr=log))
            socks.append(sock)
            end = time.monotonic() + 30
            while subprocess.run([os.path.join(BUILD, "awaitctl"), "-s", sock, "ping"],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > end or procs[-1].poll() is not None:
                    return {"bench": "w5_pg", "impl": "awaitd", "daemons": k,
                            "error": "daemon %d did not start" % i}
                time.sleep(0.05)
        t0 = time.monotonic()
        bulk = subprocess.Popen([os.path.join(BUILD, "awaitctl"), "-s", socks[0], "--json", "run",
                                 "bulk", json.dumps({"n": N, "workers": int(os.environ.get("W5_W", C))})],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done, t_enq = 0, None
        while done < N + 1:
            if time.monotonic() - t0 > 600:
                return {"bench": "w5_pg", "impl": "awaitd", "daemons": k,
                        "error": "%d of %d done after 600 s" % (done, N)}
            if t_enq is None and bulk.poll() is not None:
                t_enq = time.monotonic()
            done = int(pg.psql("SELECT count(*) FROM jobs WHERE state = 'succeeded'",
                               db="w5_%d" % k)[0])
            time.sleep(0.05)
        total = (time.monotonic() - t0) * 1000
        out = bulk.communicate()[0]
        enq = None
        try:
            enq = json.loads(out.strip().splitlines()[-1]).get("enqueue_ms")
        except (ValueError, IndexError, AttributeError):
            pass
        ran = pg.psql("SELECT epoch, count(*) FROM jobs WHERE name = 'noop' GROUP BY epoch"
                      " ORDER BY epoch", db="w5_%d" % k)
        return {"bench": "w5_pg", "impl": "awaitd", "daemons": k, "n": N, "concurrency": C,
                "total_ms": round(total), "per_s": round(N / total * 1000),
                "enqueue_ms": enq, "jobs_by_node": [int(r.split("|")[1]) for r in ran]}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def run_graphile(pg):
    script = os.path.join(PEERS, "node", "graphile_jobs.mjs")
    if not shutil.which("node") or not shutil.which("npm"):
        return {"bench": "w5_pg", "impl": "graphile-worker", "skipped": "node/npm not installed"}
    if not os.path.exists(script):
        return {"bench": "w5_pg", "impl": "graphile-worker", "skipped": "no " + script}
    mod = os.path.join(NODE_DIR, "node_modules", "graphile-worker", "package.json")
    if not os.path.exists(mod):
        os.makedirs(NODE_DIR, exist_ok=True)
        if not os.path.exists(os.path.join(NODE_DIR, "package.json")):
            shutil.copy(os.path.join(PEERS, "node", "package.json"), NODE_DIR)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "graphile-worker@0.18"],
                       cwd=NODE_DIR, stdout=sys.stderr, stderr=sys.stderr, timeout=600)
    if not os.path.exists(mod):
        return {"bench": "w5_pg", "impl": "graphile-worker",
                "skipped": "graphile-worker could not be installed in " + NODE_DIR}
    shutil.copy(script, os.path.join(NODE_DIR, "graphile_jobs.mjs"))
    uri = "postgres:///w5_graphile?host=%s&port=%d&user=postgres" % (pg.sockdir, pg.port)
    fresh_db(pg, "w5_graphile")
    r = subprocess.run(["node", "graphile_jobs.mjs", str(N), str(C)], cwd=NODE_DIR,
                       env=dict(os.environ, DATABASE_URL=uri), capture_output=True, text=True,
                       timeout=900)
    line = next((x for x in r.stdout.splitlines() if x.startswith("{")), None)
    if r.returncode != 0 or not line:
        return {"bench": "w5_pg", "impl": "graphile-worker",
                "error": "exit %d: %s" % (r.returncode, r.stderr.strip()[-300:])}
    v = json.loads(line)
    with open(os.path.join(NODE_DIR, "node_modules", "graphile-worker", "package.json")) as f:
        version = json.load(f).get("version")
    return {"bench": "w5_pg", "impl": "graphile-worker", "version": version, "n": N,
            "concurrency": C, "total_ms": v.get("total_ms"), "per_s": v.get("per_s")}


def main():
    build()
    tmp = tempfile.mkdtemp(prefix="awaitd-w5pg-")
    pg = PgServer().start()
    try:
        results = {}
        for k in (1, 2, 3):
            line = run_awaitd(pg, k, tmp)
            emit(line)
            results[k] = line.get("per_s")
        g = run_graphile(pg)
        emit(g)
        scales = [results.get(k) for k in (1, 2, 3)]
        summary = {"bench": "w5_pg", "workload": "W5 jobs on PostgreSQL", "scales": scales,
                   "never_lower": all(scales) and all(scales[i] >= scales[i - 1] * 0.95
                                                      for i in (1, 2)),
                   "cores": os.cpu_count()}
        if g.get("per_s") and results.get(1):
            summary.update(ratio_1_daemon_vs_graphile=round(results[1] / g["per_s"], 2),
                           target=1, met=results[1] >= g["per_s"])
        emit(summary)
    finally:
        pg.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
