-- raise_early.lua: the root raises before its first suspension: the same
-- as after one (exit 1, message and traceback on stderr).
error("early kaboom")
