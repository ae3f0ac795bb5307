"""tests/docs/config_keys.py: the configuration keys, read from the source.

config_keys(SRC) parses the keys[] table of daemon/service/config.c, so a
key added there without documentation fails the docs tests.
"""
import os
import re

CONFIG_C = os.path.join("daemon", "service", "config.c")


def config_keys(src):
    with open(os.path.join(src, CONFIG_C), encoding="utf-8") as f:
        table = re.search(r"keys\[\]\s*=\s*\{(.*?)\n\};", f.read(), re.S)
    return re.findall(r'KEY\("([a-z0-9_]+)"', table.group(1)) if table else []
