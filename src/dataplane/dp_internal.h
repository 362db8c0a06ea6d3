/*
 * What the forwarding core's files share and nobody else needs: big-endian
 * loads and stores on packet bytes, the Internet checksum (RFC 1071) with
 * its incremental update (RFC 1624), the IPv4 header parser both
 * directions use, and the helpers that push headers and build ICMPv4
 * errors. Packet bytes are read field by field after one length check
 * covers them; no struct is laid over a packet.
 */
#ifndef DSTM_DP_INTERNAL_H
#define DSTM_DP_INTERNAL_H

#include <string.h>

#include "dataplane/dp.h"

#define IP6_HLEN        40
#define IP4_HLEN        20
#define ICMP4_HLEN      8
#define ICMP4_QUOTE_MAX (576 - IP4_HLEN - ICMP4_HLEN) /* RFC 1812 §4.3.2.3 */

#define PROTO_ICMP   1
#define PROTO_IPIP   4
#define PROTO_TCP    6
#define PROTO_UDP    17
#define PROTO_ICMPV6 58

static inline uint16_t
ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

static inline void
st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
st32(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
}

/* One's-complement sum of n bytes, as 16-bit big-endian words, added to sum. */
static inline uint64_t
csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w = __builtin_bswap64(w);
		sum += (w >> 32) + (w & 0xffffffffu);
		p += 8;
		n -= 8;
	}
	while (n >= 2) {
		sum += ld16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		sum += (uint64_t)p[0] << 8;
	return sum;
}

/* Fold to 16 bits and complement: the value to store in a checksum field. */
static inline uint16_t
csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* IPv4 TTL decrement with the RFC 1624 checksum update (as Linux's ip_decrease_ttl). */
static inline void
ip4_dec_ttl(uint8_t *ip)
{
	uint32_t check = ld16(ip + 10);

	check += 0x0100;
	st16(ip + 10, (uint16_t)(check + (check >= 0xffff)));
	ip[8]--;
}

/* What dp_v4_parse() learns from an IPv4 header. */
struct v4info {
	uint32_t src, dst;
	uint16_t tot_len;
	uint16_t sport; /* the port on the sender's side, for the source filter */
	uint16_t dport; /* the port on the receiver's side, for the return lookup */
	uint8_t hlen, proto, ttl;
	bool has_ports;
	bool df;
	bool first_frag;     /* offset 0 (a whole packet or a first fragment) */
	bool icmp_error;     /* an ICMPv4 error message (never answered by another) */
	bool has_quote;      /* icmp_error: the quoted IPv4 header is there */
	uint32_t qsrc, qdst; /* has_quote: the quoted packet's addresses */
};

/*
 * Validate the IPv4 packet at p[0..len) and describe it. Returns 0 or the
 * drop counter that applies. tot_len may be less than len (padding).
 */
enum dp_counter dp_v4_parse(const uint8_t *p, uint32_t len, struct v4info *vi);

/* Is `a` an address no packet should come from or go to? */
static inline bool
v4_martian(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 14;
}

static inline void
dp_count(struct dp *dp, enum dp_counter c)
{
	dp->ctr[c]++;
}

static inline void
dp_drop(struct dp *dp, struct dp_pkt *pkt, enum dp_counter c)
{
	dp->ctr[c]++;
	pkt->verdict = DP_DROP;
}

static inline bool
bt_whole(const struct bt_binding *b)
{
	return !(b->flags & BT_F_PSID) && b->port_lo == 0 && b->port_hi == 65535;
}

/* Push an IPv6 header (4in6 unless next header says otherwise) before data. */
void dp_push_v6(struct dp *dp, struct dp_pkt *pkt, const struct in6_addr *dst, uint8_t tclass,
                uint8_t nh);

/*
 * Replace the packet with an ICMPv4 error about the IPv4 packet at `orig`
 * (inside pkt's buffer), sent to `to` from our IPv4 address. `info` is the
 * 32-bit field after the checksum (the next-hop MTU of a
 * fragmentation-needed). Returns false, leaving the packet alone, when
 * the error must not or may not be sent now (RFC 1812 §4.3.2.7 rules,
 * rate limit); the reason is counted.
 */
bool dp_icmp4_error(struct dp *dp, struct dp_pkt *pkt, uint8_t *orig, uint32_t orig_len,
                    const struct v4info *vi, uint8_t type, uint8_t code, uint32_t info);

/* The IPv6 path MTU toward a client. */
static inline uint32_t
dp_client_mtu(const struct dp *dp, const struct bt_binding *b)
{
	return b->mtu ? b->mtu : dp->cfg.mtu;
}

#endif
