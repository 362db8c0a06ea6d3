/*
 * The packet library's functions that are not inline (pkt.h): the IPv4
 * check on the wire cursor, the ICMPv4 error header, the virtio_net_hdr
 * of TUN offloads, TCP segmentation (TSO done in userspace before
 * encapsulation, because the raw IPv6 socket must not fragment) and the
 * coalescing of received TCP segments (GRO done in userspace before the
 * TUN write). Every length is checked against the buffer before a byte
 * is touched; the result of a split or a merge is bytes a kernel would
 * have produced itself (Linux net/ipv4/tcp_offload.c, tcp_gso_segment).
 */
#include "packet/pkt.h"
#include "common/wire.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

bool
pkt_ip4_parse(const uint8_t *buf, size_t len, struct pkt4 *p)
{
	struct cur c = cur_make(buf, len);
	uint8_t vihl;
	uint16_t frag;

	vihl = cur_u8(&c);
	cur_u8(&c); /* TOS */
	p->total = cur_u16(&c);
	p->id = cur_u16(&c);
	frag = cur_u16(&c);
	cur_u8(&c); /* TTL */
	p->proto = cur_u8(&c);
	cur_u16(&c); /* checksum */
	p->src = cur_u32(&c);
	p->dst = cur_u32(&c);
	if (c.err || (vihl >> 4) != 4)
		return false;
	p->ihl = (uint8_t)((vihl & 0x0f) * 4);
	if (p->ihl < PKT_IP4_HLEN || p->total < p->ihl || p->total > len)
		return false;
	p->df = (frag & 0x4000) != 0;
	p->more = (frag & 0x2000) != 0;
	p->fragment = (frag & 0x1fff) != 0;
	return true;
}

size_t
pkt_icmp4_error_hdr(uint8_t *out, uint8_t type, uint8_t code, uint32_t info, uint32_t src,
                    uint32_t dst, uint16_t frag, size_t quote)
{
	uint8_t *ip = out, *ic = out + PKT_IP4_HLEN;
	size_t total = PKT_IP4_HLEN + PKT_ICMP4_HLEN + quote;

	ic[0] = type;
	ic[1] = code;
	pkt_st16(ic + 2, 0);
	pkt_st32(ic + 4, info);
	pkt_st16(ic + 2, pkt_csum_fold(pkt_csum_add(0, ic, PKT_ICMP4_HLEN + quote)));

	ip[0] = 0x45;
	ip[1] = 0xc0; /* internetwork control, as routers send their errors */
	pkt_st16(ip + 2, (uint16_t)total);
	pkt_st16(ip + 4, 0);
	pkt_st16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = PKT_PROTO_ICMP;
	pkt_st16(ip + 10, 0);
	pkt_st32(ip + 12, src);
	pkt_st32(ip + 16, dst);
	pkt_st16(ip + 10, pkt_csum_fold(pkt_csum_add(0, ip, PKT_IP4_HLEN)));
	return total;
}

/* ---- virtio_net_hdr ---- */

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void
st_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

bool
pkt_vnet_parse(const uint8_t *p, size_t len, struct pkt_vnet *v)
{
	if (len < PKT_VNET_HLEN)
		return false;
	v->flags = p[0];
	v->gso_type = p[1];
	v->hdr_len = le16(p + 2);
	v->gso_size = le16(p + 4);
	v->csum_start = le16(p + 6);
	v->csum_offset = le16(p + 8);
	return true;
}

void
pkt_vnet_write(uint8_t *p, const struct pkt_vnet *v)
{
	p[0] = v->flags;
	p[1] = v->gso_type;
	st_le16(p + 2, v->hdr_len);
	st_le16(p + 4, v->gso_size);
	st_le16(p + 6, v->csum_start);
	st_le16(p + 8, v->csum_offset);
}

bool
pkt_csum_complete(uint8_t *p, size_t len, const struct pkt_vnet *v)
{
	size_t start = v->csum_start, at = start + v->csum_offset;

	if (!(v->flags & PKT_VNET_F_NEEDS_CSUM))
		return true;
	if (start > len || at + 2 > len)
		return false;
	/* The field holds the pseudo-header sum: summing over it finishes the job. */
	pkt_st16(p + at, pkt_csum_fold(pkt_csum_add(0, p + start, len - start)));
	return true;
}

/* ---- Segmentation ---- */

