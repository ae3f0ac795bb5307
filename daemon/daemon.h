/*
 * daemon.h: the long-running awaitd: its state, shared by main's wiring
 * (daemon.c) and the control commands (cmd-*.c).
 *
 * Life: daemon_main builds the loop, the scheduler, the scripts and the
 * control server, tells systemd READY=1 and dispatches. SIGTERM (or the
 * shutdown command) drains: the listener closes, running jobs get
 * cfg.shutdown_timeout_ms to finish, then are cancelled; the loop ends and
 * the process exits 0. SIGHUP (or reload, or a file change) reloads the
 * scripts.
 */
#ifndef AWAITD_DAEMON_H
#define AWAITD_DAEMON_H

#include <stdint.h>

#include "config.h"
#include "scripts.h"

struct event;
struct event_base;
struct sched;
struct server;
struct conn;

/* Lines kept for `awaitctl logs`. */
#define DAEMON_LOG_LINES 1000

struct daemon_follower {
	struct conn *conn;
	int64_t id;
	struct daemon_follower *next;
};

struct daemon {
	struct config cfg;
	struct event_base *base;
	struct sched *s;
	struct scripts scripts;
	struct server *srv;
	int listen_fd;
	int socket_owned;    /* we created the socket file (not socket activation) */
	double started;      /* s, wall clock */
	double started_mono; /* ms, monotonic */
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *watchdog; /* WATCHDOG=1 when systemd asks for it */
	struct event *drain_timer;
	struct event *reload_timer; /* debounces file-change reloads */
	struct event *inotify_ev;
	int inotify_fd;
	int draining;
	double drain_started; /* ms, monotonic */
	int run_ref;          /* registry ref: the job runner (jobrun.lua) */
	size_t runs_active;
	uint64_t runs_done;
	uint64_t runs_failed;
	uint64_t reloads;
	char *logs[DAEMON_LOG_LINES]; /* ring of recent log lines */
	size_t log_head;              /* next slot to write */
	size_t log_count;
	struct daemon_follower *followers; /* `logs -f` connections */
};

/* `awaitd [-c CONFIG] [--scripts DIR] [--db PATH] [--socket PATH] [--log-level L]` */
int daemon_main(int argc, char **argv);

/* `awaitd check [-c CONFIG] ...`: config and every script; exit 0/1. */
int daemon_check_main(int argc, char **argv);

/* Reload the scripts, telling systemd; returns the number that failed. */
int daemon_reload(struct daemon *d, const char *why);

/* Begin the graceful stop (idempotent). */
void daemon_drain(struct daemon *d, const char *why);

/* Wall-clock seconds. */
double daemon_wall(void);

#endif
