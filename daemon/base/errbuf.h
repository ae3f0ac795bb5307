/*
 * errbuf.h: filling the caller-owned error buffers of STYLE.md ("C
 * functions return 0/-1 and fill a caller-owned error record that may be
 * NULL").
 *
 * Part base (daemon/base/): what every part uses and that uses no part: error
 * buffers, log lines, UTF-8, human sizes and the memory-cap default, previews
 * of stored values. It includes nothing of awaitd's.
 */
#ifndef AWAITD_ERRBUF_H
#define AWAITD_ERRBUF_H

#include <stddef.h>

/* printf into err (errlen bytes, always terminated); nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