/* The TCP header of an IPv4 packet: its length, or 0 when p is not one we split. */
static unsigned
tcp4_headers(const uint8_t *p, size_t len, struct pkt4 *ip)
{
	unsigned thl;

	if (!pkt_ip4_parse(p, len, ip) || ip->proto != PKT_PROTO_TCP || ip->fragment || ip->more)
		return 0;
	if ((size_t)ip->ihl + PKT_TCP_HLEN > ip->total)
		return 0;
	thl = (unsigned)(p[ip->ihl + 12] >> 4) * 4;
	if (thl < PKT_TCP_HLEN || (size_t)ip->ihl + thl > ip->total)
		return 0;
	return thl;
}

/* TCP checksum of header h[0..hlen) (IPv4 part first) followed by data. */
static uint16_t
tcp4_csum(const uint8_t *h, unsigned ihl, unsigned thl, const uint8_t *data, size_t n)
{
	uint64_t sum = pkt_pseudo4(pkt_ld32(h + 12), pkt_ld32(h + 16), PKT_PROTO_TCP, thl + n);

	/* thl is a multiple of 4: the data's words line up after the header's. */
	sum = pkt_csum_add(sum, h + ihl, thl);
	return pkt_csum_fold(pkt_csum_add(sum, data, n));
}

unsigned
pkt_tso4(const uint8_t *p, size_t len, unsigned mss, uint8_t *out, size_t stride, unsigned max_segs,
         uint16_t *lens)
{
	struct pkt4 ip;
	unsigned thl, hl, nseg;
	size_t payload;
	uint32_t seq;
	uint8_t flags;

	thl = tcp4_headers(p, len, &ip);
	if (!thl || mss == 0)
		return 0;
	hl = ip.ihl + thl;
	payload = ip.total - hl;
	nseg = payload ? (unsigned)((payload + mss - 1) / mss) : 1;
	if (nseg > max_segs || hl + (payload < mss ? payload : mss) > stride)
		return 0;
	seq = pkt_ld32(p + ip.ihl + 4);
	flags = p[ip.ihl + 13];
	for (unsigned i = 0; i < nseg; i++) {
		size_t off = (size_t)i * mss, n = payload - off < mss ? payload - off : mss;
		uint8_t *s = out + (size_t)i * stride, *t = s + ip.ihl, f = flags;

		memcpy(s, p, hl);
		memcpy(s + hl, p + hl + off, n);
		/* Linux tcp_gso_segment: ids count up, CWR only on the first,
		 * FIN and PSH only on the last. */
		pkt_st16(s + 2, (uint16_t)(hl + n));
		pkt_st16(s + 4, (uint16_t)(ip.id + i));
		pkt_st16(s + 10, 0);
		pkt_st16(s + 10, pkt_csum_fold(pkt_csum_add(0, s, ip.ihl)));
		if (i > 0)
			f &= (uint8_t)~TCP_CWR;
		if (i + 1 < nseg)
			f &= (uint8_t) ~(TCP_FIN | TCP_PSH);
		pkt_st32(t + 4, seq + (uint32_t)off);
		t[13] = f;
		pkt_st16(t + 16, 0);
		pkt_st16(t + 16, tcp4_csum(s, ip.ihl, thl, s + hl, n));
		lens[i] = (uint16_t)(hl + n);
	}
	return nseg;
}

/* ---- Coalescing ---- */

/*
 * Can segment p (parsed: ip, thl) follow what g holds? Everything that
 * the kernel's own GRO compares (tcp_gro_receive): addresses, ports,
 * ack, window, options, flags but PSH, TOS, TTL, DF; the sequence must
 * be the next one; every segment but the last has the first one's size.
 */
static bool
gro_fits(const struct pkt_gro *g, const uint8_t *p, const struct pkt4 *ip, unsigned thl, size_t n)
{
	const uint8_t *h = g->buf + PKT_VNET_HLEN, *ht = h + g->ihl, *pt = p + ip->ihl;

	if (ip->ihl != g->ihl || thl != g->thl)
		return false;
	if (g->len + n > g->max_len || n > g->mss || n == 0)
		return false;
	/* The last segment added was shorter than mss: nothing may follow. */
	if ((g->len - g->ihl - g->thl) % g->mss != 0)
		return false;
	if (memcmp(h + 12, p + 12, 8) != 0 || memcmp(ht, pt, 4) != 0) /* addresses, ports */
		return false;
	if (pkt_ld32(pt + 4) != g->next_seq)
		return false;
	if (memcmp(ht + 8, pt + 8, 4) != 0 || memcmp(ht + 14, pt + 14, 2) != 0) /* ack, window */
		return false;
	if (ht[13] & TCP_PSH)
		return false;
	if (pt[13] != ht[13] && pt[13] != (ht[13] | TCP_PSH))
		return false;
	if (h[1] != p[1] || h[8] != p[8] || (h[6] & 0x40) != (p[6] & 0x40))
		return false;
	return memcmp(ht + PKT_TCP_HLEN, pt + PKT_TCP_HLEN, thl - PKT_TCP_HLEN) == 0;
}

