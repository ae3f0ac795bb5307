/*
 * daemon.c: wiring of the long-running awaitd (see daemon.h): command
 * line and config, loop and scheduler, scripts, control server, signals,
 * systemd notifications, file-change reloads, and the drain at SIGTERM.
 * Decisions live in the modules; this file only connects them.
 */
#define _GNU_SOURCE /* inotify */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "clock.h"
#include "cmd.h"
#include "daemon.h"
#include "jobs.h"
#include "listen.h"
#include "log.h"
#include "loopwatch.h"
#include "humanfmt.h"
#include "memcap.h"
#include "modules.h"
#include "notify.h"
#include "sched.h"
#include "server.h"
#include "store.h"
#include "web.h"
#include "worker.h"
#include "task.h"

#define RELOAD_DEBOUNCE_MS 200 /* editors write a file in several steps */
#define DRAIN_POLL_MS      20

static int cmd_reload_cb(void *svc, const char *why)
{
	return daemon_reload(svc, why);
}

static void cmd_drain_cb(void *svc, const char *why)
{
	daemon_drain(svc, why);
}

/* The worker pool's figures for `status` and `stats`. */
static json_t *cmd_workers_cb(void *svc)
{
	return worker_pool_json(((struct daemon *)svc)->workers);
}

void daemon_cmd_env(struct daemon *d, struct cmd_env *env)
{
	memset(env, 0, sizeof *env);
	env->base = d->base;
	env->s = d->s;
	env->st = d->st;
	env->jobs = d->jobs;
	env->scripts = &d->scripts;
	env->srv = d->srv;
	env->logs = &d->logs;
	env->db_path = store_path_shown(d->cfg.db_path, d->db_shown, sizeof d->db_shown);
	env->output_cap = d->cfg.output_cap;
	env->started_mono = d->started_mono;
	env->draining = &d->draining;
	env->reloads = &d->reloads;
	env->reload = cmd_reload_cb;
	env->drain = cmd_drain_cb;
	env->workers = cmd_workers_cb;
	env->loop = d->loop;
	env->svc = d;
}

void daemon_jobs_env(struct daemon *d, struct jobs_env *env)
{
	env->base = d->base;
	env->s = d->s;
	env->scripts = &d->scripts;
	env->keep_jobs_ms = d->cfg.keep_jobs_ms;
	env->max_result_bytes = d->cfg.max_result_bytes;
	env->max_args_bytes = d->cfg.max_args_bytes;
}

static struct timeval tv_ms(double ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)fmod(ms * 1000, 1e6);
	return tv;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: awaitd [-c CONFIG] [--scripts DIR] [--db PATH] [--migrations DIR] "
	             "[--socket PATH] [--log-level LEVEL]\n"
	             "       awaitd check [-c CONFIG] [--scripts DIR] ...\n"
	             "       awaitd migrate [-c CONFIG] [--db PATH] [--migrations DIR]\n"
	             "       awaitd run FILE.lua [ARGS_JSON]\n"
	             "       awaitd --version\n");
}

/*
 * Command line into cfg: -c loads a file first, then flags override.
 * Returns 0, or 2 (usage) after printing why.
 */
static int parse_args(struct config *cfg, int argc, char **argv)
{
	static const struct {
		const char *flag, *key;
	} flags[] = {{"--scripts", "scripts_dir"},       {"--db", "db_path"},
	             {"--migrations", "migrations_dir"}, {"--socket", "socket_path"},
	             {"--http", "http_listen"},          {"--log-level", "log_level"}};
	char err[512];
	int i;

	for (i = 1; i < argc; i++) /* the file first, whatever the order */
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc && config_load(cfg, argv[i + 1], err, sizeof err) < 0) {
			fprintf(stderr, "awaitd: %s\n", err);
			return 2;
		}
	for (i = 1; i < argc; i++) {
		size_t f;
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (++i >= argc)
				goto bad;
			continue;
		}
		for (f = 0; f < sizeof flags / sizeof flags[0]; f++)
			if (strcmp(argv[i], flags[f].flag) == 0)
				break;
		if (f == sizeof flags / sizeof flags[0] || i + 1 >= argc)
			goto bad;
		if (config_set(cfg, flags[f].key, argv[++i], err, sizeof err) < 0) {
			fprintf(stderr, "awaitd: %s: %s\n", flags[f].flag, err);
			return 2;
		}
	}
	return 0;
