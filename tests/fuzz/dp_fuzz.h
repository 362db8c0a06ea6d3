/*
 * What the two harnesses of the TEP core share (fuzz_decap.c and
 * fuzz_encap.c): one binding table with two whole-address clients and one
 * shared-address client, a packet buffer with headroom, the configuration
 * chosen by the input's first byte, and the sum of the drop counters that
 * their "every packet ends exactly once" checks use.
 */
#ifndef DSTM_DP_FUZZ_H
#define DSTM_DP_FUZZ_H

#include <arpa/inet.h>
#include <stdbool.h>
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
	/* 192.0.2.30 shared by PSID sets (offset 6, length 6): PSIDs 5 and 6. */
	bt_add_psid(bt, 0xc000021e, 6, 6, 5, &c1, 0, NULL);
	bt_add_psid(bt, 0xc000021e, 6, 6, 6, &c2, 0, NULL);
}

/* The TEP of the lab, pool 192.0.2.0/24; the first input byte picks the rest. */
static void
fuzz_config(struct dp_config *cfg, uint8_t pick)
{
	memset(cfg, 0, sizeof(*cfg));
	inet_pton(AF_INET6, "fd00:d57::2", &cfg->tep6);
	cfg->tep4 = 0xc6336401;
	cfg->npools = 1;
	cfg->pools[0].addr = 0xc0000200;
	cfg->pools[0].mask = 0xffffff00;
	cfg->mtu = 1280 + (pick & 0x30) * 8;
	cfg->learn = pick & 1;
	cfg->learn_idle = 1;
	cfg->decrement_ttl = pick & 2;
	cfg->icmp_rate = pick & 4 ? 1000 : 0;
	cfg->keepalive4 = pick & 8 ? cfg->tep4 : 0; /* echo requests answered in the tunnel */
}

/*
 * Set up the core and the packet for one input: false when the input is
 * too short or too long. The first byte picks the configuration and the
 * clock; the rest is the packet, placed after DP_HEADROOM.
 */
static bool
fuzz_prepare(const uint8_t *data, size_t size, struct dp_config *cfg, struct dp *dp,
             struct dp_pkt *pkt)
{
	if (!bt)
		setup();
	if (size < 1 || size - 1 > BUFSZ - DP_HEADROOM)
		return false;
	fuzz_config(cfg, data[0]);
	if (dp_init(dp, cfg, bt) < 0)
		abort();
	dp_set_time(dp, 5000 + (data[0] & 0x40) * 1000);
	memcpy(buf + DP_HEADROOM, data + 1, size - 1);
	memset(pkt, 0, sizeof(*pkt));
	pkt->data = buf + DP_HEADROOM;
	pkt->len = (uint32_t)(size - 1);
	pkt->headroom = DP_HEADROOM;
	return true;
}

/*
 * What the daemon's shell relies on for a packet that leaves: it lies in
 * its buffer; TO_V4 is an IPv4 packet; TO_V6 starts with an IPv6 header
 * from the TEP to the address it names, with a matching payload length.
 */
static void
fuzz_check_forwarded(const struct dp_pkt *pkt, const struct dp_config *cfg)
{
	if (pkt->verdict == DP_DROP)
		return;
	if (pkt->data < buf || pkt->data + pkt->len > buf + BUFSZ ||
	    pkt->headroom != (uint32_t)(pkt->data - buf))
		abort();
	if (pkt->verdict == DP_TO_V4 && (pkt->len < 20 || (pkt->data[0] >> 4) != 4))
		abort();
	if (pkt->verdict == DP_TO_V6 &&
	    (pkt->len < 60 || (pkt->data[0] >> 4) != 6 ||
	     memcmp(pkt->data + 8, &cfg->tep6, 16) != 0 ||
	     memcmp(pkt->data + 24, &pkt->dst6, 16) != 0 ||
	     (uint32_t)(pkt->data[4] << 8 | pkt->data[5]) + 40 != pkt->len))
		abort();
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

#endif
