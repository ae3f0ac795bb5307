/*
 * test_proto.c: the control socket's wire protocol: requests accepted and
 * refused with their exact codes, the id kept for error answers, the size
 * and depth limits (ours and jansson's), random bytes, the exact text of
 * responses, and a replay of the fuzzer's seed corpus.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

struct parsed {
	int rc;
	json_int_t id;
	int has_id;
	char code[PROTO_CODE_SIZE];
	char msg[512];
	struct proto_request req;
};

static void parse_n(struct parsed *p, const char *line, size_t len)
{
	p->id = -12345;
	p->has_id = -1;
	p->rc = proto_parse(line, len, PROTO_MAX_LINE, &p->req, &p->id, &p->has_id, p->code,
	                    sizeof p->code, p->msg, sizeof p->msg);
}

static void parse(struct parsed *p, const char *line)
{
	parse_n(p, line, strlen(line));
}

/* The request must be refused with code; has_id/id are what the error answer carries. */
static void expect_refused(const char *line, size_t len, const char *code, int has_id,
                           json_int_t id)
{
	struct parsed p;

	parse_n(&p, line, len);
	if (p.rc != -1 || strcmp(p.code, code) != 0 || p.has_id != has_id || p.id != id)
		print_error("line %.80s: rc %d code %s (%s) has_id %d id %lld\n", line, p.rc,
		            p.code, p.msg, p.has_id, (long long)p.id);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.code, code);
	assert_true(p.msg[0] != '\0');
	assert_int_equal(p.has_id, has_id);
	assert_true(p.id == id);
	assert_null(p.req.root);
	assert_null(p.req.cmd);
	assert_null(p.req.args);
}

static void refused(const char *line, const char *code, int has_id, json_int_t id)
{
	expect_refused(line, strlen(line), code, has_id, id);
}

/* A line that must be a single JSON document ending in its only '\n'. */
static json_t *check_line(const char *line, size_t len)
{
	json_error_t err;
	json_t *j;

	assert_non_null(line);
	assert_true(len > 1);
	assert_int_equal(strlen(line), len);
	assert_int_equal(line[len - 1], '\n');
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	j = json_loadb(line, len, 0, &err);
	if (!j)
		print_error("%s: %s\n", line, err.text);
	assert_non_null(j);
	return j;
}

static void test_valid_with_id_and_args(void **state)
{
	struct parsed p;

	(void)state;
	parse(&p, "{\"id\": 7, \"cmd\": \"run\", \"args\": {\"name\": \"mail\", \"n\": [1, 2]}}");
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.code, "");
	assert_int_equal(p.req.has_id, 1);
	assert_true(p.req.id == 7);
	assert_int_equal(p.has_id, 1);
	assert_true(p.id == 7);
	assert_string_equal(p.req.cmd, "run");
	assert_true(json_is_object(p.req.args));
	assert_string_equal(json_string_value(json_object_get(p.req.args, "name")), "mail");
	assert_int_equal(json_array_size(json_object_get(p.req.args, "n")), 2);
	proto_request_fini(&p.req);
	assert_null(p.req.root);
	proto_request_fini(&p.req); /* twice is harmless */
}

static void test_valid_without_id_or_args(void **state)
{
	struct parsed p;

	(void)state;
	parse(&p, "{\"cmd\":\"ping\"}");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.has_id, 0);
	assert_true(p.req.id == 0);
	assert_int_equal(p.has_id, 0);
	assert_true(p.id == 0);
	assert_string_equal(p.req.cmd, "ping");
	assert_true(json_is_object(p.req.args));
	assert_int_equal(json_object_size(p.req.args), 0);
	proto_request_fini(&p.req);
}

