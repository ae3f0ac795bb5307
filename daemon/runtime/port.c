/*
 * port.c: completion ports (see port.h). The ring grows by doubling and
 * never shrinks: a port lives as long as one combinator call.
 */
#include <stdlib.h>
#include <string.h>

#include "port.h"
#include "task.h"

struct port *port_new(void)
{
	struct port *p = calloc(1, sizeof *p);

	if (p)
		p->refs = 1;
	return p;
}

void port_ref(struct port *p)
{
	p->refs++;
}

void port_unref(struct port *p)
{
	if (!p || --p->refs > 0)
		return;
	free(p->ring);
	free(p);
}

int port_post(struct port *p, lua_Integer index)
{
	if (p->len == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		lua_Integer *ring = malloc(ncap * sizeof *ring);
		if (!ring)
			return -1;
		for (size_t i = 0; i < p->len; i++)
			ring[i] = p->ring[(p->head + i) % p->cap];
		free(p->ring);
		p->ring = ring;
		p->head = 0;
		p->cap = ncap;
	}
	p->ring[(p->head + p->len) % p->cap] = index;
	p->len++;
	if (p->waiter)
		task_wake(p->waiter, TASK_WAKE_SIGNAL);
	return 0;
}

int port_pop(struct port *p, lua_Integer *index)
{
	if (p->len == 0)
		return -1;
	*index = p->ring[p->head];
	p->head = (p->head + 1) % p->cap;
	p->len--;
	return 0;
}
