/*
 * Packet-in, packet-out tests of the forwarding core (src/dataplane/dp.h),
 * after Snabb lwAFTR's end-to-end table: every row is a configuration, an
 * input packet, the exact packet expected out (or none) and the exact
 * counters expected. Counters a row does not name must be zero (byte
 * counters are only checked where named). Packets are described by a
 * struct spec and built here byte by byte, independently of the core.
 * Scenarios that need several packets or the clock (rate limit, path MTU,
 * learn-mode expiry, EMSGSIZE) follow the table as their own tests.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataplane/dp.h"

/* Rows override the defaults of their macro (UDP_C1(.o_src = …)). */
#pragma GCC diagnostic ignored "-Woverride-init"

#define TEP6  "fd00:d57::2"
#define TEP4  "198.51.100.1"
#define C1    "fd00:d57::11" /* 192.0.2.10 */
#define C2    "fd00:d57::12" /* 192.0.2.11 */
#define C3    "fd00:d57::13" /* 192.0.2.20 ports 1024-2047 */
#define C4    "fd00:d57::14" /* 192.0.2.20 ports 2048-3071 */
#define C5    "fd00:d57::15" /* 192.0.2.30 PSID 5 (offset 6, length 6): 1104-1119, 2128-… */
#define C6    "fd00:d57::16" /* 192.0.2.30 PSID 6: 1120-1135, 2144-… */
#define EVIL  "fd00:d57::66"
#define HOST4 "198.51.100.2"

enum mut {
	M_NONE,
	M_V6_VERSION,
	M_V6_PLEN_BIG,
	M_V4_VERSION,
	M_V4_IHL4,
	M_V4_CSUM,
	M_V4_TOTLEN_BIG,
	M_PTB_CSUM,
};

struct spec {
	/* Outer IPv6 header, when o_src is set. */
	const char *o_src, *o_dst;
	uint8_t o_nh; /* 0: 4 (or 58 for a PTB) */
	uint8_t o_tc;
	bool o_hbh; /* insert an 8-byte hop-by-hop options header */
	/* Inner IPv4. */
	const char *src, *dst;
	uint8_t proto; /* 0: UDP */
	uint8_t ttl;   /* 0: 64 */
	uint8_t tos;
	uint16_t ipid, frag;
	uint16_t sport, dport; /* UDP/TCP ports; the ICMP echo identifier is sport */
	uint16_t paylen;
	/* ICMPv4 message: type, code, the 32-bit word after the checksum,
	 * and the packet quoted (its IPv4 part, cut at 548 bytes). */
	bool icmp;
	uint8_t itype, icode;
	uint32_t iinfo;
	const struct spec *quote;
	/* ICMPv6 Packet Too Big quoting `quote` (with its IPv6 header). */
	bool ptb;
	uint32_t ptb_mtu;
	int short_l4; /* cut the transport part to this many bytes (lengths follow) */
	int cut;      /* keep only this many bytes (the IPv6 payload length follows) */
	int pad;      /* append this many bytes after the packet */
	enum mut mut;
};

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
cksum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t build(const struct spec *s, uint8_t *out);

static size_t
build_v4(const struct spec *s, uint8_t *p)
{
	uint8_t *l4 = p + 20;
	size_t l4n;
	uint8_t proto = s->icmp ? 1 : s->proto ? s->proto : 17;

	if (s->icmp) {
		l4[0] = s->itype;
		l4[1] = s->icode;
		put16(l4 + 2, 0);
		if (s->itype == 0 || s->itype == 8) {
			put16(l4 + 4, s->sport);
			put16(l4 + 6, 1);
		} else {
			put16(l4 + 4, (uint16_t)(s->iinfo >> 16));
			put16(l4 + 6, (uint16_t)s->iinfo);
		}
		l4n = 8;
		if (s->quote) {
			uint8_t q[2048];
			size_t qn = build_v4(s->quote, q);
			if (qn > 548)
				qn = 548;
			memcpy(l4 + 8, q, qn);
			l4n += qn;
		}
		memset(l4 + l4n, 0xab, s->paylen);
		l4n += s->paylen;
		put16(l4 + 2, cksum(0, l4, l4n));
	} else if (proto == 6) {
		memset(l4, 0, 20);
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		l4[12] = 5 << 4;
		memset(l4 + 20, 0xcd, s->paylen);
		l4n = 20 + s->paylen;
	} else if (proto == 17) {
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put16(l4 + 4, (uint16_t)(8 + s->paylen));
		put16(l4 + 6, 0);
		memset(l4 + 8, 0xef, s->paylen);
		l4n = 8 + s->paylen;
	} else {
		memset(l4, 0x11, s->paylen);
		l4n = s->paylen;
	}
	if (s->short_l4)
		l4n = (size_t)s->short_l4;
	p[0] = 0x45;
	p[1] = s->tos;
	put16(p + 2, (uint16_t)(20 + l4n));
	put16(p + 4, s->ipid);
	put16(p + 6, s->frag);
	p[8] = s->ttl ? s->ttl : 64;
	p[9] = proto;
	put16(p + 10, 0);
	inet_pton(AF_INET, s->src, p + 12);
	inet_pton(AF_INET, s->dst, p + 16);
	put16(p + 10, cksum(0, p, 20));
	return 20 + l4n;
}

static void
v6hdr(uint8_t *p, const char *src, const char *dst, uint8_t tc, uint16_t plen, uint8_t nh)
{
	p[0] = (uint8_t)(0x60 | tc >> 4);
	p[1] = (uint8_t)(tc << 4);
	p[2] = p[3] = 0;
	put16(p + 4, plen);
	p[6] = nh;
	p[7] = 64;
	inet_pton(AF_INET6, src, p + 8);
	inet_pton(AF_INET6, dst, p + 24);
}

static size_t
build(const struct spec *s, uint8_t *out)
{
	size_t n;

	if (s->ptb) {
		uint8_t *ic = out + 40, q[2048];
		size_t qn = build(s->quote, q);
		uint32_t sum = 0;

		if (qn > 1280 - 48)
			qn = 1280 - 48;
		ic[0] = 2;
		ic[1] = 0;
		put16(ic + 2, 0);
		put16(ic + 4, (uint16_t)(s->ptb_mtu >> 16));
		put16(ic + 6, (uint16_t)s->ptb_mtu);
		memcpy(ic + 8, q, qn);
		v6hdr(out, s->o_src, s->o_dst, 0, (uint16_t)(8 + qn), 58);
		for (int i = 8; i < 40; i += 2)
			sum += (uint32_t)(out[i] << 8 | out[i + 1]);
		sum += (uint32_t)(8 + qn) + 58;
		put16(ic + 2, cksum(sum, ic, 8 + qn));
		if (s->mut == M_PTB_CSUM)
			ic[2] ^= 0x40;
		n = 48 + qn;
	} else if (s->o_src) {
		size_t hl = s->o_hbh ? 48 : 40;
		n = build_v4(s, out + hl);
		if (s->mut == M_V4_VERSION)
			out[hl] = 0x65;
		if (s->mut == M_V4_IHL4)
			out[hl] = 0x44;
		if (s->mut == M_V4_CSUM)
			out[hl + 10] ^= 1;
		if (s->mut == M_V4_TOTLEN_BIG)
			put16(out + hl + 2, (uint16_t)(n + 10));
		v6hdr(out, s->o_src, s->o_dst, s->o_tc, (uint16_t)(n + hl - 40),
		      s->o_hbh  ? 0
		      : s->o_nh ? s->o_nh
		                : 4);
		if (s->o_hbh) {
			memset(out + 40, 0, 8);
			out[40] = s->o_nh ? s->o_nh : 4;
			out[42] = 1; /* PadN */
			out[43] = 4;
		}
		n += hl;
		if (s->mut == M_V6_VERSION)
			out[0] = 0x40;
		if (s->mut == M_V6_PLEN_BIG)
			put16(out + 4, (uint16_t)(n - 40 + 8));
	} else {
		n = build_v4(s, out);
		if (s->mut == M_V4_CSUM)
			out[10] ^= 1;
	}
	if (s->cut) {
		n = (size_t)s->cut;
		if (s->o_src && !s->ptb && n >= 6)
			put16(out + 4, (uint16_t)(n - 40));
	}
	memset(out + n, 0, (size_t)s->pad);
	return n + (size_t)s->pad;
}

