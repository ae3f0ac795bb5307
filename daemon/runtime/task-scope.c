/*
 * task-scope.c: timeout scopes (task.h), the way async.timeout(ms, fn)
 * bounds fn without a task of its own: fn runs in the calling task, and
 * the scope's deadline cuts the task's waits short.
 *
 * State: a task that ever opened a scope has a struct task_scope. `at` is
 * the soonest deadline of the open scopes (a scope opened inside another
 * never ends later than it), `def` the depth of the scope that set it and
 * `ms` that scope's length, for the message. The opener keeps what it
 * replaced in a task_scope_mark and gives it back at the close.
 *
 * Expiry: task_suspend bounds every wait by task_scope_left; when the
 * deadline passes, the wait ends (a wake that looks like a cancellation,
 * so primitives release what they hold) and task_scope_raise raises
 * "cancelled: timed out after MS ms". `hit` then names the scope that
 * expired: its cleanup (<close> handlers) may suspend until `grace`, and
 * pcalls entered before the raise inside it hand the error on (coro.c),
 * as for a cancellation. The scope's close tells the opener whether it
 * expired itself or an outer scope's expiry is passing through.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "errval.h"
#include "log.h"
#include "sched.h"
#include "task-int.h"
#include "task.h"

struct task_scope {
	double at;     /* the deadline in force: the soonest of the open scopes'; HUGE_VAL none */
	double ms;     /* the length of the scope that set it */
	double grace;  /* after a raise: that scope's cleanup may suspend until then */
	int depth;     /* scopes open */
	int def;       /* the depth of the scope that set `at` */
	int hit;       /* the depth of the scope whose expiry was raised, 0 none (def >= hit) */
	int frozen;    /* scopes up to this depth were open when the task's own cancellation
	                * was raised: that cancellation's grace bounds them, not their deadlines */
	uint64_t hits; /* expiries raised so far */
};

int task_scope_depth(const struct task *t)
{
	return t->scope ? t->scope->depth : 0;
}

uint64_t task_scope_hits(const struct task *t)
{
	return t->scope ? t->scope->hits : 0;
}

int task_scope_hit(const struct task *t)
{
	return t->scope ? t->scope->hit : 0;
}

void task_scope_free(struct task *t)
{
	free(t->scope);
	t->scope = NULL;
}

void task_scope_cancelled(struct task *t)
{
	if (t->scope)
		t->scope->frozen = t->scope->depth;
}

int task_scope_open(struct task *t, double ms, struct task_scope_mark *m)
{
	struct task_scope *sc = t->scope;
	double at = sched_now() + ms, bound;

	if (!sc) {
		sc = calloc(1, sizeof *sc);
		if (!sc)
			return -1;
		sc->at = HUGE_VAL;
		t->scope = sc;
	}
	m->at = sc->depth ? sc->at : HUGE_VAL;
	m->ms = sc->ms;
	m->def = sc->def;
	m->hit = sc->hit;
	m->grace = sc->grace;
	m->deadline = t->deadline;
	m->first = t->s->next_id + 1;
	m->hits = sc->hits;
	/* what bounds the task now: the deadline in force, or the grace of the one raised */
	bound = !sc->depth ? HUGE_VAL : sc->hit && sc->def == sc->hit ? sc->grace : sc->at;
	sc->depth++;
	if (at < bound) { /* an equal outer deadline stays the outer's: it reports it */
		sc->at = at;
		sc->ms = ms;
		sc->def = sc->depth;
	}
	if (at < t->deadline)
		t->deadline = at;
	return 0;
}

enum task_scope_end task_scope_close(struct task *t, const struct task_scope_mark *m)
{
	struct task_scope *sc = t->scope;
	enum task_scope_end end = TASK_SCOPE_IN_TIME;

	if (sc->hit == sc->depth) {
		end = TASK_SCOPE_EXPIRED;
		sc->hit = m->hit; /* (an outer one it ran in the cleanup of, or none) */
		sc->grace = m->grace;
	} else if (sc->hit && sc->hits != m->hits) {
		end = TASK_SCOPE_OUTER; /* (one raised before it opened: it runs in that cleanup) */
	}
	sc->depth--;
	sc->at = m->at;
	sc->ms = m->ms;
	sc->def = m->def;
	t->deadline = m->deadline;
	if (sc->frozen > sc->depth)
		sc->frozen = sc->depth;
	return end;
}