static void test_valid_edges(void **state)
{
	static const char *const ok[] = {
	    "{\"cmd\":\"a\",\"extra\":[1,{\"x\":null}],\"zzz\":true}", /* unknown keys ignored */
	    "  {\"cmd\":\"logs\",\"args\":{}}  \r",                    /* whitespace, CRLF */
	    "{\"id\":0,\"cmd\":\"x-y_0\"}",
	    "{\"id\":-5,\"cmd\":\"status\"}",
	    "{\"cmd\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
	    "{\"cmd\":\"run\",\"args\":{\"s\":\"\\u00e9\\ud83d\\ude00 \\\"q\\\" \\\\\"}}",
	};
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		parse(&p, ok[i]);
		if (p.rc != 0)
			print_error("%s: %s %s\n", ok[i], p.code, p.msg);
		assert_int_equal(p.rc, 0);
		proto_request_fini(&p.req);
	}
	parse(&p, "{\"id\":-5,\"cmd\":\"status\"}");
	assert_true(p.req.id == -5);
	proto_request_fini(&p.req);
}

static void test_invalid_json(void **state)
{
	struct parsed p;

	(void)state;
	refused("", "invalid_json", 0, 0);
	refused("   ", "invalid_json", 0, 0);
	refused("{", "invalid_json", 0, 0);
	refused("{\"id\":1,\"cmd\":\"ping\"", "invalid_json", 0, 0); /* truncated */
	refused("{\"cmd\":\"ping\"} {}", "invalid_json", 0, 0);      /* two documents */
	refused("{\"cmd\":'ping'}", "invalid_json", 0, 0);
	refused("{cmd:\"ping\"}", "invalid_json", 0, 0);
	refused("{\"cmd\":\"ping\",}", "invalid_json", 0, 0);
	refused("{\"id\":9223372036854775808,\"cmd\":\"ping\"}", "invalid_json", 0, 0);
	refused("{\"cmd\":\"p\xffng\"}", "invalid_json", 0, 0);              /* invalid UTF-8 */
	refused("{\"cmd\":\"ping\",\"cmd\":\"run\"}", "invalid_json", 0, 0); /* duplicates */
	refused("{\"id\":1,\"cmd\":\"ping\",\"args\":{\"a\":1,\"a\":2}}", "invalid_json", 0, 0);
	refused("{\"cmd\":\"run\",\"args\":{\"s\":\"a\\u0000b\"}}", "invalid_json", 0, 0);
	/* raw NUL bytes, anywhere */
	expect_refused("{\"cmd\":\"ping\"}\0", 15, "invalid_json", 0, 0);
	expect_refused("{\"cmd\":\"pi\0ng\"}", 15, "invalid_json", 0, 0);
	expect_refused("\0", 1, "invalid_json", 0, 0);

	/* jansson's position and text reach the message */
	parse(&p, "{\"cmd\": nope}");
	assert_int_equal(p.rc, -1);
	assert_non_null(strstr(p.msg, "line 1 column"));
	assert_non_null(strstr(p.msg, "invalid token"));
	parse(&p, "{\"cmd\":\"ping\",\"cmd\":\"run\"}");
	assert_non_null(strstr(p.msg, "duplicate object key"));
	expect_refused("ab\0cd", 5, "invalid_json", 0, 0);
	parse_n(&p, "ab\0cd", 5);
	assert_string_equal(p.msg, "NUL byte at offset 2");
}

