/*
 * dp-bench: packets per second of the TEP's forwarding core on one core,
 * and of its XDP programs run by the kernel (BPF_PROG_TEST_RUN) over the
 * same packets, for 64-byte inner packets. Figures only, never pass/fail,
 * and only figures it measured.
 *
 * Cases: -b bindings (whole addresses; with -r SIZE contiguous port
 * ranges of SIZE ports, 65536 / SIZE of them an address; with -p K PSID
 * port sets of RFC 7597 §5.1, offset 6 and PSID length K, 2^K of them an
 * address), -f flows, -d encap | decap | both. PSID sets are the userspace
 * core's on the XDP data plane (its programs pass them on), so with -p
 * only the core runs.
 *
 * Cold packets, as on a real link: every flow has its own buffer (its own
 * binding, its own packet) and the flows are visited in a random order,
 * so with 100,000 flows the packets (25 MB) and the table (1,000,000
 * bindings: about 70 MB) are far larger than the caches. Nothing is
 * copied per packet: the core works on the packet where it lies, as
 * dstm-tep's does (it leaves the bytes as they were: decapsulation only
 * moves the start, encapsulation writes the IPv6 header into the
 * headroom, and the TTL is the kernel's, decrement_ttl off as in
 * dstm-tep), so the same buffer serves every visit of its flow.
 *
 * The core: batches of DP_BATCH through dp_decap()/dp_encap(), timed with
 * the thread's CPU time (the machine is shared: time given to others is
 * not ours). XDP: each flow's Ethernet frame run once per visit
 * (BPF_PROG_TEST_RUN with repeat 1, in the same random order; repeat > 1
 * would rerun the program on the frame it has already rewritten), the
 * time being the kernel's own measure of the run (it includes the
 * kernel's two clock reads around it), in a network namespace of its own
 * where a veth, routes and permanent neighbours let bpf_fib_lookup
 * succeed, so the whole forwarding path runs up to XDP_REDIRECT. Beside
 * it, an empty XDP program (return XDP_PASS) over the same frames shows
 * what the kernel's harness and clock reads cost a run; the program's own
 * cost is the difference. Each case is run three times (-R): the median is
 * printed with the spread.
 *
 * Usage: dp-bench [-b BINDINGS] [-f FLOWS] [-d encap|decap|both]
 *                 [-r SIZE | -p PSID_LEN] [-n PACKETS] [-R RUNS] [-X]
 * (-X: no XDP runs)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "dataplane/dp.h"
#include "xdp/xdp.h"

#define INNER    64
#define SLOT     256 /* a flow's buffer: headroom + the 104-byte packet */
#define MAX_RUNS 15
#define POOL     0x0a000000u /* 10.0.0.0/10: 4,194,304 addresses */
#define POOL_LEN 10
#define V4HOST   0xc6336402u /* 198.51.100.2, the far IPv4 host */

#define PSID_OFFSET 6 /* a, as the lab's PSID pool */

static uint32_t nbind = 1000000, nflows = 100000, range_size, psid_len, runs = 3;
static uint64_t npkts = 5000000;

struct flow {
	uint32_t v4;
	uint16_t port; /* inside the binding's range */
	uint32_t bind; /* index of its binding */
};

static struct flow *flows;
static uint8_t *bufs;   /* nflows * SLOT, the core's packets */
static uint32_t *order; /* the visits: flow indexes, random */
static uint32_t norder;

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 16);
}

static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
client6(uint8_t *p, uint32_t i)
{
	static const uint8_t pfx[12] = {0xfd, 0x00, 0x0d, 0x57, 0, 0, 0, 1};

	memcpy(p, pfx, 12);
	p[12] = (uint8_t)(i >> 24), p[13] = (uint8_t)(i >> 16);
	p[14] = (uint8_t)(i >> 8), p[15] = (uint8_t)i;
}

/* A port of binding i's PSID set: i (a bits, not 0), the PSID, j (random). */
static uint16_t
psid_port(uint32_t i, uint32_t r)
{
	uint32_t m = 16 - PSID_OFFSET - psid_len, psid = i % (1u << psid_len);
	uint32_t hi = 1 + r % ((1u << PSID_OFFSET) - 1), j = (r >> 8) % (1u << m);

	return (uint16_t)(hi << (16 - PSID_OFFSET) | psid << m | j);
}

