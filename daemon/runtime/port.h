/*
 * port.h: a completion port, the one-waiter mailbox that combinators use to
 * hear about many tasks settling.
 *
 * Tasks post small integers (their index in a combinator's list) when they
 * settle; the single waiting task pops them in order. A port is reference
 * counted: one count for its Lua handle and one per task watching it, so a
 * task that settles after the combinator has gone never posts into freed
 * memory.
 */
#ifndef AWAITD_PORT_H
#define AWAITD_PORT_H

#include <stddef.h>

#include <lua.h>

struct task;

struct port {
	int refs;
	struct task *waiter; /* the task suspended in port:wait, or NULL */
	lua_Integer *ring;   /* posted indexes, FIFO */
	size_t head;         /* index of the oldest entry in ring */
	size_t len;
	size_t cap;
};

/* A new port with one reference, or NULL when out of memory. */
struct port *port_new(void);

/* Add a reference. */
void port_ref(struct port *p);

/* Drop a reference; frees at zero. port_unref(NULL) is a no-op. */
void port_unref(struct port *p);

/* Append index and wake the waiter. Returns -1 when out of memory. */
int port_post(struct port *p, lua_Integer index);

/* Pop the oldest index into *index; returns 0, or -1 when empty. */
int port_pop(struct port *p, lua_Integer *index);

#endif
