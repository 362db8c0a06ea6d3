/*
 * The IPv6 side of the TEP: 4in6 packets from DSTM clients are validated,
 * filtered on their sources and stripped toward the IPv4 network (seed 001
 * §7, seed 002 §5.2), or re-tunnelled to another client (hairpin); ICMPv6
 * Packet Too Big about our tunnel packets updates a client's path MTU
 * (RFC 2473 §7.2). A batch is processed in three passes so that the
 * binding table's cache misses overlap: parse and prefetch the hash line,
 * probe and prefetch the record, then filter and forward.
 */
#include <string.h>

#include "dataplane/bt_internal.h"
#include "dataplane/dp_internal.h"

#define IP6_MAX_EXT 8 /* extension headers we walk before giving up */

#define NH_HOPOPTS  0
#define NH_ROUTING  43
#define NH_FRAGMENT 44
#define NH_DSTOPTS  60

struct dmeta {
	struct v4info vi;
	uint32_t off; /* of the inner IPv4 header */
	uint32_t hash;
	struct bt_binding *b;
	bool live;
};

/*
 * The IPv4 header quoted in an ICMPv6 error: the quote is cut short, so
 * only the header itself and the ports are required.
 */
static bool
quote_parse(const uint8_t *q, uint32_t n, struct v4info *vi)
{
	uint32_t hlen;

	memset(vi, 0, sizeof(*vi));
	if (n < IP4_HLEN || (q[0] >> 4) != 4)
		return false;
	hlen = (uint32_t)(q[0] & 0x0f) * 4;
	if (hlen < IP4_HLEN || hlen > n)
		return false;
	vi->hlen = (uint8_t)hlen;
	vi->proto = q[9];
	vi->src = pkt_ld32(q + 12);
	vi->dst = pkt_ld32(q + 16);
	vi->df = (pkt_ld16(q + 6) & 0x4000) != 0;
	vi->first_frag = (pkt_ld16(q + 6) & 0x1fff) == 0;
	vi->tot_len = pkt_ld16(q + 2);
	if (vi->first_frag && (vi->proto == PROTO_TCP || vi->proto == PROTO_UDP) && n >= hlen + 4) {
		vi->sport = pkt_ld16(q + hlen);
		vi->dport = pkt_ld16(q + hlen + 2);
		vi->has_ports = true;
	} else if (vi->first_frag && vi->proto == PROTO_ICMP && n >= hlen + 8) {
		uint8_t t = q[hlen];

		vi->icmp_error = t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
		if (t == 0 || t == 8) {
			vi->sport = vi->dport = pkt_ld16(q + hlen + 4);
			vi->has_ports = true;
		}
	}
	return true;
}