double task_scope_left(struct task *t)
{
	struct task_scope *sc = t->scope;
	double now, left;

	if (!sc || !sc->depth || sc->def <= sc->frozen || sc->at == HUGE_VAL)
		return HUGE_VAL;
	now = sched_now();
	if (sc->hit && sc->def == sc->hit) {
		left = sc->grace - now; /* raised: its cleanup runs until the grace ends */
		return left > 0 ? left : 0;
	}
	left = sc->at - now;
	if (left <= 0)
		return 0;                      /* passed, not raised yet: raise it */
	if (sc->hit && sc->grace - now < left) /* in a raised scope's cleanup: never past it */
		left = sc->grace - now > 0 ? sc->grace - now : 0;
	return left;
}

int task_scope_raise(lua_State *L, struct task *t)
{
	struct task_scope *sc = t->scope;
	struct sched *s = t->s;
	int in_task = s->in_task;

	if (sc->def > sc->hit) {
		/* the deadline in force is raised now (else: the grace of the one raised ran out,
		 * and it is raised again); inside an outer one's cleanup, within that grace */
		double grace = sched_now() + s->cfg.cancel_grace_ms;
		if (sc->hit && sc->grace < grace)
			grace = sc->grace;
		sc->hit = sc->def;
		sc->hits++;
		sc->grace = grace;
	}
	s->in_task = 0; /* building the error must not hit the memory cap */
	errval_push(L, "cancelled", "timed out after %g ms", sc->ms);
	errval_traceback(L, -1, L, 1);
	s->in_task = in_task;
	return lua_error(L);
}

void task_scope_reap(lua_State *L, struct task *t, int64_t first, const char *reason, int warn)
{
	struct task *c, *next;
	char names[512];
	size_t n = 0;
	int left = 0, nwarn = 0;

	names[0] = 0;
	/* children are linked newest first: those of the scope lead the list */
	for (c = t->child; c && c->id >= first; c = next) {
		next = c->sib_next;
		if (task_settled(c)) {
			if (c->state == TASK_FAILED && !c->observed)
				task_report_failure(c, "nobody awaited it");
			task_unlink_child(c);
			task_maybe_release(c);
			continue;
		}
		if (!c->cancel_req) {
			if (warn)
				n = task_name_orphan(names, sizeof names, n, ++nwarn, c);
			task_cancel(L, c, reason);
		}
		if (!left++)
			lua_newtable(L);
		task_push_self(L, c);
		lua_rawseti(L, -2, left);
	}
	if (nwarn)
		log_warn("task %lld left a timeout with %d unawaited child task%s still running, "
		         "cancelled: %s",
		         (long long)t->id, nwarn, nwarn > 1 ? "s" : "", names);
	if (!left)
		lua_pushboolean(L, 0);
}

/*
 * A catch (pcall, xpcall, async.try) hands on what it catches after its
 * task's cancellation was raised, if it was entered before; and after a
 * scope's expiry was raised, if it was entered before, inside that scope.
 * The mark: bit 0 not cancelled yet, bits 1-16 the depth, 17-54 the
 * expiries raised (a 38-bit count: it does not wrap in practice).
 */
#define DEPTH_MAX 0xffff
#define HITS_MASK (((uint64_t)1 << 38) - 1)

int64_t task_catch_mark(const struct task *t)
{
	int depth = task_scope_depth(t) < DEPTH_MAX ? task_scope_depth(t) : DEPTH_MAX;

	return (int64_t)((!t->cancel_sent ? 1u : 0u) | (uint64_t)depth << 1 |
	                 (task_scope_hits(t) & HITS_MASK) << 17);
}

int task_catch_hands_on(const struct task *t, int64_t mark)
{
	uint64_t m = (uint64_t)mark;
	int hit = task_scope_hit(t);

	if (t->cancel_sent && (m & 1))
		return 1;
	return hit && (int)((m >> 1) & DEPTH_MAX) >= hit &&
	       ((m >> 17) & HITS_MASK) != (task_scope_hits(t) & HITS_MASK);
}
