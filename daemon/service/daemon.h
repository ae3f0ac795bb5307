/*
 * daemon.h: the long-running awaitd: its state, shared by main's wiring
 * (daemon.c) and the control commands (cmd-*.c).
 *
 * Life: daemon_main builds the loop, the scheduler, the store (migrations,
 * new epoch, orphans requeued), the scripts, the job engine and the
 * control server, tells systemd READY=1 and dispatches. SIGTERM (or the
 * shutdown command) drains: the listener closes, no job is claimed,
 * running jobs get cfg.shutdown_timeout_ms to finish, then are cancelled
 * and requeued; the loop ends and
 * the process exits 0. SIGHUP (or reload, or a file change) reloads the
 * scripts.
 *
 * Part service (daemon/service/): main (wiring only), the daemon's life,
 * config, systemd notify, and `awaitd run`. It may call every other part;
 * nothing calls it.
 */
#ifndef AWAITD_DAEMON_H
#define AWAITD_DAEMON_H

#include <stdint.h>

#include "cmd.h"
#include "config.h"
#include "logbook.h"
#include "scripts.h"

struct event;
struct event_base;
struct sched;
struct server;
struct conn;
struct store;
struct jobs;
struct jobs_env;
struct worker_pool;
struct web;
struct loopwatch;

#define LOOPWATCH_MS 100 /* the lag probe's period */

struct daemon {
	struct config cfg;
	char db_shown[1024]; /* cfg.db_path as logs and status show it (no password) */
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
	double drain_started;        /* ms, monotonic */
	struct store *st;            /* the database */
	struct jobs *jobs;           /* the job engine */
	struct worker_pool *workers; /* async.worker's threads */
	struct web *web;             /* the HTTP front end, when http_listen is set */
	struct loopwatch *loop;      /* the loop's lag, every LOOPWATCH_MS */
	int64_t orphans; /* jobs requeued at start-up: an older epoch left them running */
	uint64_t reloads;
	struct logbook logs; /* recent lines, `logs -f` followers */
	struct cmd_env cmd;  /* what the control commands get */
};

/* `awaitd [-c CONFIG] [--scripts DIR] [--db PATH] [--socket PATH] [--log-level L]` */
int daemon_main(int argc, char **argv);

/* `awaitd check [-c CONFIG] ...`: config and every script; exit 0/1. */
int daemon_check_main(int argc, char **argv);

/* Reload the scripts, telling systemd; returns the number that failed. */
int daemon_reload(struct daemon *d, const char *why);

/* Begin the graceful stop (idempotent). */
void daemon_drain(struct daemon *d, const char *why);

/* `awaitd migrate [-c CONFIG] [--db PATH] ...`: apply migrations; exit 0/1. */
int daemon_migrate_main(int argc, char **argv);

/* What the control commands get: d's parts, limits, reload and drain. */
void daemon_cmd_env(struct daemon *d, struct cmd_env *env);

/* What the job engine runs on: d's loop, scheduler, scripts and limits. */
void daemon_jobs_env(struct daemon *d, struct jobs_env *env);

#endif
