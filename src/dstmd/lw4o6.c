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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/cfg.h"
#include "common/log.h"
#include "dstmd/dstmd.h"
#include "dstmd/lw4o6.h"

static struct log_rl lw_rl;

/* The index of the pool's addresses (see the top of the file). */
static struct {
	const struct dstmd_config *cfg;
	char **owner;
	uint32_t size;
} ix;

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
	memset(&ix, 0, sizeof(ix));
}

static int
ix_note(void *arg, const struct lease *l)
{
	const struct dstmd_lw4o6 *c = arg;
	uint32_t k;

	if (l->state == LEASE_ACTIVE && in_pool6(c, &l->v6, &k) && !ix.owner[k])
		ix.owner[k] = strdup(l->identity);
	return 0;
}

/* (Re)build the index when the configuration changed (start, SIGHUP). */
static int
ix_sync(struct dstmd *d)
{
	const struct dstmd_lw4o6 *c = &d->cfg->lw4o6;

	if (ix.cfg == d->cfg)
		return 0;
	ix_free();
	ix.size = 1u << (128 - c->plen);
	if (!(ix.owner = calloc(ix.size, sizeof(*ix.owner))))
		return -ENOMEM;
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
	free(ix.owner[k]);
	ix.owner[k] = NULL;
	return false;
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
lw4o6_acquire(struct dstmd *d, const char *identity, uint32_t want, int64_t now,
              const struct lease **out, unsigned *flags, const struct dstmd_tep **tep_out)
{
	const struct dstmd_lw4o6 *c = &d->cfg->lw4o6;
	const struct lease *l;
	const struct dstmd_tep *tep;
	struct in6_addr v6;
	uint32_t k = 0;
	bool found = false;
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
		/* A renewal keeps the address the lwB4 built its softwire on. */
		v6 = l->v6;
		found = true;
	} else {
		/* Start where the identity hashes to, so that a client gets the
		 * same address again after its lease ended, when it is free. */
		uint32_t start = fnv(identity) & (ix.size - 1);

		for (uint32_t n = 0; n < ix.size && !found; n++) {
			k = (start + n) & (ix.size - 1);
			/* RFC 4291 §2.6.1: not the Subnet-Router anycast address. */
			found = k != 0 && !ix_taken(d, k);
		}
		if (!found)
			return -ENOSPC;
		v6 = addr_of(c, k);
	}
	/*
	 * The one decision (src/grant) with this pool; no per-/64 policy: the
	 * address is ours, the IPv6 pool bounds what a DUID can take.
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
	if (!ix.owner[k] || strcmp(ix.owner[k], identity) != 0) {
		free(ix.owner[k]);
		ix.owner[k] = strdup(identity);
	}
	*tep_out = tep;
	return 0;
}

bool
lw4o6_holds(const struct dstmd *d, const struct in6_addr *v6)
{
	const struct dstmd_lw4o6 *c = &d->cfg->lw4o6;

	return c->enable && addr_v6_in_prefix(v6, &c->prefix, c->plen);
}

void
lw4o6_fini(void)
{
	ix_free();
}
