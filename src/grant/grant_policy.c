/*
 * The admission policy of every access method (DESIGN §4: one per-/64
 * quota, one rate limit, configured once): whether a new lease may be
 * granted to a client of a /64. Pure: the lease count and the clock come
 * from the caller, the buckets live in a fixed table the caller owns.
 */
#include <string.h>

#include "common/hash.h"
#include "grant/grant.h"

static uint64_t
prefix64(const struct in6_addr *a)
{
	uint64_t k = 0;

	for (int i = 0; i < 8; i++)
		k = k << 8 | a->s6_addr[i];
	return k;
}

static bool
rate_take(struct grant_rate *r, unsigned rate, uint64_t key, int64_t now_ms)
{
	/* The tree's keyed hash (common/hash.h): a client cannot pick /64s that share a slot. */
	size_t i = (size_t)(hash_u64(key) % GRANT_RATE_SLOTS);
	double burst = rate * 2.0;

	if (!r->slot[i].used || r->slot[i].key != key) {
		r->slot[i].used = true;
		r->slot[i].key = key;
		r->slot[i].tokens = burst;
		r->slot[i].last_ms = now_ms;
	} else if (now_ms > r->slot[i].last_ms) {
		r->slot[i].tokens += (double)(now_ms - r->slot[i].last_ms) * rate / 1000.0;
		if (r->slot[i].tokens > burst)
			r->slot[i].tokens = burst;
		r->slot[i].last_ms = now_ms;
	}
	if (r->slot[i].tokens < 1.0)
		return false;
	r->slot[i].tokens -= 1.0;
	return true;
}

enum grant_admit
grant_admit(struct grant_rate *r, const struct grant_policy *p, const struct in6_addr *v6,
            unsigned held, int64_t now_ms)
{
	if (p->per_64 && held >= p->per_64)
		return GRANT_ADMIT_QUOTA_64;
	if (p->rate_64 && !rate_take(r, p->rate_64, prefix64(v6), now_ms))
		return GRANT_ADMIT_RATE_64;
	return GRANT_ADMIT_OK;
}

enum grant_admit
grant_admit_key(struct grant_rate *r, unsigned per_key, unsigned rate, uint64_t key, unsigned held,
                int64_t now_ms)
{
	if (per_key && held >= per_key)
		return GRANT_ADMIT_QUOTA_64;
	if (rate && !rate_take(r, rate, key, now_ms))
		return GRANT_ADMIT_RATE_64;
	return GRANT_ADMIT_OK;
}
