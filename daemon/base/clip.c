/*
 * clip.c: previews of stored values (see clip.h).
 *
 * A preview never parses the value it cuts: parsing a 100 MB result only
 * to show 200 bytes of it would cost a second and hundreds of MB. It works
 * on the stored text, so what it shows is the JSON as stored.
 */
#include <stdlib.h>
#include <string.h>

#include "clip.h"
#include "utf8.h"

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 */

json_t *clip_preview(const char *text, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)text;
	size_t keep = len < max ? len : max, i = 0, o = 0, seq;
	char *out;
	json_t *j;

	out = malloc(keep + sizeof ELLIPSIS);
	if (!out)
		return NULL;
	while (i < keep) {
		seq = u[i] ? utf8_seq(u + i, len - i, NULL) : 0; /* a NUL shows as '?' too */
		if (seq == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (i + seq > keep)
			break; /* a sequence cut by the limit is dropped whole */
		memcpy(out + o, u + i, seq);
		o += seq;
		i += seq;
	}
	if (keep < len) {
		memcpy(out + o, ELLIPSIS, sizeof ELLIPSIS - 1);
		o += sizeof ELLIPSIS - 1;
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

/* text (len bytes, NULL: none) decoded whole; JSON null when none or not JSON. */
static json_t *load_whole(const char *text, size_t len)
{
	json_t *v = text ? json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;

	return v ? v : json_null();
}

json_t *clip_json(const char *text, size_t max, int *clipped)
{
	size_t len = text ? strlen(text) : 0;

	*clipped = 0;
	if (!text || len <= max)
		return load_whole(text, len);
	*clipped = 1;
	return clip_preview(text, len, max < CLIP_PREVIEW_MAX ? max : CLIP_PREVIEW_MAX);
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

const char *clip_error_code(const char *text, char *buf, size_t len)
{
	const char *p = text ? skip_space(text) : NULL;
	size_t n = 0;

	if (!p || *p != '{')
		return NULL;
	p = skip_space(p + 1);
	if (strncmp(p, "\"code\"", 6) != 0)
		return NULL;
	p = skip_space(p + 6);
	if (*p != ':')
		return NULL;
	p = skip_space(p + 1);
	if (*p++ != '"')
		return NULL;
	while (p[n] && p[n] != '"') {
		unsigned char ch = (unsigned char)p[n];
		if (ch < 0x20 || ch >= 0x7f || ch == '\\' || n + 1 >= len)
			return NULL;
		n++;
	}
	if (p[n] != '"' || n == 0)
		return NULL;
	memcpy(buf, p, n);
	buf[n] = 0;
	return buf;
}

json_t *clip_error(const char *text, size_t max)
{
	size_t len = text ? strlen(text) : 0;
	char code[64];
	json_t *v;

	if (!text || len <= max)
		return load_whole(text, len);
	v = json_pack("{ss so sb sI}", "code",
	              clip_error_code(text, code, sizeof code) ? code : "error", "message",
	              clip_preview(text, len, max < CLIP_PREVIEW_MAX ? max : CLIP_PREVIEW_MAX),
	              "truncated", 1, "bytes", (json_int_t)len);
	return v;
}
