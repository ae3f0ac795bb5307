/*
 * test_scripts.c: job scripts loaded from a real temporary directory into
 * the scheduler's real Lua state: settings and their errors, the sandbox,
 * lib modules, the load guard and atomic reload.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "harness.h"
#include "scripts.h"

struct sx {
	struct fx *fx;
	char dir[64];
	struct scripts ss;
	int opened;
};

static int setup(void **state)
{
	struct sx *sx = calloc(1, sizeof *sx);

	assert_non_null(sx);
	sx->fx = fx_new(NULL);
	snprintf(sx->dir, sizeof sx->dir, "/tmp/awaitd-scripts-XXXXXX");
	assert_non_null(mkdtemp(sx->dir));
	*state = sx;
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char sub[512];

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		d = opendir(path);
		while (d && (e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static int teardown(void **state)
{
	struct sx *sx = *state;

	if (sx->opened)
		scripts_close(&sx->ss);
	fx_free(sx->fx);
	rm_rf(sx->dir);
	free(sx);
	return 0;
}

/* Write DIR/rel (n bytes of data; n = 0: strlen), making lib/ directories. */
static void put_n(struct sx *sx, const char *rel, const char *data, size_t n)
{
	char path[512];
	char *slash;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", sx->dir, rel);
	for (slash = strchr(path + strlen(sx->dir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = 0;
		assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
		*slash = '/';
	}
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void put(struct sx *sx, const char *rel, const char *code)
{
	put_n(sx, rel, code, strlen(code));
}

static void rm(struct sx *sx, const char *rel)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", sx->dir, rel);
	assert_int_equal(unlink(path), 0);
}

static void open_dir(struct sx *sx)
{
	char err[256];

	assert_int_equal(scripts_open(&sx->ss, sx->fx->s->L, sx->dir, err, sizeof err), 0);
	sx->opened = 1;
}

/* "DIR/" + text, for exact messages. */
static const char *in_dir(struct sx *sx, const char *text, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", sx->dir, text);
	return buf;
}

static void assert_error(struct sx *sx, const char *name, const char *text)
{
	struct script *s = scripts_find(&sx->ss, name);
	char want[1024];

	assert_non_null(s);
	assert_non_null(s->error);
	assert_string_equal(s->error, in_dir(sx, text, want, sizeof want));
}

/* Call run(ctx, {n = n}) of the job table on top (popped); the result as text in buf. */
static const char *call_top(struct sx *sx, const char *job, lua_Integer n, char *buf, size_t len)
{
	lua_State *L = sx->fx->s->L;

	assert_int_equal(lua_type(L, -1), LUA_TTABLE);
	lua_getfield(L, -1, "run");
	lua_remove(L, -2);
	lua_newtable(L); /* ctx */
	lua_newtable(L);
	lua_pushstring(L, job);
	lua_setfield(L, -2, "name");
	lua_setfield(L, -2, "job");
	lua_newtable(L); /* args */
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
	if (lua_pcall(L, 2, 1, 0) != LUA_OK)
		fail_msg("run: %s", lua_tostring(L, -1));
	snprintf(buf, len, "%s", lua_isnil(L, -1) ? "(nil)" : luaL_tolstring(L, -1, NULL));
	lua_settop(L, 0);
	return buf;
}

static const char *call_run(struct sx *sx, const char *name, lua_Integer n, char *buf, size_t len)
{
	struct script *s = scripts_find(&sx->ss, name);

	assert_non_null(s);
	scripts_push_job(&sx->ss, s);
	return call_top(sx, name, n, buf, len);
}

static void test_settings_and_defaults(void **state)
{
	struct sx *sx = *state;
	struct script *s;
	char want[256];

	put(sx, "purchase.lua",
	    "return {\n"
	    "  description = 'Charge a user for an item, exactly once',\n"
	    "  concurrency = 50, timeout = 10000, retries = 3,\n"
	    "  backoff = 250.5, schedule = '*/5 * * * *',\n"
	    "  run = function(ctx, args) return 1 end,\n"
	    "}\n");
	put(sx, "a-plain_1.lua", "return {run = function() end}");
	open_dir(sx);
	assert_int_equal(sx->ss.n, 2);
	assert_string_equal(sx->ss.v[0]->name, "a-plain_1");
	assert_string_equal(sx->ss.v[1]->name, "purchase");
	s = scripts_find(&sx->ss, "purchase");
	assert_ptr_equal(s, sx->ss.v[1]);
	assert_null(s->error);
	assert_string_equal(s->path, in_dir(sx, "purchase.lua", want, sizeof want));
	assert_int_equal(s->version, 1);
	assert_true(s->loaded_at > 1.6e9);
	assert_int_not_equal(s->job_ref, LUA_NOREF);
	assert_string_equal(s->description, "Charge a user for an item, exactly once");
	assert_int_equal(s->concurrency, 50);
	assert_true(s->timeout_ms == 10000);
	assert_int_equal(s->retries, 3);
	assert_true(s->backoff_ms == 250.5);
	assert_string_equal(s->schedule, "*/5 * * * *");
	s = scripts_find(&sx->ss, "a-plain_1");
	assert_non_null(s);
	assert_null(s->description);
	assert_null(s->schedule);
	assert_int_equal(s->concurrency, 10);
	assert_true(s->timeout_ms == 60000);
	assert_int_equal(s->retries, 0);
	assert_true(s->backoff_ms == 1000);
	assert_null(scripts_find(&sx->ss, "nope"));
	assert_int_equal(lua_gettop(sx->fx->s->L), 0);
}

static void test_run_is_callable(void **state)
{
	struct sx *sx = *state;
	char buf[128];

	put(sx, "double.lua",
	    "local calls = 0\n"
	    "return {run = function(ctx, args)\n"
	    "  calls = calls + 1\n"
	    "  return ctx.job.name .. ':' .. args.n * 2 .. ':' .. calls end}");
	open_dir(sx);
	assert_string_equal(call_run(sx, "double", 21, buf, sizeof buf), "double:42:1");
	assert_string_equal(call_run(sx, "double", 5, buf, sizeof buf), "double:10:2");
	scripts_push_job(&sx->ss, NULL);
	assert_true(lua_isnil(sx->fx->s->L, -1));
	lua_pop(sx->fx->s->L, 1);
}

static void test_load_errors_name_file_and_line(void **state)
{
	struct sx *sx = *state;
	struct script *s;

	put(sx, "syntax.lua", "return {\n  run = function() end,\n  concurrency = = 3 }\n");
	put(sx, "runtime.lua", "local x = nil\nreturn x.y\n");
	put(sx, "plain.lua", "error('no position', 0)");
	put(sx, "object.lua", "error({code = 1})");
	put(sx, "sleep.lua", "async.sleep(10)\nreturn {run = function() end}");
	open_dir(sx);
	assert_error(sx, "syntax", "syntax.lua:3: unexpected symbol near '='");
	assert_error(sx, "runtime", "runtime.lua:2: attempt to index a nil value (local 'x')");
	assert_error(sx, "plain", "plain.lua: no position");
	assert_error(sx, "object", "object.lua: error object is a table value");
	assert_error(sx, "sleep", "sleep.lua:1: async.sleep must be called inside a task");
	s = scripts_find(&sx->ss, "syntax");
	assert_int_equal(s->version, 0);
	assert_int_equal(s->job_ref, LUA_NOREF);
	scripts_push_job(&sx->ss, s);
	assert_true(lua_isnil(sx->fx->s->L, -1));
	lua_pop(sx->fx->s->L, 1);
	assert_int_equal(scripts_reload(&sx->ss), 5);
}

static void test_bad_settings_give_exact_messages(void **state)
{
	struct sx *sx = *state;
	const char *known = " (known: run, description, concurrency, timeout, retries, backoff, "
	                    "schedule, limits, fair_by)";
	char want[512];

	put(sx, "norun.lua", "return {description = 'x'}");
	put(sx, "runstr.lua", "return {run = 'go'}");
	put(sx, "conc.lua", "return {run = print, concurrency = 'ten'}");
	put(sx, "conc0.lua", "return {run = print, concurrency = 0}");
	put(sx, "concbig.lua", "return {run = print, concurrency = 1 << 40}");
	put(sx, "tmo.lua", "return {run = print, timeout = -5}");
	put(sx, "tmonan.lua", "return {run = print, timeout = 0/0}");
	put(sx, "ret.lua", "return {run = print, retries = 1.5}");
	put(sx, "back.lua", "return {run = print, backoff = -1}");
	put(sx, "desc.lua", "return {run = print, description = 5}");
	put(sx, "sched.lua", "return {run = print, schedule = {}}");
	put(sx, "cron.lua", "return {run = print, schedule = '61 * * * *'}");
	put(sx, "typo.lua", "return {run = print, concurency = 5}");
	put(sx, "array.lua", "return {print}");
	put(sx, "number.lua", "return 42");
	put(sx, "nothing.lua", "local x = 1");
	put(sx, "hostile.lua",
	    "return setmetatable({run = print}, {__index = function()\n"
	    "  while true do end end})");
	open_dir(sx);
	assert_error(sx, "norun", "norun.lua: run must be a function, got nil");
	assert_error(sx, "runstr", "runstr.lua: run must be a function, got \"go\"");
	assert_error(sx, "conc", "conc.lua: concurrency must be an integer >= 1, got \"ten\"");
	assert_error(sx, "conc0", "conc0.lua: concurrency must be an integer >= 1, got 0");
	assert_error(sx, "concbig",
	             "concbig.lua: concurrency must be at most 2147483647, got 1099511627776");
	assert_error(sx, "tmo", "tmo.lua: timeout must be a number > 0 (ms), got -5");
	assert_non_null(strstr(scripts_find(&sx->ss, "tmonan")->error,
	                       "tmonan.lua: timeout must be a number > 0 (ms), got "));
	assert_error(sx, "ret", "ret.lua: retries must be an integer >= 0, got 1.5");
	assert_error(sx, "back", "back.lua: backoff must be a number >= 0 (ms), got -1");
	assert_error(sx, "desc", "desc.lua: description must be a string, got 5");
	assert_error(sx, "sched", "sched.lua: schedule must be a string, got a table");
	assert_error(sx, "cron",
	             "cron.lua: schedule \"61 * * * *\": minute field \"61\": out of range 0-59");
	snprintf(want, sizeof want, "typo.lua: unknown field \"concurency\"%s", known);
	assert_error(sx, "typo", want);
	snprintf(want, sizeof want, "array.lua: unknown field [1]%s", known);
	assert_error(sx, "array", want);
	assert_error(sx, "number", "number.lua: must return a table with a run function, got 42");
	assert_error(sx, "nothing",
	             "nothing.lua: must return a table with a run function, got nil");
	/* metamethods of the returned table are never run */
	assert_null(scripts_find(&sx->ss, "hostile")->error);
	assert_int_equal(scripts_find(&sx->ss, "hostile")->concurrency, 10);
	assert_int_equal(sx->ss.n, 17);
}

static void test_bytecode_is_refused(void **state)
{
	struct sx *sx = *state;
	lua_State *L = sx->fx->s->L;
	const char *code;
	size_t n;

	assert_int_equal(
	    luaL_dostring(L, "return string.dump(function() return {run = print} end)"), LUA_OK);
	code = lua_tolstring(L, -1, &n);
	put_n(sx, "compiled.lua", code, n);
	lua_pop(L, 1);
	open_dir(sx);
	assert_error(sx, "compiled",
	             "compiled.lua: precompiled (bytecode) scripts are refused, only Lua text");
	assert_int_equal(scripts_find(&sx->ss, "compiled")->version, 0);
}

static void test_sandbox_hides_the_unsafe(void **state)
{
	struct sx *sx = *state;
	char buf[512];

	put(sx, "probe.lua",
	    "local present = {}\n"
	    "for _, n in ipairs({'io', 'debug', 'load', 'loadstring', 'dofile', 'loadfile',\n"
	    "                    'package', 'collectgarbage', '_G'}) do\n"
	    "  if _ENV[n] ~= nil then present[#present + 1] = n end end\n"
	    "for _, n in ipairs({'execute', 'exit', 'remove', 'rename', 'tmpname', 'setlocale'}) "
	    "do\n"
	    "  if os[n] ~= nil then present[#present + 1] = 'os.' .. n end end\n"
	    "if getmetatable('') ~= nil then present[#present + 1] = 'string metatable' end\n"
	    "local have = {}\n"
	    "for _, n in ipairs({'assert', 'error', 'ipairs', 'next', 'pairs', 'pcall', 'xpcall',\n"
	    "  'print', 'rawequal', 'rawget', 'rawlen', 'rawset', 'select', 'setmetatable',\n"
	    "  'getmetatable', 'tonumber', 'tostring', 'type', 'require'}) do\n"
	    "  assert(type(_ENV[n]) == 'function', n) end\n"
	    "for _, n in ipairs({'coroutine', 'math', 'string', 'table', 'utf8', 'os', 'async',\n"
	    "  'json', 'log', 'http', 'jobs'}) do assert(type(_ENV[n]) == 'table', n) end\n"
	    "assert(os.time() > 0 and os.clock() >= 0 and os.date('%Y') and os.difftime(2, 1) == "
	    "1)\n"
	    "assert(_VERSION == 'Lua 5.4')\n"
	    "local mt = {}\n"
	    "assert(getmetatable(setmetatable({}, mt)) == mt)\n"
	    "return {run = function() return '[' .. table.concat(present, ',') .. ']' end}");
	put(sx, "a_hack.lua",
	    "string.upper = function() return 'hacked' end\n"
	    "math.pi = 3\n"
	    "leaked = true\n"
	    "return {run = function() return string.upper('x') end}");
	put(sx, "b_victim.lua",
	    "return {run = function()\n"
	    "  return string.upper('x') .. ('y'):upper() .. math.pi .. tostring(leaked) end}");
	open_dir(sx);
	assert_null(scripts_find(&sx->ss, "probe")->error);
	assert_string_equal(call_run(sx, "probe", 0, buf, sizeof buf), "[]");
	assert_string_equal(call_run(sx, "a_hack", 0, buf, sizeof buf), "hacked");
	assert_string_equal(call_run(sx, "b_victim", 0, buf, sizeof buf), "XY3.1415926535898nil");
	/* the daemon's own globals are untouched too */
	assert_int_equal(
	    luaL_dostring(sx->fx->s->L, "return string.upper('z') .. tostring(leaked) .. math.pi"),
	    LUA_OK);
	assert_string_equal(lua_tostring(sx->fx->s->L, -1), "Znil3.1415926535898");
	lua_pop(sx->fx->s->L, 1);
}

static void test_require_lib_modules(void **state)
{
	struct sx *sx = *state;
	char buf[2048];

	put(sx, "lib/util.lua",
	    "local M = {}\n"
	    "function M.twice(x) return x * 2 end\n"
	    "M.has_io = io ~= nil\n"
	    "M.has_async = type(async.spawn) == 'function'\n"
	    "M.name = ...\n"
	    "return M");
	put(sx, "lib/pay/stripe.lua",
	    "local util = require 'util'\n"
	    "return {charge = function(n) return 'charged ' .. util.twice(n) end}");
	put(sx, "lib/boom.lua", "error('lib failed')");
	put(sx, "lib/self.lua", "return require 'self'");
	put(sx, "user.lua",
	    "local util = require 'util'\n"
	    "local stripe = require 'pay.stripe'\n"
	    "assert(require 'util' == util, 'cached')\n"
	    "assert(require 'json' == json, 'awaitd modules are reachable too')\n"
	    "local msgs = {}\n"
	    "for _, m in ipairs({'os', '../etc', 'io', 'boom', 'self', 'debug', 'pay..x'}) do\n"
	    "  local ok, e = pcall(require, m); assert(not ok); msgs[#msgs + 1] = e end\n"
	    "return {run = function(ctx, args)\n"
	    "  return stripe.charge(args.n) .. '|' .. tostring(util.has_io) .. '|' ..\n"
	    "    tostring(util.has_async) .. '|' .. util.name .. '\\n' .. table.concat(msgs, "
	    "'\\n')\n"
	    "end}");
	put(sx, "other.lua",
	    "local util = require 'util'\n"
	    "return {run = function() return util.twice(4) end}");
	open_dir(sx);
	assert_null(scripts_find(&sx->ss, "user")->error);
	assert_int_equal(sx->ss.n, 2); /* lib/ holds no jobs */
	call_run(sx, "user", 21, buf, sizeof buf);
	{
		char want[2048];
		const char *d = sx->dir;
		snprintf(want, sizeof want,
		         "charged 42|false|true|util\n"
		         "module 'os' not found: no file %s/lib/os.lua\n"
		         "module '../etc' not found: require only loads modules from %s/lib/\n"
		         "module 'io' not found: no file %s/lib/io.lua\n"
		         "%s/lib/boom.lua:1: lib failed\n"
		         "%s/lib/self.lua:1: module 'self' requires itself (a require loop)\n"
		         "module 'debug' not found: no file %s/lib/debug.lua\n"
		         "module 'pay..x' not found: require only loads modules from %s/lib/",
		         d, d, d, d, d, d, d);
		assert_string_equal(buf, want);
	}
	assert_string_equal(call_run(sx, "other", 0, buf, sizeof buf), "8");
}

/*
 * One script cannot change what another sees: the daemon's modules are
 * read-only views (writes, rawset and the metatables behind error values
 * all refuse), lib modules are each script's own, os.getenv is gone.
 */
static void test_scripts_cannot_touch_each_other(void **state)
{
	struct sx *sx = *state;
	char buf[2048];

	put(sx, "lib/shared.lua", "return {f = function() return 'lib' end, n = 0}");
	put(sx, "a_attack.lua",
	    "local out = {}\n"
	    "local function try(what, f) local ok, e = pcall(f)\n"
	    "  out[#out + 1] = what .. '=' .. (ok and 'ok' or 'refused') end\n"
	    "local evil = function() return 'pwned' end\n"
	    "try('assign', function() async.timeout = evil end)\n"
	    "try('rawset', function() rawset(async, 'all', evil) end)\n"
	    "try('json', function() json.encode = evil end)\n"
	    "try('log', function() log.info = evil end)\n"
	    "try('jobs', function() jobs.enqueue = evil end)\n"
	    "try('http', function() http.request = evil end)\n"
	    "try('require', function() require('async').sleep = evil end)\n"
	    "try('Error', function() async.Error.__tostring = evil end)\n"
	    "try('errmt', function() getmetatable(async.error('a', 'b')).__index = evil end)\n"
	    "try('setmt', function() setmetatable(async, {}) end)\n"
	    "try('insert', function() table.insert(json, evil) end)\n"
	    "try('pairs', function() local _, t = pairs(async); t.sleep = evil end)\n"
	    "local lib = require 'shared'; lib.f = evil; lib.n = 99\n"
	    "return {run = function() return table.concat(out, ' ') end}");
	put(sx, "b_victim.lua",
	    "local lib = require 'shared'\n"
	    "local n = 0 for k in pairs(async) do n = n + 1 end\n"
	    "return {run = function()\n"
	    "  local hidden = async._park == nil and async._start == nil\n"
	    "  return tostring(async.error('c', 'm')) .. '|' .. json.encode({1}) .. '|' ..\n"
	    "    lib.f() .. lib.n .. '|' .. tostring(hidden) .. '|' .. tostring(n > 10) .. '|' ..\n"
	    "    tostring(os.getenv) .. '|' .. tostring(getmetatable(async.error('x', 'y')) == "
	    "async.Error) .. '|' .. type(async.timeout)\n"
	    "end}");
	open_dir(sx);
	assert_null(scripts_find(&sx->ss, "a_attack")->error);
	assert_null(scripts_find(&sx->ss, "b_victim")->error);
	assert_string_equal(call_run(sx, "a_attack", 0, buf, sizeof buf),
	                    "assign=refused rawset=refused json=refused log=refused "
	                    "jobs=refused http=refused require=refused Error=refused "
	                    "errmt=refused setmt=refused insert=refused pairs=refused");
	assert_string_equal(call_run(sx, "b_victim", 0, buf, sizeof buf),
	                    "c: m|[1]|lib0|true|true|nil|true|function");
}

static void test_endless_top_level_is_stopped(void **state)
{
	struct sx *sx = *state;
	struct task *t;
	double t0 = sched_now();
	char buf[64];

	put(sx, "loop.lua", "while true do end");
	put(sx, "pcall_loop.lua", "while true do pcall(function() while true do end end) end");
	put(sx, "coro_loop.lua",
	    "while true do\n"
	    "  coroutine.resume(coroutine.create(function() while true do end end))\n"
	    "end");
	put(sx, "lib/spin.lua", "while true do end");
	put(sx, "lib_loop.lua", "require 'spin'");
	put(sx, "ok.lua", "return {run = function() return 'still fine' end}");
	open_dir(sx);
	assert_error(sx, "loop", "loop.lua: took too long to load");
	assert_error(sx, "pcall_loop", "pcall_loop.lua: took too long to load");
	assert_error(sx, "coro_loop", "coro_loop.lua: took too long to load");
	assert_error(sx, "lib_loop", "lib_loop.lua: took too long to load");
	assert_true(sched_now() - t0 < 60000);
	assert_string_equal(call_run(sx, "ok", 0, buf, sizeof buf), "still fine");
	/* the state still runs tasks, and no hook was left behind */
	assert_null(lua_gethook(sx->fx->s->L));
	t = fx_run(sx->fx, "local n = 0 for i = 1, 100000 do n = n + 1 end\n"
	                   "async.sleep(1) return n");
	assert_int_equal(t->state, TASK_DONE);
	assert_int_equal(fx_global_int(sx->fx, "n"), 0); /* a local */
}

static void test_memory_cap_applies_to_top_level(void **state)
{
	struct sx *sx = *state;
	char buf[64];

	put(sx, "big.lua",
	    "local s = string.rep('x', 256 * 1024 * 1024)\n"
	    "return {run = function() return #s end}");
	put(sx, "small.lua", "return {run = function() return 'small' end}");
	struct script *big;
	char want[1024];

	sx->fx->s->cfg.max_memory = 64u << 20;
	open_dir(sx);
	/* the message names the refused size and the cap that refused it */
	big = scripts_find(&sx->ss, "big");
	assert_non_null(big);
	assert_non_null(big->error);
	in_dir(sx,
	       "big.lua: out of memory: allocation of 256 MiB would pass max_memory_mb = 64 (in "
	       "use ",
	       want, sizeof want);
	if (strncmp(big->error, want, strlen(want)) != 0)
		fail_msg("error '%s' does not start with '%s'", big->error, want);
	assert_string_equal(call_run(sx, "small", 0, buf, sizeof buf), "small");
	assert_int_equal(sx->fx->s->in_task, 0);
}

static void test_reload_swaps_atomically(void **state)
{
	struct sx *sx = *state;
	lua_State *L = sx->fx->s->L;
	struct script *s;
	char buf[128];
	int old_ref;

	put(sx, "lib/ver.lua", "return {tag = 'lib1'}");
	put(sx, "job.lua",
	    "local ver = require 'ver'\n"
	    "return {concurrency = 2, run = function() return 'v1 ' .. ver.tag end}");
	put(sx, "gone.lua", "return {run = print}");
	open_dir(sx);
	s = scripts_find(&sx->ss, "job");
	assert_int_equal(s->version, 1);
	/* a run in progress holds its own reference to the old table */
	scripts_push_job(&sx->ss, s);
	old_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	put(sx, "lib/ver.lua", "return {tag = 'lib2'}");
	put(sx, "job.lua",
	    "local ver = require 'ver'\n"
	    "return {concurrency = 5, description = 'second',\n"
	    "  run = function() return 'v2 ' .. ver.tag end}");
	rm(sx, "gone.lua");
	put(sx, "new.lua", "return {run = function() return 'new' end}");
	assert_int_equal(scripts_reload(&sx->ss), 0);
	s = scripts_find(&sx->ss, "job");
	assert_int_equal(s->version, 2);
	assert_int_equal(s->concurrency, 5);
	assert_string_equal(s->description, "second");
	assert_null(s->error);
	assert_string_equal(call_run(sx, "job", 0, buf, sizeof buf), "v2 lib2");
	assert_null(scripts_find(&sx->ss, "gone"));
	assert_non_null(scripts_find(&sx->ss, "new"));
	assert_int_equal(scripts_find(&sx->ss, "new")->version, 1);
	assert_int_equal(sx->ss.n, 2);
	/* the old run finishes on its old code and its old lib module */
	lua_rawgeti(L, LUA_REGISTRYINDEX, old_ref);
	assert_string_equal(call_top(sx, "job", 0, buf, sizeof buf), "v1 lib1");

	/* a broken edit keeps version 2 working and reports why */
	put(sx, "job.lua", "return {concurrency = 7, run = function() return 'v3' end");
	assert_int_equal(scripts_reload(&sx->ss), 1);
	s = scripts_find(&sx->ss, "job");
	assert_int_equal(s->version, 2);
	assert_int_equal(s->concurrency, 5);
	assert_string_equal(s->description, "second");
	assert_error(sx, "job", "job.lua:1: '}' expected near <eof>");
	assert_string_equal(call_run(sx, "job", 0, buf, sizeof buf), "v2 lib2");

	/* fixed again: version 3, error cleared */
	put(sx, "job.lua", "return {run = function() return 'v3' end}");
	assert_int_equal(scripts_reload(&sx->ss), 0);
	s = scripts_find(&sx->ss, "job");
	assert_int_equal(s->version, 3);
	assert_null(s->error);
	assert_null(s->description);
	assert_int_equal(s->concurrency, 10);
	assert_string_equal(call_run(sx, "job", 0, buf, sizeof buf), "v3");
	lua_rawgeti(L, LUA_REGISTRYINDEX, old_ref);
	assert_string_equal(call_top(sx, "job", 0, buf, sizeof buf), "v1 lib1");
	luaL_unref(L, LUA_REGISTRYINDEX, old_ref);
}

static void test_which_files_are_scripts(void **state)
{
	struct sx *sx = *state;
	char name[128], want[256];

	put(sx, ".hidden.lua", "return {run = print}");
	put(sx, "notes.txt", "return {run = print}");
	put(sx, "x.lua.bak", "return {run = print}");
	put(sx, "a b.lua", "return {run = print}");
	put(sx, ".lua", "return {run = print}");
	put(sx, "lib/helper.lua", "return {run = print}");
	memset(name, 'n', 64);
	strcpy(name + 64, ".lua");
	put(sx, name, "return {run = print}");
	memset(name, 'l', 65);
	strcpy(name + 65, ".lua");
	put(sx, name, "return {run = print}");
	open_dir(sx);
	assert_int_equal(sx->ss.n, 2);
	assert_int_equal(strlen(sx->ss.v[0]->name), 65);
	snprintf(want, sizeof want, "%s: script name is longer than 64 characters", name);
	assert_error(sx, sx->ss.v[0]->name, want);
	assert_int_equal(sx->ss.v[0]->job_ref, LUA_NOREF);
	assert_int_equal(strlen(sx->ss.v[1]->name), 64);
	assert_null(sx->ss.v[1]->error);
	assert_int_equal(sx->ss.v[1]->version, 1);
}

static void test_unreadable_dir(void **state)
{
	struct sx *sx = *state;
	struct scripts ss;
	char err[256], want[256], path[256];

	snprintf(want, sizeof want,
	         "%s/missing: cannot read the scripts directory: No such file or directory",
	         sx->dir);
	in_dir(sx, "missing", path, sizeof path);
	assert_int_equal(scripts_open(&ss, sx->fx->s->L, path, err, sizeof err), -1);
	assert_string_equal(err, want);
	assert_int_equal(ss.n, 0);
	scripts_close(&ss);

	/* a directory that vanishes keeps what was loaded */
	put(sx, "sub/keep.lua", "return {run = function() return 'kept' end}");
	in_dir(sx, "sub", path, sizeof path);
	assert_int_equal(scripts_open(&sx->ss, sx->fx->s->L, path, NULL, 0), 0);
	sx->opened = 1;
	rm(sx, "sub/keep.lua");
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(scripts_reload(&sx->ss), -1);
	assert_non_null(strstr(sx->ss.error, "cannot read the scripts directory"));
	assert_int_equal(sx->ss.n, 1);
	assert_int_equal(scripts_find(&sx->ss, "keep")->version, 1);
}

static void test_close_releases_everything(void **state)
{
	struct sx *sx = *state;
	lua_State *L = sx->fx->s->L;

	put(sx, "lib/m.lua", "return {}");
	put(sx, "one.lua", "local m = require 'm' return {run = function() return m end}");
	put(sx, "two.lua", "return {run = print}");
	open_dir(sx);
	assert_int_equal(scripts_reload(&sx->ss), 0);
	/* watch the job tables through a weak table: only the refs keep them */
	assert_int_equal(luaL_dostring(L, "weak = setmetatable({}, {__mode = 'v'})"), LUA_OK);
	lua_getglobal(L, "weak");
	scripts_push_job(&sx->ss, scripts_find(&sx->ss, "one"));
	lua_rawseti(L, -2, 1);
	scripts_push_job(&sx->ss, scripts_find(&sx->ss, "two"));
	lua_rawseti(L, -2, 2);
	lua_pop(L, 1);
	lua_gc(L, LUA_GCCOLLECT);
	assert_int_equal(luaL_dostring(L, "return #weak"), LUA_OK);
	assert_int_equal(lua_tointeger(L, -1), 2);
	lua_pop(L, 1);
	scripts_close(&sx->ss);
	scripts_close(&sx->ss); /* idempotent */
	sx->opened = 0;
	lua_gc(L, LUA_GCCOLLECT);
	assert_int_equal(luaL_dostring(L, "return (weak[1] == nil and weak[2] == nil)"), LUA_OK);
	assert_true(lua_toboolean(L, -1));
	lua_pop(L, 1);
	assert_null(sx->ss.v);
	assert_int_equal(sx->ss.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_settings_and_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_is_callable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_errors_name_file_and_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_settings_give_exact_messages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bytecode_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox_hides_the_unsafe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_require_lib_modules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scripts_cannot_touch_each_other, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_endless_top_level_is_stopped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_cap_applies_to_top_level, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_swaps_atomically, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_which_files_are_scripts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unreadable_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_releases_everything, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