/* ICMPv6 to the TEP: only Packet Too Big about our own tunnel packets acts. */
static void
icmp6_in(struct dp *dp, struct dp_pkt *pkt, uint32_t off)
{
	uint8_t *p = pkt->data, *ic = p + off, *q, *inner;
	uint32_t n = pkt->len - off, mtu, qn;
	uint64_t sum;
	struct v4info vi;
	struct bt_binding *b;

	dp_count(dp, DPC_icmp6_rx);
	if (n < 8) {
		dp_drop(dp, pkt, DPC_drop_icmp6_truncated);
		return;
	}
	/* RFC 4443 §2.3: the checksum covers the RFC 8200 §8.1 pseudo-header. */
	sum = pkt_csum_add(0, p + 8, 32) + n + PROTO_ICMPV6;
	if (pkt_csum_fold(pkt_csum_add(sum, ic, n)) != 0) {
		dp_drop(dp, pkt, DPC_drop_icmp6_checksum);
		return;
	}
	if (ic[0] != 2 || ic[1] != 0) {
		dp_drop(dp, pkt, DPC_drop_icmp6_ignored);
		return;
	}
	mtu = pkt_ld32(ic + 4);
	q = ic + 8;
	qn = n - 8;
	if (qn < IP6_HLEN + IP4_HLEN) {
		dp_drop(dp, pkt, DPC_drop_icmp6_truncated);
		return;
	}
	/* Ours: we sent it (source), it carried IPv4, and the client it went
	 * to holds the inner destination (a forged PTB cannot shrink the MTU
	 * of someone else's tunnel without knowing its addresses). */
	inner = q + IP6_HLEN;
	if (memcmp(q + 8, &dp->cfg.tep6, 16) != 0 || q[6] != PROTO_IPIP ||
	    !quote_parse(inner, qn - IP6_HLEN, &vi)) {
		dp_drop(dp, pkt, DPC_drop_icmp6_not_ours);
		return;
	}
	b = bt_lookup(dp->bt, vi.dst, vi.dport);
	if (!b || memcmp(&b->v6, q + 24, 16) != 0) {
		dp_drop(dp, pkt, DPC_drop_icmp6_not_ours);
		return;
	}
	/* RFC 8201 §4: never below the IPv6 minimum. */
	if (mtu < DP_IPV6_MIN_MTU)
		mtu = DP_IPV6_MIN_MTU;
	if (mtu > 65535)
		mtu = 65535;
	if (b->mtu == 0 || mtu < b->mtu) {
		b->mtu = (uint16_t)mtu;
		dp_count(dp, DPC_pmtu_updates);
	}
	pkt->verdict = DP_DROP;
	pkt->bd = b;
	/* RFC 2473 §7.2: the IPv4 sender learns it as fragmentation-needed. */
	if (vi.df)
		dp_icmp4_error(dp, pkt, inner, qn - IP6_HLEN, &vi, 3, 4, mtu - IP6_HLEN);
}

/* Validate the outer header and the inner IPv4 header; false when done with. */
static bool
decap_parse(struct dp *dp, struct dp_pkt *pkt, struct dmeta *m)
{
	uint8_t *p = pkt->data;
	uint32_t len = pkt->len, off = IP6_HLEN, plen;
	enum dp_counter r;
	uint8_t nh;

	pkt->verdict = DP_DROP;
	pkt->bd = NULL;
	dp->ctr[DPC_rx_v6_pkts]++;
	dp->ctr[DPC_rx_v6_bytes] += len;
	if (len < IP6_HLEN) {
		dp_drop(dp, pkt, DPC_drop_v6_truncated);
		return false;
	}
	if ((p[0] >> 4) != 6) {
		dp_drop(dp, pkt, DPC_drop_v6_version);
		return false;
	}
	plen = pkt_ld16(p + 4);
	if (IP6_HLEN + plen > len) {
		dp_drop(dp, pkt, DPC_drop_v6_truncated);
		return false;
	}
	len = pkt->len = IP6_HLEN + plen;
	if (memcmp(p + 24, &dp->cfg.tep6, 16) != 0) {
		dp_drop(dp, pkt, DPC_drop_v6_not_for_us);
		return false;
	}
	nh = p[6];
	for (unsigned k = 0;; k++) {
		if (nh == PROTO_IPIP)
			break;
		if (nh == PROTO_ICMPV6) {
			icmp6_in(dp, pkt, off);
			return false;
		}
		if (k == IP6_MAX_EXT) {
			dp_drop(dp, pkt, DPC_drop_v6_ext_headers);
			return false;
		}
		if (nh == NH_FRAGMENT) {
			/* The raw socket gets reassembled packets; a whole
			 * frame (XDP) cannot be reassembled here. */
			dp_drop(dp, pkt, DPC_drop_v6_fragment);
			return false;
		}
		if (nh != NH_HOPOPTS && nh != NH_ROUTING && nh != NH_DSTOPTS) {
			dp_drop(dp, pkt, DPC_drop_v6_not_ipip);
			return false;
		}
		if (off + 8 > len) {
			dp_drop(dp, pkt, DPC_drop_v6_truncated);
			return false;
		}
		nh = p[off];
		off += ((uint32_t)p[off + 1] + 1) * 8;
		if (off > len) {
			dp_drop(dp, pkt, DPC_drop_v6_truncated);
			return false;
		}
	}
	r = dp_v4_parse(p + off, len - off, &m->vi);
	if (r) {
		dp_drop(dp, pkt, r);
		return false;
	}
	if (v4_martian(m->vi.dst)) {
		dp_drop(dp, pkt, DPC_drop_v4_martian);
		return false;
	}
	m->off = off;
	return true;
}

