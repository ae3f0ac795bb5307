/*
 * store-drv.h: what a store driver implements. A driver's own struct
 * begins with a struct store whose ops it fills; store-api.c picks the
 * driver by the database path at store_open and hands every other call of
 * store.h to it. Drivers: SQLite (store.c and the store-*.c files beside
 * it), PostgreSQL (the pg-*.c files).
 */
#ifndef AWAITD_STORE_DRV_H
#define AWAITD_STORE_DRV_H

#include "store.h"

struct store_ops {
	void (*close)(struct store *st);
	int64_t (*epoch)(const struct store *st);
	void (*submit)(struct store *st, struct store_req *r);
	void (*poll)(struct store *st);
	size_t (*pending)(const struct store *st);
	size_t (*held)(const struct store *st);
	void (*get_stats)(struct store *st, struct store_stats *out);
	/* may be NULL: a driver whose work only comes from this daemon */
	void (*set_wake)(struct store *st, store_wake_fn *fn, void *arg);
};

struct store {
	const struct store_ops *ops;
};

/* Append the chain at head (NULL-ended) to the list first..last. */
void store_list_append(struct store_req **first, struct store_req **last, struct store_req *head);

/* Take the first request off the list first..last (its next cleared); NULL when empty. */
struct store_req *store_list_pop(struct store_req **first, struct store_req **last);

/* Free what r's answer holds and zero it (rc, err, rows, jobs...): r can run again. */
void store_req_reset(struct store_req *r);

/*
 * The user transactions rolled back under their owner (tx_timeout_ms, a
 * lost connection): the owner's next request fails with "timeout" instead
 * of "no such open transaction". The last STORE_DEAD_TX are remembered.
 */
#define STORE_DEAD_TX 64
struct store_dead_tx {
	int64_t v[STORE_DEAD_TX];
	int n;
};

/* Remember tx (the oldest goes when full). */
void store_dead_tx_add(struct store_dead_tx *d, int64_t tx);

/* Whether tx is remembered; forget: and forget it (its owner was told). */
int store_dead_tx_has(struct store_dead_tx *d, int64_t tx, int forget);

/* The drivers' store_open (same contract). */
struct store *store_sqlite_open(struct event_base *base, const struct store_config *cfg,
                                int64_t *requeued, char *err, size_t errlen);
struct store *store_pg_open(struct event_base *base, const struct store_config *cfg,
                            int64_t *requeued, char *err, size_t errlen);

#endif
