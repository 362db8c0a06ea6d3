/*
 * lw4o6 subscribers of dstmd (RFC 7596, configured by RFC 7598 options,
 * DESIGN §3.2): a standard lwB4 solicits from its link-local address and
 * builds its softwire on the IPv6 address the same server assigns it in
 * an IA_NA. So for such a client dstmd picks that address here, from the
 * "lw4o6" section's ipv6_pool, and leases it an IPv4 address and port set
 * (a PSID, RFC 7597 §5.1) of the section's pool, bound to that address.
 * The address is verified by construction: the server gave it to that
 * DUID and IAID, and the lease (identity "dhcp6:<duid>:<iaid>") keeps it
 * across renewals; it is pushed to the TEP, renewed, released and revoked
 * like any other lease.
 *
 * Which IPv6 address belongs to whom is not stored apart: it is the v6 of
 * the lease. An index of the pool's addresses (owner identity per
 * address) only speeds the search for a free one; it is rebuilt from the
 * leases when the configuration changes, and an entry whose identity no
 * longer holds an active lease at that address counts as free (leases end
 * elsewhere: expiry, revoke, release). The pool is at most a /112.
 *
 * Finding a free address is O(1) amortized: a bitmap marks the addresses
 * with no owner (a word scan from a cursor finds one), and when none is
 * marked the stale owners are swept out at once, but only when the lease
 * count of the pool's /64 says some must be stale (or at most every ten
 * seconds): a full pool refuses a new lwB4 without a search.
 *
 * Strangers on the link could drain the pool by cycling DUIDs, so a new
 * lease has a per-sender quota and rate (grant_admit_key). An lwB4
 * solicits from its link-local address: the key is that whole address
 * (or a trusted relay's view of it, d6_server.c lw_source), hashed with
 * the tree's keyed hash (common/hash.h). Each address records the sender that took it; a sender's
 * table entry lists the addresses it took, and counts those still held.
 * The table is direct-mapped and fixed in size: a sender landing on an
 * entry another holds takes it over empty (collisions only loosen).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/addr.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "dstmd/dstmd.h"
#include "dstmd/lw4o6.h"
#include "grant/grant.h"

static struct log_rl lw_rl;

/* The per-sender table (see the top of the file): 2^12 entries. */
#define SRC_SLOTS 4096u
struct src_ent {
	uint64_t key; /* 0: unused */
	unsigned n;   /* taken addresses listed */
	uint32_t k[LW4O6_PER_SOURCE_MAX];
};

/* The index of the pool's addresses (see the top of the file). */
static struct {
	const struct dstmd_config *cfg;
	char **owner;
	uint64_t *src;  /* the sender key that took each address */
	uint64_t *free; /* bit k: address k has no owner */
	uint32_t size, nfree, nowned, cursor;
	int64_t last_sweep;
	struct src_ent *srcs; /* SRC_SLOTS */
	struct grant_rate *rate;
} ix;

static struct lw4o6_counters ctr;

static bool
in_pool6(const struct dstmd_lw4o6 *c, const struct in6_addr *a, uint32_t *k)
{
	if (!addr_v6_in_prefix(a, &c->prefix, c->plen))
		return false;
	*k = ((uint32_t)a->s6_addr[14] << 8 | a->s6_addr[15]) & (ix.size - 1);
	return true;
}

static struct in6_addr
addr_of(const struct dstmd_lw4o6 *c, uint32_t k)
{
	struct in6_addr a = c->prefix;

	a.s6_addr[14] |= (uint8_t)(k >> 8);
	a.s6_addr[15] |= (uint8_t)k;
	return a;
}

static void
ix_free(void)
{
	for (uint32_t i = 0; ix.owner && i < ix.size; i++)
		free(ix.owner[i]);
	free(ix.owner);
	free(ix.src);
	free(ix.free);
	free(ix.srcs);
	free(ix.rate);
	memset(&ix, 0, sizeof(ix));
}

/* Address k's owner; NULL frees it. Keeps the free bitmap and its count. */
static void
ix_set(uint32_t k, const char *identity, uint64_t src)
{
	bool was = ix.owner[k] != NULL;

	free(ix.owner[k]);
	ix.owner[k] = identity ? strdup(identity) : NULL;
	ix.src[k] = src;
	/* Out of memory the address stays marked free: ix_taken then finds it is not. */
	if (was && !ix.owner[k]) {
		ix.nowned--;
		if (k) { /* RFC 4291 §2.6.1: 0 is the Subnet-Router anycast, never free */
			ix.free[k / 64] |= 1ull << (k % 64);
			ix.nfree++;
		}
	} else if (!was && ix.owner[k]) {
		ix.nowned++;
		if (k) {
			ix.free[k / 64] &= ~(1ull << (k % 64));
			ix.nfree--;
		}
	}
}

