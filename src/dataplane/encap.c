/*
 * The IPv4 side of the TEP: packets to a pool address are tunnelled to the
 * client that holds it (seed 001 §7: "IPv4 packets sent to the DSTM
 * clients IPv4 address can be tunneled back"). No binding, no tunnel: a
 * packet for an unbound pool address is answered with host unreachable
 * and never reaches a client. Too big for the client's path with DF set:
 * fragmentation-needed with the inner MTU; without DF the IPv6 packet is
 * sent for fragmentation (RFC 2473 §7.1). Batched like dp_decap().
 */
#include <string.h>

#include "dataplane/bt_internal.h"
#include "dataplane/dp_internal.h"

struct emeta {
	struct v4info vi;
	uint32_t hash;
	struct bt_binding *b;
	bool live;
};

static bool
encap_parse(struct dp *dp, struct dp_pkt *pkt, struct emeta *m)
{
	enum dp_counter r;

	pkt->verdict = DP_DROP;
	pkt->bd = NULL;
	dp->ctr[DPC_rx_v4_pkts]++;
	dp->ctr[DPC_rx_v4_bytes] += pkt->len;
	r = dp_v4_parse(pkt->data, pkt->len, &m->vi);
	if (r) {
		dp_drop(dp, pkt, r);
		return false;
	}
	pkt->len = m->vi.tot_len;
	return true;
}

static void
encap_finish(struct dp *dp, struct dp_pkt *pkt, struct emeta *m)
{
	struct bt_binding *b = m->b;
	uint32_t mtu;

	if (!b && !dp_in_pool(dp, m->vi.dst)) {
		dp_drop(dp, pkt, DPC_drop_not_in_pool);
		return;
	}
	/* An ICMPv4 error reaches only the client whose packet it quotes:
	 * quoted source = the error's destination (and the lookup used the
	 * quoted source port); otherwise it is injected against the client
	 * (whitepaper 004). */
	if (m->vi.icmp_error && m->vi.qsrc != m->vi.dst) {
		dp_drop(dp, pkt, DPC_drop_icmp4_forged_to_client);
		return;
	}
	if (!b) {
		if (bt_is_shared(dp->bt, m->vi.dst) && !m->vi.has_ports) {
			dp_drop(dp, pkt,
			        m->vi.first_frag ? DPC_drop_v4_no_port : DPC_drop_v4_frag_shared);
			return;
		}
		dp_drop(dp, pkt, DPC_drop_no_binding_dst);
		dp_icmp4_error(dp, pkt, pkt->data, pkt->len, &m->vi, 3, 1, 0);
		return;
	}
	if (!bt_whole(b) && !m->vi.has_ports) {
		dp_drop(dp, pkt, m->vi.first_frag ? DPC_drop_v4_no_port : DPC_drop_v4_frag_shared);
		return;
	}
	if (dp->cfg.decrement_ttl && m->vi.ttl <= 1) {
		dp_drop(dp, pkt, DPC_drop_ttl_expired);
		dp_icmp4_error(dp, pkt, pkt->data, pkt->len, &m->vi, 11, 0, 0);
		return;
	}
	mtu = dp_client_mtu(dp, b);
	if (pkt->len + 40 > mtu) {
		if (m->vi.df) {
			dp_drop(dp, pkt, DPC_drop_too_big_df);
			dp_icmp4_error(dp, pkt, pkt->data, pkt->len, &m->vi, 3, 4, mtu - 40);
			return;
		}
		pkt->dontfrag = false;
		dp_count(dp, DPC_encap_v6_fragmented);
	} else {
		pkt->dontfrag = true;
	}
	if (dp->cfg.decrement_ttl)
		pkt_ip4_dec_ttl(pkt->data);
	b->pkts_out++;
	b->bytes_out += pkt->len;
	dp->ctr[DPC_encap_pkts]++;
	dp->ctr[DPC_encap_bytes] += pkt->len;
	dp_push_v6(dp, pkt, &b->v6, pkt->data[1], PROTO_IPIP);
	pkt->bd = b;
}

void
dp_encap(struct dp *dp, struct dp_pkt *pkts, unsigned n)
{
	struct emeta m[DP_BATCH];

	if (n > DP_BATCH)
		n = DP_BATCH;
	for (unsigned i = 0; i < n; i++) {
		m[i].live = encap_parse(dp, &pkts[i], &m[i]);
		if (m[i].live)
			m[i].hash = bt_prefetch_inline(dp->bt, m[i].vi.dst);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!m[i].live)
			continue;
		m[i].b = bt_find_inline(dp->bt, m[i].hash, m[i].vi.dst, m[i].vi.dport);
		if (m[i].b)
			__builtin_prefetch(m[i].b, 1);
	}
	for (unsigned i = 0; i < n; i++)
		if (m[i].live)
			encap_finish(dp, &pkts[i], &m[i]);
}
