/*
 * proto.c: parse request lines and encode response lines (see proto.h).
 *
 * Workload: one proto_parse per request line and one encode per response,
 * lines mostly under a kilobyte, up to PROTO_MAX_LINE from a hostile peer.
 * Everything is linear in the line and bounded in stack: jansson's parser
 * recurses at most JSON_PARSER_MAX_DEPTH (2048) levels and refuses deeper
 * text itself; our own depth walk stops at PROTO_MAX_DEPTH + 1, so code
 * that later recurses over args (the Lua conversion, json_dump) never sees
 * more than PROTO_MAX_DEPTH levels.
 *
 * Why "\u0000" is refused (no JSON_ALLOW_NUL): the command name and many
 * argument strings end up in C strings (names, paths, keys) where an
 * embedded NUL silently truncates; refusing it at the edge is simpler than
 * auditing every json_string_value. Raw NUL bytes are refused before
 * jansson sees the line, with a message that says where.
 *
 * Duplicate keys are refused (JSON_REJECT_DUPLICATES): which of two "cmd"
 * keys wins is parser-dependent, and a proxy and the daemon must not
 * disagree on what a request means.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "utf8.h"

/* A growable output buffer for json_dump_callback. */
struct proto_buf {
	char *p;
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

static int proto_buf_reserve(struct proto_buf *b, size_t extra)
{
	size_t ncap;
	char *np;

	if (extra <= b->cap - b->len)
		return 0;
	if (extra > ((size_t)-1) / 2 - b->len)
		return -1;
	ncap = b->cap ? b->cap : 256;
	while (ncap - b->len < extra)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

static int proto_buf_append(const char *data, size_t size, void *arg)
{
	struct proto_buf *b = arg;

	if (proto_buf_reserve(b, size) < 0)
		return -1;
	memcpy(b->p + b->len, data, size);
	b->len += size;
	return 0;
}

static void proto_set_err(char *code, size_t codelen, char *msg, size_t msglen, const char *c,
                          const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void proto_set_err(char *code, size_t codelen, char *msg, size_t msglen, const char *c,
                          const char *fmt, ...)
{
	va_list ap;

	if (code && codelen > 0)
		snprintf(code, codelen, "%s", c);
	if (msg && msglen > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
}

/* 1 when v, found at nesting level depth, holds no container below PROTO_MAX_DEPTH. */
static int proto_depth_ok(json_t *v, int depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (depth > PROTO_MAX_DEPTH)
		return 0;
	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if (!proto_depth_ok(child, depth + 1))
				return 0;
		}
	} else {
		json_array_foreach(v, i, child)
		{
			if (!proto_depth_ok(child, depth + 1))
				return 0;
		}
	}
	return 1;
}

static int proto_cmd_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int proto_parse(const char *line, size_t len, size_t max, struct proto_request *req,
                json_int_t *id_out, int *has_id_out, char *code, size_t codelen, char *msg,
                size_t msglen)
{
	json_error_t jerr;
	json_t *root = NULL, *jid, *jcmd, *jargs;
	const char *nul, *cmd;
	size_t ncmd;
	int rc = -1;

	memset(req, 0, sizeof *req);
	if (id_out)
		*id_out = 0;
	if (has_id_out)
		*has_id_out = 0;
	proto_set_err(code, codelen, msg, msglen, "", "%s", "");

	if (len > max) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_TOO_LARGE,
		              "request line of %zu bytes is longer than %zu", len, max);
		goto out;
	}
	nul = len ? memchr(line, '\0', len) : NULL;
	if (nul) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_JSON,
		              "NUL byte at offset %zu", (size_t)(nul - line));
		goto out;
	}
	/* JSON_DECODE_ANY: a scalar is valid JSON, only not a request. */
	root = json_loadb(len ? line : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			proto_set_err(code, codelen, msg, msglen, PROTO_E_OUT_OF_MEMORY,
			              "out of memory parsing the request");
		else
			proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_JSON,
			              "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "a request must be a JSON object");
		goto out;
	}

	/* The id first, so that every later error can be answered to it. */
	jid = json_object_get(root, "id");
	if (jid) {
		if (!json_is_integer(jid)) {
			proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
			              "\"id\" must be an integer");
			goto out;
		}
		req->id = json_integer_value(jid);
		req->has_id = 1;
		if (id_out)
			*id_out = req->id;
		if (has_id_out)
			*has_id_out = 1;
	}

	if (!proto_depth_ok(root, 1)) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "nesting deeper than %d levels", PROTO_MAX_DEPTH);
		goto out;
	}

	jcmd = json_object_get(root, "cmd");
	if (!jcmd) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "\"cmd\" is missing");
		goto out;
	}
	if (!json_is_string(jcmd)) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "\"cmd\" must be a string");
		goto out;
	}
	cmd = json_string_value(jcmd);
	ncmd = json_string_length(jcmd);
	if (ncmd == 0) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "\"cmd\" is empty");
		goto out;
	}
	if (ncmd > PROTO_MAX_CMD) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "\"cmd\" is longer than %d bytes", PROTO_MAX_CMD);
		goto out;
	}
	if (!proto_cmd_ok(cmd, ncmd)) {
		/* cmd is at most 64 bytes of valid UTF-8 without NUL: safe to quote */
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "\"cmd\" \"%s\" may hold only a-z, 0-9, '_' and '-'", cmd);
		goto out;
	}

	jargs = json_object_get(root, "args");
	if (jargs && !json_is_object(jargs)) {
		proto_set_err(code, codelen, msg, msglen, PROTO_E_INVALID_REQUEST,
		              "\"args\" must be an object");
		goto out;
	}
	if (!jargs) {
		/* owned by root, so proto_request_fini has one thing to release */
		if (json_object_set_new(root, "args", json_object()) < 0) {
			proto_set_err(code, codelen, msg, msglen, PROTO_E_OUT_OF_MEMORY,
			              "out of memory parsing the request");
			goto out;
		}
		jargs = json_object_get(root, "args");
	}

	req->cmd = cmd;
	req->args = jargs;
	req->root = root;
	root = NULL;
	rc = 0;
