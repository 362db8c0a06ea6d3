/*
 * The forwarding core's common parts: configuration, counters' names, the
 * IPv4 header validation both directions share, pushing the IPv6 header,
 * and the ICMPv4 errors the TEP sends (with their rate limit).
 */
#include <errno.h>
#include <string.h>

#include "dataplane/dp_internal.h"

static const char *const counter_names[DPC__COUNT] = {
#define DP_X_NAME(n) #n,
    DP_COUNTERS(DP_X_NAME)
#undef DP_X_NAME
};

const char *
dp_counter_name(enum dp_counter c)
{
	return (unsigned)c < DPC__COUNT ? counter_names[c] : "?";
}

int
dp_init(struct dp *dp, const struct dp_config *cfg, struct bt *bt)
{
	if (!bt || cfg->npools > DP_MAX_POOLS || cfg->mtu < DP_IPV6_MIN_MTU)
		return -EINVAL;
	memset(dp, 0, sizeof(*dp));
	dp->cfg = *cfg;
	if (!dp->cfg.hop_limit)
		dp->cfg.hop_limit = 64;
	dp->bt = bt;
	dp->icmp_tokens = (int64_t)cfg->icmp_rate * 1000;
	return 0;
}

void
dp_set_time(struct dp *dp, int64_t now_ms)
{
	dp->now_ms = now_ms;
	dp->now_s = (uint32_t)(now_ms / 1000);
}

bool
dp_in_pool(const struct dp *dp, uint32_t v4)
{
	for (unsigned i = 0; i < dp->cfg.npools; i++)
		if ((v4 & dp->cfg.pools[i].mask) == dp->cfg.pools[i].addr)
			return true;
	return false;
}

/* The ports of the L4 header at l4[0..n), from the point of view of its sender. */
static void
v4_ports(const uint8_t *l4, uint32_t n, uint8_t proto, struct v4info *vi)
{
	if ((proto == PROTO_TCP || proto == PROTO_UDP) && n >= 4) {
		vi->sport = pkt_ld16(l4);
		vi->dport = pkt_ld16(l4 + 2);
		vi->has_ports = true;
		return;
	}
	if (proto != PROTO_ICMP || n < 8)
		return;
	switch (l4[0]) {
	case 0:  /* echo reply */
	case 8:  /* echo request */
	case 13: /* timestamp */
	case 14: /* timestamp reply */
		/* The identifier plays the port (as NAT and lwAFTR use it). */
		vi->sport = vi->dport = pkt_ld16(l4 + 4);
		vi->has_ports = true;
		return;
	case 3:  /* destination unreachable */
	case 4:  /* source quench */
	case 5:  /* redirect */
	case 11: /* time exceeded */
	case 12: /* parameter problem */
		vi->icmp_error = true;
		/* The quoted packet travelled the other way: its destination
		 * port is this sender's, its source port the receiver's. */
		if (n >= 8 + IP4_HLEN) {
			const uint8_t *q = l4 + 8;
			uint32_t qh = (uint32_t)(q[0] & 0x0f) * 4;
			uint8_t qp = q[9];

			/* RFC 792: the error quotes the internet header of
			 * the datagram it is about (and 64 bits of its data). */
			if ((q[0] >> 4) == 4 && qh >= IP4_HLEN && n >= 8 + qh) {
				vi->has_quote = true;
				vi->qsrc = pkt_ld32(q + 12);
				vi->qdst = pkt_ld32(q + 16);
			}
			if ((q[0] >> 4) == 4 && qh >= IP4_HLEN && n >= 8 + qh + 4 &&
			    (pkt_ld16(q + 6) & 0x1fff) == 0) {
				if (qp == PROTO_TCP || qp == PROTO_UDP) {
					vi->sport = pkt_ld16(q + qh + 2);
					vi->dport = pkt_ld16(q + qh);
					vi->has_ports = true;
				} else if (qp == PROTO_ICMP && n >= 8 + qh + 8) {
					vi->sport = vi->dport = pkt_ld16(q + qh + 4);
					vi->has_ports = true;
				}
			}
		}
		return;
	default:
		return;
	}
}

