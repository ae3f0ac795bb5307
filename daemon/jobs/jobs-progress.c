/*
 * jobs-progress.c: ctx.progress(fraction [, message]): a running
 * attempt's progress, kept on its run and written to the store at most
 * every PROGRESS_MS, however often the script calls it. A call within
 * PROGRESS_MS of the last write only updates the run and arms a timer
 * that writes the latest value when the interval is up; the attempt's end
 * writes what is pending before its outcome (same writer, so in order).
 * Each write is fenced by the attempt's lease (STORE_PROGRESS), and once
 * it is durable the job's waiters with a progress hook hear of it
 * (`awaitctl wait` draws its bar from that).
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs-int.h"
#include "log.h"
#include "sched.h"
#include "store.h"
#include "vclock.h"

#define PROGRESS_MS 250 /* at most four writes a second per job */

static void progress_answered(struct store_req *r)
{
	struct jobs *j = r->arg;

	if (r->rc && strcmp(r->err.code, "stopping") != 0)
		log_warn("job %lld: recording its progress failed: %s", (long long)r->id,
		         r->err.msg);
	else if (r->rc == 0 && r->changed)
		jobs_wait_progressed(j, r->id, r->fraction, r->text);
	store_req_free(r);
}

/* Write run's progress now. */
static void write_now(struct run *run)
{
	struct store_req *r = store_req_new(STORE_PROGRESS);

	run->progress_dirty = 0;
	run->progress_at = sched_now();
	if (!r || (run->progress_msg && !(r->text = strdup(run->progress_msg)))) {
		store_req_free(r);
		log_warn("job %lld: out of memory: its progress was not recorded",
		         (long long)run->id);
		return;
	}
	r->id = run->id;
	r->lease = run->lease;
	r->fraction = run->progress;
	r->done = progress_answered;
	r->arg = run->j;
	store_submit(run->j->st, r);
}

static void on_timer(void *arg);

/* Arm the timer for the rest of the interval. 0, or -1 out of memory. */
static int arm(struct run *run, double ms)
{
	if (!run->progress_timer)
		run->progress_timer = sched_timer_new(run->j->env.s, on_timer, run);
	if (!run->progress_timer)
		return -1;
	sched_timer_add(run->progress_timer, ms);
	run->progress_armed = 1;
	return 0;
}

static void on_timer(void *arg)
{
	struct run *run = arg;
	double since = sched_now() - run->progress_at;

	run->progress_armed = 0;
	if (!run->progress_dirty)
		return;
	if (since >= PROGRESS_MS)
		write_now(run);
	else if (arm(run, PROGRESS_MS - since) < 0)
		write_now(run); /* no timer: write now rather than lose it */
}

void jobs_progress_flush(struct run *run)
{
	if (run->progress_armed)
		sched_timer_del(run->progress_timer);
	run->progress_armed = 0;
	if (run->progress_dirty)
		write_now(run);
}

void jobs_progress_free(struct run *run)
{
	sched_timer_free(run->progress_timer);
	run->progress_timer = NULL;
	run->progress_armed = 0;
	free(run->progress_msg);
	run->progress_msg = NULL;
}

/*
 * Lua: progress(serial, fraction, message|nil) -> true, or false when the
 * run is over (jobrun.lua checked the arguments).
 */
int jobs_progress_l(lua_State *L)
{
	struct jobs *j = lua_touserdata(L, lua_upvalueindex(1));
	struct run *run = jobs_run_of(j, (uint64_t)luaL_checkinteger(L, 1));
	double f = luaL_checknumber(L, 2);
	const char *msg = luaL_optstring(L, 3, NULL);
	double since;

	/* (no root yet is fine: a run's first slice runs inside its spawn) */
	if (!run || run->ended || run->cancel != CANCEL_NONE) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (!(f >= 0 && f <= 1))
		return luaL_error(L, "progress: the fraction must be from 0 to 1");
	if (!run->progress_msg || !msg || strcmp(run->progress_msg, msg) != 0) {
		char *m = msg ? strdup(msg) : NULL;
		if (msg && !m)
			return luaL_error(L, "out of memory");
		free(run->progress_msg);
		run->progress_msg = m;
	}
	run->progress = f;
	run->progress_dirty = 1;
	since = sched_now() - run->progress_at;
	if (run->progress_at == 0 || since >= PROGRESS_MS) {
		/* a busy loop can run the task before the timer: the timer is not needed now */
		if (run->progress_armed)
			sched_timer_del(run->progress_timer);
		run->progress_armed = 0;
		write_now(run);
	} else if (!run->progress_armed && arm(run, PROGRESS_MS - since) < 0) {
		return luaL_error(L, "out of memory");
	}
	lua_pushboolean(L, 1);
	return 1;
}
