/*
 * memcap.c: the default memory cap (see memcap.h); human sizes are humanfmt_bytes.
 *
 * The default is computed from sysconf(_SC_PHYS_PAGES), not from a cgroup
 * limit: under systemd, MemoryMax= is the knob for the unit and the cap
 * here only has to keep one runaway script from taking the whole host.
 */
#include <unistd.h>

#include "memcap.h"

#define MIB ((uint64_t)1 << 20)

size_t memcap_default_for(uint64_t phys)
{
	uint64_t cap;

	if (phys == 0)
		return MEMCAP_DEFAULT_UNKNOWN;
	cap = phys / 4;
	if (cap > MEMCAP_DEFAULT_MAX)
		cap = MEMCAP_DEFAULT_MAX;
	if (cap < MEMCAP_DEFAULT_MIN)
		cap = MEMCAP_DEFAULT_MIN;
	return (size_t)(cap / MIB * MIB);
}

uint64_t memcap_phys(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || size <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)size;
}

size_t memcap_default(void)
{
	return memcap_default_for(memcap_phys());
}
