/*
 * humanfmt.h: numbers as a person reads them: durations ("340ms", "1.2s",
 * "2m05s"), ages ("3m ago"), local times ("2024-05-01 14:00:00") and sizes
 * ("12 MiB"). One set of helpers for every human table of awaitctl and for
 * the daemon's messages; --json output never goes through here.
 *
 * Each writes into a caller's buffer (cut to len, always terminated when
 * len > 0) and returns it. A value that cannot be shown (negative where a
 * duration is due, NaN, a time out of range) becomes "-", so a table cell
 * is never a misleading number. HUMANFMT_LEN is enough for any of them.
 */
#ifndef AWAITD_HUMANFMT_H
#define AWAITD_HUMANFMT_H

#include <stddef.h>
#include <stdint.h>

#define HUMANFMT_LEN 32 /* bytes: room for any result, terminator included */

/*
 * ms as a duration: "0ms", "<0.1ms", "0.3ms", "9.9ms", "340ms", "1.2s",
 * "30s", "59.9s", "1m00s", "3h10m", "2d04h"; "-" when negative, not finite or over 1e15.
 * Below 10 ms one decimal, up to a minute seconds with one decimal (a
 * trailing ".0" dropped), then whole units.
 */
const char *humanfmt_duration(double ms, char *buf, size_t len);

/*
 * How long before now_ms epoch ms t was: "now" (under a second), "3s ago",
 * "2m ago", "4h ago", "2d ago"; a future t as "in 5s"; "-" when NaN.
 */
const char *humanfmt_age(double t, double now_ms, char *buf, size_t len);

/* Epoch ms t as local time "YYYY-MM-DD HH:MM:SS"; "-" when negative, NaN or out of range. */
const char *humanfmt_time(double t, char *buf, size_t len);

/*
 * bytes as a size in binary units: "0 B", "1023 B", "1.0 KiB", "1.5 KiB",
 * "12 MiB", "2.0 GiB", up to "16 EiB": one decimal below 10 of a unit,
 * whole numbers above.
 */
const char *humanfmt_bytes(uint64_t bytes, char *buf, size_t len);

#endif
