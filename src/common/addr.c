/*
 * Address parsing and formatting: see addr.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

bool
addr_parse_v4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

bool
addr_parse_v6(const char *s, struct in6_addr *out)
{
	return inet_pton(AF_INET6, s, out) == 1;
}

static bool
split_prefix(const char *s, char *host, size_t hostlen, unsigned *plen, unsigned max)
{
	const char *slash = strchr(s, '/');
	char *end;
	unsigned long n;

	if (!slash || (size_t)(slash - s) >= hostlen || slash[1] == '\0')
		return false;
	memcpy(host, s, (size_t)(slash - s));
	host[slash - s] = '\0';
	n = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || n > max || slash[1] == '-' || slash[1] == '+')
		return false;
	*plen = (unsigned)n;
	return true;
}

uint32_t
addr_mask4(unsigned plen)
{
	return plen == 0 ? 0 : 0xffffffffu << (32 - plen);
}

bool
addr_parse_prefix4(const char *s, uint32_t *addr, unsigned *plen)
{
	char host[INET_ADDRSTRLEN];

	if (!split_prefix(s, host, sizeof(host), plen, 32) || !addr_parse_v4(host, addr))
		return false;
	return (*addr & ~addr_mask4(*plen)) == 0;
}

bool
addr_parse_prefix6(const char *s, struct in6_addr *addr, unsigned *plen)
{
	char host[INET6_ADDRSTRLEN];
	struct in6_addr masked;

	if (!split_prefix(s, host, sizeof(host), plen, 128) || !addr_parse_v6(host, addr))
		return false;
	memset(&masked, 0, sizeof(masked));
	for (unsigned i = 0; i < *plen; i++)
		if (addr->s6_addr[i / 8] & (0x80 >> (i % 8)))
			masked.s6_addr[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	return memcmp(&masked, addr, sizeof(masked)) == 0;
}

const char *
addr_fmt_v4(uint32_t a, char *buf)
{
	snprintf(buf, ADDR_STRLEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
	         a & 0xff);
	return buf;
}

const char *
addr_fmt_v6(const struct in6_addr *a, char *buf)
{
	if (!inet_ntop(AF_INET6, a, buf, ADDR_STRLEN))
		snprintf(buf, ADDR_STRLEN, "?");
	return buf;
}

void
addr_v4_mapped(struct in6_addr *out, uint32_t v4)
{
	memset(out, 0, sizeof(*out));
	out->s6_addr[10] = 0xff;
	out->s6_addr[11] = 0xff;
	out->s6_addr[12] = (uint8_t)(v4 >> 24);
	out->s6_addr[13] = (uint8_t)(v4 >> 16);
	out->s6_addr[14] = (uint8_t)(v4 >> 8);
	out->s6_addr[15] = (uint8_t)v4;
}

bool
addr_is_v4_mapped(const struct in6_addr *a, uint32_t *v4)
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(a->s6_addr, pfx, sizeof(pfx)) != 0)
		return false;
	if (v4)
		*v4 = (uint32_t)a->s6_addr[12] << 24 | (uint32_t)a->s6_addr[13] << 16 |
		      (uint32_t)a->s6_addr[14] << 8 | a->s6_addr[15];
	return true;
}

bool
addr_v6_in_prefix(const struct in6_addr *a, const struct in6_addr *prefix, unsigned plen)
{
	unsigned bytes = plen / 8, bits = plen % 8;

	if (plen > 128)
		return false;
	if (memcmp(a->s6_addr, prefix->s6_addr, bytes) != 0)
		return false;
	if (bits) {
		uint8_t m = (uint8_t)(0xff << (8 - bits));
		if ((a->s6_addr[bytes] & m) != (prefix->s6_addr[bytes] & m))
			return false;
	}
	return true;
}

static bool
parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long n;

	if (*s < '0' || *s > '9')
		return false;
	n = strtoul(s, &end, 10);
	if (*end != '\0' || n == 0 || n > 65535)
		return false;
	*port = (uint16_t)n;
	return true;
}

bool
addr_parse_endpoint(const char *s, uint16_t dflt, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	uint16_t port = dflt;
	const char *colon;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (size_t)(close - s - 1) >= sizeof(host))
			return false;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		if (close[1] == ':') {
			if (!parse_port(close + 2, &port))
				return false;
		} else if (close[1] != '\0') {
			return false;
		}
		goto v6;
	}
	if (strchr(s, ':') && strchr(s, ':') != strrchr(s, ':')) {
		/* Two colons or more: a bare IPv6 address, no port. */
		if (strlen(s) >= sizeof(host))
			return false;
		strcpy(host, s);
		goto v6;
	}
	colon = strchr(s, ':');
	if (colon) {
		if ((size_t)(colon - s) >= sizeof(host) || !parse_port(colon + 1, &port))
			return false;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	} else {
		if (strlen(s) >= sizeof(host))
			return false;
		strcpy(host, s);
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return false;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	*len = sizeof(*s4);
	return true;
v6:
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
		return false;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	*len = sizeof(*s6);
	return true;
}

const char *
addr_fmt_sockaddr(const struct sockaddr *sa, char *buf)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, ADDR_STRLEN, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, ADDR_STRLEN, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		snprintf(buf, ADDR_STRLEN, "(family %d)", sa->sa_family);
	}
	return buf;
}
