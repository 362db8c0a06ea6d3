/*
 * libFuzzer harness of the TEP's decapsulation path (src/dataplane): the
 * input is a packet from the IPv6 side (outer header first), handed to
 * dp_decap() in a buffer with DP_HEADROOM before it, as the daemon's shell
 * does. The first byte picks the configuration (learn mode, TTL work, ICMP
 * rate) and is not part of the packet. Beyond the sanitizers, the harness
 * checks what the shell relies on: a forwarded packet lies inside its
 * buffer and is at least a header long, a TO_V6 packet starts with an IPv6
 * header naming the TEP as source, and every packet counted in is counted
 * out exactly once (forwarded or one drop counter, or an ICMPv6 handled),
 * and a client's ICMPv4 error is forwarded only about a packet sent to it.
 * A keepalive answer is a TO_V6 packet like any other and counts as out.
 */
#include "dp_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_config cfg;
	struct dp dp;
	struct dp_pkt pkt;
	uint64_t out;

	if (!fuzz_prepare(data, size, &cfg, &dp, &pkt))
		return 0;
	dp_decap(&dp, &pkt, 1);

	if (dp.ctr[DPC_rx_v6_pkts] != 1)
		abort();
	fuzz_check_forwarded(&pkt, &cfg);
	/* A client's ICMPv4 error leaves only about a packet sent to it. */
	if (pkt.verdict == DP_TO_V4 && dp.ctr[DPC_decap_pkts] == 1 && pkt.data[9] == 1 &&
	    (pkt.data[6] & 0x1f) == 0 && pkt.data[7] == 0) {
		uint32_t hl = (uint32_t)(pkt.data[0] & 0x0f) * 4;
		uint8_t t = pkt.len >= hl + 8 ? pkt.data[hl] : 0;

		if ((t == 3 || t == 4 || t == 5 || t == 11 || t == 12) &&
		    (pkt.len < hl + 28 || memcmp(pkt.data + hl + 8 + 16, pkt.data + 12, 4) != 0))
			abort();
	}
	/* Every packet ends exactly once: forwarded, dropped or consumed. */
	out = dp.ctr[DPC_decap_pkts] + dp.ctr[DPC_hairpin_pkts] + sum_drops(&dp) +
	      dp.ctr[DPC_pmtu_updates] + dp.ctr[DPC_keepalive_replies];
	if (out == 0) {
		/* A PTB that changed nothing (the MTU was already lower). */
		if (dp.ctr[DPC_icmp6_rx] != 1)
			abort();
	} else if (out != 1) {
		abort();
	}
	/* Learned bindings must not pile up across runs beyond the pool. */
	if (bt_count(bt) > 3 + 256)
		abort();
	return 0;
}