/* Binding i: its address and the first port of its range. */
static void
binding(uint32_t i, uint32_t *v4, uint16_t *lo, uint16_t *hi)
{
	if (psid_len) {
		*v4 = POOL + i / (1u << psid_len);
		*lo = 0;
		*hi = 65535;
		return;
	}
	if (!range_size) {
		*v4 = POOL + i;
		*lo = 0;
		*hi = 65535;
		return;
	}
	*v4 = POOL + i / (65536 / range_size);
	*lo = (uint16_t)(i % (65536 / range_size) * range_size);
	*hi = (uint16_t)(*lo + range_size - 1);
}

static void
st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static void
st32(uint8_t *p, uint32_t v)
{
	st16(p, (uint16_t)(v >> 16));
	st16(p + 2, (uint16_t)v);
}

/* A 64-byte IPv4/UDP packet src:sport -> dst:dport, header checksum set. */
static void
v4pkt(uint8_t *p, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport)
{
	uint32_t s = 0;

	memset(p, 0, INNER);
	p[0] = 0x45;
	st16(p + 2, INNER);
	p[8] = 64;
	p[9] = 17;
	st32(p + 12, src);
	st32(p + 16, dst);
	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	st16(p + 10, (uint16_t)~s);
	st16(p + 20, sport);
	st16(p + 22, dport);
	st16(p + 24, INNER - 20);
}

static const uint8_t tep6[16] = {0xfd, 0x00, 0x0d, 0x57, [15] = 2};