bool
pkt_gro_add(struct pkt_gro *g, const uint8_t *p, size_t len)
{
	uint8_t *h = g->buf + PKT_VNET_HLEN;
	struct pkt4 ip;
	unsigned thl;
	size_t n;

	thl = tcp4_headers(p, len, &ip);
	if (!thl) {
		if (g->len)
			return false;
		/* Not TCP: it passes alone, untouched. */
		if (len > g->max_len)
			return false;
		memcpy(h, p, len);
		g->len = len;
		g->segs = 1;
		g->mss = 0;
		return true;
	}
	n = ip.total - ip.ihl - thl;
	if (g->len) {
		if (g->mss == 0 || !gro_fits(g, p, &ip, thl, n))
			return false;
		/* A segment whose checksum is wrong must reach the kernel alone,
		 * which drops it; once merged, nothing would check it. */
		if (tcp4_csum(p, ip.ihl, thl, p + ip.ihl + thl, n) != 0)
			return false;
		memcpy(h + g->len, p + ip.ihl + thl, n);
		g->len += n;
		g->segs++;
		g->next_seq += (uint32_t)n;
		h[g->ihl + 13] |= p[ip.ihl + 13] & TCP_PSH;
		return true;
	}
	if (ip.total > g->max_len)
		return false;
	memcpy(h, p, ip.total);
	g->len = ip.total;
	g->segs = 1;
	g->ihl = ip.ihl;
	g->thl = (uint8_t)thl;
	g->next_seq = pkt_ld32(p + ip.ihl + 4) + (uint32_t)n;
	/* Only plain data segments start a train (no SYN, FIN, RST, URG). */
	if (n == 0 || (p[ip.ihl + 13] & (uint8_t) ~(TCP_ACK | TCP_PSH)) ||
	    tcp4_csum(p, ip.ihl, thl, p + ip.ihl + thl, n) != 0)
		g->mss = 0;
	else
		g->mss = (uint16_t)n;
	return true;
}

size_t
pkt_gro_finish(struct pkt_gro *g)
{
	uint8_t *h = g->buf + PKT_VNET_HLEN;
	struct pkt_vnet v = {0};
	size_t len = g->len;

	if (len == 0)
		return 0;
	if (g->segs > 1) {
		uint8_t *t = h + g->ihl;
		size_t tl = len - g->ihl;

		pkt_st16(h + 2, (uint16_t)len);
		pkt_st16(h + 10, 0);
		pkt_st16(h + 10, pkt_csum_fold(pkt_csum_add(0, h, g->ihl)));
		/* Partial checksum: the pseudo-header sum, folded, not complemented. */
		pkt_st16(t + 16,
		         (uint16_t)~pkt_csum_fold(pkt_pseudo4(pkt_ld32(h + 12), pkt_ld32(h + 16),
		                                              PKT_PROTO_TCP, (uint32_t)tl)));
		v.flags = PKT_VNET_F_NEEDS_CSUM;
		v.gso_type = PKT_VNET_GSO_TCPV4;
		v.hdr_len = (uint16_t)(g->ihl + g->thl);
		v.gso_size = g->mss;
		v.csum_start = g->ihl;
		v.csum_offset = 16;
	}
	pkt_vnet_write(g->buf, &v);
	g->len = 0;
	g->segs = 0;
	return PKT_VNET_HLEN + len;
}

bool
pkt_gso4_prepare(uint8_t *p, size_t len, unsigned mtu, struct pkt_vnet *v)
{
	struct pkt4 ip;
	unsigned thl, hl;
	uint16_t partial;
	uint8_t *t;

	thl = tcp4_headers(p, len, &ip);
	hl = ip.ihl + thl;
	if (!thl || ip.total <= mtu || mtu <= hl)
		return false;
	t = p + ip.ihl;
	partial = (uint16_t)~pkt_csum_fold(
	    pkt_pseudo4(ip.src, ip.dst, PKT_PROTO_TCP, (uint32_t)(ip.total - ip.ihl)));
	if (pkt_ld16(t + 16) != partial) {
		if (tcp4_csum(p, ip.ihl, thl, p + hl, ip.total - hl) != 0)
			return false;
		pkt_st16(t + 16, partial);
	}
	memset(v, 0, sizeof(*v));
	v->flags = PKT_VNET_F_NEEDS_CSUM;
	v->gso_type = PKT_VNET_GSO_TCPV4;
	v->hdr_len = (uint16_t)hl;
	v->gso_size = (uint16_t)(mtu - hl);
	v->csum_start = ip.ihl;
	v->csum_offset = 16;
	return true;
}