static void test_invalid_request(void **state)
{
	(void)state;
	/* not an object */
	refused("[1,2]", "invalid_request", 0, 0);
	refused("[{\"id\":1,\"cmd\":\"ping\"}]", "invalid_request", 0, 0);
	refused("5", "invalid_request", 0, 0);
	refused("\"ping\"", "invalid_request", 0, 0);
	refused("null", "invalid_request", 0, 0);
	/* id present but not an integer: no id to answer to */
	refused("{\"id\":\"7\",\"cmd\":\"ping\"}", "invalid_request", 0, 0);
	refused("{\"id\":1.0,\"cmd\":\"ping\"}", "invalid_request", 0, 0);
	refused("{\"id\":1e3,\"cmd\":\"ping\"}", "invalid_request", 0, 0);
	refused("{\"id\":null,\"cmd\":\"ping\"}", "invalid_request", 0, 0);
	refused("{\"id\":true,\"cmd\":\"ping\"}", "invalid_request", 0, 0);
	refused("{\"id\":[1],\"cmd\":\"ping\"}", "invalid_request", 0, 0);
	/* cmd: the id is recovered for the answer */
	refused("{\"id\":3}", "invalid_request", 1, 3);
	refused("{\"id\":3,\"args\":{}}", "invalid_request", 1, 3);
	refused("{\"id\":4,\"cmd\":5}", "invalid_request", 1, 4);
	refused("{\"id\":4,\"cmd\":null}", "invalid_request", 1, 4);
	refused("{\"id\":4,\"cmd\":[\"ping\"]}", "invalid_request", 1, 4);
	refused("{\"id\":5,\"cmd\":\"\"}", "invalid_request", 1, 5);
	refused("{\"id\":6,\"cmd\":"
	        "\"01234567890123456789012345678901234567890123456789012345678901234\"}",
	        "invalid_request", 1, 6);
	refused("{\"id\":7,\"cmd\":\"Ping\"}", "invalid_request", 1, 7);
	refused("{\"id\":7,\"cmd\":\"pi ng\"}", "invalid_request", 1, 7);
	refused("{\"id\":7,\"cmd\":\"pi.ng\"}", "invalid_request", 1, 7);
	refused("{\"id\":7,\"cmd\":\"../x\"}", "invalid_request", 1, 7);
	refused("{\"id\":7,\"cmd\":\"ping\\n\"}", "invalid_request", 1, 7);
	refused("{\"id\":7,\"cmd\":\"p\\u00e9ng\"}", "invalid_request", 1, 7);
	/* args */
	refused("{\"id\":8,\"cmd\":\"ping\",\"args\":[]}", "invalid_request", 1, 8);
	refused("{\"id\":8,\"cmd\":\"ping\",\"args\":null}", "invalid_request", 1, 8);
	refused("{\"id\":8,\"cmd\":\"ping\",\"args\":\"{}\"}", "invalid_request", 1, 8);
	refused("{\"id\":-8,\"cmd\":\"ping\",\"args\":1}", "invalid_request", 1, -8);
	refused("{\"cmd\":\"ping\",\"args\":1}", "invalid_request", 0, 0);
}

static void test_null_out_params(void **state)
{
	struct proto_request req;

	(void)state;
	assert_int_equal(proto_parse("{", 1, PROTO_MAX_LINE, &req, NULL, NULL, NULL, 0, NULL, 0),
	                 -1);
	assert_int_equal(
	    proto_parse("{\"cmd\":\"x\"}", 11, PROTO_MAX_LINE, &req, NULL, NULL, NULL, 0, NULL, 0),
	    0);
	proto_request_fini(&req);
}

static void test_64bit_ids(void **state)
{
	struct parsed p;
	size_t len;
	char *line;

	(void)state;
	parse(&p, "{\"id\":9223372036854775807,\"cmd\":\"ping\"}");
	assert_int_equal(p.rc, 0);
	assert_true(p.req.id == INT64_MAX);
	proto_request_fini(&p.req);
	parse(&p, "{\"id\":-9223372036854775808,\"cmd\":\"ping\"}");
	assert_int_equal(p.rc, 0);
	assert_true(p.req.id == INT64_MIN);
	proto_request_fini(&p.req);
	refused("{\"id\":9223372036854775807,\"cmd\":\"\"}", "invalid_request", 1, INT64_MAX);

	line = proto_ok(INT64_MAX, 1, json_null(), &len);
	assert_string_equal(line, "{\"id\":9223372036854775807,\"ok\":true,\"result\":null}\n");
	free(line);
	line = proto_error(INT64_MIN, 1, "x", "y", &len);
	assert_string_equal(line, "{\"id\":-9223372036854775808,\"ok\":false,\"error\":{\"code\":"
	                          "\"x\",\"message\":\"y\"}}\n");
	free(line);
	/* 2^53 + 1 is where a double would round */
	line = proto_event(9007199254740993LL, json_integer(9007199254740993LL), &len);
	assert_string_equal(line, "{\"id\":9007199254740993,\"event\":9007199254740993}\n");
	free(line);
}

