/*
 * listen.h: the listening side of the control socket.
 *
 * The daemon either adopts the socket systemd passes it (socket activation,
 * sd_listen_fds(3)'s protocol, reimplemented) or creates its own at a path;
 * each accepted connection is then checked with SO_PEERCRED. Every fd
 * returned here is a listening AF_UNIX SOCK_STREAM socket, non-blocking and
 * close-on-exec, owned by the caller (close it; unlink the path it made).
 * Errors are written into the caller's err buffer (errlen bytes, may be
 * NULL when errlen is 0), naming what failed and with what.
 */
#ifndef AWAITD_LISTEN_H
#define AWAITD_LISTEN_H

#include <stddef.h>

/* The first fd systemd passes (SD_LISTEN_FDS_START). */
#define LISTEN_FDS_START 3

/*
 * Socket activation: when $LISTEN_PID equals getpid() and $LISTEN_FDS >= 1,
 * take fd 3, check that it is a listening AF_UNIX SOCK_STREAM socket, make
 * it non-blocking and close-on-exec, and return it.
 *
 * Returns -2 when not socket-activated (LISTEN_PID unset or another pid's,
 * LISTEN_FDS unset or 0); -1 with err filled when the variables are garbled
 * or fd 3 is unusable (not open, not a socket, not a stream, not listening,
 * not AF_UNIX), in which case fd 3 is left as it was; or the fd (3).
 *
 * Whatever the outcome, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
 * removed from the environment so that children never take them for
 * theirs. Only the first fd is used: when LISTEN_FDS is more than 1 the
 * others (4, 5, ...) are left open and untouched, since the unit file names
 * one socket and closing fds we did not expect could hit something else.
 */
int listen_activated(char *err, size_t errlen);

/*
 * Create, bind and listen on a unix stream socket at path with the given
 * mode (applied with chmod after bind and before listen, so no client can
 * connect before the mode holds; e.g. 0660), non-blocking and close-on-exec,
 * backlog 128.
 *
 * A stale socket file left by a crashed daemon (connect() gets
 * ECONNREFUSED) is unlinked and replaced. A live one (connect() succeeds,
 * or its backlog is full) is never stolen: -1 with "another awaitd is
 * listening on PATH". A path that exists and is not a socket is never
 * removed: -1 naming it. A path longer than sun_path allows: -1 naming the
 * limit. Returns the fd, or -1 with err filled; on failure no file is left
 * behind that was not there before.
 */
int listen_unix(const char *path, int mode, char *err, size_t errlen);

/*
 * SO_PEERCRED check for an accepted connection fd: allowed when the peer
 * is root, has the daemon's effective uid, or has the daemon's effective
 * gid or allow_gid (the socket file's group; -1 for none) as its primary
 * group or, where the kernel reports them (SO_PEERGROUPS, Linux 4.13+),
 * as a supplementary group: a user admitted to a 0660 socket by group
 * membership is usually a supplementary member.
 *
 * Returns 1 allowed, 0 refused (with the peer's pid, uid and gid in err for
 * the log), -1 when the credentials cannot be read (err says why).
 */
int listen_peer_allowed(int fd, int allow_gid, char *err, size_t errlen);

#endif