out:
	if (rc < 0) {
		json_decref(root);
		memset(req, 0, sizeof *req);
	}
	return rc;
}

void proto_request_fini(struct proto_request *req)
{
	json_decref(req->root);
	memset(req, 0, sizeof *req);
}

/* s as a JSON string with invalid UTF-8 replaced by U+FFFD; NULL when out of memory. */
static json_t *proto_string_repaired(const char *s)
{
	const unsigned char *u = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)u), i = 0, o = 0, seq, skip;
	char *fixed = NULL;
	json_t *j = NULL;

	if (n > ((size_t)-1) / 3 - 1)
		goto out;
	/* each replaced byte becomes at most 3 bytes */
	fixed = malloc(n * 3 + 1);
	if (!fixed)
		goto out;
	while (i < n) {
		seq = utf8_seq(u + i, n - i, &skip);
		if (seq) {
			memcpy(fixed + o, u + i, seq);
			o += seq;
			i += seq;
		} else {
			memcpy(fixed + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i += skip;
		}
	}
	j = json_stringn_nocheck(fixed, o);
out:
	free(fixed);
	return j;
}

/* Encode obj (stolen) as one line ending in '\n'; NULL when out of memory. */
static char *proto_encode(json_t *obj, size_t *len)
{
	struct proto_buf b = {NULL, 0, 0};
	char *line = NULL;

	if (!obj)
		goto out;
	/* insertion order is kept by jansson >= 2.8; the flag says so to older ones */
	if (json_dump_callback(obj, proto_buf_append, &b, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
		goto out;
	if (proto_buf_reserve(&b, 2) < 0)
		goto out;
	b.p[b.len++] = '\n';
	b.p[b.len] = '\0';
	if (len)
		*len = b.len;
	line = b.p;
	b.p = NULL;
out:
	free(b.p);
	json_decref(obj);
	return line;
}

/* A new object holding "id" when has_id; NULL when out of memory. */
static json_t *proto_head(json_int_t id, int has_id)
{
	json_t *obj = json_object();

	if (obj && has_id && json_object_set_new(obj, "id", json_integer(id)) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

char *proto_ok(json_int_t id, int has_id, json_t *result, size_t *len)
{
	json_t *obj = NULL;

	if (!result)
		goto fail;
	obj = proto_head(id, has_id);
	if (!obj || json_object_set_new(obj, "ok", json_true()) < 0)
		goto fail;
	/* set_new steals result even when it fails */
	if (json_object_set_new(obj, "result", result) < 0) {
		result = NULL;
		goto fail;
	}
	return proto_encode(obj, len);
fail:
	json_decref(result);
	json_decref(obj);
	return NULL;
}

const char *proto_ok_result(const char *line, size_t len, size_t *rlen)
{
	static const char head[] = "{\"ok\":true,\"result\":";
	size_t n = sizeof head - 1;

	if (len < n + 3 || memcmp(line, head, n) != 0 || line[len - 1] != '\n' ||
	    line[len - 2] != '}')
		return NULL;
	*rlen = len - n - 2;
	return line + n;
}

char *proto_error(json_int_t id, int has_id, const char *code, const char *message, size_t *len)
{
	json_t *obj = NULL, *err = NULL;

	obj = proto_head(id, has_id);
	err = json_object();
	if (!obj || !err || json_object_set_new(obj, "ok", json_false()) < 0 ||
	    json_object_set_new(err, "code", proto_string_repaired(code)) < 0 ||
	    json_object_set_new(err, "message", proto_string_repaired(message)) < 0)
		goto fail;
	if (json_object_set_new(obj, "error", err) < 0) {
		err = NULL;
		goto fail;
	}
	return proto_encode(obj, len);
fail:
	json_decref(err);
	json_decref(obj);
	return NULL;
}

char *proto_event(json_int_t id, json_t *event, size_t *len)
{
	json_t *obj = NULL;

	if (!event)
		goto fail;
	obj = proto_head(id, 1);
	if (!obj)
		goto fail;
	if (json_object_set_new(obj, "event", event) < 0) {
		event = NULL;
		goto fail;
	}
	return proto_encode(obj, len);
fail:
	json_decref(event);
	json_decref(obj);
	return NULL;
}