/* {"cmd":"ping","args":{"s":"xxx..."}} padded to exactly n bytes. */
static char *padded_request(size_t n)
{
	const char *head = "{\"cmd\":\"ping\",\"args\":{\"s\":\"", *tail = "\"}}";
	size_t nh = strlen(head), nt = strlen(tail);
	char *s = malloc(n + 1);

	assert_non_null(s);
	assert_true(n > nh + nt);
	memcpy(s, head, nh);
	memset(s + nh, 'x', n - nh - nt);
	memcpy(s + n - nt, tail, nt);
	s[n] = '\0';
	return s;
}

static void test_size_limit(void **state)
{
	struct parsed p;
	char *s;

	(void)state;
	s = padded_request(PROTO_MAX_LINE);
	parse_n(&p, s, PROTO_MAX_LINE);
	assert_int_equal(p.rc, 0);
	proto_request_fini(&p.req);
	free(s);

	s = padded_request(PROTO_MAX_LINE + 1);
	expect_refused(s, PROTO_MAX_LINE + 1, "too_large", 0, 0);
	free(s);

	/* the limit is the caller's, and it is checked before anything else */
	s = malloc(PROTO_MAX_LINE + 1);
	assert_non_null(s);
	memset(s, 0, PROTO_MAX_LINE + 1);
	expect_refused(s, PROTO_MAX_LINE + 1, "too_large", 0, 0);
	free(s);
	assert_int_equal(proto_parse("{\"cmd\":\"ping\"}", 14, 13, &p.req, NULL, NULL, p.code,
	                             sizeof p.code, NULL, 0),
	                 -1);
	assert_string_equal(p.code, "too_large");
}

/* {"id":1,"cmd":"x","args":{"a":[[...]]}} with k arrays: k + 2 levels. */
static char *nested_request(size_t k, size_t *len)
{
	const char *head = "{\"id\":1,\"cmd\":\"x\",\"args\":{\"a\":", *tail = "}}";
	size_t nh = strlen(head), nt = strlen(tail);
	char *s = malloc(nh + 2 * k + nt + 1);

	assert_non_null(s);
	memcpy(s, head, nh);
	memset(s + nh, '[', k);
	memset(s + nh + k, ']', k);
	memcpy(s + nh + 2 * k, tail, nt + 1);
	*len = nh + 2 * k + nt;
	return s;
}

/* {"id":2,"cmd":"x","junk":{"a":{"a":...1}}} with k objects: k + 1 levels. */
static char *nested_objects(size_t k, size_t *len)
{
	const char *head = "{\"id\":2,\"cmd\":\"x\",\"junk\":";
	size_t nh = strlen(head), n = nh + 5 * k + 1 + k + 1;
	char *s = malloc(n + 1), *w;

	assert_non_null(s);
	memcpy(s, head, nh);
	w = s + nh;
	for (size_t i = 0; i < k; i++, w += 5)
		memcpy(w, "{\"a\":", 5);
	*w++ = '1';
	memset(w, '}', k + 1);
	s[n] = '\0';
	*len = n;
	return s;
}

static void test_deep_nesting(void **state)
{
	struct parsed p;
	size_t len;
	char *s;

	(void)state;
	/* exactly PROTO_MAX_DEPTH levels: the request, args, 62 arrays */
	s = nested_request(PROTO_MAX_DEPTH - 2, &len);
	parse_n(&p, s, len);
	assert_int_equal(p.rc, 0);
	proto_request_fini(&p.req);
	free(s);
	/* one more: refused, and the answer still has the id */
	s = nested_request(PROTO_MAX_DEPTH - 1, &len);
	expect_refused(s, len, "invalid_request", 1, 1);
	parse_n(&p, s, len);
	assert_non_null(strstr(p.msg, "nesting deeper than 64"));
	free(s);
	/* objects count too, and unknown keys are not exempt */
	s = nested_objects(PROTO_MAX_DEPTH, &len);
	expect_refused(s, len, "invalid_request", 1, 2);
	free(s);
	s = nested_objects(PROTO_MAX_DEPTH - 1, &len);
	parse_n(&p, s, len);
	assert_int_equal(p.rc, 0);
	proto_request_fini(&p.req);
	free(s);
	/* jansson's own limit, JSON_PARSER_MAX_DEPTH = 2048 levels: up to it the
	 * document is parsed (and refused by ours), beyond it jansson refuses */
	s = nested_request(2048 - 2, &len);
	expect_refused(s, len, "invalid_request", 1, 1);
	free(s);
	s = nested_request(2048 - 1, &len);
	expect_refused(s, len, "invalid_json", 0, 0);
	parse_n(&p, s, len);
	assert_non_null(strstr(p.msg, "maximum parsing depth"));
	free(s);
	/* a megabyte of '[' is cheap to refuse */
	s = malloc(PROTO_MAX_LINE);
	assert_non_null(s);
	memset(s, '[', PROTO_MAX_LINE);
	expect_refused(s, PROTO_MAX_LINE, "invalid_json", 0, 0);
	free(s);
}