bad:
	fprintf(stderr, "awaitd: unexpected argument '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}

static void store_cfg(const struct config *cfg, struct store_config *sc)
{
	store_config_defaults(sc);
	sc->path = cfg->db_path;
	sc->migrations_dir = cfg->migrations_dir;
	sc->synchronous = cfg->synchronous;
	sc->tx_timeout_ms = cfg->tx_timeout_ms;
	sc->max_statement_ms = cfg->max_statement_ms;
	sc->loop_statement_ms = cfg->max_slice_ms;
}

static void sched_cfg(const struct config *cfg, struct sched_config *sc)
{
	sched_config_defaults(sc);
	sc->max_slice_ms = cfg->max_slice_ms;
	sc->max_memory = cfg->max_memory;
	sc->cancel_grace_ms = cfg->cancel_grace_ms;
}

/*
 * `awaitd check` names the memory cap in effect, so that the machine's
 * default (memcap.h) is visible: "max_memory_mb = 4096 (default: ...)".
 */
static void print_memory_cap(const struct config *cfg)
{
	char phys[32];
	size_t def = memcap_default();

	printf("max_memory_mb = %g", (double)cfg->max_memory / (1024.0 * 1024.0));
	if (cfg->max_memory == 0)
		printf(" (no cap)\n");
	else if (cfg->max_memory == def)
		printf(" (default: a quarter of %s of RAM, 64 MiB to 4 GiB)\n",
		       humanfmt_bytes(memcap_phys(), phys, sizeof phys));
	else
		printf("\n");
	printf("max_result_bytes = %zu\nmax_args_bytes = %zu\n", cfg->max_result_bytes,
	       cfg->max_args_bytes);
}

static int open_modules(lua_State *L)
{
	modules_open(L);
	return 0;
}

/* ---- logs ------------------------------------------------------------ */

static void log_sink(enum log_level level, const char *line, size_t len, void *arg)
{
	struct daemon *d = arg;

	(void)level;
	logbook_add(&d->logs, line, len);
}

/* ---- reload ---------------------------------------------------------- */

int daemon_reload(struct daemon *d, const char *why)
{
	int failed;

	notify_reloading();
	failed = scripts_reload(&d->scripts);
	worker_pool_reload(d->workers);
	d->reloads++;
	if (failed < 0) {
		log_error("reload (%s) failed: %s", why, d->scripts.error ? d->scripts.error : "?");
	} else {
		for (size_t i = 0; i < d->scripts.n; i++)
			if (d->scripts.v[i]->error)
				log_error("script %s: %s", d->scripts.v[i]->name,
				          d->scripts.v[i]->error);
		log_info("reloaded (%s): %zu scripts, %d failed", why, d->scripts.n, failed);
	}
	if (d->jobs)
		jobs_reloaded(d->jobs);
	notify_send("READY=1");
	notify_sendf("STATUS=%zu scripts, %d failed to load", d->scripts.n,
	             failed < 0 ? 0 : failed);
	return failed;
}

static void reload_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	daemon_reload(arg, "files changed");
}

static void inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval tv = tv_ms(RELOAD_DEBOUNCE_MS);
	int changed = 0;

	(void)what;
	while (read(fd, buf, sizeof buf) > 0)
		changed = 1;
	if (changed && !d->draining)
		evtimer_add(d->reload_timer, &tv);
}

