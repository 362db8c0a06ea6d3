/*
 * The identity rule of DESIGN §4, one implementation for TSP and DHCPv6:
 * a lease belongs to the address verified when it was granted; an
 * unauthenticated message from any other address changes nothing; the
 * addresses the network uses itself are never leased. And the lease's
 * identity itself: one struct, and its spelling as the store's key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "grant/grant.h"

static const char hex[] = "0123456789abcdef";

int
grant_identity_key(const struct grant_identity *id, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	size_t n = 0;
	int w;

	if (cap == 0)
		return -ENAMETOOLONG;
	out[0] = '\0';
	switch (id->kind) {
	case GRANT_ID_ADDRESS:
		if (!inet_ntop(AF_INET6, &id->v6, a, sizeof(a)))
			return -EINVAL;
		w = snprintf(out, cap, "anon:%s", a);
		break;
	case GRANT_ID_USER:
	case GRANT_ID_CERT:
		if (!id->name || !id->name[0])
			return -EINVAL;
		w = snprintf(out, cap, "%s:%s", id->kind == GRANT_ID_USER ? "tsp" : "cert",
		             id->name);
		break;
	case GRANT_ID_DUID:
		if (id->duid_len == 0 || id->duid_len > GRANT_DUID_MAX)
			return -EINVAL;
		if (cap < 6 + 2 * id->duid_len + 9 + 1) {
			out[0] = '\0';
			return -ENAMETOOLONG;
		}
		/*
		 * Spelt by hand: every DHCPv6 message names its leases by this key,
		 * and a snprintf per DUID byte was a tenth of the exchange's time.
		 */
		memcpy(out, "dhcp6:", 6);
		n = 6;
		for (size_t i = 0; i < id->duid_len; i++) {
			out[n++] = hex[id->duid[i] >> 4];
			out[n++] = hex[id->duid[i] & 15];
		}
		out[n++] = ':';
		for (int s = 28; s >= 0; s -= 4)
			out[n++] = hex[(id->iaid >> s) & 15];
		out[n] = '\0';
		w = (int)n;
		break;
	default:
		return -EINVAL;
	}
	if (w < 0 || (size_t)w >= cap) {
		out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

bool
grant_identity_parse(const char *key, struct grant_identity *id)
{
	const char *p;

	memset(id, 0, sizeof(*id));
	if (!strncmp(key, "anon:", 5)) {
		id->kind = GRANT_ID_ADDRESS;
		return inet_pton(AF_INET6, key + 5, &id->v6) == 1;
	}
	if (!strncmp(key, "tsp:", 4) || !strncmp(key, "cert:", 5)) {
		id->kind = key[0] == 't' ? GRANT_ID_USER : GRANT_ID_CERT;
		id->name = strchr(key, ':') + 1;
		return id->name[0] != '\0';
	}
	if (strncmp(key, "dhcp6:", 6) != 0)
		return false;
	/* "dhcp6:" hex pairs ":" eight hex digits. */
	id->kind = GRANT_ID_DUID;
	for (p = key + 6; *p && *p != ':'; p += 2) {
		int hi = hexval(p[0]), lo = p[1] ? hexval(p[1]) : -1;

		if (hi < 0 || lo < 0 || id->duid_len >= GRANT_DUID_MAX)
			return false;
		id->duid[id->duid_len++] = (uint8_t)(hi << 4 | lo);
	}
	if (*p != ':' || strlen(p + 1) != 8 || id->duid_len == 0)
		return false;
	for (int i = 1; i <= 8; i++) {
		int v = hexval(p[i]);

		if (v < 0)
			return false;
		id->iaid = id->iaid << 4 | (uint32_t)v;
	}
	return true;
}

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
