/*
 * libFuzzer harness of the TEP's other direction (src/dataplane): an IPv4
 * packet from the IPv4 side toward the pools, ICMPv4 errors from IPv4
 * hosts included, handed to dp_encap() with DP_HEADROOM before it as the
 * daemon's shell does. The first byte picks the configuration (MTU, TTL
 * work, ICMP rate) and is not part of the packet. Beyond the sanitizers it
 * checks what the shell relies on: a forwarded packet lies inside its
 * buffer; a TO_V6 packet starts with an IPv6 header from the TEP to the
 * binding it names, with a payload length that matches; a TO_V4 packet
 * (an ICMPv4 error of the TEP's own) is an IPv4 packet; and every packet
 * counted in is counted out exactly once.
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
	dp_encap(&dp, &pkt, 1);

	if (dp.ctr[DPC_rx_v4_pkts] != 1)
		abort();
	fuzz_check_forwarded(&pkt, &cfg);
	/* Only to a bound client. */
	if (pkt.verdict == DP_TO_V6 && memcmp(&pkt.dst6, &c1, 16) && memcmp(&pkt.dst6, &c2, 16) &&
	    memcmp(&pkt.dst6, &c3, 16))
		abort();
	/* Every packet ends exactly once: tunnelled, answered with an ICMP, or dropped. */
	out = dp.ctr[DPC_encap_pkts] + sum_drops(&dp);
	if (pkt.verdict == DP_TO_V4)
		out++;
	if (out != 1 && !(pkt.verdict == DP_TO_V4 && out == 2))
		abort();
	return 0;
}