static void watch_scripts(struct daemon *d)
{
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE;
	char lib[4096];

	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0 || inotify_add_watch(d->inotify_fd, d->cfg.scripts_dir, mask) < 0) {
		log_warn("not watching %s for changes (%s): reload with awaitctl reload or SIGHUP",
		         d->cfg.scripts_dir, strerror(errno));
		return;
	}
	snprintf(lib, sizeof lib, "%s/lib", d->cfg.scripts_dir);
	inotify_add_watch(d->inotify_fd, lib, mask); /* fine if there is no lib/ */
	d->inotify_ev = event_new(d->base, d->inotify_fd, EV_READ | EV_PERSIST, inotify_cb, d);
	event_add(d->inotify_ev, NULL);
}

/* ---- drain ----------------------------------------------------------- */

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	double waited = sched_now() - d->drain_started;
	struct timeval tv = tv_ms(DRAIN_POLL_MS);

	(void)fd;
	(void)what;
	/* done when no run is left and every reply has reached its client */
	if ((jobs_running(d->jobs) == 0 && store_pending(d->st) == 0 &&
	     server_pending_output(d->srv) == 0) ||
	    waited > d->cfg.shutdown_timeout_ms + d->cfg.cancel_grace_ms + 1000) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (waited > d->cfg.shutdown_timeout_ms && d->s->stats.live) {
		/* the time is up: cancel what still runs (it unwinds within its
		 * grace); the jobs among it are requeued, not failed */
		jobs_cancel_all(d->jobs);
		for (struct task *t = d->s->live_head; t; t = t->live_next)
			task_cancel(d->s->L, t, "the daemon is stopping");
	}
	evtimer_add(d->drain_timer, &tv);
}

