/*
 * Counters keyed by a 64-bit value, for quotas: active leases per client
 * /64 in the lease manager, open sessions per /64 in dstmd's TSP access.
 * Open addressing with linear probing; a key whose count drops to zero
 * leaves the table by backward shifting, so there are no tombstones and
 * memory follows the number of keys in use. Without memory to grow, an
 * increment of a new key is dropped and reported (-ENOMEM).
 */
#ifndef DSTM_KEYCOUNT_H
#define DSTM_KEYCOUNT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct keycount_slot {
	uint64_t key;
	uint32_t n; /* 0: empty */
};

struct keycount {
	struct keycount_slot *t;
	size_t cap, used;
};

/* Add `delta` (positive or negative) to the count of `key`: 0 or -ENOMEM. */
int keycount_add(struct keycount *kc, uint64_t key, int delta);
uint32_t keycount_get(const struct keycount *kc, uint64_t key);
void keycount_free(struct keycount *kc);

/* The key of an IPv6 address's /64. */
uint64_t keycount_prefix64(const struct in6_addr *a);

#endif
