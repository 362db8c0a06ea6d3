/*
 * What the forwarding core's files share and nobody else needs: the IPv4
 * header parser both directions use, and the helpers that push headers
 * and build ICMPv4 errors. Byte access, checksums and header writers come
 * from the packet library (src/packet/pkt.h), shared with dstm-client.
 * Packet bytes are read field by field after one length check covers
 * them; no struct is laid over a packet.
 */
#ifndef DSTM_DP_INTERNAL_H
#define DSTM_DP_INTERNAL_H

#include <string.h>

#include "dataplane/dp.h"
#include "packet/pkt.h"

#define IP6_HLEN        PKT_IP6_HLEN
#define IP4_HLEN        PKT_IP4_HLEN
#define ICMP4_HLEN      PKT_ICMP4_HLEN
#define ICMP4_QUOTE_MAX PKT_ICMP4_QUOTE_MAX

#define PROTO_ICMP   PKT_PROTO_ICMP
#define PROTO_IPIP   PKT_PROTO_IPIP
#define PROTO_TCP    PKT_PROTO_TCP
#define PROTO_UDP    PKT_PROTO_UDP
#define PROTO_ICMPV6 PKT_PROTO_ICMPV6

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