void daemon_drain(struct daemon *d, const char *why)
{
	struct timeval tv = tv_ms(DRAIN_POLL_MS);

	if (d->draining)
		return;
	d->draining = 1;
	notify_send("STOPPING=1");
	log_info("stopping (%s): no new jobs start; %zu running get %g ms", why,
	         jobs_running(d->jobs), d->cfg.shutdown_timeout_ms);
	jobs_drain(d->jobs);
	server_stop_accepting(d->srv);
	if (d->inotify_ev)
		event_del(d->inotify_ev);
	d->drain_started = sched_now();
	evtimer_add(d->drain_timer, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (sig == SIGHUP)
		daemon_reload(d, "SIGHUP");
	else
		daemon_drain(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1");
}

/* ---- start and stop -------------------------------------------------- */

static int daemon_open(struct daemon *d, char *err, size_t errlen)
{
	struct jobs_env env;
	struct sched_config sc;
	struct server_limits lim;
	struct store_config stc;
	struct worker_config wc;
	uint64_t wd_usec;
	lua_State *L;

	d->listen_fd = -1;
	d->inotify_fd = -1;
	d->base = sched_base_new();
	sched_cfg(&d->cfg, &sc);
	d->s = d->base ? sched_new(d->base, &sc) : NULL;
	if (!d->s) {
		snprintf(err, errlen, "cannot create the event loop or the Lua state");
		return -1;
	}
	L = d->s->L;
	lua_pushcfunction(L, open_modules);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		snprintf(err, errlen, "Lua modules: %s", lua_tostring(L, -1));
		return -1;
	}
	store_cfg(&d->cfg, &stc);
	d->st = store_open(d->base, &stc, &d->orphans, err, errlen);
	if (!d->st)
		return -1;
	d->s->between = store_poll;
	d->s->between_arg = d->st;
	if (d->orphans)
		log_warn("%lld jobs were left running by an earlier start (a crash?): requeued",
		         (long long)d->orphans);
	daemon_jobs_env(d, &env);
	d->jobs = jobs_new(&env, d->st, err, errlen);
	if (!d->jobs)
		return -1;
	if (scripts_open(&d->scripts, L, d->cfg.scripts_dir, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < d->scripts.n; i++)
		if (d->scripts.v[i]->error)
			log_error("script %s: %s", d->scripts.v[i]->name, d->scripts.v[i]->error);
	worker_config_defaults(&wc);
	wc.workers = d->cfg.workers;
	wc.timeout_ms = d->cfg.worker_timeout_ms;
	wc.max_memory = d->cfg.max_memory;
	d->workers =
	    worker_pool_new(d->base, &wc, scripts_worker_init, d->cfg.scripts_dir, err, errlen);
	if (!d->workers)
		return -1;
	worker_pool_register(L, d->workers);

	d->listen_fd = listen_activated(err, errlen);
	if (d->listen_fd == -1)
		return -1;
	if (d->listen_fd == -2) {
		d->listen_fd = listen_unix(d->cfg.socket_path, d->cfg.socket_mode, err, errlen);
		if (d->listen_fd < 0)
			return -1;
		d->socket_owned = 1;
	}
	lim.max_line = d->cfg.max_line;
	lim.output_cap = d->cfg.output_cap;
	lim.max_clients = d->cfg.max_clients;
	lim.allow_gid = -1;
	d->loop = loopwatch_new(d->base, LOOPWATCH_MS);
	daemon_cmd_env(d, &d->cmd);
	d->srv = server_new(d->base, d->listen_fd, &lim, cmd_dispatch, &d->cmd, err, errlen);
	d->cmd.srv = d->srv;
	if (!d->srv)
		return -1;
	if (strcmp(d->cfg.http_listen, "off") != 0) {
		struct web_config wcf = {d->cfg.http_listen, d->cfg.http_token};
		d->web = web_new(d->base, &wcf, d->srv, &d->cmd, err, errlen);
		if (!d->web)
			return -1;
	}

	d->sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
	d->drain_timer = evtimer_new(d->base, drain_cb, d);
	d->reload_timer = evtimer_new(d->base, reload_cb, d);
	if (!d->sig_term || !d->sig_int || !d->sig_hup || !d->drain_timer || !d->reload_timer) {
		snprintf(err, errlen, "cannot set up signals and timers");
		return -1;
	}
	event_add(d->sig_term, NULL);
	event_add(d->sig_int, NULL);
	event_add(d->sig_hup, NULL);
	watch_scripts(d);
	if (notify_watchdog_usec(&wd_usec)) {
		struct timeval tv = tv_ms((double)wd_usec / 2000.0);
		d->watchdog = event_new(d->base, -1, EV_PERSIST, watchdog_cb, d);
		event_add(d->watchdog, &tv);
	}
	return 0;
}

static void daemon_close(struct daemon *d)
{
	struct event *evs[] = {d->sig_term,     d->sig_int,  d->sig_hup,   d->drain_timer,
	                       d->reload_timer, d->watchdog, d->inotify_ev};

	log_set_sink(NULL, NULL);
	web_free(d->web);
	loopwatch_free(d->loop);
	jobs_fail_waiters(d->jobs); /* their clients get an answer while they can */
	logbook_fini(&d->logs);
	server_free(d->srv);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		if (d->socket_owned)
			unlink(d->cfg.socket_path);
	}
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->s) {
		worker_pool_register(d->s->L, NULL);
		jobs_close_lua(d->jobs);
		scripts_close(&d->scripts);
	}
	worker_pool_free(d->workers); /* its calls still awaited are freed with their tasks */
	sched_free(d->s);
	store_close(d->st); /* commits what is left; its last answers run here */
	jobs_free(d->jobs);
	if (d->base)
		event_base_free(d->base);
	config_fini(&d->cfg);
}

