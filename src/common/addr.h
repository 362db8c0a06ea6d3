/*
 * Address parsing and formatting shared by every module: IPv4, IPv6,
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, how DHCPv6 carries a DSTM address),
 * prefixes and "address:port" endpoints. IPv4 addresses travel as
 * uint32_t in host byte order inside the suite (pool offsets are then
 * plain arithmetic) and as struct in_addr only at the socket boundary.
 */
#ifndef DSTM_ADDR_H
#define DSTM_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_STRLEN 64 /* room for any address, prefix or endpoint we format */

bool addr_parse_v4(const char *s, uint32_t *out);
bool addr_parse_v6(const char *s, struct in6_addr *out);
/* "a.b.c.d/len": false if malformed or if host bits are set. */
bool addr_parse_prefix4(const char *s, uint32_t *addr, unsigned *plen);
bool addr_parse_prefix6(const char *s, struct in6_addr *addr, unsigned *plen);

/* Format into buf (ADDR_STRLEN bytes); return buf. */
const char *addr_fmt_v4(uint32_t a, char *buf);
const char *addr_fmt_v6(const struct in6_addr *a, char *buf);

void addr_v4_mapped(struct in6_addr *out, uint32_t v4);
bool addr_is_v4_mapped(const struct in6_addr *a, uint32_t *v4);

uint32_t addr_mask4(unsigned plen);
bool addr_v6_in_prefix(const struct in6_addr *a, const struct in6_addr *prefix, unsigned plen);

/*
 * "[v6]:port", "v6", "v4:port", "v4": fill a sockaddr; port defaults to
 * `dflt`. A bare IPv6 address may not carry a port (use brackets).
 */
bool addr_parse_endpoint(const char *s, uint16_t dflt, struct sockaddr_storage *ss, socklen_t *len);
const char *addr_fmt_sockaddr(const struct sockaddr *sa, char *buf);

#endif
