/*
 * json.h: the `json` Lua module and the one mapping between Lua values and
 * jansson values that the socket, the database and scripts all share.
 *
 * Mapping (both directions):
 *  - Lua integer <-> JSON integer, exactly (64-bit);
 *  - Lua float <-> JSON real, 17 significant digits, so a float survives a
 *    round trip; a float keeps its type even when integral (2.0 is "2.0");
 *  - json.null (a light userdata) <-> JSON null; booleans <-> booleans;
 *  - Lua string <-> JSON string, as byte strings: embedded NUL works, but a
 *    Lua string must be valid UTF-8 to be encoded;
 *  - a table whose keys are exactly 1..n (n >= 1) <-> JSON array; any other
 *    table, the empty one included, <-> JSON object, whose keys must be
 *    strings or integers (integers become decimal strings).
 * Nesting is limited to JSON_MAX_DEPTH containers in both directions.
 */
#ifndef AWAITD_JSON_H
#define AWAITD_JSON_H

#include <stddef.h>

#include <jansson.h>
#include <lua.h>

#define JSON_MAX_DEPTH 200 /* containers nested in one another */

/*
 * Open the module: returns 1, the table {encode, decode, null}.
 * json.encode(v) -> string | nil, err; json.decode(s) -> value | nil, err,
 * err being an error value with code "invalid".
 */
int luaopen_json(lua_State *L);

/*
 * Push the Lua value for v (borrowed: the caller keeps its reference).
 * Returns 0 with one value pushed, or -1 with nothing pushed and a message
 * in err (errlen bytes, may be 0) when v nests deeper than JSON_MAX_DEPTH
 * or the Lua stack cannot grow. Raises a Lua memory error like any other
 * pushing function: a caller that owns v must anchor it in something Lua
 * closes or collects across this call (json.decode does) or v would leak.
 */
int json_push(lua_State *L, const json_t *v, char *err, size_t errlen);

/*
 * Build a new jansson value from the Lua value at idx; the caller owns it
 * and releases it with json_decref. Returns NULL with a message in err
 * naming the problem and where, e.g. "cannot encode function at
 * .items[3]", "table cycle at .a.b", "invalid UTF-8 in string at .name".
 * Tables are read raw (no metamethods). Never raises a Lua error: it only
 * reads the Lua state, so no jansson value can be left behind by a longjmp.
 */
json_t *json_from_lua(lua_State *L, int idx, char *err, size_t errlen);

/* Push the json.null sentinel (the same light userdata as json.null). */
void json_push_null(lua_State *L);

#endif