/* Flow f's packet at p: 4in6 from its client (decap) or IPv4 toward it. */
static uint32_t
packet(uint8_t *p, const struct flow *fl, bool decap)
{
	if (!decap) {
		v4pkt(p, V4HOST, fl->v4, 80, fl->port);
		return INNER;
	}
	memset(p, 0, 40);
	p[0] = 0x60;
	st16(p + 4, INNER);
	p[6] = 4;
	p[7] = 64;
	client6(p + 8, fl->bind);
	memcpy(p + 24, tep6, 16);
	v4pkt(p + 40, fl->v4, V4HOST, fl->port, 80);
	return 40 + INNER;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
print_row(const char *plane, bool decap, const double *mpps, const char *note)
{
	double s[MAX_RUNS];

	memcpy(s, mpps, runs * sizeof(double));
	qsort(s, runs, sizeof(double), cmp_double);
	printf("%-5s %-6s %9u %8u %-9s %8.2f %8.2f-%-8.2f %8.1f  %s\n", plane,
	       decap ? "decap" : "encap", nbind, nflows,
	       psid_len     ? "psid"
	       : range_size ? "ranges"
	                    : "whole",
	       s[runs / 2], s[0], s[runs - 1], 1e3 / s[runs / 2], note);
}

/* ---- The core. ---- */

static double
core_run(struct dp *dp, bool decap, uint32_t len)
{
	struct dp_pkt pkts[DP_BATCH];
	uint64_t ok = 0, v = 0;
	double t0 = cpu_s(), dt;

	for (uint64_t done = 0; done < npkts; done += DP_BATCH) {
		for (unsigned i = 0; i < DP_BATCH; i++) {
			uint8_t *b = bufs + (size_t)order[v++ % norder] * SLOT;

			pkts[i].data = b + DP_HEADROOM;
			pkts[i].len = len;
			pkts[i].headroom = DP_HEADROOM;
		}
		if (decap)
			dp_decap(dp, pkts, DP_BATCH);
		else
			dp_encap(dp, pkts, DP_BATCH);
		for (unsigned i = 0; i < DP_BATCH; i++)
			ok += pkts[i].verdict != DP_DROP;
	}
	dt = cpu_s() - t0;
	if (ok != npkts) {
		fprintf(stderr, "dp-bench: the core forwarded %llu of %llu packets\n",
		        (unsigned long long)ok, (unsigned long long)npkts);
		exit(1);
	}
	return npkts / dt / 1e6;
}

static void
core_bench(int dirs)
{
	uint32_t base = POOL;
	unsigned plen = POOL_LEN;
	struct bt *bt = bt_new_pools(&base, &plen, 1);
	struct dp_config cfg;
	struct dp dp;

	memset(&cfg, 0, sizeof(cfg));
	memcpy(&cfg.tep6, tep6, 16);
	cfg.tep4 = 0xc6336401;
	cfg.npools = 1;
	cfg.pools[0].addr = POOL;
	cfg.pools[0].mask = ~0u << (32 - POOL_LEN);
	cfg.mtu = 1500;
	cfg.icmp_rate = 100;
	if (!bt) {
		fprintf(stderr, "dp-bench: no memory for the table\n");
		exit(1);
	}
	for (uint32_t i = 0; i < nbind; i++) {
		struct in6_addr a;
		uint32_t v4;
		uint16_t lo, hi;

		binding(i, &v4, &lo, &hi);
		client6(a.s6_addr, i);
		if ((psid_len ? bt_add_psid(bt, v4, PSID_OFFSET, (uint8_t)psid_len,
		                            (uint16_t)(i % (1u << psid_len)), &a, 0, NULL)
		              : bt_add(bt, v4, lo, hi, &a, 0, NULL)) < 0) {
			fprintf(stderr, "dp-bench: bt_add %u failed\n", i);
			exit(1);
		}
	}
	dp_init(&dp, &cfg, bt);
	dp_set_time(&dp, 1000);
	printf("core: table %.1f MB for %u bindings; packets %.1f MB\n", bt_memory(bt) / 1e6, nbind,
	       (double)nflows * SLOT / 1e6);
	for (int d = 0; d < 2; d++) {
		bool decap = d == 1;
		double mpps[MAX_RUNS];
		uint32_t len = 0;

		if (!(dirs & (1 << d)))
			continue;
		for (uint32_t f = 0; f < nflows; f++)
			len = packet(bufs + (size_t)f * SLOT + DP_HEADROOM, &flows[f], decap);
		for (uint32_t r = 0; r < runs; r++)
			mpps[r] = core_run(&dp, decap, len);
		print_row("core", decap, mpps, "");
	}
	bt_free(bt);
}

/* ---- The XDP programs. ---- */

/* A namespace of our own where the programs' fib lookups succeed. */
static int
xdp_netns(int *ifindex)
{
	static const char *const cmds[] = {
	    "ip link add dpb0 type veth peer name dpb1",
	    "ip link set dpb1 up",
	    "ip link set lo up",
	    "ip link set dpb0 up",
	    "ip addr add 198.51.100.1/24 dev dpb0",
	    "ip -6 addr add fd00:d57::2/64 dev dpb0 nodad",
	    "ip neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev dpb0 nud permanent",
	    "ip -6 route add fd00:d57:0:1::/64 via fe80::1 dev dpb0",
	    "ip -6 neigh add fe80::1 lladdr 02:00:00:00:00:01 dev dpb0 nud permanent",
	    "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
	};

	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char c[256];

		snprintf(c, sizeof(c), "%s >/dev/null 2>&1", cmds[i]);
		if (system(c) != 0) {
			fprintf(stderr, "dp-bench: XDP set-up: \"%s\" failed\n", cmds[i]);
			return -EIO;
		}
	}
	*ifindex = (int)if_nametoindex("dpb0");
	return *ifindex > 0 ? 0 : -ENODEV;
}

static double
xdp_run(struct xtep *x, int prog, int ifindex, uint8_t *frames, uint32_t flen, uint64_t n)
{
	uint8_t out[256];
	struct xdp_md ctx = {.data_end = flen, .ingress_ifindex = (uint32_t)ifindex};
	uint64_t ns = 0, ok = 0;

	for (uint64_t v = 0; v < n; v++) {
		uint32_t f = order[v % norder];
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frames + (size_t)f * 128,
		            .data_size_in = flen, .data_out = out, .data_size_out = sizeof(out),
		            .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

		if (bpf_prog_test_run_opts(prog, &o) < 0) {
			fprintf(stderr, "dp-bench: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
			exit(1);
		}
		ns += o.duration;
		ok += o.retval == XDP_REDIRECT;
	}
	if (!x) /* the empty program */
		return n / (ns / 1e9) / 1e6;
	if (ok != n) {
		uint64_t c[XC__COUNT];

		fprintf(stderr, "dp-bench: XDP redirected %llu of %llu packets; its counters:",
		        (unsigned long long)ok, (unsigned long long)n);
		if (xtep_counters(x, c) == 0)
			for (int i = 0; i < XC__COUNT; i++)
				if (c[i])
					fprintf(stderr, " %s %llu",
					        xtep_counter_name((enum xtep_counter)i),
					        (unsigned long long)c[i]);
		fprintf(stderr, "\n");
		exit(1);
	}
	return n / (ns / 1e9) / 1e6;
}

/* An XDP program of two instructions (return XDP_PASS): what the kernel's
 * timing of one run costs without our program. */
static int
empty_prog(void)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
	    {.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "dpb_empty", "GPL", insns, 2, NULL);
}

