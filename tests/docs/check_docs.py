"""tests/docs/check_docs.py: the reference docs stay inside the repository and complete.

Usage: python3 tests/docs/check_docs.py SOURCE_DIR

- Every link in README.md and docs/*.md ([text](target), [text]: target,
  <a href>) is either an in-page anchor or a relative path to a file or
  folder that exists in the repository; none leaves it (no absolute path,
  no ../ past the root), and none is an http(s) link: the project's own
  reference ships with it.
- docs/configuration.md documents every key of daemon/service/config.c's keys[]
  (parsed from the source, so a key added without docs fails here), and
  etc/awaitd.conf sets every one of them.
"""
import glob
import os
import re

SECRETS = {"http_token"}  # keys etc/awaitd.conf shows commented out
import sys

from config_keys import config_keys

SRC = os.path.realpath(sys.argv[1])
failures = []
passed = 0
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HREF = re.compile(r"""<a\s[^>]*href\s*=\s*["']([^"']+)["']""", re.I)
FENCE = re.compile(r"^(```+|~~~+)")


def check(where, cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append("%s: %s" % (where, what))
        print("FAIL %s: %s" % (where, what), flush=True)


def links(path):
    """(line, target) of every link outside code blocks and code spans."""
    out, fence = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line.strip())
            if m:
                if fence is None:
                    fence = m.group(1)
                elif line.strip().startswith(fence):
                    fence = None
                continue
            if fence is not None:
                continue
            text = re.sub(r"`[^`]*`", "", line)
            for rx in (LINK, HREF):
                out += [(n, t) for t in rx.findall(text)]
            m = REFDEF.match(text)
            if m:
                out.append((n, m.group(1)))
    return out


def check_links(path):
    rel = os.path.relpath(path, SRC)
    for n, target in links(path):
        where = "%s:%d" % (rel, n)
        if target.startswith("#"):
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            check(where, False, "link %s leaves the repository: the docs link only to files "
                  "inside it" % target)
            continue
        file = target.split("#", 1)[0]
        if file.startswith("/"):
            check(where, False, "link %s is an absolute path" % target)
            continue
        full = os.path.realpath(os.path.join(os.path.dirname(path), file))
        inside = full == SRC or full.startswith(SRC + os.sep)
        check(where, inside, "link %s points outside the repository" % target)
        if inside:
            check(where, os.path.exists(full), "link %s: no such file in the repository" % target)


def main():
    docs = [os.path.join(SRC, "README.md")] + sorted(glob.glob(os.path.join(SRC, "docs", "*.md")))
    for path in docs:
        check_links(path)
    keys = config_keys(SRC)
    check("daemon/service/config.c", len(keys) >= 10, "cannot find the keys[] table (found %r)" % keys)
    with open(os.path.join(SRC, "docs", "configuration.md"), encoding="utf-8") as f:
        conf_doc = f.read()
    with open(os.path.join(SRC, "etc", "awaitd.conf"), encoding="utf-8") as f:
        conf = f.read()
    for k in keys:
        check("docs/configuration.md", re.search(r"^#+ `%s`" % re.escape(k), conf_doc, re.M),
              "key %s of daemon/service/config.c has no '### `%s`' section" % (k, k))
        # a secret has no value to show: its line is there, commented out
        check("etc/awaitd.conf", re.search(r"^%s%s\s*=" % ("# " if k in SECRETS else "",
                                                         re.escape(k)), conf, re.M),
              "key %s of daemon/service/config.c is not in etc/awaitd.conf" % k)
    print("%d passed, %d failed" % (passed, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