/* An outer source we may learn: unicast, not loopback, unspecified or mapped. */
static bool
learnable_v6(const uint8_t *a)
{
	static const uint8_t zero[10];

	if (a[0] == 0xff)
		return false;
	if (memcmp(a, zero, 10) == 0) /* ::, ::1, ::ffff:0:0/96, ::/96 */
		return false;
	return true;
}

static struct bt_binding *
learn(struct dp *dp, struct dp_pkt *pkt, struct dmeta *m, struct bt_binding *old)
{
	const uint8_t *src6 = pkt->data + 8;
	struct in6_addr a;
	struct bt_binding *b;

	if (!learnable_v6(src6)) {
		dp_drop(dp, pkt, DPC_drop_learn_bad_src);
		return NULL;
	}
	memcpy(&a, src6, 16);
	if (bt_add(dp->bt, m->vi.src, 0, 65535, &a, BT_F_LEARNED, &b) < 0) {
		dp_drop(dp, pkt, DPC_drop_learn_failed);
		return NULL;
	}
	dp_count(dp, old ? DPC_learn_replaced : DPC_learned);
	b->last_seen = dp->now_s;
	return b;
}

/* Send an ICMPv4 error about the inner packet back through the tunnel. */
static void
error_to_client(struct dp *dp, struct dp_pkt *pkt, struct dmeta *m, struct bt_binding *b,
                uint8_t type, uint8_t code, uint32_t info)
{
	if (!dp_icmp4_error(dp, pkt, pkt->data + m->off, m->vi.tot_len, &m->vi, type, code, info))
		return;
	dp_push_v6(dp, pkt, &b->v6, 0, PROTO_IPIP);
	pkt->dontfrag = true;
	pkt->bd = b;
	b->pkts_out++;
	b->bytes_out += pkt->len - IP6_HLEN;
}

/* A client's packet to another client's address goes straight back in. */
static void
hairpin(struct dp *dp, struct dp_pkt *pkt, struct dmeta *m, struct bt_binding *b)
{
	uint8_t *inner = pkt->data + m->off;
	uint32_t ilen = m->vi.tot_len;
	struct bt_binding *to;

	/* The error goes to a client: it must be about a packet that client
	 * sent (the same rule as from the IPv4 side, dp_encap()). */
	if (m->vi.icmp_error && m->vi.qsrc != m->vi.dst) {
		dp_drop(dp, pkt, DPC_drop_icmp4_forged_to_client);
		return;
	}
	if (!m->vi.first_frag && bt_is_shared(dp->bt, m->vi.dst)) {
		dp_drop(dp, pkt, DPC_drop_v4_frag_shared);
		return;
	}
	to = bt_lookup(dp->bt, m->vi.dst, m->vi.dport);
	if (!to || (!bt_whole(to) && !m->vi.has_ports)) {
		dp_drop(dp, pkt, DPC_drop_hairpin_no_binding);
		error_to_client(dp, pkt, m, b, 3, 1, 0);
		return;
	}
	if (ilen + IP6_HLEN > dp_client_mtu(dp, to)) {
		if (m->vi.df) {
			dp_drop(dp, pkt, DPC_drop_too_big_df);
			error_to_client(dp, pkt, m, b, 3, 4, dp_client_mtu(dp, to) - IP6_HLEN);
			return;
		}
		pkt->dontfrag = false;
		dp_count(dp, DPC_encap_v6_fragmented);
	} else {
		pkt->dontfrag = true;
	}
	/* Nobody else routes this packet: we are its router, TTL included. */
	pkt_ip4_dec_ttl(inner);
	b->pkts_in++;
	b->bytes_in += ilen;
	to->pkts_out++;
	to->bytes_out += ilen;
	dp_count(dp, DPC_hairpin_pkts);
	pkt->headroom += m->off;
	pkt->data = inner;
	pkt->len = ilen;
	dp_push_v6(dp, pkt, &to->v6, inner[1], PROTO_IPIP);
	pkt->bd = to;
}

