/*
 * psid-bench: packets per second of the TEP's forwarding core on one core
 * with 1,000,000 subscribers sharing addresses 64 to an address, as RFC
 * 7597 §5.1 port sets (offset 6, PSID length 6: what lwAFTRs serve) and as
 * dstm's contiguous port ranges (port_range_size 1008), beside 1,000,000
 * whole addresses. Decapsulation looks the binding up by the inner source
 * port, encapsulation by the destination port; every packet's port is one
 * of its subscriber's, drawn at random, so the lookups miss the caches as
 * they would with real traffic.
 *
 * Method as dp-bench (bench/dp_bench.c): each packet is copied from a
 * template into a ring buffer with a subscriber's addresses and port, the
 * core's batches run over the ring, time is the thread's CPU time and each
 * figure the best of REPS runs (a shared machine only slows a run down).
 * The arrival's own cost is measured alone and subtracted for Mpps(core).
 * The anchor is Snabb lwAFTR's in-memory bench on these machines, about
 * 13 Mpps each way with 1,000 softwires. Figures only, never pass/fail.
 *
 * Usage: psid-bench [-n PACKETS] (a run; default 1,000,000)
 */
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/dp.h"

#define SNABB_MPPS 13.0
#define RING       256
#define REPS       7
#define SLOT       256
#define KEYS       (1u << 22)
#define INNER      64
#define SUBS       1000000u
#define PER_ADDR   64u         /* PSID length 6 */
#define RANGE      1008u       /* 64512 / 64: the contiguous form of 64 per address */
#define POOL       0x0a000000u /* 10.0.0.0/16 */

enum shape { WHOLE, RANGES, PSID };
static const char *const shape_name[] = {"whole", "ranges", "psid"};

static uint8_t ring[RING][SLOT] __attribute__((aligned(64)));
static uint8_t tmpl_v6[40 + INNER], tmpl_v4[INNER];
static uint32_t *keys;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint16_t
fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void
v4hdr(uint8_t *p, uint32_t src, uint32_t dst)
{
	uint32_t s = 0;

	memset(p, 0, INNER);
	p[0] = 0x45;
	p[3] = INNER;
	p[8] = 64;
	p[9] = 17;
	p[12] = (uint8_t)(src >> 24), p[13] = (uint8_t)(src >> 16);
	p[14] = (uint8_t)(src >> 8), p[15] = (uint8_t)src;
	p[16] = (uint8_t)(dst >> 24), p[17] = (uint8_t)(dst >> 16);
	p[18] = (uint8_t)(dst >> 8), p[19] = (uint8_t)dst;
	p[25] = INNER - 20; /* UDP length; ports are written per packet, checksum 0 */
	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	s = (uint16_t)~fold(s);
	p[10] = (uint8_t)(s >> 8);
	p[11] = (uint8_t)s;
}

static void
client6(uint8_t *p, uint32_t i)
{
	static const uint8_t pfx[12] = {0xfd, 0x00, 0x0d, 0x57, 0, 0, 0, 1};

	memcpy(p, pfx, 12);
	p[12] = (uint8_t)(i >> 24), p[13] = (uint8_t)(i >> 16);
	p[14] = (uint8_t)(i >> 8), p[15] = (uint8_t)i;
}

static inline void
set_v4(uint8_t *p, int off, uint32_t a)
{
	uint32_t c = (uint16_t) ~(p[10] << 8 | p[11]);

	c += (a >> 16) + (a & 0xffff); /* RFC 1624 over the template's 0 */
	c = (uint16_t)~fold(c);
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
	p[off] = (uint8_t)(a >> 24), p[off + 1] = (uint8_t)(a >> 16);
	p[off + 2] = (uint8_t)(a >> 8), p[off + 3] = (uint8_t)a;
}

/* Subscriber k's address, and one of its ports (varied with r). */
static inline uint32_t
sub_addr(enum shape sh, uint32_t k)
{
	return POOL + (sh == WHOLE ? k : k / PER_ADDR);
}

static inline uint16_t
sub_port(enum shape sh, uint32_t k, uint32_t r)
{
	uint32_t s = k % PER_ADDR;

	if (sh == PSID) /* i (1..63) | PSID | j */
		return (uint16_t)((1 + r % 63) << 10 | s << 4 | (r >> 8 & 15));
	if (sh == RANGES)
		return (uint16_t)(1024 + s * RANGE + r % RANGE);
	return (uint16_t)(1024 + r % 60000);
}

static inline void
arrive(enum shape sh, bool decap, uint8_t *slot, uint32_t k, struct dp_pkt *pkt)
{
	uint8_t *p = slot + DP_HEADROOM, *l4;
	uint16_t port = sub_port(sh, k, k * 2654435761u >> 7);

	if (decap) {
		memcpy(p, tmpl_v6, sizeof(tmpl_v6));
		client6(p + 8, k);
		set_v4(p + 40, 12, sub_addr(sh, k));
		l4 = p + 60; /* source port */
		pkt->len = sizeof(tmpl_v6);
	} else {
		memcpy(p, tmpl_v4, sizeof(tmpl_v4));
		set_v4(p, 16, sub_addr(sh, k));
		l4 = p + 22; /* destination port */
		pkt->len = sizeof(tmpl_v4);
	}
	l4[0] = (uint8_t)(port >> 8);
	l4[1] = (uint8_t)port;
	pkt->data = p;
	pkt->headroom = DP_HEADROOM;
}

