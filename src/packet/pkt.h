/*
 * The packet library: what the TEP's forwarding core (src/dataplane) and
 * dstm-client both need from IPv4, IPv6, ICMP and TCP bytes, written once.
 *   - big-endian loads and stores on packet bytes (pkt_ld16 ...), inline;
 *   - the Internet checksum (RFC 1071) with 64-bit accumulation and its
 *     incremental update (RFC 1624), inline, because the data plane runs
 *     them per packet;
 *   - the IPv4 header check on the wire cursor (pkt_ip4_parse), the IPv6
 *     header writer and the ICMPv4 error writer;
 *   - offload support for TUN devices opened with IFF_VNET_HDR: splitting
 *     a TCP super-packet into MSS-sized segments (pkt_tso_*) and merging
 *     in-order TCP segments of one flow back into one (pkt_gro_*).
 * Pure functions over caller buffers: no allocation, no I/O, so unit
 * tests and fuzzers drive them directly. No struct is laid over packet
 * bytes; fields are read and written one by one.
 */
#ifndef DSTM_PKT_H
#define DSTM_PKT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PKT_IP4_HLEN        20
#define PKT_IP6_HLEN        40
#define PKT_ICMP4_HLEN      8
#define PKT_TCP_HLEN        20
#define PKT_ICMP4_QUOTE_MAX (576 - PKT_IP4_HLEN - PKT_ICMP4_HLEN) /* RFC 1812 §4.3.2.3 */

#define PKT_PROTO_ICMP   1
#define PKT_PROTO_IPIP   4
#define PKT_PROTO_TCP    6
#define PKT_PROTO_UDP    17
#define PKT_PROTO_ICMPV6 58

/* ---- Bytes ---- */

static inline uint16_t
pkt_ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
pkt_ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

static inline void
pkt_st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
pkt_st32(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
}

/* ---- Checksums ---- */

/* One's-complement sum of n bytes, as 16-bit big-endian words, added to sum. */
static inline uint64_t
pkt_csum_add(uint64_t sum, const uint8_t *p, size_t n)
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
		sum += pkt_ld16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		sum += (uint64_t)p[0] << 8;
	return sum;
}