/*
 * Why a packet from a shared address finds no binding of its sender: it
 * shows no port (a non-first fragment, a protocol without ports), or its
 * port is not the sender's; for an ICMP error that port is the quoted
 * packet's destination port, so the quote names someone else's flow.
 */
static enum dp_counter
shared_miss(const struct dp *dp, const struct v4info *vi)
{
	if (!vi->first_frag)
		return DPC_drop_v4_frag_shared;
	if (!vi->has_ports)
		return DPC_drop_v4_no_port;
	if (vi->icmp_error)
		return DPC_drop_icmp4_forged_from_client;
	/* An lwB4 (RFC 7596 §5.2) whose source port (or ICMP identifier)
	 * lies outside every bound set of the address. */
	return bt_is_psid(dp->bt, vi->src) ? DPC_drop_port_outside_set
	                                   : DPC_drop_port_outside_range;
}

/*
 * A keepalive (RFC 5572 §4.3): an ICMP echo request that a bound client
 * sends inside its tunnel to the keepalive address of its TSP reply. The
 * TEP answers it itself, back through the tunnel, whatever the IPv4 side
 * has at that address, and the binding counts as used (last_seen). Only a
 * whole, well-formed echo request is answered; anything else to that
 * address takes the ordinary path.
 */
static bool
keepalive(struct dp *dp, struct dp_pkt *pkt, struct dmeta *m, struct bt_binding *b)
{
	uint8_t *ip = pkt->data + m->off, *ic;
	uint32_t ilen = m->vi.tot_len, hl = m->vi.hlen;

	if (dp->cfg.keepalive4 == 0 || m->vi.dst != dp->cfg.keepalive4 ||
	    m->vi.proto != PROTO_ICMP || (pkt_ld16(ip + 6) & 0x3fff) != 0 || ilen < hl + ICMP4_HLEN)
		return false;
	ic = ip + hl;
	if (ic[0] != 8 || ic[1] != 0 || pkt_csum_fold(pkt_csum_add(0, ic, ilen - hl)) != 0)
		return false;
	/* RFC 792: the reply swaps the addresses; type 0, the rest echoed. */
	pkt_st32(ip + 12, m->vi.dst);
	pkt_st32(ip + 16, m->vi.src);
	ip[8] = 64;
	pkt_st16(ip + 10, 0);
	pkt_st16(ip + 10, pkt_csum_fold(pkt_csum_add(0, ip, hl)));
	ic[0] = 0;
	pkt_st16(ic + 2, 0);
	pkt_st16(ic + 2, pkt_csum_fold(pkt_csum_add(0, ic, ilen - hl)));
	pkt->headroom += m->off;
	pkt->data = ip;
	pkt->len = ilen;
	dp_push_v6(dp, pkt, &b->v6, 0, PROTO_IPIP);
	pkt->dontfrag = ilen + IP6_HLEN <= dp_client_mtu(dp, b);
	pkt->bd = b;
	b->pkts_in++;
	b->bytes_in += ilen;
	b->pkts_out++;
	b->bytes_out += ilen;
	b->last_seen = dp->now_s;
	dp_count(dp, DPC_keepalive_replies);
	return true;
}