static int
ix_note(void *arg, const struct lease *l)
{
	const struct dstmd_lw4o6 *c = arg;
	uint32_t k;

	/* Who took it is known across a reload (ix.src kept), not a restart: key 0 is nobody. */
	if (l->state == LEASE_ACTIVE && in_pool6(c, &l->v6, &k) && !ix.owner[k])
		ix_set(k, l->identity, ix.src[k]);
	return 0;
}

/*
 * (Re)build the index when the configuration changed (start, SIGHUP). A
 * reload keeps the pool (changing the section needs a restart), and with
 * it who took each address, the per-sender table and its rate buckets: a
 * SIGHUP gives no sender a fresh quota.
 */
static int
ix_sync(struct dstmd *d)
{
	const struct dstmd_lw4o6 *c = &d->cfg->lw4o6;
	uint32_t size = 1u << (128 - c->plen);

	if (ix.cfg == d->cfg)
		return 0;
	if (ix.owner && ix.size == size) {
		for (uint32_t k = 0; k < ix.size; k++) {
			free(ix.owner[k]);
			ix.owner[k] = NULL;
		}
		memset(ix.free, 0, (ix.size + 63) / 64 * sizeof(*ix.free));
	} else {
		ix_free();
		ix.size = size;
		ix.owner = calloc(ix.size, sizeof(*ix.owner));
		ix.src = calloc(ix.size, sizeof(*ix.src));
		ix.free = calloc((ix.size + 63) / 64, sizeof(*ix.free));
		ix.srcs = calloc(SRC_SLOTS, sizeof(*ix.srcs));
		ix.rate = calloc(1, sizeof(*ix.rate));
		if (!ix.owner || !ix.src || !ix.free || !ix.srcs || !ix.rate) {
			ix_free();
			return -ENOMEM;
		}
	}
	for (uint32_t k = 1; k < ix.size; k++)
		ix.free[k / 64] |= 1ull << (k % 64);
	ix.nfree = ix.size - 1;
	ix.nowned = 0;
	ix.cursor = 0;
	ix.cfg = d->cfg;
	lease_foreach(d->leases, ix_note, (void *)c);
	return 0;
}

/* Whether address k is held: its owner still has an active lease there. */
static bool
ix_taken(struct dstmd *d, uint32_t k)
{
	const struct lease *l;
	uint32_t j;

	if (!ix.owner[k])
		return false;
	l = lease_find_identity(d->leases, ix.owner[k]);
	if (l && l->state == LEASE_ACTIVE && in_pool6(&ix.cfg->lw4o6, &l->v6, &j) && j == k)
		return true;
	ix_set(k, NULL, 0);
	return false;
}

/*
 * A free address, 0 when none: the one the identity hashes to when free
 * (a client gets its address again after its lease ended), else the next
 * marked free from the cursor. Nothing marked: sweep the stale owners out,
 * when some must be stale (the /64 holds fewer active leases than there
 * are owners; other leases in that /64 can hide it, hence the sweep every
 * ten seconds too), else the pool is full.
 */
static uint32_t
ix_pick(struct dstmd *d, uint32_t start, int64_t now)
{
	uint32_t words = (ix.size + 63) / 64;

	if (start && !ix_taken(d, start))
		return start;
	if (!ix.nfree && (lease_count_64(d->leases, &ix.cfg->lw4o6.prefix) < ix.nowned ||
	                  now - ix.last_sweep >= 10 || now < ix.last_sweep)) {
		ix.last_sweep = now;
		ctr.sweeps++;
		for (uint32_t k = 1; k < ix.size; k++)
			(void)ix_taken(d, k);
	}
	if (!ix.nfree)
		return 0;
	for (uint32_t n = 0; n < words; n++) {
		uint32_t w = (ix.cursor + n) % words;

		if (ix.free[w]) {
			ix.cursor = w;
			return w * 64 + (uint32_t)__builtin_ctzll(ix.free[w]);
		}
	}
	return 0; /* not reached: nfree counts the marked bits */
}

/*
 * The sender's key, under the process's hash key (common/hash.h): nobody
 * on the link picks a key that lands on another's entry.
 */
static uint64_t
src_key(const uint8_t *p, size_t n)
{
	return hash_bytes(p, n) | 1; /* never 0: 0 marks an unused entry and a sender not known */
}

/* The sender's entry, taken over when another held it; its list pruned to what it holds. */
static struct src_ent *
src_entry(struct dstmd *d, uint64_t key)
{
	struct src_ent *e = &ix.srcs[(key * 0x9e3779b97f4a7c15ull) >> 52];
	unsigned j = 0;

	if (e->key != key) {
		e->key = key;
		e->n = 0;
	}
	for (unsigned i = 0; i < e->n; i++)
		if (ix_taken(d, e->k[i]) && ix.src[e->k[i]] == key)
			e->k[j++] = e->k[i];
	e->n = j;
	return e;
}

