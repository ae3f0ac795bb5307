-- busy.lua: the root never suspends: with --max-slice-ms it fails with
-- blocked_loop (exit 1, the code on stderr).
while true do end