static void
xdp_bench(int dirs)
{
	struct xtep_config c = {0};
	struct xtep *x;
	uint8_t *frames;
	int rc, ifindex = 0;
	uint64_t n = npkts / 5 < 2000000 ? npkts / 5 : 2000000;
	double t0;

	if (geteuid() != 0) {
		printf("xdp: not measured (BPF_PROG_TEST_RUN and a network namespace need root)\n");
		return;
	}
	if ((rc = xdp_netns(&ifindex)) < 0) {
		printf("xdp: not measured (namespace: %s)\n", strerror(-rc));
		return;
	}
	memcpy(&c.tep6, tep6, 16);
	c.npools = 1;
	c.pool_addr[0] = POOL;
	c.pool_plen[0] = POOL_LEN;
	c.mtu = 1500;
	c.hop_limit = 64;
	/* A block of 65536 / SIZE entries for every shared address. */
	c.max_ranges = range_size ? nbind + 65536 / range_size : 1;
	if ((rc = xtep_open(&c, &x)) < 0) {
		printf("xdp: not measured (loading the programs: %s)\n", strerror(-rc));
		return;
	}
	t0 = cpu_s();
	for (uint32_t i = 0; i < nbind; i++) {
		struct in6_addr a;
		uint32_t v4;
		uint16_t lo, hi;

		binding(i, &v4, &lo, &hi);
		client6(a.s6_addr, i);
		if (xtep_set(x, v4, lo, hi, &a, 0) < 0) {
			fprintf(stderr, "dp-bench: xtep_set failed\n");
			exit(1);
		}
	}
	if ((rc = xtep_flush(x)) < 0) {
		fprintf(stderr, "dp-bench: map update: %s\n", strerror(-rc));
		exit(1);
	}
	printf("xdp: %u bindings written to the maps in %.2f s (batches); %llu runs a case\n",
	       nbind, cpu_s() - t0, (unsigned long long)n);
	frames = malloc((size_t)nflows * 128);
	if (!frames)
		exit(1);
	for (int d = 0; d < 2; d++) {
		bool decap = d == 1;
		double mpps[MAX_RUNS];
		uint32_t len = 0;

		if (!(dirs & (1 << d)))
			continue;
		for (uint32_t f = 0; f < nflows; f++) {
			uint8_t *e = frames + (size_t)f * 128;

			memset(e, 0, 14);
			e[0] = 0x02, e[5] = 0x10; /* to us */
			e[6] = 0x02, e[11] = 0x20;
			st16(e + 12, decap ? 0x86dd : 0x0800);
			len = 14 + packet(e + 14, &flows[f], decap);
		}
		for (uint32_t r = 0; r < runs; r++)
			mpps[r] = xdp_run(x, decap ? xtep_prog_v6(x) : xtep_prog_v4(x), ifindex,
			                  frames, len, n);
		print_row("xdp", decap, mpps, "kernel-timed runs, repeat 1");
		if ((rc = empty_prog()) >= 0) {
			for (uint32_t r = 0; r < runs; r++)
				mpps[r] = xdp_run(NULL, rc, ifindex, frames, len, n);
			close(rc);
			print_row("empty", decap, mpps, "an empty XDP program, timed the same way");
		}
	}
	free(frames);
	xtep_close(x);
}