/* Fold to 16 bits and complement: the value to store in a checksum field. */
static inline uint16_t
pkt_csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The Internet checksum over buf plus `sum`, folded, not complemented. */
static inline uint16_t
pkt_csum(const void *buf, size_t len, uint32_t sum)
{
	return (uint16_t)~pkt_csum_fold(pkt_csum_add(sum, buf, len));
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a 32-bit field m -> m'. */
static inline uint16_t
pkt_csum_replace32(uint16_t hc, uint32_t from, uint32_t to)
{
	uint32_t sum = (uint16_t)~hc;

	sum += (uint16_t) ~(from >> 16);
	sum += (uint16_t) ~(from & 0xffff);
	sum += to >> 16;
	sum += to & 0xffff;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The TCP/UDP pseudo-header of IPv4 (RFC 793 §3.1), unfolded. */
static inline uint64_t
pkt_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint32_t l4len)
{
	return (uint64_t)(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto +
	       l4len;
}

/* ---- IPv4 ---- */

/* IPv4 TTL decrement with the RFC 1624 checksum update (as Linux's ip_decrease_ttl). */
static inline void
pkt_ip4_dec_ttl(uint8_t *ip)
{
	uint32_t check = pkt_ld16(ip + 10);

	check += 0x0100;
	pkt_st16(ip + 10, (uint16_t)(check + (check >= 0xffff)));
	ip[8]--;
}

/* Minimal view of an IPv4 packet, filled by pkt_ip4_parse(). */
struct pkt4 {
	uint8_t proto;
	uint8_t ihl;    /* header length in bytes */
	uint16_t total; /* total length */
	uint16_t id;
	uint32_t src, dst; /* host order */
	bool df, fragment; /* DF set; not the first fragment */
	bool more;         /* MF set */
};

/*
 * Check that buf[0..len) is one IPv4 packet: version 4, header length
 * >= 20 and within the packet, total length within len. Returns false
 * for anything else (the caller counts it as malformed). The header
 * checksum is not checked (the data plane's stricter parser does).
 */
bool pkt_ip4_parse(const uint8_t *buf, size_t len, struct pkt4 *p);

/*
 * Write the IPv4 and ICMPv4 headers of an ICMP error at out[0..28), the
 * quoted bytes already at out[28..28+quote): type, code, the 32-bit
 * `info` after the checksum (RFC 1191 §4: the next-hop MTU), from `src`
 * to `dst`, `frag` the flags/offset field. Both checksums are computed.
 * Returns the packet's length.
 */
size_t pkt_icmp4_error_hdr(uint8_t *out, uint8_t type, uint8_t code, uint32_t info, uint32_t src,
                           uint32_t dst, uint16_t frag, size_t quote);

/* ---- IPv6 ---- */

/* Write an IPv6 header at h (RFC 8200 §3): version 6, no flow label. */
static inline void
pkt_ip6_hdr(uint8_t *h, uint8_t tclass, uint16_t plen, uint8_t nh, uint8_t hop,
            const struct in6_addr *src, const struct in6_addr *dst)
{
	pkt_st32(h, 6u << 28 | (uint32_t)tclass << 20);
	pkt_st16(h + 4, plen);
	h[6] = nh;
	h[7] = hop;
	memcpy(h + 8, src, 16);
	memcpy(h + 24, dst, 16);
}

/* ---- TUN offloads (IFF_VNET_HDR) ---- */

/*
 * The virtio_net_hdr that precedes every packet on a TUN device opened
 * with IFF_VNET_HDR (Linux include/uapi/linux/virtio_net.h, little-endian
 * on x86 as the kernel's tun_is_little_endian() has it for IFF_VNET_LE
 * or a little-endian host). Read and written field by field.
 */
#define PKT_VNET_HLEN         10
#define PKT_VNET_F_NEEDS_CSUM 1
#define PKT_VNET_F_DATA_VALID 2
#define PKT_VNET_GSO_NONE     0
#define PKT_VNET_GSO_TCPV4    1
#define PKT_VNET_GSO_UDP      3
#define PKT_VNET_GSO_TCPV6    4
#define PKT_VNET_GSO_ECN      0x80

struct pkt_vnet {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

bool pkt_vnet_parse(const uint8_t *p, size_t len, struct pkt_vnet *v);
void pkt_vnet_write(uint8_t *p, const struct pkt_vnet *v);

/*
 * Complete a partial checksum (PKT_VNET_F_NEEDS_CSUM: the kernel left
 * the pseudo-header sum at csum_start + csum_offset). False when the
 * offsets do not fit the packet.
 */
bool pkt_csum_complete(uint8_t *p, size_t len, const struct pkt_vnet *v);

/*
 * Split the IPv4 TCP super-packet p[0..len) (gso_size `mss` bytes of
 * payload a segment) into segments written one after another into out,
 * each of at most `seg_max` bytes (a whole IPv4 packet) in a slot of
 * `stride` bytes. Each segment: its own IP id (id, id+1, ...), total
 * length and header checksum; sequence number advanced by the payload
 * before it; FIN and PSH only on the last, CWR only on the first; full
 * TCP checksum. Returns the number of segments, or 0 when the packet is
 * not an IPv4 TCP packet this can split or out is too small. lens[i]
 * receives each segment's length.
 */
unsigned pkt_tso4(const uint8_t *p, size_t len, unsigned mss, uint8_t *out, size_t stride,
                  unsigned max_segs, uint16_t *lens);

/*
 * Receive-side coalescing: TCP segments of one flow (same addresses,
 * ports, header layout), in sequence, no flags but ACK/PSH, same ack
 * number and window, no IP options, DF set as the first, are appended
 * to one super-packet with a virtio_net_hdr GSO_TCPV4 in front, until
 * `max_len` or a segment of a different size ends it (the last may be
 * shorter). The TCP checksum is left partial (NEEDS_CSUM, the
 * pseudo-header sum in place), as the kernel expects from a device
 * with checksum offload; a lone packet passes with no GSO.
 */
struct pkt_gro {
	uint8_t *buf; /* PKT_VNET_HLEN + max_len bytes */
	size_t max_len;
	size_t len; /* of the IPv4 packet after the vnet header; 0: empty */
	unsigned segs;
	uint16_t mss;
	uint32_t next_seq;
	uint8_t ihl, thl;
};

/*
 * Offer p[0..len) to g. True: it was appended (or started g). False: it
 * cannot join; the caller flushes g (pkt_gro_finish) and offers it again.
 */
bool pkt_gro_add(struct pkt_gro *g, const uint8_t *p, size_t len);
/* Write the vnet header and the IPv4 fields; returns bytes to write from g->buf. */
size_t pkt_gro_finish(struct pkt_gro *g);

/*
 * A TCP packet longer than `mtu` that came through a raw socket: the
 * kernel's GRO merged tunnelled segments on the way in (DESIGN §7). Its
 * TCP checksum is then the partial one GRO leaves (the pseudo-header sum,
 * after GRO verified every segment), or, from a reassembled packet, a
 * full one, which is checked and made partial. Fills `v` so that a TUN
 * device takes the packet as GSO_TCPV4 in segments that fit `mtu`.
 * False: neither checksum holds, or not such a packet; leave it alone.
 */
bool pkt_gso4_prepare(uint8_t *p, size_t len, unsigned mtu, struct pkt_vnet *v);

#endif