static void
decap_finish(struct dp *dp, struct dp_pkt *pkt, struct dmeta *m)
{
	const uint8_t *src6 = pkt->data + 8;
	struct bt_binding *b = m->b;
	uint8_t *inner;

	/* An error a client sends is about a packet it received: one quoting
	 * a packet sent to another address is forged against its sender,
	 * (checked first, so that learn mode never learns from one). */
	if (m->vi.icmp_error && m->vi.qdst != m->vi.src) {
		dp_drop(dp, pkt, DPC_drop_icmp4_forged_from_client);
		return;
	}
	if (!b) {
		if (bt_is_shared(dp->bt, m->vi.src)) {
			dp_drop(dp, pkt, shared_miss(dp, &m->vi));
			return;
		}
		if (!dp->cfg.learn || !dp_in_pool(dp, m->vi.src)) {
			dp_drop(dp, pkt, DPC_drop_no_binding_src);
			return;
		}
		if (!(b = learn(dp, pkt, m, NULL)))
			return;
	} else {
		if (!bt_whole(b) && !m->vi.has_ports) {
			dp_drop(dp, pkt, shared_miss(dp, &m->vi));
			return;
		}
		if (memcmp(&b->v6, src6, 16) != 0 && m->vi.icmp_error && !bt_whole(b)) {
			/* The quoted port belongs to another client of the
			 * address: the error is about someone else's flow. */
			dp_drop(dp, pkt, DPC_drop_icmp4_forged_from_client);
			return;
		}
		if (memcmp(&b->v6, src6, 16) != 0) {
			/* Seed 002 §5.2 caches what traffic shows; a learned
			 * entry yields to another client only once idle, and
			 * never one dstmd or the operator set (seed 000). */
			if (!dp->cfg.learn || !(b->flags & BT_F_LEARNED) ||
			    (int32_t)(dp->now_s - b->last_seen) < (int32_t)dp->cfg.learn_idle) {
				dp_drop(dp, pkt, DPC_drop_spoofed_v6_src);
				return;
			}
			if (!(b = learn(dp, pkt, m, b)))
				return;
		}
		if ((b->flags & BT_F_LEARNED) && b->last_seen != dp->now_s)
			b->last_seen = dp->now_s;
	}
	if (keepalive(dp, pkt, m, b))
		return;
	if (m->vi.ttl <= 1) {
		dp_drop(dp, pkt, DPC_drop_ttl_expired);
		error_to_client(dp, pkt, m, b, 11, 0, 0);
		return;
	}
	if (dp_in_pool(dp, m->vi.dst)) {
		hairpin(dp, pkt, m, b);
		return;
	}
	inner = pkt->data + m->off;
	if (dp->cfg.decrement_ttl)
		pkt_ip4_dec_ttl(inner);
	pkt->headroom += m->off;
	pkt->data = inner;
	pkt->len = m->vi.tot_len;
	pkt->verdict = DP_TO_V4;
	pkt->bd = b;
	b->pkts_in++;
	b->bytes_in += pkt->len;
	dp->ctr[DPC_decap_pkts]++;
	dp->ctr[DPC_decap_bytes] += pkt->len;
}

void
dp_decap(struct dp *dp, struct dp_pkt *pkts, unsigned n)
{
	struct dmeta m[DP_BATCH];

	if (n > DP_BATCH)
		n = DP_BATCH;
	for (unsigned i = 0; i < n; i++) {
		m[i].live = decap_parse(dp, &pkts[i], &m[i]);
		if (m[i].live)
			m[i].hash = bt_prefetch_inline(dp->bt, m[i].vi.src);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!m[i].live)
			continue;
		m[i].b = bt_find_inline(dp->bt, m[i].hash, m[i].vi.src, m[i].vi.sport);
		if (m[i].b)
			__builtin_prefetch(m[i].b, 1);
	}
	for (unsigned i = 0; i < n; i++)
		if (m[i].live)
			decap_finish(dp, &pkts[i], &m[i]);
}