static double
run(struct dp *dp, enum shape sh, bool decap, bool core, uint64_t npkts, uint64_t *ok)
{
	struct dp_pkt pkts[DP_BATCH];
	uint64_t k = 0;
	unsigned r = 0;
	double t0 = now_s();

	*ok = 0;
	for (uint64_t done = 0; done < npkts; done += DP_BATCH) {
		for (unsigned i = 0; i < DP_BATCH; i++) {
			arrive(sh, decap, ring[r], keys[k++ & (KEYS - 1)], &pkts[i]);
			r = (r + 1) % RING;
		}
		if (!core) {
			*ok += pkts[done % DP_BATCH].data[9];
			continue;
		}
		if (decap)
			dp_decap(dp, pkts, DP_BATCH);
		else
			dp_encap(dp, pkts, DP_BATCH);
		for (unsigned i = 0; i < DP_BATCH; i++)
			*ok += pkts[i].verdict != DP_DROP;
	}
	return now_s() - t0;
}

static int
fill(struct bt *bt, enum shape sh)
{
	for (uint32_t k = 0; k < SUBS; k++) {
		struct in6_addr a;
		uint32_t s = k % PER_ADDR;
		int rc;

		client6(a.s6_addr, k);
		if (sh == PSID)
			rc = bt_add_psid(bt, sub_addr(sh, k), 6, 6, (uint16_t)s, &a, 0, NULL);
		else if (sh == RANGES)
			rc = bt_add(bt, sub_addr(sh, k), (uint16_t)(1024 + s * RANGE),
			            (uint16_t)(1024 + (s + 1) * RANGE - 1), &a, 0, NULL);
		else
			rc = bt_add(bt, sub_addr(sh, k), 0, 65535, &a, 0, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t npkts = 1000000;
	struct dp_config cfg;
	cpu_set_t cpus;
	uint32_t x = 2463534242u;
	int opt;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			npkts = strtoull(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: psid-bench [-n PACKETS]\n");
			return 1;
		}
	}
	npkts = (npkts + DP_BATCH - 1) / DP_BATCH * DP_BATCH;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	memset(&cfg, 0, sizeof(cfg));
	inet_pton(AF_INET6, "fd00:d57::2", &cfg.tep6);
	cfg.tep4 = 0xc6336401;
	cfg.npools = 1;
	cfg.pools[0].addr = POOL;
	cfg.pools[0].mask = 0xfff00000u; /* 10.0.0.0/12: a million whole addresses fit */
	cfg.mtu = 1500;
	cfg.decrement_ttl = true;
	cfg.icmp_rate = 100;
	v4hdr(tmpl_v6 + 40, 0, 0xc6336402);
	tmpl_v6[0] = 0x60;
	tmpl_v6[5] = INNER;
	tmpl_v6[6] = 4;
	tmpl_v6[7] = 64;
	memcpy(tmpl_v6 + 24, &cfg.tep6, 16);
	v4hdr(tmpl_v4, 0xc6336402, 0);
	if (!(keys = malloc(KEYS * sizeof(*keys))))
		return 1;
	for (uint32_t i = 0; i < KEYS; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		keys[i] = x % SUBS;
	}
	printf("psid-bench: best of %d runs of %llu packets, %u subscribers (64 an address when "
	       "shared), %d-byte inner packets, one core\n",
	       REPS, (unsigned long long)npkts, SUBS, INNER);
	printf("%-7s %-6s %10s %12s %12s %10s %10s\n", "shape", "path", "addresses", "Mpps",
	       "Mpps(core)", "ns/pkt", "vs Snabb");
	for (enum shape sh = WHOLE; sh <= PSID; sh++) {
		uint32_t base = POOL;
		unsigned plen = 12;
		struct bt *bt = bt_new_pools(&base, &plen, 1);
		struct dp dp;

		if (!bt || fill(bt, sh) < 0) {
			fprintf(stderr, "psid-bench: cannot fill the %s table\n", shape_name[sh]);
			return 1;
		}
		dp_init(&dp, &cfg, bt);
		dp_set_time(&dp, 1000);
		for (int d = 0; d <= 1; d++) {
			uint64_t ok, ok2;
			double t_fill = 1e9, t = 1e9;

			run(&dp, sh, d, true, npkts / 10, &ok);
			for (int rep = 0; rep < REPS; rep++) {
				double dt = run(&dp, sh, d, false, npkts, &ok2);
				if (dt < t_fill)
					t_fill = dt;
				dt = run(&dp, sh, d, true, npkts, &ok);
				if (dt < t)
					t = dt;
			}
			if (ok != npkts) {
				fprintf(stderr, "psid-bench: %s: %llu of %llu packets forwarded\n",
				        shape_name[sh], (unsigned long long)ok,
				        (unsigned long long)npkts);
				return 1;
			}
			printf("%-7s %-6s %10u %12.2f %12.2f %10.1f %9.2fx\n", shape_name[sh],
			       d ? "decap" : "encap", sh == WHOLE ? SUBS : SUBS / PER_ADDR,
			       npkts / t / 1e6, npkts / (t - t_fill) / 1e6,
			       (t - t_fill) / npkts * 1e9, npkts / t / 1e6 / SNABB_MPPS);
		}
		printf("%-7s %-6s table %.1f MB, %.1f bytes a subscriber\n", "", "",
		       bt_memory(bt) / 1e6, (double)bt_memory(bt) / SUBS);
		bt_free(bt);
	}
	printf("Mpps counts the arrival (template copy + addresses + port) with the core; "
	       "Mpps(core) subtracts the arrival measured alone. Snabb lwAFTR: %.0f Mpps "
	       "(1,000 softwires).\n",
	       SNABB_MPPS);
	free(keys);
	return 0;
}