enum dp_counter
dp_v4_parse(const uint8_t *p, uint32_t len, struct v4info *vi)
{
	uint32_t hlen, frag_off, payload;
	uint16_t frag;

	vi->has_ports = false;
	vi->icmp_error = false;
	vi->has_quote = false;
	vi->qsrc = vi->qdst = 0;
	vi->sport = vi->dport = 0;
	if (len < IP4_HLEN)
		return DPC_drop_v4_truncated;
	if ((p[0] >> 4) != 4)
		return DPC_drop_v4_version;
	hlen = (uint32_t)(p[0] & 0x0f) * 4;
	if (hlen < IP4_HLEN)
		return DPC_drop_v4_ihl;
	if (hlen > len)
		return DPC_drop_v4_truncated;
	vi->tot_len = pkt_ld16(p + 2);
	if (vi->tot_len < hlen)
		return DPC_drop_v4_length;
	if (vi->tot_len > len)
		return DPC_drop_v4_truncated;
	if (pkt_csum_fold(pkt_csum_add(0, p, hlen)) != 0)
		return DPC_drop_v4_checksum;
	vi->hlen = (uint8_t)hlen;
	vi->ttl = p[8];
	vi->proto = p[9];
	vi->src = pkt_ld32(p + 12);
	vi->dst = pkt_ld32(p + 16);
	frag = pkt_ld16(p + 6);
	vi->df = (frag & 0x4000) != 0;
	frag_off = (uint32_t)(frag & 0x1fff) * 8;
	payload = vi->tot_len - hlen;
	vi->first_frag = frag_off == 0;
	/* The reserved flag must be zero; a fragment may not end past 65535. */
	if ((frag & 0x8000) || frag_off + payload > 65535)
		return DPC_drop_v4_fragment;
	if (frag_off == 0) {
		/* RFC 1858 §3.1: a first fragment too short for the transport
		 * header hides the ports from a filter. */
		if (frag & 0x2000) {
			uint32_t need = vi->proto == PROTO_TCP    ? 20
			                : vi->proto == PROTO_UDP  ? 8
			                : vi->proto == PROTO_ICMP ? 8
			                                          : 0;
			if (payload < need)
				return DPC_drop_v4_frag_tiny;
		}
		v4_ports(p + hlen, payload, vi->proto, vi);
		/* An error that shows no packet cannot be checked against
		 * the client it concerns: treat it as injected (whitepaper
		 * 004). */
		if (vi->icmp_error && !vi->has_quote)
			return DPC_drop_icmp4_quote_bad;
	} else if (frag_off == 8 && vi->proto == PROTO_TCP) {
		/* RFC 1858 §4, RFC 3128: offset 1 overlaps the first
		 * fragment's TCP header and rewrites its flags; no sender
		 * fragments that way. */
		return DPC_drop_v4_frag_overlap;
	}
	return 0;
}

void
dp_push_v6(struct dp *dp, struct dp_pkt *pkt, const struct in6_addr *dst, uint8_t tclass,
           uint8_t nh)
{
	uint8_t *h = pkt->data - IP6_HLEN;

	/* RFC 2473 §6.6 lets the traffic class follow the inner packet's. */
	pkt_ip6_hdr(h, tclass, (uint16_t)pkt->len, nh, dp->cfg.hop_limit, &dp->cfg.tep6, dst);
	pkt->data = h;
	pkt->len += IP6_HLEN;
	pkt->headroom -= IP6_HLEN;
	pkt->dst6 = *dst;
	pkt->verdict = DP_TO_V6;
}

