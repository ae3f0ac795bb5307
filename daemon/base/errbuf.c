/* errbuf.c: see errbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"

void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *errbuf_shown(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, k = 0;

	for (i = 0; i < n && k + 4 < outlen; i++) {
		if (i == 40) {
			memcpy(out + k, "...", 3);
			k += 3;
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		out[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[k] = 0;
	return out;
}
