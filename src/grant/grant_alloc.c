/*
 * The allocation decision, the same for every access method (DESIGN §4):
 * which TEP serves the client (and so which pool lends to it), whether a
 * new lease passes the one per-/64 policy, whether its TEP can be told,
 * and then the slot, from the allocator the caller injects (src/store's
 * lease_acquire in dstmd, a fake in the unit tests). The adapters
 * (src/dstmd/access.c for TSP, src/dstmd/dhcp.c for DHCPv6) translate
 * their protocol into a grant_req and the outcome into a reply.
 */
#include <stddef.h>

#include "grant/grant.h"

const struct grant_tep *
grant_tep_choose(const struct grant_tep *teps, size_t n, const struct in6_addr *v6)
{
	const struct grant_tep *any = NULL;

	for (size_t i = 0; i < n; i++) {
		if (teps[i].nclients == 0 && !any)
			any = &teps[i];
		for (size_t j = 0; j < teps[i].nclients; j++)
			if (grant_in_prefix(v6, &teps[i].clients[j]))
				return &teps[i];
	}
	return any;
}

enum grant_outcome
grant_acquire(const struct grant_engine *e, const struct grant_policy *policy,
              const struct grant_req *req, struct grant_result *res)
{
	const struct grant_alloc_ops *ops = e->ops;
	bool held;
	int rc;

	*res = (struct grant_result){0};
	if (!(res->tep = grant_tep_choose(e->teps, e->nteps, &req->v6)))
		return GRANT_NO_TEP;
	/*
	 * The policy counts the /64 of the tunnel's end, an address the
	 * adapter verified (DESIGN §4), and only new leases: a client renewing
	 * what it holds is never refused by it.
	 */
	held = ops->holds(e->env, req->identity);
	if (!held)
		switch (grant_admit(e->rate, policy, &req->v6, ops->held_64(e->env, &req->v6),
		                    ops->now_ms(e->env))) {
		case GRANT_ADMIT_QUOTA_64:
			return GRANT_QUOTA;
		case GRANT_ADMIT_RATE_64:
			return GRANT_RATE;
		case GRANT_ADMIT_OK:
			break;
		}
	/* seed 001 C §2.1: no lease without its binding; a renewal keeps the one it has. */
	if (!held && !ops->tep_up(e->env, res->tep->ref))
		return GRANT_TEP_DOWN;
	rc = ops->acquire(e->env, req, req->pool ? req->pool : res->tep->pool, res->tep->name,
	                  &res->lease, &res->flags);
	if (rc != 0) {
		res->err = rc;
		res->lease = NULL;
		return GRANT_FAILED;
	}
	return GRANT_GRANTED;
}
