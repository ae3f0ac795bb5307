/*
 * utf8.h: the one UTF-8 decoder of the daemon (the wire protocol repairs
 * strings with it, previews cut on its boundaries, enqueue checks keys).
 * Well-formed means Unicode's definition: no overlongs, no surrogates,
 * nothing past U+10FFFF.
 */
#ifndef AWAITD_UTF8_H
#define AWAITD_UTF8_H

#include <stddef.h>

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (n >= 1), or 0 when
 * it is not one; then *skip (may be NULL) is the length of its maximal
 * valid prefix, at least 1: the bytes one U+FFFD stands for (Unicode's
 * "maximal subpart" practice).
 */
size_t utf8_seq(const unsigned char *s, size_t n, size_t *skip);

/* Whether s[0..n) is well-formed UTF-8 with no NUL byte. */
int utf8_valid(const unsigned char *s, size_t n);

#endif
