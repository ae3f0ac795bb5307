/*
 * fuzz_proto.c: libFuzzer target for the control socket's request parser.
 *
 * Each input is one request line. Invariants checked: proto_parse returns 0
 * or -1; on -1 there is a non-empty code and nothing to free; on 0 the
 * request has a command and an args object. Both outcomes are then encoded
 * (proto_error quotes jansson's message, which quotes input bytes; proto_ok
 * dumps the parsed args), and every encoded line must be JSON that jansson
 * loads back, with its only '\n' at the end. Build and run: README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Abort (a libFuzzer crash) when line is not one JSON document and one '\n'. */
static void fuzz_check_line(char *line, size_t len)
{
	json_t *j;

	if (!line)
		return; /* out of memory is allowed, not a bug */
	if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1) || strlen(line) != len)
		abort();
	j = json_loadb(line, len, 0, NULL);
	if (!j)
		abort();
	json_decref(j);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request req;
	char code[PROTO_CODE_SIZE], msg[256];
	json_int_t id;
	size_t len = 0;
	int has_id, rc;

	rc = proto_parse((const char *)data, size, PROTO_MAX_LINE, &req, &id, &has_id, code,
	                 sizeof code, msg, sizeof msg);
	if (rc == 0) {
		if (!req.cmd || !req.cmd[0] || !json_is_object(req.args) || !req.root ||
		    req.has_id != has_id || req.id != id)
			abort();
		fuzz_check_line(proto_ok(req.id, req.has_id, json_incref(req.args), &len), len);
		fuzz_check_line(proto_event(req.id, json_incref(req.args), &len), len);
		proto_request_fini(&req);
	} else {
		if (rc != -1 || !code[0] || req.root || req.cmd || req.args)
			abort();
		fuzz_check_line(proto_error(id, has_id, code, msg, &len), len);
		/* the raw input, made a C string, as a message of any bytes */
		if (size < 4096) {
			char *s = malloc(size + 1);
			if (s) {
				memcpy(s, data, size);
				s[size] = '\0';
				fuzz_check_line(proto_error(id, has_id, s, s, &len), len);
				free(s);
			}
		}
	}
	return 0;
}