/* ---- The test bed: a configuration and the standard bindings. ---- */

enum { DIR_V6, DIR_V4 };

struct bed {
	struct bt *bt;
	struct dp dp;
	uint8_t buf[4096];
	struct dp_pkt pkt;
};

static void
bind_one(struct bt *bt, const char *v4, uint16_t lo, uint16_t hi, const char *v6, uint8_t flags)
{
	struct in_addr a;
	struct in6_addr b;

	inet_pton(AF_INET, v4, &a);
	inet_pton(AF_INET6, v6, &b);
	assert_int_equal(bt_add(bt, ntohl(a.s_addr), lo, hi, &b, flags, NULL), 0);
}

static void
bind_psid(struct bt *bt, const char *v4, uint8_t a, uint8_t k, uint16_t psid, const char *v6)
{
	struct in_addr x;
	struct in6_addr b;

	inet_pton(AF_INET, v4, &x);
	inet_pton(AF_INET6, v6, &b);
	assert_int_equal(bt_add_psid(bt, ntohl(x.s_addr), a, k, psid, &b, 0, NULL), 0);
}

static void
bed_init(struct bed *bed, bool learn, bool dec_ttl, uint32_t icmp_rate)
{
	struct dp_config cfg;
	struct in_addr a;

	memset(&cfg, 0, sizeof(cfg));
	inet_pton(AF_INET6, TEP6, &cfg.tep6);
	inet_pton(AF_INET, TEP4, &a);
	cfg.tep4 = ntohl(a.s_addr);
	cfg.npools = 1;
	cfg.pools[0].addr = 0xc0000200; /* 192.0.2.0/24 */
	cfg.pools[0].mask = 0xffffff00;
	cfg.mtu = 1500;
	cfg.learn = learn;
	cfg.learn_idle = 300;
	cfg.decrement_ttl = dec_ttl;
	cfg.icmp_rate = icmp_rate;
	bed->bt = bt_new(256);
	assert_non_null(bed->bt);
	assert_int_equal(dp_init(&bed->dp, &cfg, bed->bt), 0);
	dp_set_time(&bed->dp, 1000000);
	bind_one(bed->bt, "192.0.2.10", 0, 65535, C1, 0);
	bind_one(bed->bt, "192.0.2.11", 0, 65535, C2, 0);
	bind_one(bed->bt, "192.0.2.20", 1024, 2047, C3, 0);
	bind_one(bed->bt, "192.0.2.20", 2048, 3071, C4, 0);
	bind_psid(bed->bt, "192.0.2.30", 6, 6, 5, C5);
	bind_psid(bed->bt, "192.0.2.30", 6, 6, 6, C6);
}

static void
bed_free(struct bed *bed)
{
	bt_free(bed->bt);
}

static struct dp_pkt *
bed_run(struct bed *bed, int dir, const struct spec *in)
{
	size_t n = build(in, bed->buf + DP_HEADROOM);

	memset(&bed->pkt, 0, sizeof(bed->pkt));
	bed->pkt.data = bed->buf + DP_HEADROOM;
	bed->pkt.len = (uint32_t)n;
	bed->pkt.headroom = DP_HEADROOM;
	if (dir == DIR_V6)
		dp_decap(&bed->dp, &bed->pkt, 1);
	else
		dp_encap(&bed->dp, &bed->pkt, 1);
	return &bed->pkt;
}

/* "name=value ..." must match; every other counter is 0 (bytes: unchecked). */
static void
check_counters(const struct dp *dp, const char *expect, const char *row)
{
	for (int c = 0; c < DPC__COUNT; c++) {
		const char *name = dp_counter_name((enum dp_counter)c);
		const char *at = expect;
		unsigned long long want = 0;
		bool named = false;
		size_t nl = strlen(name);

		while ((at = strstr(at, name)) != NULL) {
			if ((at == expect || at[-1] == ' ') && at[nl] == '=') {
				want = strtoull(at + nl + 1, NULL, 10);
				named = true;
				break;
			}
			at += nl;
		}
		if (!named && strstr(name, "_bytes"))
			continue;
		if (dp->ctr[c] != want) {
			print_error("row \"%s\": counter %s is %llu, expected %llu\n", row, name,
			            (unsigned long long)dp->ctr[c], want);
			fail();
		}
	}
}

static void
check_out(const struct dp_pkt *pkt, enum dp_verdict v, const struct spec *out, const char *row)
{
	uint8_t want[4096];
	size_t n;

	if (pkt->verdict != v) {
		print_error("row \"%s\": verdict %d, expected %d\n", row, pkt->verdict, v);
		fail();
	}
	if (v == DP_DROP)
		return;
	assert_true(pkt->headroom <= DP_HEADROOM + 200);
	n = build(out, want);
	if (pkt->len != n || memcmp(pkt->data, want, n) != 0) {
		print_error("row \"%s\": output differs (len %u, expected %zu)\n", row, pkt->len,
		            n);
		for (size_t i = 0; i < n && i < pkt->len; i++)
			if (pkt->data[i] != want[i]) {
				print_error("  first difference at byte %zu: %02x, expected %02x\n",
				            i, pkt->data[i], want[i]);
				break;
			}
		fail();
	}
	if (v == DP_TO_V6) {
		struct in6_addr d;
		inet_pton(AF_INET6, out->o_dst, &d);
		assert_memory_equal(&pkt->dst6, &d, 16);
	}
}

/* ---- The table. ---- */

struct row {
	const char *name;
	bool learn, dec_ttl;
	int dir;
	struct spec in;
	enum dp_verdict verdict;
	struct spec out;
	const char *counters;
	bool fragmentable;     /* TO_V6 with dontfrag false */
	const char *keepalive; /* the configuration's keepalive4, or none */
};

/* Quoted packets of the ICMP rows. */
static const struct spec q_ttl1 = {
    .src = "192.0.2.10", .dst = HOST4, .ttl = 1, .sport = 5000, .dport = 53, .paylen = 10};
static const struct spec q_hairpin_unbound = {
    .src = "192.0.2.10", .dst = "192.0.2.99", .sport = 5000, .dport = 53, .paylen = 10};
static const struct spec q_unbound = {
    .src = HOST4, .dst = "192.0.2.99", .sport = 53, .dport = 5000, .paylen = 10};
/* Specs that rows also use as a whole (.in = …) are macros: a const object
 * is no constant expression in C, and clang refuses it in an initializer. */
