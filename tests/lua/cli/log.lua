-- The log module: levels, formatting, the task tag, and --log-level.
log.info("plain %s and %d", "text", 42)
async.spawn(function() log.warn("from a child") end):await()
log.debug("hidden at info")
log.error("no format args: %s stays")