/* xorshift64: the same bytes on every run and every libc */
static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_random_bytes(void **state)
{
	/* half the time bytes from JSON's alphabet, so the parser gets past the first byte */
	static const char alpha[] = "{}[]\":,0123456789-+.eEtruefalsn \\/u\"idcmdargs\xc3\xa9\xff";
	unsigned char buf[512];
	uint64_t seed = 0x5eed5eed5eed5eedULL;
	struct parsed p;
	int accepted = 0;
	size_t len;
	char *line;

	(void)state;
	for (int iter = 0; iter < 10000; iter++) {
		size_t n = rng_next(&seed) % sizeof buf;
		int json_ish = iter % 2;

		for (size_t i = 0; i < n; i++) {
			uint64_t r = rng_next(&seed);
			buf[i] = json_ish ? (unsigned char)alpha[r % (sizeof alpha - 1)]
			                  : (unsigned char)r;
		}
		if (json_ish && n > 0)
			buf[0] = '{';
		parse_n(&p, (const char *)buf, n);
		assert_true(p.rc == 0 || p.rc == -1);
		if (p.rc == 0) {
			accepted++;
			proto_request_fini(&p.req);
			continue;
		}
		assert_true(p.code[0] != '\0');
		assert_true(p.msg[0] != '\0');
		/* the message quotes input bytes: the answer must still be JSON */
		line = proto_error(p.id, p.has_id, p.code, p.msg, &len);
		json_decref(check_line(line, len));
		free(line);
	}
	assert_true(accepted < 10000);
}

static void test_encoded_text(void **state)
{
	size_t len;
	char *line;

	(void)state;
	line = proto_ok(1, 1, json_true(), &len);
	assert_string_equal(line, "{\"id\":1,\"ok\":true,\"result\":true}\n");
	assert_int_equal(len, strlen(line));
	free(line);

	line = proto_ok(0, 0, json_pack("{s:i,s:s,s:[]}", "z", 2, "a", "x\ny", "m"), &len);
	assert_string_equal(line, "{\"ok\":true,\"result\":{\"z\":2,\"a\":\"x\\ny\",\"m\":[]}}\n");
	free(line);

	line = proto_error(9, 1, "invalid_json", "line 1 column 2: bad \"x\"\n", &len);
	assert_string_equal(line, "{\"id\":9,\"ok\":false,\"error\":{\"code\":\"invalid_json\","
	                          "\"message\":\"line 1 column 2: bad \\\"x\\\"\\n\"}}\n");
	free(line);

	line = proto_error(0, 0, "too_large", "", &len);
	assert_string_equal(line,
	                    "{\"ok\":false,\"error\":{\"code\":\"too_large\",\"message\":\"\"}}\n");
	free(line);

	line = proto_error(0, 0, NULL, NULL, &len);
	assert_string_equal(line, "{\"ok\":false,\"error\":{\"code\":\"\",\"message\":\"\"}}\n");
	free(line);

	line = proto_event(3, json_pack("{s:s}", "line", "a\r\nb\x01"), &len);
	assert_string_equal(line, "{\"id\":3,\"event\":{\"line\":\"a\\r\\nb\\u0001\"}}\n");
	free(line);

	line = proto_ok(2, 1, json_string("\xc3\xa9\xe2\x80\xa8"), NULL); /* UTF-8 stays as is */
	assert_string_equal(line, "{\"id\":2,\"ok\":true,\"result\":\"\xc3\xa9\xe2\x80\xa8\"}\n");
	free(line);

	/* a result jansson cannot encode (invalid UTF-8 smuggled in with _nocheck) */
	assert_null(proto_ok(1, 1, json_string_nocheck("\xff"), &len));
	assert_null(proto_event(1, json_pack("{s:o}", "s", json_string_nocheck("a\xc3")), &len));
	/* a NULL result is the caller's failed allocation */
	assert_null(proto_ok(1, 1, NULL, &len));
	assert_null(proto_event(1, NULL, &len));
}