static void
usage(void)
{
	fprintf(stderr, "usage: dp-bench [-b BINDINGS] [-f FLOWS] [-d encap|decap|both] "
	                "[-r RANGE_SIZE | -p PSID_LEN] [-n PACKETS] [-R RUNS] [-X]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int opt, dirs = 3;
	bool xdp = true;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	cpu_set_t cpus;

	while ((opt = getopt(argc, argv, "b:f:d:r:p:n:R:X")) != -1) {
		switch (opt) {
		case 'b':
			nbind = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			nflows = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			dirs = strcmp(optarg, "encap") == 0   ? 1
			       : strcmp(optarg, "decap") == 0 ? 2
			       : strcmp(optarg, "both") == 0  ? 3
			                                      : 0;
			if (!dirs)
				usage();
			break;
		case 'r':
			range_size = (uint32_t)strtoul(optarg, NULL, 10);
			if (range_size == 0 || range_size > 32768 ||
			    (range_size & (range_size - 1)) != 0) {
				fprintf(stderr, "dp-bench: -r: a power of two from 1 to 32768\n");
				return 2;
			}
			break;
		case 'p':
			psid_len = (uint32_t)strtoul(optarg, NULL, 10);
			if (psid_len == 0 || psid_len > 16 - PSID_OFFSET) {
				fprintf(stderr, "dp-bench: -p: a PSID length from 1 to %d\n",
				        16 - PSID_OFFSET);
				return 2;
			}
			break;
		case 'n':
			npkts = strtoull(optarg, NULL, 10);
			break;
		case 'R':
			runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'X':
			xdp = false;
			break;
		default:
			usage();
		}
	}
	if (nbind == 0 || nflows == 0 || runs == 0 || runs > MAX_RUNS || npkts == 0 ||
	    (psid_len && range_size))
		usage();
	if (psid_len)
		range_size = 65536 >> psid_len; /* for the pool's capacity only */
	if ((uint64_t)nbind > (range_size ? (1ull << (32 - POOL_LEN)) * (65536 / range_size)
	                                  : 1ull << (32 - POOL_LEN))) {
		fprintf(stderr, "dp-bench: -b: more bindings than the pool 10.0.0.0/%d holds\n",
		        POOL_LEN);
		return 2;
	}
	npkts = (npkts + DP_BATCH - 1) / DP_BATCH * DP_BATCH;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus); /* one core; best effort */

	flows = calloc(nflows, sizeof(*flows));
	bufs = aligned_alloc(64, (size_t)nflows * SLOT);
	norder = npkts < (1u << 24) ? (uint32_t)npkts : 1u << 24;
	order = malloc((size_t)norder * sizeof(*order));
	if (!flows || !bufs || !order)
		return 1;
	for (uint32_t f = 0; f < nflows; f++) {
		uint32_t v4;
		uint16_t lo, hi;

		flows[f].bind = rnd(&seed) % nbind;
		binding(flows[f].bind, &v4, &lo, &hi);
		flows[f].v4 = v4;
		flows[f].port = psid_len ? psid_port(flows[f].bind, rnd(&seed))
		                         : (uint16_t)(lo + rnd(&seed) % ((uint32_t)hi - lo + 1));
		if (flows[f].port == 0)
			flows[f].port = 1;
	}
	for (uint32_t v = 0; v < norder; v++)
		order[v] = rnd(&seed) % nflows;

	printf("dp-bench: %d-byte inner UDP packets, %u bindings (%s), %u flows, each in a "
	       "buffer of its own visited in random order; %u runs of %llu packets a case, one "
	       "core\n",
	       INNER, nbind,
	       psid_len     ? "PSID port sets"
	       : range_size ? "port ranges"
	                    : "whole addresses",
	       nflows, runs, (unsigned long long)npkts);
	if (psid_len)
		printf("PSID sets: offset %d, PSID length %u, %u an address\n", PSID_OFFSET,
		       psid_len, 1u << psid_len);
	else if (range_size)
		printf("port ranges: %u ports each, %u a shared address\n", range_size,
		       65536 / range_size);
	printf("%-5s %-6s %9s %8s %-9s %8s %17s %8s\n", "plane", "path", "bindings", "flows",
	       "form", "Mpps", "min-max", "ns/pkt");
	core_bench(dirs);
	if (xdp && psid_len)
		printf("xdp: not run (its programs pass PSID sets to the userspace core)\n");
	else if (xdp)
		xdp_bench(dirs);
	free(flows);
	free(bufs);
	free(order);
	return 0;
}
