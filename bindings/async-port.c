/*
 * async-port.c: completion ports as Lua sees them, for the combinators of
 * async.lua (all, race, any, map...): async.Port (made by _port) and
 * task:_watch(port, index), after which the task posts index to the port
 * when it settles; port:wait([ms]) takes the next posted index in order.
 *
 * The port itself (daemon/runtime/port.c) is reference-counted: the Lua
 * handle holds one reference, each watching task another, so a port
 * collected while tasks still watch it stays valid until they settle. A
 * port has at most one waiter.
 */
#include <stdint.h>

#include <lauxlib.h>

#include "async-int.h"
#include "port.h"
#include "task.h"

#define PORT_MT "async.Port"

/* The Lua handle of a port: a magic (a cheap, sure type check) and the port. */
#define PORT_MAGIC 0x706f7274u /* "port" */
struct port_box {
	uint32_t magic;
	struct port *port;
};

static struct port **port_box(lua_State *L, int idx)
{
	struct port_box *box = lua_touserdata(L, idx);

	if (!box || lua_rawlen(L, idx) != sizeof *box || box->magic != PORT_MAGIC)
		luaL_typeerror(L, idx, "port");
	return &box->port;
}

static int async_port(lua_State *L)
{
	struct port_box *box = lua_newuserdatauv(L, sizeof *box, 0);

	box->magic = PORT_MAGIC;
	box->port = NULL;
	luaL_setmetatable(L, PORT_MT);
	box->port = port_new();
	if (!box->port)
		return luaL_error(L, "out of memory");
	return 1;
}

static int port_gc(lua_State *L)
{
	struct port **box = port_box(L, 1);

	port_unref(*box);
	*box = NULL;
	return 0;
}

static int port_wait_k(lua_State *L, int status, lua_KContext ctx)
{
	struct port *p = *port_box(L, 1);
	lua_Integer idx;

	(void)status;
	(void)ctx;
	if (task_resumed(L, task_current(L)) == TASK_WAKE_TIMEOUT || port_pop(p, &idx) < 0)
		return 0;
	lua_pushinteger(L, idx);
	return 1;
}

/* port:wait([ms]) -> next posted index, or nothing on timeout */
static int port_wait(lua_State *L)
{
	struct port *p = *port_box(L, 1);
	double ms = lua_isnoneornil(L, 2) ? -1 : async_check_ms(L, 2);
	lua_Integer idx;

	lua_settop(L, 1);
	if (port_pop(p, &idx) == 0) {
		lua_pushinteger(L, idx);
		return 1;
	}
	if (p->waiter)
		return luaL_error(L, "port already has a waiter");
	return task_suspend(L, async_need_task(L, "port"), TASK_WAIT_PORT, p, ms, 0, port_wait_k);
}

/* task:_watch(port, index) */
static int task_watch_m(lua_State *L)
{
	struct task *t = task_check(L, 1);
	struct port *p = *port_box(L, 2);

	if (task_watch(t, p, luaL_checkinteger(L, 3)) < 0)
		return luaL_error(L, "out of memory");
	return 0;
}

static const luaL_Reg port_methods[] = {
    {"wait", port_wait},
    {NULL, NULL},
};

static const luaL_Reg port_private[] = {
    {"port", async_port},
    {"watch", task_watch_m},
    {NULL, NULL},
};

void async_port_register(lua_State *L)
{
	if (luaL_newmetatable(L, PORT_MT)) {
		lua_pushcfunction(L, port_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, port_methods);
		lua_setfield(L, -2, "__index");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, port_private, 0);
}
