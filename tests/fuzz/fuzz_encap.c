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
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/dp.h"

#define BUFSZ (DP_HEADROOM + 70000)

static struct bt *bt;
static uint8_t *buf;
static struct in6_addr c1, c2, c3;

static void
setup(void)
{
	bt = bt_new(256);
	buf = malloc(BUFSZ);
	if (!bt || !buf)
		abort();
	inet_pton(AF_INET6, "fd00:d57::11", &c1);
	inet_pton(AF_INET6, "fd00:d57::12", &c2);
	inet_pton(AF_INET6, "fd00:d57::13", &c3);
	bt_add(bt, 0xc000020a, 0, 65535, &c1, 0, NULL);   /* 192.0.2.10 */
	bt_add(bt, 0xc000020b, 0, 65535, &c2, 0, NULL);   /* 192.0.2.11 */
	bt_add(bt, 0xc0000214, 1024, 2047, &c3, 0, NULL); /* 192.0.2.20, shared */
}

static uint64_t
sum_drops(const struct dp *dp)
{
	uint64_t n = 0;

	for (int i = 0; i < DPC__COUNT; i++)
		if (strncmp(dp_counter_name((enum dp_counter)i), "drop_", 5) == 0)
			n += dp->ctr[i];
	return n;
}

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
	memset(&cfg, 0, sizeof(cfg));
	inet_pton(AF_INET6, "fd00:d57::2", &cfg.tep6);
	cfg.tep4 = 0xc6336401;
	cfg.npools = 1;
	cfg.pools[0].addr = 0xc0000200;
	cfg.pools[0].mask = 0xffffff00;
	cfg.mtu = 1280 + (data[0] & 0x30) * 8;
	cfg.decrement_ttl = data[0] & 2;
	cfg.icmp_rate = data[0] & 4 ? 1000 : 0;
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
