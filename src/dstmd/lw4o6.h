/*
 * lw4o6 subscribers (lw4o6.c): the IPv6 address dstmd assigns an lwB4
 * and the lease of an IPv4 address + port set bound to it.
 */
#ifndef DSTMD_LW4O6_H
#define DSTMD_LW4O6_H

#include <stdbool.h>
#include <stdint.h>

#include "dstmd/config.h"
#include "store/lease.h"

struct dstmd;

/*
 * Take or renew the lw4o6 lease of `identity`: its IPv6 address (kept,
 * or a free one of ipv6_pool), an IPv4 address + port set of the lw4o6
 * pool (want_v4 0: any), and the TEP serving that address. 0, or what
 * lease_acquire() returns, -ENOSPC (no free IPv6 address, or lw4o6 is
 * not configured), -ENETUNREACH (no TEP serves the address or it is down).
 */
int lw4o6_acquire(struct dstmd *d, const char *identity, uint32_t want_v4, int64_t now,
                  const struct lease **out, unsigned *flags, const struct dstmd_tep **tep);
/* Whether v6 is an address of ipv6_pool (a lease there is an lwB4's). */
bool lw4o6_holds(const struct dstmd *d, const struct in6_addr *v6);
void lw4o6_fini(void);

#endif
