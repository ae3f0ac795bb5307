/*
 * store-req.c: the request of store.h, the one object that goes from the
 * caller to the store (the writer, a reader, the flusher) and back: allocating it, failing it
 * (code and message in r->err, r->rc = -1), freeing it with everything it
 * holds. A request is owned by whoever holds it: the caller until
 * store_submit, the store until the answer, then the done callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-int.h"

struct store_req *store_req_new(enum store_op op)
{
	struct store_req *r = calloc(1, sizeof *r);

	if (r)
		r->op = op;
	return r;
}

static void vals_free(struct store_val *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].p);
	free(v);
}

void store_job_fini(struct store_job *j)
{
	free(j->name);
	free(j->state);
	free(j->args);
	free(j->key);
	free(j->result);
	free(j->error);
	free(j->wait_for);
	free(j->progress_msg);
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		free(j->limit_keys[i]);
	memset(j, 0, sizeof *j);
}

void store_req_reset(struct store_req *r)
{
	for (int i = 0; i < r->rows.ncols; i++)
		free(r->rows.cols[i]);
	free(r->rows.cols);
	vals_free(r->rows.vals, r->rows.nrows * (size_t)r->rows.ncols);
	memset(&r->rows, 0, sizeof r->rows);
	for (size_t i = 0; i < r->njobs; i++)
		store_job_fini(&r->jobs[i]);
	free(r->jobs);
	r->jobs = NULL;
	r->njobs = 0;
	free(r->settled);
	r->settled = NULL;
	r->nsettled = 0;
	free(r->out_text);
	r->out_text = NULL;
	r->rc = 0;
	memset(&r->err, 0, sizeof r->err);
	memset(r->counts, 0, sizeof r->counts);
	r->out_id = 0;
	r->created = r->changed = r->journaled = r->deps = 0;
}

void store_req_free(struct store_req *r)
{
	if (!r)
		return;
	store_req_reset(r);
	free(r->name);
	free(r->key);
	free(r->sql);
	free(r->text);
	free(r->text2);
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		free(r->limit_keys[i]);
	free(r->fair_key);
	free(r->after);
	vals_free(r->params, (size_t)r->nparams);
	free(r);
}

int store_fail(struct store_req *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	r->rc = -1;
	snprintf(r->err.code, sizeof r->err.code, "%s", code);
	va_start(ap, fmt);
	vsnprintf(r->err.msg, sizeof r->err.msg, fmt, ap);
	va_end(ap);
	return -1;
}

int store_fail_db(struct store_conn *c, struct store_req *r, const char *what)
{
	return store_fail(r, "db", "%s: %s", what, sqlite3_errmsg(c->db));
}

void store_list_append(struct store_req **first, struct store_req **last, struct store_req *head)
{
	if (!head)
		return;
	if (*last)
		(*last)->next = head;
	else
		*first = head;
	while (head->next)
		head = head->next;
	*last = head;
}

struct store_req *store_list_pop(struct store_req **first, struct store_req **last)
{
	struct store_req *r = *first;

	if (r) {
		*first = r->next;
		if (!*first)
			*last = NULL;
		r->next = NULL;
	}
	return r;
}

void store_dead_tx_add(struct store_dead_tx *d, int64_t tx)
{
	if (d->n == STORE_DEAD_TX) {
		memmove(d->v, d->v + 1, (STORE_DEAD_TX - 1) * sizeof d->v[0]);
		d->n--;
	}
	d->v[d->n++] = tx;
}

int store_dead_tx_has(struct store_dead_tx *d, int64_t tx, int forget)
{
	for (int i = 0; i < d->n; i++)
		if (d->v[i] == tx) {
			if (forget)
				d->v[i] = d->v[--d->n];
			return 1;
		}
	return 0;
}