int daemon_main(int argc, char **argv)
{
	struct daemon d;
	char err[1024];
	int rc;

	memset(&d, 0, sizeof d);
	config_init(&d.cfg);
	rc = parse_args(&d.cfg, argc, argv);
	if (rc) {
		config_fini(&d.cfg);
		return rc;
	}
	log_set_level((enum log_level)d.cfg.log_level);
	if (getenv("JOURNAL_STREAM"))
		log_set_journal(1);
	signal(SIGPIPE, SIG_IGN);
	/* past a file-size limit, writes fail with EFBIG (SQLite reports it) instead of killing us
	 */
	signal(SIGXFSZ, SIG_IGN);
	log_set_sink(log_sink, &d);
	d.started = clock_wall_s();
	d.started_mono = sched_now();
	if (daemon_open(&d, err, sizeof err) < 0) {
		log_error("cannot start: %s", err);
		notify_sendf("STATUS=cannot start: %s", err);
		daemon_close(&d);
		return 1;
	}
	log_info("awaitd %s ready: %zu scripts from %s, database %s (epoch %lld), control "
	         "socket %s%s",
	         AWAITD_VERSION, d.scripts.n, d.cfg.scripts_dir,
	         store_path_shown(d.cfg.db_path, d.db_shown, sizeof d.db_shown),
	         (long long)store_epoch(d.st), d.cfg.socket_path,
	         d.socket_owned ? "" : " (inherited from systemd)");
	jobs_start(d.jobs);
	notify_send("READY=1");
	notify_sendf("STATUS=%zu scripts loaded", d.scripts.n);
	event_base_dispatch(d.base);
	log_info("stopped");
	daemon_close(&d);
	return 0;
}

int daemon_check_main(int argc, char **argv)
{
	struct config cfg;
	struct sched *s = NULL;
	struct event_base *base = NULL;
	struct scripts ss;
	struct sched_config sc;
	char err[1024];
	int rc, problems = 0;

	memset(&ss, 0, sizeof ss);
	config_init(&cfg);
	rc = parse_args(&cfg, argc, argv);
	if (rc)
		goto out;
	printf("config: ok\n");
	print_memory_cap(&cfg);
	sched_cfg(&cfg, &sc);
	base = sched_base_new();
	s = base ? sched_new(base, &sc) : NULL;
	if (s)
		lua_pushcfunction(s->L, open_modules);
	if (!s || lua_pcall(s->L, 0, 0, 0) != LUA_OK) {
		printf("runtime: cannot start\n");
		rc = 1;
		goto out;
	}
	if (scripts_open(&ss, s->L, cfg.scripts_dir, err, sizeof err) < 0) {
		printf("scripts: %s\n", err);
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < ss.n; i++) {
		if (ss.v[i]->error) {
			printf("script %s: %s\n", ss.v[i]->name, ss.v[i]->error);
			problems++;
		} else {
			printf("script %s: ok\n", ss.v[i]->name);
		}
	}
	printf("%zu scripts, %d with problems\n", ss.n, problems);
	rc = problems ? 1 : 0;
	scripts_close(&ss);
out:
	sched_free(s);
	if (base)
		event_base_free(base);
	config_fini(&cfg);
	return rc;
}

int daemon_migrate_main(int argc, char **argv)
{
	struct config cfg;
	struct store_config stc;
	struct event_base *base = NULL;
	struct store *st = NULL;
	char err[1024], shown[1024];
	int rc;

	config_init(&cfg);
	rc = parse_args(&cfg, argc, argv);
	if (rc)
		goto out;
	store_cfg(&cfg, &stc);
	base = event_base_new();
	st = base ? store_open(base, &stc, NULL, err, sizeof err) : NULL;
	if (!st) {
		fprintf(stderr, "awaitd migrate: %s\n", base ? err : "cannot create an event loop");
		rc = 1;
		goto out;
	}
	printf("%s: migrations from %s applied\n",
	       store_path_shown(cfg.db_path, shown, sizeof shown), cfg.migrations_dir);
out:
	store_close(st);
	if (base)
		event_base_free(base);
	config_fini(&cfg);
	return rc;
}
