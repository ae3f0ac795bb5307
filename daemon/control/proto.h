/*
 * proto.h: the wire protocol of the control socket, version PROTO_VERSION.
 *
 * One request or response per line: a JSON object in compact form followed
 * by a single '\n' (SPEC section 6). A request is {"id": N, "cmd": "...",
 * "args": {...}}; the answer to it is {"id": N, "ok": true, "result": ...}
 * or {"id": N, "ok": false, "error": {"code": "...", "message": "..."}},
 * possibly preceded by {"id": N, "event": ...} lines for streaming commands.
 * Like tmux-protocol.h, every constant a client must agree on lives here,
 * so a change to the protocol is a change to this file and to
 * PROTO_VERSION.
 *
 * This module knows nothing of sockets: it turns one line into a request
 * and a result into one line. Invariants: proto_parse never trusts the
 * input (any bytes of any length give 0 or -1 with an error code, never a
 * crash); an accepted request is a JSON object no deeper than
 * PROTO_MAX_DEPTH, with no duplicate keys and no NUL anywhere, whose cmd
 * matches [a-z0-9_-]{1,64}; every encoded line is valid UTF-8 JSON that
 * contains exactly one '\n', at its end.
 */
#ifndef AWAITD_PROTO_H
#define AWAITD_PROTO_H

#include <stddef.h>

#include <jansson.h>

#define PROTO_VERSION   1
#define PROTO_MAX_LINE  (1u << 20) /* bytes without the '\n'; a longer request line is refused */
#define PROTO_MAX_DEPTH 64         /* arrays and objects, the request object being level 1 */
#define PROTO_MAX_CMD   64         /* bytes in a command name */

/* Error codes of proto_parse; the control server adds its own. */
#define PROTO_E_TOO_LARGE       "too_large"       /* the line is longer than the limit */
#define PROTO_E_INVALID_JSON    "invalid_json"    /* jansson refused the text */
#define PROTO_E_INVALID_REQUEST "invalid_request" /* JSON, but not an acceptable request */
#define PROTO_E_OUT_OF_MEMORY   "out_of_memory"   /* the daemon could not allocate */

/* Room for any PROTO_E_* code and its terminating NUL. */
#define PROTO_CODE_SIZE 32

struct proto_request {
	json_int_t id;   /* request id; 0 when absent */
	int has_id;      /* the request carried a numeric (integer) id */
	const char *cmd; /* command name, borrowed from root */
	json_t *args;    /* object, borrowed from root; an empty object when absent */
	json_t *root;    /* owned: the parsed document */
};

/*
 * Parse one line: len bytes without the '\n', which may hold any bytes
 * including NULs. Checks, in this order, with the first failure reported:
 *
 *   too_large        len > max (nothing is parsed)
 *   invalid_json     a NUL byte in the line; anything jansson refuses:
 *                    syntax, invalid UTF-8, integers outside 64 bits,
 *                    duplicate object keys, "\u0000" in a string, nesting
 *                    beyond jansson's own limit (JSON_PARSER_MAX_DEPTH,
 *                    2048); the message carries jansson's line, column
 *                    and text
 *   invalid_request  not an object; "id" present but not an integer;
 *                    nesting deeper than PROTO_MAX_DEPTH; "cmd" missing,
 *                    not a string, empty, longer than PROTO_MAX_CMD or not
 *                    [a-z0-9_-]; "args" present but not an object
 *   out_of_memory    an allocation failed
 *
 * Unknown top-level keys are ignored. On success returns 0 and fills req,
 * which the caller releases with proto_request_fini. On failure returns
 * -1, leaves req zeroed (nothing to free) and writes the code and a
 * message into code/msg (truncated to codelen/msglen; the message may then
 * end in a cut UTF-8 sequence, which proto_error repairs). Whenever the line
 * was a JSON object with an integer "id", *id_out and *has_id_out give that
 * id, even on failure, so the error response can carry it; otherwise they
 * are 0. id_out, has_id_out, code and msg may each be NULL.
 */
int proto_parse(const char *line, size_t len, size_t max, struct proto_request *req,
                json_int_t *id_out, int *has_id_out, char *code, size_t codelen, char *msg,
                size_t msglen);

/* Release a parsed request and zero it. Safe on a zeroed request and twice. */
void proto_request_fini(struct proto_request *req);

/*
 * Encoders. Each returns one malloc'd line that the caller frees with
 * free(), or NULL when out of memory; *len (len may be NULL) counts its
 * bytes including the final '\n', and a NUL follows that is not counted.
 * Keys come in a fixed order, "id" first; integers stay exact over 64
 * bits; output is JSON_COMPACT, so the only '\n' is the last byte.
 * `result` and `event` are stolen (decref'd even on failure); a NULL result
 * or event is taken as the caller's failed allocation and gives NULL.
 * Their strings must be valid UTF-8, which json_string() ensures and
 * json_string_nocheck() does not: jansson refuses to encode invalid ones
 * and the call returns NULL (repair untrusted text before, as proto_error
 * does for its message).
 */

/* {"id":N,"ok":true,"result":...}; "id" is omitted when !has_id. */
char *proto_ok(json_int_t id, int has_id, json_t *result, size_t *len);

/*
 * {"id":N,"ok":false,"error":{"code":...,"message":...}}; "id" is omitted
 * when !has_id. code and message may be any NUL-terminated bytes (NULL is
 * taken as ""): invalid UTF-8 sequences are replaced by U+FFFD.
 */
char *proto_error(json_int_t id, int has_id, const char *code, const char *message, size_t *len);

/*
 * In a line proto_ok made without an id ({"ok":true,"result":R}\n): where
 * R's JSON text starts, its length in *rlen. NULL for any other line. (The
 * web front end answers with R as it is, without parsing it again.)
 */
const char *proto_ok_result(const char *line, size_t len, size_t *rlen);

/* {"id":N,"event":...}: one line of a streaming command's output. */
char *proto_event(json_int_t id, json_t *event, size_t *len);

#endif
