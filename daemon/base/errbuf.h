/*
 * errbuf.h: filling the caller-owned error buffers of STYLE.md ("C
 * functions return 0/-1 and fill a caller-owned error record that may be
 * NULL").
 *
 * Part base (daemon/base/): what every part uses and that uses no part: error
 * buffers and the quoting of user text in them, log lines, UTF-8, digit
 * runs, human sizes and the memory-cap default, previews of stored values.
 * It includes nothing of awaitd's.
 */
#ifndef AWAITD_ERRBUF_H
#define AWAITD_ERRBUF_H

#include <stddef.h>

/* printf into err (errlen bytes, always terminated); nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * User text s[0..n) made safe to quote in a message, into out (outlen
 * bytes, at least 1): at most 40 bytes, then "...", each non-printable
 * byte as '?', so a hostile value cannot flood or garble the message.
 * Returns out.
 */
const char *errbuf_shown(const char *s, size_t n, char *out, size_t outlen);

#endif
