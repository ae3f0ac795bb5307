"""tests/e2e/pgserver.py: a real PostgreSQL server of the tests' own.

    with PgServer() as pg:          # initdb + pg_ctl start in a temp folder
        pg.uri                      # postgresql://postgres@/awaitd?host=DIR&port=P
        pg.psql("SELECT 1")         # the rows, as text lines
        pg.restart()                # pg_ctl restart (-m fast)

The cluster lives in a temporary folder with its own socket folder and port
(no TCP: listen_addresses is empty, the port only names the socket), and is
stopped and removed at the end. initdb refuses to run as root, so as root the
server runs as the `postgres` system user (Debian's postgresql package makes
it). From a shell:

    python3 tests/e2e/pgserver.py        # starts one, prints its URI, waits for ^C
"""
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import time


def pg_bindir():
    """The folder of initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    for d in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


class PgServer:
    def __init__(self, dbname="awaitd", options=""):
        self.bindir = pg_bindir()
        if not self.bindir:
            raise RuntimeError("PostgreSQL is not installed (initdb not found): run .ci/deps")
        self.dbname = dbname
        self.options = options  # more server settings, "-c name=value ..."
        self.root = tempfile.mkdtemp(prefix="awaitd-pg-")
        os.chmod(self.root, 0o755)
        self.data = os.path.join(self.root, "data")
        self.sockdir = os.path.join(self.root, "run")
        self.logpath = os.path.join(self.root, "server.log")
        self.port = random.randint(20000, 60000)
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
        os.mkdir(self.sockdir)
        open(self.logpath, "a").close()
        if self.user:
            for p in (self.root, self.sockdir, self.logpath):
                os.chown(p, self.user.pw_uid, self.user.pw_gid)
        self.uri = self.uri_of(dbname)
        self.running = False

    def uri_of(self, dbname):
        """The URI of database dbname on this server."""
        return "postgresql://postgres@/%s?host=%s&port=%d" % (dbname, self.sockdir, self.port)

    def _as_pg(self, argv, **kw):
        if self.user:
            argv = ["setpriv", "--reuid=%d" % self.user.pw_uid, "--regid=%d" % self.user.pw_gid,
                    "--init-groups"] + argv
        return subprocess.run(argv, cwd=self.root, capture_output=True, text=True, **kw)

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    def start(self):
        if not os.path.exists(self.data):
            r = self._as_pg([self._bin("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust",
                             "-E", "UTF8", "--locale=C", "--no-sync"])
            if r.returncode != 0:
                raise RuntimeError("initdb failed: " + r.stderr + r.stdout)
        opts = "-p %d -k %s -c listen_addresses='' -c fsync=on -c max_connections=200 %s" % (
            self.port, self.sockdir, self.options)
        r = self._as_pg([self._bin("pg_ctl"), "-D", self.data, "-l", self.logpath, "-o", opts,
                         "-w", "-t", "60", "start"])
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s%s\n%s" % (r.stderr, r.stdout, self.log()))
        self.running = True
        if self.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % self.dbname,
                     db="postgres") != ["1"]:
            self.psql("CREATE DATABASE %s" % self.dbname, db="postgres")
        return self

    def stop(self, mode="fast"):
        if self.running:
            self._as_pg([self._bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"])
            self.running = False

    def restart(self):
        self.stop()
        self.start()

    def psql(self, sql, db=None):
        """Run sql with psql; the rows as lines (fields joined by |). Raises on error."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", db or self.dbname, "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("psql: %s: %s" % (sql[:200], r.stderr.strip()))
        return [line for line in r.stdout.split("\n") if line]

    def rows(self, sql, db=None):
        """The rows of sql as tuples of text (None for NULL): fields and rows split
        by control characters, so text holding | or newlines comes back whole."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-F", "\x1f", "-R", "\x1e", "-P", "null=\x1d",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", db or self.dbname, "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("psql: %s: %s" % (sql[:200], r.stderr.strip()))
        out = r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout
        return [tuple(None if v == "\x1d" else v for v in row.split("\x1f"))
                for row in out.split("\x1e") if out]

    def log(self):
        try:
            with open(self.logpath) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def start_for_test(check, skip, what):
    """A started PgServer, or None with the failure told by check (skip names why)."""
    try:
        return PgServer().start()
    except (RuntimeError, KeyError, OSError) as e:
        skip("%s: a PostgreSQL server of the test's own" % what, e)
        check("%s: a PostgreSQL server starts (.ci/deps installs postgresql)" % what, False, e)
        return None


if __name__ == "__main__":
    with PgServer() as pg:
        print(pg.uri, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    sys.exit(0)