static uint32_t
fnv(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

int
lw4o6_acquire(struct dstmd *d, const char *identity, const uint8_t *src, size_t src_len,
              uint32_t want, int64_t now, const struct lease **out, unsigned *flags,
              const struct dstmd_tep **tep_out)
{
	const struct dstmd_lw4o6 *c = &d->cfg->lw4o6;
	const struct lease *l;
	const struct dstmd_tep *tep;
	struct src_ent *e = NULL;
	struct in6_addr v6;
	uint64_t key = 0;
	uint32_t k = 0;
	char a[ADDR_STRLEN];
	struct grant_req req;
	struct grant_result res;
	int rc;

	if (!c->enable)
		return -ENOSPC;
	if ((rc = ix_sync(d)) < 0)
		return rc;
	l = lease_find_identity(d->leases, identity);
	if (l && !in_pool6(c, &l->v6, &k)) {
		/*
		 * The identity holds a lease bound to an address this pool did
		 * not give (a DSTM client's own): a DUID and IAID are a claim,
		 * and an lw4o6 request, from whatever sender, would move that
		 * binding here (DESIGN §4). Refused, counted as foreign.
		 */
		log_warnx_rl(&lw_rl, "lw4o6: %s holds a lease at %s: not moved into the lw4o6 pool",
		             identity, addr_fmt_v6(&l->v6, a));
		return -EPERM;
	}
	if (l) {
		/* A renewal keeps the address the lwB4 built its softwire on: no limit. */
		v6 = l->v6;
	} else {
		/* A new lease: the sender's quota and rate first (a refusal takes no token). */
		key = src_key(src, src_len);
		e = src_entry(d, key);
		switch (
		    grant_admit_key(ix.rate, c->per_source, c->rate, key, e->n, clock_mono_ms())) {
		case GRANT_ADMIT_OK:
			break;
		case GRANT_ADMIT_QUOTA_64:
			ctr.refused_quota++;
			return -EDQUOT;
		case GRANT_ADMIT_RATE_64:
			ctr.refused_rate++;
			return -EDQUOT;
		}
		if (!(k = ix_pick(d, fnv(identity) & (ix.size - 1), now))) {
			ctr.pool_full++;
			return -ENOSPC;
		}
		v6 = addr_of(c, k);
	}
	/*
	 * The one decision (src/grant) with this pool; no per-/64 policy: the
	 * address is ours, fe80::/64 is everyone's; the per-sender limit above
	 * bounds what one sender on the link can take.
	 */
	req = (struct grant_req){.who = {.kind = GRANT_DUID, .v6 = v6},
	                         .identity = identity,
	                         .v6 = v6,
	                         .want_v4 = want,
	                         .pool = c->pool,
	                         .now = now};
	switch (dstmd_grant(d, &req, &(struct grant_policy){0}, &res)) {
	case GRANT_GRANTED:
		break;
	case GRANT_NO_TEP:
		log_warnx("lw4o6: no TEP serves %s; add the ipv6_pool to a TEP's \"clients\"",
		          addr_fmt_v6(&v6, a));
		return -ENETUNREACH;
	case GRANT_TEP_DOWN:
		return -ENETUNREACH;
	case GRANT_QUOTA:
	case GRANT_RATE:
		return -EDQUOT; /* never without a policy, but an outcome all the same */
	case GRANT_FAILED:
		return res.err;
	}
	tep = res.tep->ref;
	*out = res.lease;
	*flags = res.flags;
	if (!ix.owner[k] || strcmp(ix.owner[k], identity) != 0)
		ix_set(k, identity, l ? ix.src[k] : key);
	if (e && e->key == key && e->n < LW4O6_PER_SOURCE_MAX)
		e->k[e->n++] = k;
	*tep_out = tep;
	return 0;
}

bool
lw4o6_holds(const struct dstmd *d, const struct in6_addr *v6)
{
	const struct dstmd_lw4o6 *c = &d->cfg->lw4o6;

	return c->enable && addr_v6_in_prefix(v6, &c->prefix, c->plen);
}

const struct lw4o6_counters *
lw4o6_counters(void)
{
	ctr.pool_free = ix.owner ? ix.nfree : 0;
	return &ctr;
}

void
lw4o6_counters_json(json_t *o)
{
	const struct lw4o6_counters *c = lw4o6_counters();

#define C(f) json_object_set_new(o, "lw4o6_" #f, json_integer((json_int_t)c->f))
	C(refused_quota);
	C(refused_rate);
	C(pool_full);
	C(sweeps);
	C(pool_free);
#undef C
}

void
lw4o6_fini(void)
{
	ix_free();
}
