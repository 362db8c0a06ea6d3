/*
 * lw4o6 subscribers (lw4o6.c): the IPv6 address dstmd assigns an lwB4
 * and the lease of an IPv4 address + port set bound to it.
 */
#ifndef DSTMD_LW4O6_H
#define DSTMD_LW4O6_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dstmd/config.h"
#include "store/lease.h"

struct dstmd;

/*
 * Take or renew the lw4o6 lease of `identity`: its IPv6 address (kept,
 * or a free one of ipv6_pool), an IPv4 address + port set of the lw4o6
 * pool (want_v4 0: any), and the TEP serving that address. A new lease
 * counts against the sender `src` (src_len octets: who sent the request
 * on the link, d6_server.c lw_source): at most lw4o6.per_source held, at
 * lw4o6.allocations_per_source a second. 0, or what lease_acquire()
 * returns, -EDQUOT (the sender's quota or rate), -ENOSPC (no free IPv6
 * address, or lw4o6 is not configured), -ENETUNREACH (no TEP serves the
 * address or it is down).
 */
int lw4o6_acquire(struct dstmd *d, const char *identity, const uint8_t *src, size_t src_len,
                  uint32_t want_v4, int64_t now, const struct lease **out, unsigned *flags,
                  const struct dstmd_tep **tep);

/* The lw4o6 path's refusals (control "counters": lw4o6_*). */
struct lw4o6_counters {
	uint64_t refused_quota; /* a sender already holds lw4o6.per_source leases */
	uint64_t refused_rate;  /* a sender asks faster than lw4o6.allocations_per_source */
	uint64_t pool_full;     /* no free address of ipv6_pool */
	uint64_t sweeps;        /* full passes reclaiming addresses whose lease ended */
	uint64_t pool_free;     /* addresses known free now (a gauge) */
};
const struct lw4o6_counters *lw4o6_counters(void);
/* The same, as lw4o6_refused_quota, … in `o`. */
void lw4o6_counters_json(json_t *o);

/* Whether v6 is an address of ipv6_pool (a lease there is an lwB4's). */
bool lw4o6_holds(const struct dstmd *d, const struct in6_addr *v6);
void lw4o6_fini(void);

#endif
