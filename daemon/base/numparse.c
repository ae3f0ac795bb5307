/* numparse.c: see numparse.h. */
#include "numparse.h"

int numparse_digits(const char **p, const char *end, unsigned base, uint64_t cap, uint64_t *out)
{
	const char *q = *p;
	char top = (char)('0' + base - 1);
	uint64_t v = 0;

	if (q == end || *q < '0' || *q > top)
		return -1;
	for (; q < end && *q >= '0' && *q <= top; q++) {
		uint64_t d = (uint64_t)(*q - '0');
		/* v * base + d > cap, asked without overflowing */
		v = v > cap / base || cap - v * base < d ? cap : v * base + d;
	}
	*p = q;
	*out = v;
	return 0;
}
