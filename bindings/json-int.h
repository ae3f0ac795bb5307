/*
 * json-int.h: what the two files of the json module share: json.c (the
 * module, and jansson values pushed into Lua) and json-encode.c (Lua
 * values turned into jansson values, with the path of a bad value in the
 * message).
 */
#ifndef AWAITD_JSON_INT_H
#define AWAITD_JSON_INT_H

#include <stddef.h>

/* Its address is json.null (a light userdata). */
extern char json_null_tag;

/* A bounded string builder: output past cap is dropped, always terminated. */
struct json_buf {
	char *p;
	size_t cap; /* bytes of p, 0 when there is nowhere to write */
	size_t len; /* bytes written, < cap */
};

/* An empty builder writing into p (cap bytes; p may be NULL). */
void json_buf_init(struct json_buf *b, char *p, size_t cap);

/* printf onto the end of b; what does not fit is dropped. */
void json_buf_add(struct json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Append bytes so that the result is printable ASCII: messages end up in
 * error values that are themselves sent as JSON, which must be UTF-8.
 * With quoted set, '"' and '\\' are escaped too (the text is in quotes).
 */
void json_buf_add_escaped(struct json_buf *b, const char *s, size_t len, int quoted);

#endif
