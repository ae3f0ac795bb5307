/*
 * notify.h: the systemd notification protocol (sd_notify), reimplemented.
 *
 * A notification is one datagram of "KEY=VALUE" lines sent to the unix
 * socket named by $NOTIFY_SOCKET. When that variable is unset the daemon
 * is not under a Type=notify service and every call is a successful no-op
 * returning 0, so callers need no "are we under systemd" test of their own.
 * Nothing here keeps state: each call reads the environment, opens one
 * socket, sends, and closes it.
 */
#ifndef AWAITD_NOTIFY_H
#define AWAITD_NOTIFY_H

#include <stdint.h>

/*
 * Send one notification ("READY=1", "STATUS=...", "RELOADING=1\nMONOTONIC_USEC=...",
 * "STOPPING=1", "WATCHDOG=1") as a datagram to $NOTIFY_SOCKET: an absolute
 * path, or an abstract socket when it starts with '@'.
 *
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or empty (not under
 * systemd), -1 on error with errno set: EINVAL for a NULL state or a bare
 * "@", EAFNOSUPPORT for a NOTIFY_SOCKET that is neither a path nor '@'
 * (e.g. a relative path), ENAMETOOLONG when it does not fit sun_path,
 * ECONNREFUSED/ENOENT when nothing listens there, EAGAIN when the receiver's
 * queue is full. Never blocks the loop (MSG_DONTWAIT on a
 * SOCK_DGRAM|SOCK_CLOEXEC socket) and never raises SIGPIPE (MSG_NOSIGNAL).
 */
int notify_send(const char *state);

/*
 * printf-style notify_send: fmt formats the whole state, so a status line
 * is notify_sendf("STATUS=%d jobs running", n). Same returns as notify_send,
 * plus -1 with ENOMEM when a long message cannot be allocated. Formats
 * nothing when NOTIFY_SOCKET is unset.
 */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval from $WATCHDOG_USEC, honouring $WATCHDOG_PID when
 * set (only if it equals getpid()). Returns 1 and sets *usec when enabled;
 * 0 otherwise (unset, unparsable, zero, or another pid's), leaving *usec
 * untouched. The variables are left in the environment. Send "WATCHDOG=1"
 * at least every usec / 2 microseconds.
 */
int notify_watchdog_usec(uint64_t *usec);

/*
 * Send "RELOADING=1\nMONOTONIC_USEC=<now>" (CLOCK_MONOTONIC, in us) as
 * systemd's Type=notify-reload expects; send "READY=1" when the reload is
 * over. Same returns as notify_send.
 */
int notify_reloading(void);

#endif
