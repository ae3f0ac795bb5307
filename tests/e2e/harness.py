"""tests/e2e/harness.py: what the end-to-end scripts share.

Each script is run as `python3 tests/e2e/test_X.py AWAITD AWAITCTL SCRIPTS`
(tests/CMakeLists.txt). AWAITD_E2E_WRAP="valgrind ..." runs every daemon
under that wrapper; SLOW then stretches the deadlines. check() prints one
line per check; finish() prints "N passed, M failed" and exits 1 if any
check failed.
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

AWAITD, AWAITCTL, SCRIPTS = (os.path.abspath(a) for a in sys.argv[1:4])
# AWAITD_E2E_STORE=pg: each Daemon made without a db gets a fresh database on
# a PostgreSQL server of the test's own (pgserver.py) instead of a SQLite file
STORE = os.environ.get("AWAITD_E2E_STORE", "sqlite")
MIGRATIONS = os.path.join(os.path.dirname(SCRIPTS), "migrations")
WRAP = os.environ.get("AWAITD_E2E_WRAP", "").split()
SLOW = 20 if WRAP else 1  # deadlines stretch under valgrind
_counts = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        _counts["passed"] += 1
        print("ok   " + name, flush=True)
    else:
        _counts["failed"] += 1
        print("FAIL " + name + (": " + str(detail)[-3000:] if detail else ""), flush=True)


def skip(name, why):
    print("skip %s (%s)" % (name, why), flush=True)


def poll(cond, deadline, step=0.02):
    """cond() until truthy or deadline seconds (times SLOW) pass; its last value."""
    end = time.monotonic() + deadline * SLOW
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def rpc(sock, req, timeout=30.0):
    """One request on a connection of its own, in the wire protocol: the
    response, or None when the daemon is down or answered no line."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout * SLOW)
        s.connect(sock)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            b = s.recv(1 << 20)
            if not b:
                return None
            buf += b
        s.close()
        return json.loads(buf.split(b"\n")[0])
    except (OSError, ValueError):
        return None


def rpc_many(sock, reqs, timeout=120.0):
    """Many requests pipelined on one connection: the responses by request id
    (requests get ids 1..n in order), or None when the daemon went away."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout * SLOW)
        s.connect(sock)
        out, buf = {}, b""

        def drain():
            nonlocal buf
            b = s.recv(1 << 20)
            if not b:
                raise OSError("closed")
            buf += b
            *lines, buf = buf.split(b"\n")
            for line in lines:
                v = json.loads(line)
                if "event" not in v:
                    out[v.get("id")] = v

        for i, r in enumerate(reqs, 1):
            s.sendall((json.dumps(dict(r, id=i)) + "\n").encode())
            if i - len(out) > 256:  # a window, so neither side's buffers fill
                drain()
        while len(out) < len(reqs):
            drain()
        s.close()
        return out
    except (OSError, ValueError):
        return None


def make_root(prefix, files, conf="", lib=False):
    """A fresh directory for a Daemon: the repo's migrations, awaitd.conf holding
    conf, scripts/lib copied from the repo when lib, and files ({path under the
    root: text}, e.g. "scripts/x.lua" or "migrations/0100_x.sql"). Its path."""
    root = tempfile.mkdtemp(prefix=prefix)
    os.mkdir(os.path.join(root, "scripts"))
    if lib:
        shutil.copytree(os.path.join(SCRIPTS, "lib"), os.path.join(root, "scripts", "lib"))
    shutil.copytree(MIGRATIONS, os.path.join(root, "migrations"))
    files = dict(files, **{"awaitd.conf": conf})
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return root


_pg = {"server": None, "n": 0}


def pg_server():
    """The PostgreSQL server of this test run (started once, stopped at exit)."""
    if _pg["server"] is None:
        from pgserver import PgServer
        _pg["server"] = PgServer().start()
        atexit.register(_pg["server"].close)
    return _pg["server"]


def fresh_db(root):
    """Where a new Daemon keeps its jobs: ROOT/awaitd.db, or with
    AWAITD_E2E_STORE=pg a new, empty PostgreSQL database (its URI)."""
    if STORE != "pg":
        return os.path.join(root, "awaitd.db")
    pg = pg_server()
    _pg["n"] += 1
    name = "t%d" % _pg["n"]
    pg.psql("CREATE DATABASE %s" % name, db="postgres")
    return pg.uri_of(name)


def db_rows(db, q, *args):
    """The rows of q (`?` parameters) read from a daemon's database db (a
    SQLite file or a PostgreSQL URI) directly, as tuples; on PostgreSQL
    integers come back as ints, NULL as None and the rest as text (the
    parameters are put in as literals: no `?` in the SQL's own strings)."""
    if not db.startswith("postgresql://"):
        import sqlite3
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            return con.execute(q, args).fetchall()
        finally:
            con.close()
    lits = iter("'%s'" % str(a).replace("'", "''") if isinstance(a, str) else str(int(a))
                for a in args)
    text = re.sub(r"\?", lambda m: next(lits), q)
    dbname = db.split("?")[0].rsplit("/", 1)[1]
    return [tuple(int(v) if v is not None and re.fullmatch(r"-?\d+", v) else v for v in row)
            for row in pg_server().rows(text, db=dbname)]


def only_sqlite(name):
    """True when the store is SQLite; else the check is told as skipped
    (it reads the SQLite file itself, or tests what only SQLite has)."""
    if STORE == "sqlite":
        return True
    skip(name, "SQLite only")
    return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def finish():
    print("%d passed, %d failed" % (_counts["passed"], _counts["failed"]))
    sys.exit(1 if _counts["failed"] else 0)


def run(main):
    """A test script's entry: its checks, then the count and the exit status."""
    main()
    finish()


class Ctl:
    """awaitctl on self.sock: what every e2e daemon wrapper shares."""

    def ctl(self, *args, timeout=60):
        """(rc, stdout, stderr) of the real awaitctl; rc -1 when it did not
        answer within timeout seconds (times SLOW)."""
        try:
            r = subprocess.run([AWAITCTL, "-s", self.sock] + [str(a) for a in args],
                               capture_output=True, text=True, errors="replace",
                               timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            return -1, "", "awaitctl timed out"
        return r.returncode, r.stdout, r.stderr

    def cjson(self, *args, timeout=60):
        """(rc, the last line of --json output decoded or None, stdout + stderr)."""
        rc, out, err = self.ctl("--json", *args, timeout=timeout)
        try:
            v = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
        except ValueError:
            v = None
        return rc, v, out + err


class Daemon(Ctl):
    """A daemon on ROOT/{awaitd.conf,scripts,migrations}, socket ROOT/s, db ROOT/awaitd.db."""

    def __init__(self, root, db=None, sock="s"):
        self.dir = root
        self.sock = os.path.join(root, sock)
        self.db = db or fresh_db(root)
        self.log = open(os.path.join(root, "log"), "a+")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            WRAP + [AWAITD, "-c", os.path.join(self.dir, "awaitd.conf"), "--scripts",
                    os.path.join(self.dir, "scripts"), "--db", self.db, "--migrations",
                    os.path.join(self.dir, "migrations"), "--socket", self.sock],
            stdout=self.log, stderr=self.log)
        end = time.monotonic() + 10 * SLOW
        while time.monotonic() < end and self.proc.poll() is None:
            if self.ctl("ping")[0] == 0:
                return True
            time.sleep(0.02)
        return False


    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(30 * SLOW)
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Whatever happened: the daemon killed, its directory removed."""
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, q, *args):
        return db_rows(self.db, q, *args)

    def logtext(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()
        return False
