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
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "errval.h"
#include "log.h"
#include "sched.h"
#include "task-int.h"
#include "task.h"

struct task_scope {
	double at;     /* the soonest deadline of the open scopes; HUGE_VAL none */
	double ms;     /* the length of the scope that set it */
	double grace;  /* after `at` was raised: its cleanup may suspend until then */
	int depth;     /* scopes open */
	int def;       /* the depth of the scope that set `at` */
	int hit;       /* the depth of the scope whose expiry was raised, 0 none */
	unsigned hits; /* expiries raised so far */
};

double task_scope_at(const struct task *t)
{
	return t->scope && t->scope->depth ? t->scope->at : HUGE_VAL;
}

int task_scope_depth(const struct task *t)
{
	return t->scope ? t->scope->depth : 0;
}

unsigned task_scope_hits(const struct task *t)
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

int task_scope_open(struct task *t, double ms, struct task_scope_mark *m)
{
	struct task_scope *sc = t->scope;
	double at = sched_now() + ms;

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
	m->deadline = t->deadline;
	m->first = t->s->next_id + 1;
	m->hits = sc->hits;
	sc->depth++;
	if (at < m->at) { /* an equal outer deadline stays the outer's: it reports it */
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
		sc->hit = 0;
	} else if (sc->hit && sc->hits != m->hits) {
		end = TASK_SCOPE_OUTER; /* (one raised before it opened: it runs in that cleanup) */
	}
	sc->depth--;
	sc->at = m->at;
	sc->ms = m->ms;
	sc->def = m->def;
	t->deadline = m->deadline;
	return end;
}

double task_scope_left(struct task *t)
{
	struct task_scope *sc = t->scope;
	double now, left;

	if (!sc || !sc->depth || sc->at == HUGE_VAL)
		return HUGE_VAL;
	now = sched_now();
	left = sc->at - now;
	if (left > 0)
		return left;
	if (!sc->hit)
		return 0; /* passed, not raised yet: raise it */
	left = sc->grace - now;
	return left > 0 ? left : 0;
}

int task_scope_raise(lua_State *L, struct task *t)
{
	struct task_scope *sc = t->scope;
	struct sched *s = t->s;
	int in_task = s->in_task;

	if (!sc->hit) {
		sc->hit = sc->def;
		sc->hits++;
		sc->grace = sched_now() + s->cfg.cancel_grace_ms;
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
	char names[512], loc[128];
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
			if (warn) {
				nwarn++;
				task_where(c, loc, sizeof loc);
				if (n < sizeof names - 1) {
					int w = snprintf(
					    names + n, sizeof names - n, "%stask %lld (at %s)",
					    nwarn > 1 ? ", " : "", (long long)c->id, loc);
					if (w > 0)
						n += (size_t)w;
				}
			}
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
 * The mark: bit 0 not cancelled yet, bits 1-7 the depth, 8-21 the expiries.
 */
int task_catch_mark(const struct task *t)
{
	int depth = task_scope_depth(t) < 0x7f ? task_scope_depth(t) : 0x7f;

	return (!t->cancel_sent ? 1 : 0) | depth << 1 | (int)(task_scope_hits(t) & 0x3fff) << 8;
}

int task_catch_hands_on(const struct task *t, int mark)
{
	int hit = task_scope_hit(t);

	if (t->cancel_sent && (mark & 1))
		return 1;
	return hit && ((mark >> 1) & 0x7f) >= hit &&
	       (unsigned)((mark >> 8) & 0x3fff) != (task_scope_hits(t) & 0x3fff);
}