static void test_one_newline_per_response(void **state)
{
	const char *strs[] = {"", "\n", "\n\n\r\n", "a\nb", "\xe2\x80\xa8\n\x7f"};
	size_t len;
	char *line;

	(void)state;
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		line = proto_ok((json_int_t)i, 1, json_string_nocheck(strs[i]), &len);
		json_decref(check_line(line, len));
		free(line);
		line = proto_error((json_int_t)i, (int)(i % 2), strs[i], strs[i], &len);
		json_decref(check_line(line, len));
		free(line);
		line = proto_event((json_int_t)i, json_pack("[s]", "x\ny"), &len);
		json_decref(check_line(line, len));
		free(line);
	}
}

static void test_error_message_made_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"ok \xc3\xa9 \xf0\x9f\x98\x80", "ok \xc3\xa9 \xf0\x9f\x98\x80"}, /* valid: unchanged */
	    {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
	    {"a\xc3(", "a\xef\xbf\xbd("},                             /* cut 2-byte */
	    {"\xe2\x82", "\xef\xbf\xbd"},                             /* truncated at end */
	    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
	    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
	    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > 10FFFF */
	    {"\xf0\x9f\x98", "\xef\xbf\xbd"}, /* cut 4-byte */
	};
	json_error_t err;
	json_t *j;
	size_t len;
	char *line;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		line = proto_error(1, 1, cases[i].in, cases[i].in, &len);
		assert_non_null(line);
		j = json_loads(line, 0, &err);
		assert_non_null(j);
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(j, "error"), "message")),
		    cases[i].out);
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(j, "error"), "code")),
		    cases[i].out);
		json_decref(j);
		free(line);
	}
}

static void test_corpus_replay(void **state)
{
	const char *dir = AWAITD_SOURCE_DIR "/tests/fuzz/corpus/proto";
	static char data[PROTO_MAX_LINE + 2];
	char path[4096], *line;
	struct dirent *de;
	struct parsed p;
	int nfiles = 0;
	size_t n, len;
	DIR *d;
	FILE *f;

	(void)state;
	d = opendir(dir);
	if (!d)
		print_error("%s: cannot open\n", dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		n = fread(data, 1, sizeof data, f);
		fclose(f);
		parse_n(&p, data, n);
		if (p.rc == 0) {
			proto_request_fini(&p.req);
		} else {
			assert_int_equal(p.rc, -1);
			assert_true(p.code[0] != '\0');
			line = proto_error(p.id, p.has_id, p.code, p.msg, &len);
			json_decref(check_line(line, len));
			free(line);
		}
		nfiles++;
	}
	closedir(d);
	assert_true(nfiles >= 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_with_id_and_args),
	    cmocka_unit_test(test_valid_without_id_or_args),
	    cmocka_unit_test(test_valid_edges),
	    cmocka_unit_test(test_invalid_json),
	    cmocka_unit_test(test_invalid_request),
	    cmocka_unit_test(test_null_out_params),
	    cmocka_unit_test(test_64bit_ids),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_encoded_text),
	    cmocka_unit_test(test_one_newline_per_response),
	    cmocka_unit_test(test_error_message_made_utf8),
	    cmocka_unit_test(test_corpus_replay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