#define Q_BIG_DF                                                                               \
	{                                                                                      \
		.src = HOST4, .dst = "192.0.2.10", .frag = 0x4000, .sport = 80, .dport = 5000, \
		.paylen = 1452                                                                 \
	}
#define Q_DEC_TTL1                                                                       \
	{                                                                                \
		.src = HOST4, .dst = "192.0.2.10", .ttl = 1, .sport = 80, .dport = 5000, \
		.paylen = 10                                                             \
	}
static const struct spec q_big_df = Q_BIG_DF;
static const struct spec q_sent_by_c3 = {
    .src = "192.0.2.20", .dst = HOST4, .sport = 1500, .dport = 53, .paylen = 4};
static const struct spec q_sent_by_c1_df = {.o_src = TEP6,
                                            .o_dst = C1,
                                            .src = HOST4,
                                            .dst = "192.0.2.10",
                                            .frag = 0x4000,
                                            .sport = 80,
                                            .dport = 5000,
                                            .paylen = 1400};
static const struct spec q_sent_by_c1_df_v4 = {
    .src = HOST4, .dst = "192.0.2.10", .frag = 0x4000, .sport = 80, .dport = 5000, .paylen = 1400};
static const struct spec q_from_other = {.o_src = "fd00:d57::99",
                                         .o_dst = C1,
                                         .src = HOST4,
                                         .dst = "192.0.2.10",
                                         .frag = 0x4000,
                                         .sport = 80,
                                         .dport = 5000,
                                         .paylen = 1400};
static const struct spec q_dec_ttl1 = Q_DEC_TTL1;
static const struct spec q_from_unbound = {
    .src = "192.0.2.99", .dst = HOST4, .sport = 5000, .dport = 53, .paylen = 10};
/* Packets quoted by the injection rows: to c1, to the shared address. */
static const struct spec q_to_c1 = {
    .src = HOST4, .dst = "192.0.2.10", .sport = 53, .dport = 5000, .paylen = 4};
static const struct spec q_to_c3 = {.src = HOST4, .dst = "192.0.2.20", .sport = 53, .dport = 1500};
static const struct spec q_to_c4 = {.src = HOST4, .dst = "192.0.2.20", .sport = 53, .dport = 2100};
static const struct spec q_to_shared_nobody = {
    .src = HOST4, .dst = "192.0.2.20", .sport = 53, .dport = 5000};
static const struct spec q_c1_to_c2 = {
    .src = "192.0.2.10", .dst = "192.0.2.11", .sport = 5000, .dport = 7};
static const struct spec q_c2_to_c1 = {
    .src = "192.0.2.11", .dst = "192.0.2.10", .sport = 7, .dport = 5000};
static const struct spec q_sent_by_c2 = {
    .src = "192.0.2.11", .dst = HOST4, .sport = 5000, .dport = 53};
static const struct spec q_sent_by_c4 = {
    .src = "192.0.2.20", .dst = HOST4, .sport = 2100, .dport = 53};
static const struct spec q_sent_by_other_shared = {
    .src = "192.0.2.21", .dst = HOST4, .sport = 1500, .dport = 53};

/* An ICMPv4 error (port unreachable) inside IPv6 from a client, quoting q. */
#define ERR_FROM(o6, v4, q, ...)                                                               \
	{                                                                                      \
		.o_src = o6, .o_dst = TEP6, .src = v4, .dst = HOST4, .icmp = true, .itype = 3, \
		.icode = 3, .quote = q, __VA_ARGS__                                            \
	}
/* The same error as it leaves toward the IPv4 side. */
#define ERR_OUT(v4, q)                                                                    \
	{                                                                                 \
		.src = v4, .dst = HOST4, .icmp = true, .itype = 3, .icode = 3, .quote = q \
	}
/* An ICMPv4 error (port unreachable) from the IPv4 side to v4, quoting q. */
#define ERR_TO(v4, q)                                                                     \
	{                                                                                 \
		.src = HOST4, .dst = v4, .icmp = true, .itype = 3, .icode = 3, .quote = q \
	}

#define UDP_C1(...)                                                                           \
	{                                                                                     \
		.o_src = C1, .o_dst = TEP6, .src = "192.0.2.10", .dst = HOST4, .sport = 5000, \
		.dport = 53, .paylen = 10, __VA_ARGS__                                        \
	}

#define ECHO_C1(...)                                                                        \
	{                                                                                   \
		.o_src = C1, .o_dst = TEP6, .src = "192.0.2.10", .dst = TEP4, .icmp = true, \
		.itype = 8, .sport = 0x77, .ipid = 0x1234, .paylen = 16, __VA_ARGS__        \
	}

#define PSID_C5(...)                                                                          \
	{                                                                                     \
		.o_src = C5, .o_dst = TEP6, .src = "192.0.2.30", .dst = HOST4, .sport = 1104, \
		.dport = 53, .paylen = 10, __VA_ARGS__                                        \
	}

