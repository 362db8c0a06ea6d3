/*
 * The identity rule of DESIGN §4, one implementation for TSP and DHCPv6:
 * a lease belongs to the address verified when it was granted; an
 * unauthenticated message from any other address changes nothing; the
 * addresses the network uses itself are never leased.
 */
#include <string.h>

#include "grant/grant.h"

enum grant_verdict
grant_may_act(const struct grant_client *who, const struct in6_addr *lease_v6)
{
	if (!memcmp(&who->v6, lease_v6, sizeof(*lease_v6)))
		return GRANT_OWNER;
	/* A DUID, a user name or an IAID is a claim; a checked secret is a proof. */
	return who->authenticated ? GRANT_MOVE : GRANT_FOREIGN;
}

enum grant_addr
grant_check_v6(const struct grant_net *net, const struct in6_addr *a)
{
	/* RFC 4291 §2.4: none of these reaches one host across the domain. */
	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_MULTICAST(a) ||
	    IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a))
		return GRANT_ADDR_SPECIAL;
	for (size_t i = 0; net && i < net->nown; i++)
		if (!memcmp(&net->own[i], a, sizeof(*a)))
			return GRANT_ADDR_NETWORK;
	return GRANT_ADDR_OK;
}

const char *
grant_addr_name(enum grant_addr r)
{
	switch (r) {
	case GRANT_ADDR_OK:
		return "ok";
	case GRANT_ADDR_SPECIAL:
		return "special_address";
	case GRANT_ADDR_NETWORK:
		return "network_address";
	default:
		return "unknown";
	}
}

bool
grant_in_prefix(const struct in6_addr *a, const struct grant_prefix *p)
{
	unsigned full = p->plen / 8, rest = p->plen % 8;

	if (p->plen > 128 || memcmp(a->s6_addr, p->prefix.s6_addr, full))
		return false;
	return !rest || !((a->s6_addr[full] ^ p->prefix.s6_addr[full]) & (0xff00u >> rest));
}

bool
grant_endpoint_ok(const struct grant_client *who, const struct in6_addr *wanted,
                  const struct grant_prefix *allowed, size_t nallowed)
{
	if (!memcmp(&who->v6, wanted, sizeof(*wanted)))
		return true;
	if (!who->authenticated)
		return false;
	for (size_t i = 0; i < nallowed; i++)
		if (grant_in_prefix(wanted, &allowed[i]))
			return true;
	return false;
}
