/*
 * utf8.c: see utf8.h. The table of well-formed sequences is Unicode's
 * (Table 3-7): the second byte's range is narrowed after E0, ED, F0 and
 * F4, which excludes overlongs, surrogates and code points past U+10FFFF.
 */
#include "utf8.h"

size_t utf8_seq(const unsigned char *s, size_t n, size_t *skip)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t need, i, dummy;

	if (!skip)
		skip = &dummy;
	*skip = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	for (i = 1; i < need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*skip = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need;
}

int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, seq;

	while (i < n) {
		if (s[i] == 0 || !(seq = utf8_seq(s + i, n - i, NULL)))
			return 0;
		i += seq;
	}
	return 1;
}