static const struct row rows[] = {
    /* Keepalives (RFC 5572 §4.3): a bound client's echo request to the
     * keepalive address is answered by the TEP, back in the tunnel; the
     * inner TTL does not matter, the TEP being the destination. */
    {"keepalive echo to the TEP's IPv4", .dir = DIR_V6, .keepalive = TEP4, .in = ECHO_C1(.ttl = 1),
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .src = TEP4,
             .dst = "192.0.2.10",
             .icmp = true,
             .itype = 0,
             .sport = 0x77,
             .ipid = 0x1234,
             .paylen = 16},
     .counters = "rx_v6_pkts=1 keepalive_replies=1"},
    {"keepalive echo to a configured address", .dir = DIR_V6, .keepalive = "198.51.100.254",
     .in = ECHO_C1(.dst = "198.51.100.254"), .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .src = "198.51.100.254",
             .dst = "192.0.2.10",
             .icmp = true,
             .itype = 0,
             .sport = 0x77,
             .ipid = 0x1234,
             .paylen = 16},
     .counters = "rx_v6_pkts=1 keepalive_replies=1"},
    {"keepalive from a shared address", .dir = DIR_V6, .keepalive = TEP4,
     .in = ECHO_C1(.o_src = C3, .src = "192.0.2.20", .sport = 1100), .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C3,
             .src = TEP4,
             .dst = "192.0.2.20",
             .icmp = true,
             .itype = 0,
             .sport = 1100,
             .ipid = 0x1234,
             .paylen = 16},
     .counters = "rx_v6_pkts=1 keepalive_replies=1"},
    {"keepalive from a spoofed tunnel source is not answered", .dir = DIR_V6, .keepalive = TEP4,
     .in = ECHO_C1(.o_src = EVIL), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"keepalive from an unbound source is not answered", .dir = DIR_V6, .keepalive = TEP4,
     .in = ECHO_C1(.src = "192.0.2.99"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_no_binding_src=1"},
    {"no keepalive address: an echo to the TEP's IPv4 is forwarded", .dir = DIR_V6, .in = ECHO_C1(),
     .verdict = DP_TO_V4, .out = ECHO_C1(.o_src = NULL), .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"keepalive address: other ICMP takes the ordinary path", .dir = DIR_V6, .keepalive = TEP4,
     .in = ECHO_C1(.itype = 13), .verdict = DP_TO_V4, .out = ECHO_C1(.o_src = NULL, .itype = 13),
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"keepalive address: a fragmented echo takes the ordinary path", .dir = DIR_V6,
     .keepalive = TEP4, .in = ECHO_C1(.frag = 0x2000), .verdict = DP_TO_V4,
     .out = ECHO_C1(.o_src = NULL, .frag = 0x2000), .counters = "rx_v6_pkts=1 decap_pkts=1"},
    /* Decapsulation: the good cases. */
    {"decap udp", .dir = DIR_V6, .in = UDP_C1(), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1 rx_v6_bytes=78 decap_bytes=38"},
    {"decap decrements ttl when asked", .dec_ttl = true, .dir = DIR_V6, .in = UDP_C1(),
     .verdict = DP_TO_V4,
     .out =
         {.src = "192.0.2.10", .dst = HOST4, .ttl = 63, .sport = 5000, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap after hop-by-hop options", .dir = DIR_V6, .in = UDP_C1(.o_hbh = true),
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap trims link padding", .dir = DIR_V6, .in = UDP_C1(.pad = 6), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap shared address, port in range", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .sport = 1500,
            .dport = 53,
            .paylen = 10},
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.20", .dst = HOST4, .sport = 1500, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap shared address, tcp", .dir = DIR_V6,
     .in = {.o_src = C4,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .proto = 6,
            .sport = 3071,
            .dport = 80},
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.20", .dst = HOST4, .proto = 6, .sport = 3071, .dport = 80},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap shared address, echo id in range", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .icmp = true,
            .itype = 8,
            .sport = 1100},
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.20", .dst = HOST4, .icmp = true, .itype = 8, .sport = 1100},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},

    /* RFC 7597 §5.1 port sets: 192.0.2.30 offset 6, PSID length 6. */
    {"decap psid, port in the set", .dir = DIR_V6, .in = PSID_C5(.sport = 1104),
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.30", .dst = HOST4, .sport = 1104, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap psid, last port of the set (i 63, j 15)", .dir = DIR_V6,
     .in = PSID_C5(.proto = 6, .sport = 64607, .dport = 80, .paylen = 0), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.30", .dst = HOST4, .proto = 6, .sport = 64607, .dport = 80},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap psid, echo identifier in the set", .dir = DIR_V6,
     .in = {.o_src = C5,
            .o_dst = TEP6,
            .src = "192.0.2.30",
            .dst = HOST4,
            .icmp = true,
            .itype = 8,
            .sport = 2128},
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.30", .dst = HOST4, .icmp = true, .itype = 8, .sport = 2128},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"decap psid, port outside every set", .dir = DIR_V6, .in = PSID_C5(.sport = 1136),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_port_outside_set=1"},
    {"decap psid, excluded port (i 0) whose low bits are the psid", .dir = DIR_V6,
     .in = PSID_C5(.sport = 80), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_port_outside_set=1"},
    {"decap psid, echo identifier outside", .dir = DIR_V6,
     .in = {.o_src = C5,
            .o_dst = TEP6,
            .src = "192.0.2.30",
            .dst = HOST4,
            .icmp = true,
            .itype = 8,
            .sport = 1000},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_port_outside_set=1"},
    {"decap psid, port of another lwB4's set", .dir = DIR_V6, .in = PSID_C5(.sport = 1120),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"decap psid, non-first fragment", .dir = DIR_V6,
     .in = PSID_C5(.proto = 50, .frag = 100, .paylen = 16), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_frag_shared=1"},

    /* Ingress filtering (whitepaper 004). */
    {"spoofed outer source", .dir = DIR_V6, .in = UDP_C1(.o_src = C2), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"unknown outer source", .dir = DIR_V6, .in = UDP_C1(.o_src = EVIL), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"spoofed inner source, unbound pool address", .dir = DIR_V6, .in = UDP_C1(.src = "192.0.2.99"),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_no_binding_src=1"},
    {"spoofed inner source outside the pools", .dir = DIR_V6, .in = UDP_C1(.src = "203.0.113.5"),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_no_binding_src=1"},
    {"port outside the range", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .sport = 5000,
            .dport = 53},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_port_outside_range=1"},
    {"port of another client's range", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .sport = 2100,
            .dport = 53},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"shared address, non-first fragment", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .proto = 50,
            .frag = 100,
            .paylen = 16},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_frag_shared=1"},
    {"shared address, protocol without ports", .dir = DIR_V6,
     .in =
         {.o_src = C3, .o_dst = TEP6, .src = "192.0.2.20", .dst = HOST4, .proto = 47, .paylen = 16},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_no_port=1"},

    /* Hairpinning. */
    {"hairpin to another client", .dir = DIR_V6, .in = UDP_C1(.dst = "192.0.2.11", .tos = 0x20),
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C2,
             .o_tc = 0x20,
             .src = "192.0.2.10",
             .dst = "192.0.2.11",
             .tos = 0x20,
             .ttl = 63,
             .sport = 5000,
             .dport = 53,
             .paylen = 10},
     .counters = "rx_v6_pkts=1 hairpin_pkts=1"},
    {"hairpin to a shared address", .dir = DIR_V6, .in = UDP_C1(.dst = "192.0.2.20", .dport = 2050),
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C4,
             .src = "192.0.2.10",
             .dst = "192.0.2.20",
             .ttl = 63,
             .sport = 5000,
             .dport = 2050,
             .paylen = 10},
     .counters = "rx_v6_pkts=1 hairpin_pkts=1"},
    {"hairpin to an unbound pool address", .dir = DIR_V6, .in = UDP_C1(.dst = "192.0.2.99"),
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .src = TEP4,
             .dst = "192.0.2.10",
             .tos = 0xc0,
             .icmp = true,
             .itype = 3,
             .icode = 1,
             .quote = &q_hairpin_unbound},
     .counters = "rx_v6_pkts=1 drop_hairpin_no_binding=1 icmp4_sent_unreach=1"},

    /* TTL. */
    {"ttl 1 expires at the tep", .dir = DIR_V6, .in = UDP_C1(.ttl = 1), .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .src = TEP4,
             .dst = "192.0.2.10",
             .tos = 0xc0,
             .icmp = true,
             .itype = 11,
             .quote = &q_ttl1},
     .counters = "rx_v6_pkts=1 drop_ttl_expired=1 icmp4_sent_time_exceeded=1"},

    /* Malformed outer packets. */
    {"truncated ipv6 header", .dir = DIR_V6, .in = UDP_C1(.cut = 30), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v6_truncated=1"},
    {"ipv6 payload length past the end", .dir = DIR_V6, .in = UDP_C1(.mut = M_V6_PLEN_BIG),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v6_truncated=1"},
    {"wrong outer version", .dir = DIR_V6, .in = UDP_C1(.mut = M_V6_VERSION), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v6_version=1"},
    {"outer destination not ours", .dir = DIR_V6, .in = UDP_C1(.o_dst = "fd00:d57::3"),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v6_not_for_us=1"},
    {"next header not 4", .dir = DIR_V6, .in = UDP_C1(.o_nh = 17), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v6_not_ipip=1"},
    {"outer fragment header", .dir = DIR_V6, .in = UDP_C1(.o_nh = 44), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v6_fragment=1"},
    {"extension header cut short", .dir = DIR_V6, .in = UDP_C1(.o_hbh = true, .cut = 44),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v6_truncated=1"},

    /* Malformed inner packets. */
    {"inner header truncated", .dir = DIR_V6, .in = UDP_C1(.cut = 50), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_truncated=1"},
    {"inner version 6", .dir = DIR_V6, .in = UDP_C1(.mut = M_V4_VERSION), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_version=1"},
    {"inner ihl 4", .dir = DIR_V6, .in = UDP_C1(.mut = M_V4_IHL4), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_ihl=1"},
    {"inner checksum wrong", .dir = DIR_V6, .in = UDP_C1(.mut = M_V4_CSUM), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_checksum=1"},
    {"inner total length past the end", .dir = DIR_V6, .in = UDP_C1(.mut = M_V4_TOTLEN_BIG),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_truncated=1"},
    {"first fragment of a protocol without ports", .dir = DIR_V6,
     .in = UDP_C1(.proto = 99, .frag = 0x2000, .paylen = 0), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10", .dst = HOST4, .proto = 99, .frag = 0x2000},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"tiny first tcp fragment (RFC 1858)", .dir = DIR_V6,
     .in = UDP_C1(.proto = 6, .frag = 0x2000, .paylen = 0, .short_l4 = 8), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_frag_tiny=1"},
    {"tiny first udp fragment (RFC 1858)", .dir = DIR_V6,
     .in = UDP_C1(.frag = 0x2000, .paylen = 0, .short_l4 = 4), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_frag_tiny=1"},
    {"fragment past 65535", .dir = DIR_V6, .in = UDP_C1(.proto = 50, .frag = 0x1fff, .paylen = 16),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_fragment=1"},
    {"tcp fragment at offset 1", .dir = DIR_V6, .in = UDP_C1(.proto = 6, .frag = 1, .paylen = 0),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_frag_overlap=1"},
    {"reserved fragment flag", .dir = DIR_V6, .in = UDP_C1(.frag = 0x8000), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_fragment=1"},
    {"whole address, non-first fragment passes", .dir = DIR_V6,
     .in = UDP_C1(.proto = 50, .frag = 100, .paylen = 16), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10", .dst = HOST4, .proto = 50, .frag = 100, .paylen = 16},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"multicast destination", .dir = DIR_V6, .in = UDP_C1(.dst = "224.0.0.1"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_martian=1"},
    {"loopback destination", .dir = DIR_V6, .in = UDP_C1(.dst = "127.0.0.1"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_martian=1"},

    /* Injection (whitepaper 004, issue 7): ICMPv4 errors must quote a
     * packet of the client they come from or go to. */
    {"client's error about a packet it received", .dir = DIR_V6,
     .in = ERR_FROM(C1, "192.0.2.10", &q_to_c1), .verdict = DP_TO_V4,
     .out = ERR_OUT("192.0.2.10", &q_to_c1), .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"client's error quoting a packet sent to another client", .dir = DIR_V6,
     .in = ERR_FROM(C2, "192.0.2.11", &q_to_c1), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_icmp4_forged_from_client=1"},
    {"error with a spoofed outer source and a fitting quote", .dir = DIR_V6,
     .in = ERR_FROM(C2, "192.0.2.10", &q_to_c1), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"shared address, error about its own port", .dir = DIR_V6,
     .in = ERR_FROM(C3, "192.0.2.20", &q_to_c3), .verdict = DP_TO_V4,
     .out = ERR_OUT("192.0.2.20", &q_to_c3), .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"shared address, error about another client's port", .dir = DIR_V6,
     .in = ERR_FROM(C3, "192.0.2.20", &q_to_c4), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_icmp4_forged_from_client=1"},
    {"shared address, error about a port nobody holds", .dir = DIR_V6,
     .in = ERR_FROM(C3, "192.0.2.20", &q_to_shared_nobody), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_icmp4_forged_from_client=1"},
    {"client's error without a quote", .dir = DIR_V6, .in = ERR_FROM(C1, "192.0.2.10", NULL),
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_icmp4_quote_bad=1"},
    {"client's error quoting no ipv4 header", .dir = DIR_V6,
     .in = ERR_FROM(C1, "192.0.2.10", NULL, .paylen = 28), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_icmp4_quote_bad=1"},
    {"hairpinned error about a packet the destination sent", .dir = DIR_V6,
     .in = ERR_FROM(C1, "192.0.2.10", &q_c2_to_c1, .dst = "192.0.2.11"), .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C2,
             .src = "192.0.2.10",
             .dst = "192.0.2.11",
             .ttl = 63,
             .icmp = true,
             .itype = 3,
             .icode = 3,
             .quote = &q_c2_to_c1},
     .counters = "rx_v6_pkts=1 hairpin_pkts=1"},
    {"hairpinned error about a packet the destination did not send", .dir = DIR_V6,
     .in = ERR_FROM(C1, "192.0.2.10", &q_to_c1, .dst = "192.0.2.11"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_icmp4_forged_to_client=1"},
    {"ipv4 error about a packet the client sent", .dir = DIR_V4,
     .in = ERR_TO("192.0.2.11", &q_sent_by_c2), .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C2,
             .src = HOST4,
             .dst = "192.0.2.11",
             .icmp = true,
             .itype = 3,
             .icode = 3,
             .quote = &q_sent_by_c2},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"ipv4 error quoting another client's packet", .dir = DIR_V4,
     .in = ERR_TO("192.0.2.10", &q_sent_by_c2), .verdict = DP_DROP,
     .counters = "rx_v4_pkts=1 drop_icmp4_forged_to_client=1"},
    {"ipv4 error quoting a packet sent to the client", .dir = DIR_V4,
     .in = ERR_TO("192.0.2.10", &q_to_c1), .verdict = DP_DROP,
     .counters = "rx_v4_pkts=1 drop_icmp4_forged_to_client=1"},
    {"ipv4 error to a shared address goes to the port's holder", .dir = DIR_V4,
     .in = ERR_TO("192.0.2.20", &q_sent_by_c4), .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C4,
             .src = HOST4,
             .dst = "192.0.2.20",
             .icmp = true,
             .itype = 3,
             .icode = 3,
             .quote = &q_sent_by_c4},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"ipv4 error to a shared address quoting another address", .dir = DIR_V4,
     .in = ERR_TO("192.0.2.20", &q_sent_by_other_shared), .verdict = DP_DROP,
     .counters = "rx_v4_pkts=1 drop_icmp4_forged_to_client=1"},
    {"ipv4 error without a quote", .dir = DIR_V4, .in = ERR_TO("192.0.2.10", NULL),
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_icmp4_quote_bad=1"},
    {"error quoting a packet between two clients, from the ipv4 side", .dir = DIR_V4,
     .in = ERR_TO("192.0.2.11", &q_c1_to_c2), .verdict = DP_DROP,
     .counters = "rx_v4_pkts=1 drop_icmp4_forged_to_client=1"},

    /* Fragments: no reassembly state; each judged alone (dp.h). */
    {"first tcp fragment with its whole header passes", .dir = DIR_V6,
     .in = UDP_C1(.proto = 6, .frag = 0x2000, .paylen = 8), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10",
             .dst = HOST4,
             .proto = 6,
             .frag = 0x2000,
             .sport = 5000,
             .dport = 53,
             .paylen = 8},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"tiny first icmp fragment (RFC 1858)", .dir = DIR_V6,
     .in = UDP_C1(.icmp = true, .itype = 8, .frag = 0x2000, .short_l4 = 4), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_frag_tiny=1"},
    {"tcp first fragment one byte short of its header", .dir = DIR_V6,
     .in = UDP_C1(.proto = 6, .frag = 0x2000, .paylen = 0, .short_l4 = 19), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_frag_tiny=1"},
    {"udp fragment at offset 1 passes (the ports lie before it)", .dir = DIR_V6,
     .in = UDP_C1(.frag = 1, .paylen = 0), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.10", .dst = HOST4, .frag = 1, .sport = 5000, .dport = 53},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"non-first fragment under a spoofed outer source", .dir = DIR_V6,
     .in = UDP_C1(.o_src = C2, .proto = 50, .frag = 100, .paylen = 16), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"shared address, first fragment in range passes", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .frag = 0x2000,
            .sport = 1500,
            .dport = 53,
            .paylen = 16},
     .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.20",
             .dst = HOST4,
             .frag = 0x2000,
             .sport = 1500,
             .dport = 53,
             .paylen = 16},
     .counters = "rx_v6_pkts=1 decap_pkts=1"},
    {"shared address, udp fragment at offset 1", .dir = DIR_V6,
     .in = {.o_src = C3,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .frag = 1,
            .sport = 1500,
            .dport = 53},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_frag_shared=1"},
    {"shared address, fragment from nobody's binding", .dir = DIR_V6,
     .in = {.o_src = EVIL,
            .o_dst = TEP6,
            .src = "192.0.2.20",
            .dst = HOST4,
            .proto = 50,
            .frag = 100,
            .paylen = 16},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 drop_v4_frag_shared=1"},
    {"hairpin non-first fragment to a shared address", .dir = DIR_V6,
     .in = UDP_C1(.dst = "192.0.2.20", .proto = 50, .frag = 100, .paylen = 16), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_v4_frag_shared=1"},
    {"encap non-first fragment to a whole address", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.10", .proto = 50, .frag = 100, .paylen = 16},
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .src = HOST4,
             .dst = "192.0.2.10",
             .proto = 50,
             .frag = 100,
             .paylen = 16},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"encap non-first fragment to a shared address", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.20", .proto = 50, .frag = 100, .paylen = 16},
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_v4_frag_shared=1"},
    {"encap tiny first fragment", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.10", .proto = 6, .frag = 0x2000, .short_l4 = 12},
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_v4_frag_tiny=1"},
    {"encap tcp fragment at offset 1", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.10", .proto = 6, .frag = 1, .paylen = 0},
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_v4_frag_overlap=1"},

    /* ICMPv6 to the TEP. */
    {"packet too big about our tunnel", .dir = DIR_V6,
     .in = {.ptb = true,
            .o_src = "fd00:d57::1",
            .o_dst = TEP6,
            .ptb_mtu = 1400,
            .quote = &q_sent_by_c1_df},
     .verdict = DP_TO_V4,
     .out = {.src = TEP4,
             .dst = HOST4,
             .tos = 0xc0,
             .icmp = true,
             .itype = 3,
             .icode = 4,
             .iinfo = 1360,
             .quote = &q_sent_by_c1_df_v4},
     .counters = "rx_v6_pkts=1 icmp6_rx=1 pmtu_updates=1 icmp4_sent_frag_needed=1"},
    {"packet too big, bad checksum", .dir = DIR_V6,
     .in = {.ptb = true,
            .o_src = "fd00:d57::1",
            .o_dst = TEP6,
            .ptb_mtu = 1400,
            .quote = &q_sent_by_c1_df,
            .mut = M_PTB_CSUM},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 icmp6_rx=1 drop_icmp6_checksum=1"},
    {"packet too big about someone else's packet", .dir = DIR_V6,
     .in = {.ptb = true,
            .o_src = "fd00:d57::1",
            .o_dst = TEP6,
            .ptb_mtu = 1400,
            .quote = &q_from_other},
     .verdict = DP_DROP, .counters = "rx_v6_pkts=1 icmp6_rx=1 drop_icmp6_not_ours=1"},

    /* Encapsulation. */
    {"encap to a bound address", .dir = DIR_V4,
     .in =
         {.src = HOST4, .dst = "192.0.2.10", .tos = 0xb8, .sport = 53, .dport = 5000, .paylen = 10},
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .o_tc = 0xb8,
             .src = HOST4,
             .dst = "192.0.2.10",
             .tos = 0xb8,
             .sport = 53,
             .dport = 5000,
             .paylen = 10},
     .counters = "rx_v4_pkts=1 encap_pkts=1 rx_v4_bytes=38 encap_bytes=38"},
    {"encap to a shared address by port", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.20", .sport = 53, .dport = 2100}, .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C4,
             .src = HOST4,
             .dst = "192.0.2.20",
             .sport = 53,
             .dport = 2100},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"encap echo reply by identifier", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.20", .icmp = true, .itype = 0, .sport = 1100},
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C3,
             .src = HOST4,
             .dst = "192.0.2.20",
             .icmp = true,
             .itype = 0,
             .sport = 1100},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"encap psid, by port in the set", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.30", .sport = 53, .dport = 1125}, .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C6,
             .src = HOST4,
             .dst = "192.0.2.30",
             .sport = 53,
             .dport = 1125},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"encap psid, echo reply by identifier", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.30", .icmp = true, .itype = 0, .sport = 2128},
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C5,
             .src = HOST4,
             .dst = "192.0.2.30",
             .icmp = true,
             .itype = 0,
             .sport = 2128},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"encap psid, port of no set", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.30", .sport = 53, .dport = 1136}, .verdict = DP_TO_V4,
     .out = {.src = TEP4,
             .dst = HOST4,
             .tos = 0xc0,
             .icmp = true,
             .itype = 3,
             .icode = 1,
             .quote = &(
                 const struct spec){.src = HOST4, .dst = "192.0.2.30", .sport = 53, .dport = 1136}},
     .counters = "rx_v4_pkts=1 drop_no_binding_dst=1 icmp4_sent_unreach=1"},
    {"icmp error tunnelled to the client it concerns", .dir = DIR_V4,
     .in = {.src = HOST4,
            .dst = "192.0.2.20",
            .icmp = true,
            .itype = 3,
            .icode = 3,
            .quote = &q_sent_by_c3},
     .verdict = DP_TO_V6,
     .out = {.o_src = TEP6,
             .o_dst = C3,
             .src = HOST4,
             .dst = "192.0.2.20",
             .icmp = true,
             .itype = 3,
             .icode = 3,
             .quote = &q_sent_by_c3},
     .counters = "rx_v4_pkts=1 encap_pkts=1"},
    {"unbound pool address: host unreachable", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.99", .sport = 53, .dport = 5000, .paylen = 10},
     .verdict = DP_TO_V4,
     .out = {.src = TEP4,
             .dst = HOST4,
             .tos = 0xc0,
             .icmp = true,
             .itype = 3,
             .icode = 1,
             .quote = &q_unbound},
     .counters = "rx_v4_pkts=1 drop_no_binding_dst=1 icmp4_sent_unreach=1"},
    {"shared address, port nobody holds", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.20", .sport = 53, .dport = 5000}, .verdict = DP_TO_V4,
     .out = {.src = TEP4,
             .dst = HOST4,
             .tos = 0xc0,
             .icmp = true,
             .itype = 3,
             .icode = 1,
             .quote = &(
                 const struct spec){.src = HOST4, .dst = "192.0.2.20", .sport = 53, .dport = 5000}},
     .counters = "rx_v4_pkts=1 drop_no_binding_dst=1 icmp4_sent_unreach=1"},
    {"no error about an icmp error", .dir = DIR_V4,
     .in = {.src = HOST4,
            .dst = "192.0.2.99",
            .icmp = true,
            .itype = 3,
            .icode = 3,
            .quote = &q_from_unbound},
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_no_binding_dst=1 icmp4_suppressed=1"},
    {"outside the pools", .dir = DIR_V4, .in = {.src = HOST4, .dst = "203.0.113.7"},
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_not_in_pool=1"},
    {"too big with DF: fragmentation needed", .dir = DIR_V4, .in = Q_BIG_DF, .verdict = DP_TO_V4,
     .out = {.src = TEP4,
             .dst = HOST4,
             .tos = 0xc0,
             .icmp = true,
             .itype = 3,
             .icode = 4,
             .iinfo = 1460,
             .quote = &q_big_df},
     .counters = "rx_v4_pkts=1 drop_too_big_df=1 icmp4_sent_frag_needed=1"},
    {"too big without DF: the ipv6 packet is fragmented", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.10", .sport = 80, .dport = 5000, .paylen = 1452},
     .verdict = DP_TO_V6, .fragmentable = true,
     .out = {.o_src = TEP6,
             .o_dst = C1,
             .src = HOST4,
             .dst = "192.0.2.10",
             .sport = 80,
             .dport = 5000,
             .paylen = 1452},
     .counters = "rx_v4_pkts=1 encap_pkts=1 encap_v6_fragmented=1"},
    {"encap ttl expiry when the core routes", .dec_ttl = true, .dir = DIR_V4, .in = Q_DEC_TTL1,
     .verdict = DP_TO_V4,
     .out =
         {.src = TEP4, .dst = HOST4, .tos = 0xc0, .icmp = true, .itype = 11, .quote = &q_dec_ttl1},
     .counters = "rx_v4_pkts=1 drop_ttl_expired=1 icmp4_sent_time_exceeded=1"},
    {"encap bad checksum", .dir = DIR_V4,
     .in = {.src = HOST4, .dst = "192.0.2.10", .mut = M_V4_CSUM}, .verdict = DP_DROP,
     .counters = "rx_v4_pkts=1 drop_v4_checksum=1"},
    {"encap truncated", .dir = DIR_V4, .in = {.src = HOST4, .dst = "192.0.2.10", .cut = 12},
     .verdict = DP_DROP, .counters = "rx_v4_pkts=1 drop_v4_truncated=1"},

    /* Learn mode (seed 002 §5.2). */
    {"learn a pool address", .learn = true, .dir = DIR_V6,
     .in = UDP_C1(.o_src = "fd00:d57::21", .src = "192.0.2.50"), .verdict = DP_TO_V4,
     .out = {.src = "192.0.2.50", .dst = HOST4, .sport = 5000, .dport = 53, .paylen = 10},
     .counters = "rx_v6_pkts=1 decap_pkts=1 learned=1"},
    {"never learn over a server binding", .learn = true, .dir = DIR_V6,
     .in = UDP_C1(.o_src = "fd00:d57::21"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_spoofed_v6_src=1"},
    {"never learn outside the pools", .learn = true, .dir = DIR_V6,
     .in = UDP_C1(.o_src = "fd00:d57::21", .src = "203.0.113.1"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_no_binding_src=1"},
    {"never learn from a forged icmp error", .learn = true, .dir = DIR_V6,
     .in = ERR_FROM("fd00:d57::21", "192.0.2.50", &q_to_c1), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_icmp4_forged_from_client=1"},
    {"never learn a multicast source", .learn = true, .dir = DIR_V6,
     .in = UDP_C1(.o_src = "ff02::1", .src = "192.0.2.51"), .verdict = DP_DROP,
     .counters = "rx_v6_pkts=1 drop_learn_bad_src=1"},
};

static void
test_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct bed bed;
		struct dp_pkt *pkt;

		bed_init(&bed, r->learn, r->dec_ttl, 1000);
		if (r->keepalive) {
			struct in_addr a;

			inet_pton(AF_INET, r->keepalive, &a);
			bed.dp.cfg.keepalive4 = ntohl(a.s_addr);
		}
		pkt = bed_run(&bed, r->dir, &r->in);
		check_out(pkt, r->verdict, &r->out, r->name);
		check_counters(&bed.dp, r->counters, r->name);
		if (r->verdict == DP_TO_V6 && pkt->dontfrag == r->fragmentable) {
			print_error("row \"%s\": dontfrag %d\n", r->name, pkt->dontfrag);
			fail();
		}
		bed_free(&bed);
	}
}

/* ---- Scenarios. ---- */

static void
test_rate_limit(void **state)
{
	struct bed bed;
	const struct spec in = q_unbound;

	bed_init(&bed, false, false, 2);
	for (int i = 0; i < 5; i++)
		bed_run(&bed, DIR_V4, &in);
	assert_int_equal(bed.dp.ctr[DPC_icmp4_sent_unreach], 2);
	assert_int_equal(bed.dp.ctr[DPC_icmp4_rate_limited], 3);
	assert_int_equal(bed.dp.ctr[DPC_drop_no_binding_dst], 5);
	dp_set_time(&bed.dp, 1000000 + 500); /* half a second: one token */
	bed_run(&bed, DIR_V4, &in);
	bed_run(&bed, DIR_V4, &in);
	assert_int_equal(bed.dp.ctr[DPC_icmp4_sent_unreach], 3);
	dp_set_time(&bed.dp, 1000000 + 60000); /* a long pause refills only the burst */
	for (int i = 0; i < 5; i++)
		bed_run(&bed, DIR_V4, &in);
	assert_int_equal(bed.dp.ctr[DPC_icmp4_sent_unreach], 5);
	bed_free(&bed);
}

/* A PTB lowers the client's MTU; later DF packets get the new MTU back. */
static void
test_pmtu(void **state)
{
	struct bed bed;
	const struct spec ptb = {.ptb = true,
	                         .o_src = "fd00:d57::1",
	                         .o_dst = TEP6,
	                         .ptb_mtu = 1400,
	                         .quote = &q_sent_by_c1_df};
	const struct spec fits = {
	    .src = HOST4, .dst = "192.0.2.10", .frag = 0x4000, .paylen = 1360 - 28};
	const struct spec big = {
	    .src = HOST4, .dst = "192.0.2.10", .frag = 0x4000, .paylen = 1361 - 28};
	const struct spec tiny = {.ptb = true,
	                          .o_src = "fd00:d57::1",
	                          .o_dst = TEP6,
	                          .ptb_mtu = 600,
	                          .quote = &q_sent_by_c1_df};
	struct dp_pkt *pkt;

	bed_init(&bed, false, false, 1000);
	bed_run(&bed, DIR_V6, &ptb);
	assert_int_equal(bt_lookup(bed.bt, 0xc000020a, 0)->mtu, 1400);
	pkt = bed_run(&bed, DIR_V4, &fits);
	assert_int_equal(pkt->verdict, DP_TO_V6);
	pkt = bed_run(&bed, DIR_V4, &big);
	assert_int_equal(pkt->verdict, DP_TO_V4);
	assert_int_equal(pkt->data[20], 3);
	assert_int_equal(pkt->data[21], 4);
	assert_int_equal(pkt->data[26] << 8 | pkt->data[27], 1360);
	/* Below the IPv6 minimum: clamped to 1280. */
	bed_run(&bed, DIR_V6, &tiny);
	assert_int_equal(bt_lookup(bed.bt, 0xc000020a, 0)->mtu, 1280);
	assert_int_equal(bed.dp.ctr[DPC_pmtu_updates], 2);
	bed_free(&bed);
}

/* The shell's EMSGSIZE: DF packets turn into fragmentation-needed. */
static void
test_too_big(void **state)
{
	struct bed bed;
	const struct spec df = {.src = HOST4, .dst = "192.0.2.10", .frag = 0x4000, .paylen = 1300};
	const struct spec nodf = {.src = HOST4, .dst = "192.0.2.10", .paylen = 1300};
	struct dp_pkt *pkt;

	bed_init(&bed, false, false, 1000);
	pkt = bed_run(&bed, DIR_V4, &df);
	assert_int_equal(pkt->verdict, DP_TO_V6);
	dp_too_big(&bed.dp, pkt, 1300);
	assert_int_equal(pkt->verdict, DP_TO_V4);
	assert_int_equal(pkt->data[26] << 8 | pkt->data[27], 1260);
	assert_int_equal(bt_lookup(bed.bt, 0xc000020a, 0)->mtu, 1300);
	pkt = bed_run(&bed, DIR_V4, &nodf);
	assert_int_equal(pkt->verdict, DP_TO_V6);
	assert_false(pkt->dontfrag);
	assert_int_equal(bed.dp.ctr[DPC_encap_v6_fragmented], 1);
	assert_int_equal(bed.dp.ctr[DPC_tx_v6_emsgsize], 1);
	bed_free(&bed);
}

/* Learned bindings refresh on traffic, yield only when idle, and expire. */
static void
test_learn_idle(void **state)
{
	struct bed bed;
	const struct spec a = UDP_C1(.o_src = "fd00:d57::21", .src = "192.0.2.50");
	const struct spec b = UDP_C1(.o_src = "fd00:d57::22", .src = "192.0.2.50");
	struct dp_pkt *pkt;

	bed_init(&bed, true, false, 1000);
	assert_int_equal(bed_run(&bed, DIR_V6, &a)->verdict, DP_TO_V4);
	dp_set_time(&bed.dp, 1000000 + 200000);
	assert_int_equal(bed_run(&bed, DIR_V6, &a)->verdict, DP_TO_V4); /* refresh */
	dp_set_time(&bed.dp, 1000000 + 400000);
	assert_int_equal(bed_run(&bed, DIR_V6, &b)->verdict, DP_DROP);
	assert_int_equal(bed.dp.ctr[DPC_drop_spoofed_v6_src], 1);
	/* The return path follows the learned binding. */
	pkt = bed_run(&bed, DIR_V4,
	              &(const struct spec){.src = HOST4, .dst = "192.0.2.50", .dport = 5000});
	assert_int_equal(pkt->verdict, DP_TO_V6);
	dp_set_time(&bed.dp, 1000000 + 600000);
	assert_int_equal(bed_run(&bed, DIR_V6, &b)->verdict, DP_TO_V4);
	assert_int_equal(bed.dp.ctr[DPC_learn_replaced], 1);
	dp_set_time(&bed.dp, 1000000 + 1000000);
	assert_int_equal(dp_expire(&bed.dp, 1000), 1);
	assert_null(bt_lookup(bed.bt, 0xc0000232, 0));
	/* Server bindings never expire. */
	assert_non_null(bt_lookup(bed.bt, 0xc000020a, 0));
	bed_free(&bed);
}

/* A client's keepalives keep its binding warm: its last_seen follows them. */
static void
test_keepalive_warm(void **state)
{
	struct bed bed;
	const struct spec ping = ECHO_C1();
	struct bt_binding *b;
	struct in_addr a;

	bed_init(&bed, false, false, 1000);
	inet_pton(AF_INET, TEP4, &a);
	bed.dp.cfg.keepalive4 = ntohl(a.s_addr);
	b = bt_lookup(bed.bt, 0xc000020a, 0);
	assert_non_null(b);
	assert_int_equal(b->last_seen, 0);
	assert_int_equal(bed_run(&bed, DIR_V6, &ping)->verdict, DP_TO_V6);
	assert_int_equal(b->last_seen, 1000);
	dp_set_time(&bed.dp, 1000000 + 30000);
	assert_int_equal(bed_run(&bed, DIR_V6, &ping)->verdict, DP_TO_V6);
	assert_int_equal(b->last_seen, 1030);
	assert_int_equal(b->pkts_in, 2);
	assert_int_equal(b->pkts_out, 2);
	assert_int_equal(bed.dp.ctr[DPC_keepalive_replies], 2);
	bed_free(&bed);
}

/*
 * Fragments that never complete cost the core nothing: 2,000 first and
 * last fragments of 2,000 distinct datagrams, none ever completed, are
 * forwarded one by one, and afterwards the core's state is what it was
 * (counters apart) and the binding table holds no more memory.
 */
static void
test_fragments_keep_no_state(void **state)
{
	struct bed bed;
	struct dp before;
	size_t mem, count;
	struct spec s = UDP_C1(.paylen = 64);

	bed_init(&bed, false, false, 1000);
	memcpy(&before, &bed.dp, sizeof(before));
	mem = bt_memory(bed.bt);
	count = bt_count(bed.bt);
	for (unsigned i = 0; i < 2000; i++) {
		s.ipid = (uint16_t)i;
		s.frag = i % 2 ? (uint16_t)(1000 + i % 500) : 0x2000; /* last, or first with MF */
		assert_int_equal(bed_run(&bed, DIR_V6, &s)->verdict, DP_TO_V4);
	}
	assert_int_equal(bed.dp.ctr[DPC_decap_pkts], 2000);
	assert_int_equal(bt_memory(bed.bt), mem);
	assert_int_equal(bt_count(bed.bt), count);
	memcpy(before.ctr, bed.dp.ctr, sizeof(before.ctr));
	assert_memory_equal(&before, &bed.dp, sizeof(before));
	bed_free(&bed);
}

/* A batch mixes verdicts; each packet ends where it alone would. */
static void
test_batch(void **state)
{
	struct bed bed;
	static uint8_t bufs[DP_BATCH][2048];
	struct dp_pkt pkts[DP_BATCH];

	bed_init(&bed, false, false, 1000);
	for (unsigned i = 0; i < DP_BATCH; i++) {
		struct spec s = UDP_C1();
		size_t n;
		if (i % 3 == 1)
			s.o_src = C2;
		if (i % 3 == 2) {
			s.o_src = C2;
			s.src = "192.0.2.11";
		}
		n = build(&s, bufs[i] + DP_HEADROOM);
		memset(&pkts[i], 0, sizeof(pkts[i]));
		pkts[i].data = bufs[i] + DP_HEADROOM;
		pkts[i].len = (uint32_t)n;
		pkts[i].headroom = DP_HEADROOM;
	}
	dp_decap(&bed.dp, pkts, DP_BATCH);
	for (unsigned i = 0; i < DP_BATCH; i++)
		assert_int_equal(pkts[i].verdict, i % 3 == 1 ? DP_DROP : DP_TO_V4);
	assert_int_equal(bed.dp.ctr[DPC_decap_pkts], 21);
	assert_int_equal(bed.dp.ctr[DPC_drop_spoofed_v6_src], 11);
	assert_int_equal(bt_lookup(bed.bt, 0xc000020a, 0)->pkts_in, 11);
	assert_int_equal(bt_lookup(bed.bt, 0xc000020b, 0)->pkts_in, 10);
	bed_free(&bed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),      cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_pmtu),       cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_learn_idle), cmocka_unit_test(test_keepalive_warm),
	    cmocka_unit_test(test_batch),      cmocka_unit_test(test_fragments_keep_no_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
