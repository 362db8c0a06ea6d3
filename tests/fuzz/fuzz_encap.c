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

	if (!bt)
		setup();
	if (size < 1 || size - 1 > BUFSZ - DP_HEADROOM)
		return 0;
	fuzz_config(&cfg, data[0]);
	if (dp_init(&dp, &cfg, bt) < 0)
		abort();
	dp_set_time(&dp, 5000 + (data[0] & 0x40) * 1000);

	memcpy(buf + DP_HEADROOM, data + 1, size - 1);
	memset(&pkt, 0, sizeof(pkt));
	pkt.data = buf + DP_HEADROOM;
	pkt.len = (uint32_t)(size - 1);
	pkt.headroom = DP_HEADROOM;
	dp_encap(&dp, &pkt, 1);

	if (dp.ctr[DPC_rx_v4_pkts] != 1)
		abort();
	if (pkt.verdict != DP_DROP) {
		if (pkt.data < buf || pkt.data + pkt.len > buf + BUFSZ ||
		    pkt.headroom != (uint32_t)(pkt.data - buf))
			abort();
		if (pkt.verdict == DP_TO_V4 && (pkt.len < 20 || (pkt.data[0] >> 4) != 4))
			abort();
		if (pkt.verdict == DP_TO_V6) {
			if (pkt.len < 60 || (pkt.data[0] >> 4) != 6 ||
			    memcmp(pkt.data + 8, &cfg.tep6, 16) != 0 ||
			    memcmp(pkt.data + 24, &pkt.dst6, 16) != 0 ||
			    (uint32_t)(pkt.data[4] << 8 | pkt.data[5]) + 40 != pkt.len)
				abort();
			/* Only to a bound client. */
			if (memcmp(&pkt.dst6, &c1, 16) && memcmp(&pkt.dst6, &c2, 16) &&
			    memcmp(&pkt.dst6, &c3, 16))
				abort();
		}
	}
	/* Every packet ends exactly once: tunnelled, answered with an ICMP, or dropped. */
	out = dp.ctr[DPC_encap_pkts] + sum_drops(&dp);
	if (pkt.verdict == DP_TO_V4)
		out++;
	if (out != 1 && !(pkt.verdict == DP_TO_V4 && out == 2))
		abort();
	return 0;
}
