/*
 * memcap.h: the default memory cap of the Lua state (max_memory_mb).
 *
 * With no cap a single script can take the host into the OOM killer (a
 * string doubled 40 times asks for a terabyte), so the default is a share
 * of the machine: a quarter of physical memory, at most MEMCAP_DEFAULT_MAX
 * and at least MEMCAP_DEFAULT_MIN, computed once at start-up. An explicit
 * max_memory_mb = 0 still means "no cap".
 */
#ifndef AWAITD_MEMCAP_H
#define AWAITD_MEMCAP_H

#include <stddef.h>
#include <stdint.h>

#define MEMCAP_DEFAULT_MAX     ((size_t)4 << 30)  /* bytes: 4 GiB */
#define MEMCAP_DEFAULT_MIN     ((size_t)64 << 20) /* bytes: 64 MiB */
#define MEMCAP_DEFAULT_UNKNOWN ((size_t)1 << 30)  /* bytes, when RAM cannot be read */

/*
 * The default cap for a machine with phys bytes of physical memory (0:
 * unknown): phys / 4 within [MEMCAP_DEFAULT_MIN, MEMCAP_DEFAULT_MAX],
 * rounded down to a whole MiB so that the config dump shows a whole
 * number; MEMCAP_DEFAULT_UNKNOWN when phys is 0.
 */
size_t memcap_default_for(uint64_t phys);

/* Physical memory of this machine in bytes (sysconf), 0 when unknown. */
uint64_t memcap_phys(void);

/* memcap_default_for(memcap_phys()): the built-in max_memory. */
size_t memcap_default(void);

#endif
