/*
 * numparse.h: reading a run of digits as an unsigned number.
 *
 * The config file (whole numbers, octal modes) and cron expressions (field
 * values, steps, "@every" amounts) read digits the same way: digits only
 * (no sign, no space, no "0x"), and a number too big to matter reads as a
 * cap instead of overflowing, so the caller's range check names the range.
 */
#ifndef AWAITD_NUMPARSE_H
#define AWAITD_NUMPARSE_H

#include <stdint.h>

/*
 * Read the digits of base (8 or 10) at *p, up to end or the first other
 * character, into *out as min(value, cap), and advance *p past them.
 * Returns 0, or -1 with *p and *out untouched when *p holds no digit.
 */
int numparse_digits(const char **p, const char *end, unsigned base, uint64_t cap, uint64_t *out);

#endif