static bool
icmp_allow(struct dp *dp)
{
	int64_t cap = (int64_t)dp->cfg.icmp_rate * 1000;
	int64_t dt = dp->now_ms - dp->icmp_last_ms;

	if (dt > 0) {
		/* icmp_rate tokens a second: rate thousandths a millisecond. */
		dp->icmp_tokens += dt * dp->cfg.icmp_rate;
		if (dp->icmp_tokens > cap)
			dp->icmp_tokens = cap;
		dp->icmp_last_ms = dp->now_ms;
	}
	if (dp->icmp_tokens < 1000)
		return false;
	dp->icmp_tokens -= 1000;
	return true;
}

bool
dp_icmp4_error(struct dp *dp, struct dp_pkt *pkt, uint8_t *orig, uint32_t orig_len,
               const struct v4info *vi, uint8_t type, uint8_t code, uint32_t info)
{
	uint8_t *ip = orig - IP4_HLEN - ICMP4_HLEN;
	uint32_t quote = orig_len < ICMP4_QUOTE_MAX ? orig_len : ICMP4_QUOTE_MAX;

	/* RFC 1812 §4.3.2.7: never about an ICMP error, a non-first
	 * fragment, or a packet whose source names no single host. */
	if (vi->icmp_error || !vi->first_frag || v4_martian(vi->src)) {
		dp_count(dp, DPC_icmp4_suppressed);
		return false;
	}
	if (ip < pkt->data - pkt->headroom) {
		dp_count(dp, DPC_icmp4_suppressed);
		return false;
	}
	if (!icmp_allow(dp)) {
		dp_count(dp, DPC_icmp4_rate_limited);
		return false;
	}
	pkt_icmp4_error_hdr(ip, type, code, info, dp->cfg.tep4, vi->src, 0, quote);

	pkt->headroom = (uint32_t)((int64_t)pkt->headroom + (ip - pkt->data));
	pkt->data = ip;
	pkt->len = IP4_HLEN + ICMP4_HLEN + quote;
	pkt->verdict = DP_TO_V4;
	if (type == 3 && code == 4)
		dp_count(dp, DPC_icmp4_sent_frag_needed);
	else if (type == 11)
		dp_count(dp, DPC_icmp4_sent_time_exceeded);
	else
		dp_count(dp, DPC_icmp4_sent_unreach);
	return true;
}

void
dp_too_big(struct dp *dp, struct dp_pkt *pkt, uint32_t mtu)
{
	uint8_t *inner = pkt->data + IP6_HLEN;
	uint32_t inner_len = pkt->len - IP6_HLEN;
	struct v4info vi;
	struct bt_binding *b = pkt->bd;

	dp_count(dp, DPC_tx_v6_emsgsize);
	if (mtu < DP_IPV6_MIN_MTU)
		mtu = DP_IPV6_MIN_MTU;
	if (b && (b->mtu == 0 || mtu < b->mtu)) {
		b->mtu = (uint16_t)(mtu > 65535 ? 65535 : mtu);
		dp_count(dp, DPC_pmtu_updates);
	}
	if (pkt->verdict != DP_TO_V6 || pkt->len < IP6_HLEN || pkt->data[6] != PROTO_IPIP ||
	    dp_v4_parse(inner, inner_len, &vi) != 0) {
		dp_drop(dp, pkt, DPC_drop_too_big_df);
		return;
	}
	if (!vi.df) {
		/* RFC 2473 §7.1: without DF the tunnel packet is fragmented. */
		pkt->dontfrag = false;
		dp_count(dp, DPC_encap_v6_fragmented);
		return;
	}
	pkt->data = inner;
	pkt->len = inner_len;
	pkt->headroom += IP6_HLEN;
	if (!dp_icmp4_error(dp, pkt, inner, inner_len, &vi, 3, 4, mtu - IP6_HLEN))
		pkt->verdict = DP_DROP;
	dp_count(dp, DPC_drop_too_big_df);
}

unsigned
dp_expire(struct dp *dp, unsigned budget)
{
	unsigned n;

	if (!dp->cfg.learn)
		return 0;
	n = bt_expire_learned(dp->bt, dp->now_s - dp->cfg.learn_idle, budget);
	dp->ctr[DPC_learn_expired] += n;
	return n;
}
