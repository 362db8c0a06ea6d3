/*
 * Packet-in, packet-out tests of the TEP's XDP programs (src/xdp), run by
 * the kernel with BPF_PROG_TEST_RUN, and of its tc programs (the "tc"
 * data plane) on the same cases, their verdicts read as XDP's (TC_ACT_OK
 * is XDP_PASS, TC_ACT_SHOT XDP_DROP, TC_ACT_REDIRECT XDP_REDIRECT): the
 * verdict, the exact frame out
 * and the exact counters, as test_dp.c does for the core. What XDP
 * forwards must come out as the core would send it; what it drops must be
 * counted under the core's name; everything else must pass untouched to
 * the userspace path. The programs run in a network namespace of the
 * test's own (a veth, routes and permanent neighbours, so that
 * bpf_fib_lookup answers). Needs root (BPF and the namespace): skipped
 * otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include "xdp/xdp.h"

#define TEP6  "fd00:d57::2"
#define C1    "fd00:d57::11" /* 192.0.2.10 */
#define C3    "fd00:d57::13" /* 192.0.2.20 ports 1024-2047 */
#define C4    "fd00:d57::14" /* 192.0.2.20 ports 2048-3071 */
#define EVIL  "fd00:d57::66"
#define HOST4 "198.51.100.2"

static const uint8_t mac_host4[6] = {2, 0, 0, 0, 0, 2}, mac_c1[6] = {2, 0, 0, 0, 0, 0x11},
                     mac_c3[6] = {2, 0, 0, 0, 0, 0x13}, mac_c4[6] = {2, 0, 0, 0, 0, 0x14};

static struct xtep *x, *xl; /* server mode; learn mode */
static int ifindex;
static uint8_t dev_mac[6];
static bool usable;
static bool tc; /* the second group: the tc programs */

static uint32_t
v4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return ntohl(a.s_addr);
}

static struct in6_addr
v6(const char *s)
{
	struct in6_addr a;

	inet_pton(AF_INET6, s, &a);
	return a;
}

static void
st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static uint16_t
ip4_csum(const uint8_t *p)
{
	uint32_t s = 0;

	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

struct spec {
	const char *src, *dst;
	uint8_t proto, ttl;
	uint16_t sport, dport, frag, len; /* len: total length, 0: 64 */
};

/* An IPv4 packet as the spec says, header checksum right. */
static uint32_t
ip4(uint8_t *p, const struct spec *s)
{
	uint32_t len = s->len ? s->len : 64, a;

	memset(p, 0, len);
	p[0] = 0x45;
	st16(p + 2, (uint16_t)len);
	st16(p + 6, s->frag);
	p[8] = s->ttl ? s->ttl : 64;
	p[9] = s->proto ? s->proto : 17;
	a = htonl(v4(s->src));
	memcpy(p + 12, &a, 4);
	a = htonl(v4(s->dst));
	memcpy(p + 16, &a, 4);
	st16(p + 10, ip4_csum(p));
	st16(p + 20, s->sport);
	st16(p + 22, s->dport);
	st16(p + 24, (uint16_t)(len - 20));
	return len;
}

/* An Ethernet frame of 4in6 from `src6` to the TEP. */
static uint32_t
frame6(uint8_t *f, const char *src6, uint8_t nh, const struct spec *s)
{
	struct in6_addr a = v6(src6), t = v6(TEP6);
	uint32_t n;

	memset(f, 0, 54);
	memcpy(f, dev_mac, 6);
	f[6] = 2;
	st16(f + 12, 0x86dd);
	f[14] = 0x60;
	f[14 + 6] = nh;
	f[14 + 7] = 64;
	memcpy(f + 14 + 8, &a, 16);
	memcpy(f + 14 + 24, &t, 16);
	n = ip4(f + 54, s);
	st16(f + 14 + 4, (uint16_t)n);
	return 54 + n;
}

static uint32_t
frame4(uint8_t *f, const struct spec *s)
{
	memcpy(f, dev_mac, 6);
	memcpy(f + 6, mac_host4, 6);
	st16(f + 12, 0x0800);
	return 14 + ip4(f + 14, s);
}

/* The verdict, as XDP's. */
static uint32_t
run(int prog, const uint8_t *in, uint32_t len, uint8_t *out, uint32_t *outlen)
{
	struct xdp_md ctx = {.data_end = len, .ingress_ifindex = (uint32_t)ifindex};
	/* The skb comes in on the veth, as at its tc ingress. */
	struct __sk_buff skb = {.ifindex = (uint32_t)ifindex, .ingress_ifindex = (uint32_t)ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = out,
	            .data_size_out = 2048, .repeat = 1);

	o.ctx_in = tc ? (void *)&skb : (void *)&ctx;
	o.ctx_size_in = tc ? sizeof(skb) : sizeof(ctx);
	assert_int_equal(bpf_prog_test_run_opts(prog, &o), 0);
	*outlen = o.data_size_out;
	if (!tc)
		return o.retval;
	switch (o.retval) {
	case TC_ACT_OK:
		return XDP_PASS;
	case TC_ACT_SHOT:
		return XDP_DROP;
	case TC_ACT_REDIRECT:
		return XDP_REDIRECT;
	default:
		fail_msg("tc verdict %u", o.retval);
		return XDP_ABORTED;
	}
}

/* The counters' change since `before`, as one array. */
static void
delta(struct xtep *t, const uint64_t *before, uint64_t *d)
{
	uint64_t now[XC__COUNT];

	assert_int_equal(xtep_counters(t, now), 0);
	for (int i = 0; i < XC__COUNT; i++)
		d[i] = now[i] - before[i];
}

/* Run one frame; expect `verdict` and exactly the counters named (pairs, -1 ends). */
static void
expect(struct xtep *t, bool decap, const uint8_t *in, uint32_t len, uint32_t verdict, uint8_t *out,
       uint32_t *outlen, ...)
{
	uint64_t before[XC__COUNT], d[XC__COUNT], want[XC__COUNT] = {0};
	int prog = tc ? (decap ? xtep_prog_tc_v6(t) : xtep_prog_tc_v4(t))
	              : (decap ? xtep_prog_v6(t) : xtep_prog_v4(t));
	va_list ap;
	int c;

	assert_int_equal(xtep_counters(t, before), 0);
	assert_int_equal(run(prog, in, len, out, outlen), verdict);
	va_start(ap, outlen);
	while ((c = va_arg(ap, int)) >= 0)
		want[c] = va_arg(ap, uint64_t);
	va_end(ap);
	delta(t, before, d);
	for (int i = 0; i < XC__COUNT; i++)
		if (d[i] != want[i])
			fail_msg("counter %s: %llu, expected %llu",
			         xtep_counter_name((enum xtep_counter)i), (unsigned long long)d[i],
			         (unsigned long long)want[i]);
	if (verdict == XDP_PASS || verdict == XDP_DROP) {
		/* Untouched for the userspace path (or dropped as it was). */
		assert_int_equal(*outlen, len);
		assert_memory_equal(out, in, len);
	}
}

#define B(n) (uint64_t)(n)

static void
test_decap_forwards(void **state)
{
	uint8_t in[2048], out[2048];
	uint32_t len, olen;
	struct spec s = {.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 9};
	struct xtep_bctr bc;

	if (!usable)
		skip();
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_REDIRECT, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes,
	       B(104), XC_decap_pkts, B(1), XC_decap_bytes, B(64), XC_xdp_decap_pkts, B(1), -1);
	/* The inner packet, its TTL one less (checksum still right), to the host's MAC. */
	assert_int_equal(olen, 14 + 64);
	assert_memory_equal(out, mac_host4, 6);
	assert_memory_equal(out + 6, dev_mac, 6);
	assert_int_equal(out[12] << 8 | out[13], 0x0800);
	assert_int_equal(out[14 + 8], 63);
	assert_int_equal(ip4_csum(out + 14), 0);
	in[54 + 8] = 63;
	in[54 + 10] = out[14 + 10], in[54 + 11] = out[14 + 11];
	assert_memory_equal(out + 14, in + 54, 64);
	xtep_binding_ctr(x, v4("192.0.2.10"), 0, 65535, &bc);
	assert_true(bc.pkts_in >= 1 && bc.bytes_in >= 64);
}

static void
test_decap_drops(void **state)
{
	uint8_t in[2048], out[2048];
	uint32_t len, olen;
	struct spec s = {.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 9};

	if (!usable)
		skip();
	/* Another client's IPv6 address claiming 192.0.2.10. */
	len = frame6(in, EVIL, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_spoofed_v6_src, B(1), -1);
	/* A source nobody holds. */
	s.src = "192.0.2.99";
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_no_binding_src, B(1), -1);
	/* A shared address: a port in no range, a range of another client, its own. */
	s.src = "192.0.2.20";
	s.sport = 5000;
	len = frame6(in, C3, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_port_outside_range, B(1), -1);
	s.sport = 2100;
	len = frame6(in, C3, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_spoofed_v6_src, B(1), -1);
	s.sport = 1500;
	len = frame6(in, C3, 4, &s);
	expect(x, true, in, len, XDP_REDIRECT, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes,
	       B(104), XC_decap_pkts, B(1), XC_decap_bytes, B(64), XC_xdp_decap_pkts, B(1), -1);
}

/* What the core does itself reaches it unchanged, counted as passed. */
static void
test_decap_passes(void **state)
{
	uint8_t in[2048], out[2048];
	uint32_t len, olen;
	struct spec base = {.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 9}, s;

	if (!usable)
		skip();
	s = base, s.frag = 0x2000; /* a first fragment */
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
	s = base, s.proto = 1; /* ICMP: quotes to filter */
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
	s = base, s.ttl = 1; /* time exceeded is the core's */
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
	s = base, s.dst = "192.0.2.11"; /* hairpin */
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
	s = base; /* a destination option header first: not 4in6 at once */
	len = frame6(in, C1, 60, &s);
	expect(x, true, in, len, XDP_PASS, out, &olen, -1);
	s = base, s.dst = "203.0.113.9"; /* no route: the kernel answers */
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_PASS, out, &olen, XC_xdp_no_route, B(1), -1);
	/* A bad inner checksum: the core counts drop_v4_checksum. */
	s = base;
	len = frame6(in, C1, 4, &s);
	in[54 + 10] ^= 1;
	expect(x, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
	/* Padding after the IPv6 payload: the core trims it. */
	s = base;
	len = frame6(in, C1, 4, &s);
	in[len] = 0;
	expect(x, true, in, len + 1, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
	/* Learn mode: an unknown source may be learned, by the core. */
	s = base, s.src = "192.0.2.99";
	len = frame6(in, C1, 4, &s);
	expect(xl, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
}

static void
test_encap(void **state)
{
	uint8_t in[2048], out[2048];
	uint32_t len, olen;
	struct spec s = {.src = HOST4, .dst = "192.0.2.10", .sport = 9, .dport = 5000};
	struct in6_addr t6 = v6(TEP6), c1 = v6(C1), c4 = v6(C4);

	if (!usable)
		skip();
	len = frame4(in, &s);
	expect(x, false, in, len, XDP_REDIRECT, out, &olen, XC_rx_v4_pkts, B(1), XC_rx_v4_bytes,
	       B(64), XC_encap_pkts, B(1), XC_encap_bytes, B(64), XC_xdp_encap_pkts, B(1), -1);
	assert_int_equal(olen, 14 + 40 + 64);
	assert_memory_equal(out, mac_c1, 6);
	assert_memory_equal(out + 6, dev_mac, 6);
	assert_int_equal(out[12] << 8 | out[13], 0x86dd);
	assert_int_equal(out[14], 0x60);
	assert_int_equal(out[14 + 4] << 8 | out[14 + 5], 64);
	assert_int_equal(out[14 + 6], 4);
	assert_int_equal(out[14 + 7], 64);
	assert_memory_equal(out + 14 + 8, &t6, 16);
	assert_memory_equal(out + 14 + 24, &c1, 16);
	assert_int_equal(out[54 + 8], 63);
	assert_int_equal(ip4_csum(out + 54), 0);
	/* The traffic class follows the inner TOS (RFC 2473 §6.6). */
	s.dst = "192.0.2.20", s.dport = 2100;
	len = frame4(in, &s);
	in[14 + 1] = 0xb8;
	in[14 + 10] = in[14 + 11] = 0;
	st16(in + 14 + 10, ip4_csum(in + 14));
	expect(x, false, in, len, XDP_REDIRECT, out, &olen, XC_rx_v4_pkts, B(1), XC_rx_v4_bytes,
	       B(64), XC_encap_pkts, B(1), XC_encap_bytes, B(64), XC_xdp_encap_pkts, B(1), -1);
	assert_memory_equal(out, mac_c4, 6);
	assert_memory_equal(out + 14 + 24, &c4, 16);
	assert_int_equal((out[14] & 0x0f) << 4 | out[15] >> 4, 0xb8);
	/* Ethernet padding after a short packet stays out of the tunnel. */
	s = (struct spec){.src = HOST4, .dst = "192.0.2.10", .sport = 9, .dport = 5000, .len = 28};
	len = frame4(in, &s);
	memset(in + len, 0, 60 - len);
	expect(x, false, in, 60, XDP_REDIRECT, out, &olen, XC_rx_v4_pkts, B(1), XC_rx_v4_bytes,
	       B(28), XC_encap_pkts, B(1), XC_encap_bytes, B(28), XC_xdp_encap_pkts, B(1), -1);
	assert_int_equal(olen, 14 + 40 + 28);
}

static void
test_encap_passes(void **state)
{
	uint8_t in[2048], out[2048];
	uint32_t len, olen;
	struct spec base = {.src = HOST4, .dst = "192.0.2.10", .sport = 9, .dport = 5000}, s;

	if (!usable)
		skip();
	s = base, s.dst = "192.0.2.12"; /* unbound: host unreachable from the core */
	len = frame4(in, &s);
	expect(x, false, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v4, B(1), -1);
	s = base, s.dst = "192.0.2.20", s.dport = 5000; /* a port in no range */
	len = frame4(in, &s);
	expect(x, false, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v4, B(1), -1);
	s = base, s.len = 1461; /* too big for a 1500 path: the core's */
	len = frame4(in, &s);
	expect(x, false, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v4, B(1), -1);
	s = base, s.dst = "198.51.100.1"; /* the TEP itself: not toward a client */
	len = frame4(in, &s);
	expect(x, false, in, len, XDP_PASS, out, &olen, -1);
	/* A path MTU learned for the client (a Packet Too Big) is obeyed. */
	{
		struct in6_addr c1 = v6(C1);

		assert_int_equal(xtep_set(x, v4("192.0.2.10"), 0, 65535, &c1, 1280), 0);
		assert_int_equal(xtep_flush(x), 0);
		s = base, s.len = 1241;
		len = frame4(in, &s);
		expect(x, false, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v4, B(1), -1);
		s.len = 1240;
		len = frame4(in, &s);
		expect(x, false, in, len, XDP_REDIRECT, out, &olen, XC_rx_v4_pkts, B(1),
		       XC_rx_v4_bytes, B(1240), XC_encap_pkts, B(1), XC_encap_bytes, B(1240),
		       XC_xdp_encap_pkts, B(1), -1);
	}
}

/* Removed bindings forward nothing; re-added ones keep their counters. */
static void
test_delete(void **state)
{
	uint8_t in[2048], out[2048];
	uint32_t len, olen;
	struct spec s = {.src = "192.0.2.20", .dst = HOST4, .sport = 1500, .dport = 9};
	struct in6_addr c1 = v6(C1);
	struct xtep_bctr before, after;

	if (!usable)
		skip();
	assert_int_equal(xtep_del_range(x, v4("192.0.2.20"), 1024), 0);
	len = frame6(in, C3, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_port_outside_range, B(1), -1);
	assert_int_equal(xtep_del_addr(x, v4("192.0.2.20")), 0);
	s.sport = 2100;
	len = frame6(in, C4, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_no_binding_src, B(1), -1);
	xtep_binding_ctr(x, v4("192.0.2.10"), 0, 65535, &before);
	assert_true(before.pkts_in > 0);
	assert_int_equal(xtep_set(x, v4("192.0.2.10"), 0, 65535, &c1, 0), 0);
	assert_int_equal(xtep_flush(x), 0);
	xtep_binding_ctr(x, v4("192.0.2.10"), 0, 65535, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(xtep_del_addr(x, v4("192.0.2.10")), 0);
	s = (struct spec){.src = "192.0.2.10", .dst = HOST4, .sport = 5000, .dport = 9};
	len = frame6(in, C1, 4, &s);
	expect(x, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes, B(104),
	       XC_drop_no_binding_src, B(1), -1);
}

/* What one decapsulation must come to, counters included. */
enum want { FWD, SPOOFED, UNKNOWN, OUTSIDE, CORE };

static void
decap_is(struct xtep *t, const char *src4, uint16_t sport, const char *src6, enum want w)
{
	uint8_t in[2048], out[2048];
	struct spec s = {.src = src4, .dst = HOST4, .sport = sport, .dport = 9};
	uint32_t len = frame6(in, src6, 4, &s), olen;

	switch (w) {
	case FWD:
		expect(t, true, in, len, XDP_REDIRECT, out, &olen, XC_rx_v6_pkts, B(1),
		       XC_rx_v6_bytes, B(104), XC_decap_pkts, B(1), XC_decap_bytes, B(64),
		       XC_xdp_decap_pkts, B(1), -1);
		break;
	case SPOOFED:
	case UNKNOWN:
	case OUTSIDE:
		expect(t, true, in, len, XDP_DROP, out, &olen, XC_rx_v6_pkts, B(1), XC_rx_v6_bytes,
		       B(104),
		       w == SPOOFED   ? XC_drop_spoofed_v6_src
		       : w == UNKNOWN ? XC_drop_no_binding_src
		                      : XC_drop_port_outside_range,
		       B(1), -1);
		break;
	case CORE:
		expect(t, true, in, len, XDP_PASS, out, &olen, XC_xdp_pass_v6, B(1), -1);
		break;
	}
}

/* An encapsulation toward dst4:dport must reach the client with that MAC. */
static void
encap_to(struct xtep *t, const char *dst4, uint16_t dport, const uint8_t *mac)
{
	uint8_t in[2048], out[2048];
	struct spec s = {.src = HOST4, .dst = dst4, .sport = 9, .dport = dport};
	uint32_t len = frame4(in, &s), olen;

	expect(t, false, in, len, XDP_REDIRECT, out, &olen, XC_rx_v4_pkts, B(1), XC_rx_v4_bytes,
	       B(64), XC_encap_pkts, B(1), XC_encap_bytes, B(64), XC_xdp_encap_pkts, B(1), -1);
	assert_memory_equal(out, mac, 6);
}

/*
 * The direct indexing at its edges: two pools side by side in the address
 * array (10.9.0.0/30 at 0..3, 10.9.1.0/29 at 4..11), their first and last
 * addresses, the addresses just outside them, ranges k > 0 of shared
 * addresses whose blocks lie side by side, a block reused after its
 * address went (cleared first), a change of range size, and a range
 * array too small for one more shared address (the core's, then).
 */
static void
test_direct_edges(void **state)
{
	struct xtep_config c = {0};
	struct in6_addr c1 = v6(C1), c3 = v6(C3), c4 = v6(C4);
	struct xtep *t;

	if (!usable)
		skip();
	c.tep6 = v6(TEP6);
	c.npools = 2;
	c.pool_addr[0] = v4("10.9.0.0"), c.pool_plen[0] = 30;
	c.pool_addr[1] = v4("10.9.1.0"), c.pool_plen[1] = 29;
	c.mtu = 1500;
	c.hop_limit = 64;
	c.max_ranges = 160; /* room for two blocks of 64 and one of 32 */
	assert_int_equal(xtep_open(&c, &t), 0);
	assert_int_equal(xtep_set(t, v4("10.9.0.4"), 0, 65535, &c1, 0), -EINVAL);
	assert_int_equal(xtep_set(t, v4("10.9.0.0"), 0, 65535, &c1, 0), 0);
	assert_int_equal(xtep_set(t, v4("10.9.0.3"), 0, 65535, &c3, 0), 0);
	assert_int_equal(xtep_set(t, v4("10.9.1.0"), 0, 65535, &c4, 0), 0);
	/* 10.9.1.7: block 0..63, ranges k 1 and 3; 10.9.1.6: block 64..127, k 1. */
	assert_int_equal(xtep_set(t, v4("10.9.1.7"), 1024, 2047, &c4, 0), 0);
	assert_int_equal(xtep_set(t, v4("10.9.1.7"), 3072, 4095, &c3, 0), 0);
	assert_int_equal(xtep_set(t, v4("10.9.1.6"), 1024, 2047, &c1, 0), 0);
	assert_int_equal(xtep_flush(t), 0);

	decap_is(t, "10.9.0.0", 5000, C1, FWD); /* first of pool 0 */
	decap_is(t, "10.9.0.0", 5000, C3, SPOOFED);
	decap_is(t, "10.9.0.3", 5000, C3, FWD); /* last of pool 0 */
	decap_is(t, "10.9.0.3", 5000, C1, SPOOFED);
	decap_is(t, "10.9.1.0", 5000, C4, FWD);     /* first of pool 1, index 4 */
	decap_is(t, "10.9.0.4", 5000, C4, UNKNOWN); /* after pool 0: not index 4 */
	decap_is(t, "10.8.255.255", 5000, C1, UNKNOWN);
	decap_is(t, "10.9.1.8", 5000, C1, UNKNOWN); /* after pool 1 */
	decap_is(t, "10.9.0.1", 5000, C1, UNKNOWN);
	decap_is(t, "10.9.1.1", 5000, C4, UNKNOWN);
	decap_is(t, "10.9.1.7", 1500, C4, FWD); /* k 1 */
	decap_is(t, "10.9.1.7", 3500, C3, FWD); /* k 3 */
	decap_is(t, "10.9.1.7", 1500, C3, SPOOFED);
	decap_is(t, "10.9.1.7", 2500, C4, OUTSIDE);  /* k 2: absent */
	decap_is(t, "10.9.1.7", 65535, C4, OUTSIDE); /* k 63, the block's last */
	decap_is(t, "10.9.1.6", 500, C1, OUTSIDE);   /* k 0, right after it */
	decap_is(t, "10.9.1.6", 1500, C1, FWD);
	encap_to(t, "10.9.0.0", 5000, mac_c1);
	encap_to(t, "10.9.0.3", 5000, mac_c3);
	encap_to(t, "10.9.1.0", 5000, mac_c4);
	encap_to(t, "10.9.1.7", 3500, mac_c3);
	encap_to(t, "10.9.1.7", 1500, mac_c4);
	encap_to(t, "10.9.1.6", 1500, mac_c1);
	/* The last range of 10.9.1.7's block, then 10.9.1.6's first stays absent. */
	assert_int_equal(xtep_set(t, v4("10.9.1.7"), 64512, 65535, &c1, 0), 0);
	assert_int_equal(xtep_flush(t), 0);
	decap_is(t, "10.9.1.7", 65535, C1, FWD);
	decap_is(t, "10.9.1.6", 500, C1, OUTSIDE);
	/* One range of k > 0 removed, the others stay. */
	assert_int_equal(xtep_del_range(t, v4("10.9.1.7"), 3072), 0);
	decap_is(t, "10.9.1.7", 3500, C3, OUTSIDE);
	decap_is(t, "10.9.1.7", 1500, C4, FWD);
	/* 10.9.1.7 goes; 10.9.1.5 gets its block, cleared: none of 10.9.1.7's ranges. */
	assert_int_equal(xtep_del_addr(t, v4("10.9.1.7")), 0);
	assert_int_equal(xtep_set(t, v4("10.9.1.5"), 2048, 3071, &c3, 0), 0);
	assert_int_equal(xtep_flush(t), 0);
	decap_is(t, "10.9.1.7", 1500, C4, UNKNOWN);
	decap_is(t, "10.9.1.5", 1500, C4, OUTSIDE);
	decap_is(t, "10.9.1.5", 65535, C1, OUTSIDE);
	decap_is(t, "10.9.1.5", 2500, C3, FWD);
	/* 10.9.1.6's ranges change size: the old ones are gone. */
	assert_int_equal(xtep_set(t, v4("10.9.1.6"), 2048, 4095, &c3, 0), 0);
	assert_int_equal(xtep_flush(t), 0);
	decap_is(t, "10.9.1.6", 1500, C1, OUTSIDE);
	decap_is(t, "10.9.1.6", 3500, C3, FWD);
	/* No room for 10.9.0.1's block of 128: the userspace core serves it,
	 * all its ranges, until it is bound whole. */
	assert_int_equal(xtep_set(t, v4("10.9.0.1"), 512, 1023, &c1, 0), 0);
	assert_int_equal(xtep_set(t, v4("10.9.0.1"), 1024, 1535, &c3, 0), 0);
	assert_int_equal(xtep_flush(t), 0);
	decap_is(t, "10.9.0.1", 600, C1, CORE);
	decap_is(t, "10.9.0.1", 1100, C3, CORE);
	assert_int_equal(xtep_set(t, v4("10.9.0.1"), 0, 65535, &c1, 0), 0);
	assert_int_equal(xtep_flush(t), 0);
	decap_is(t, "10.9.0.1", 600, C1, FWD);
	/* Neighbours untouched by all this. */
	decap_is(t, "10.9.0.0", 5000, C1, FWD);
	decap_is(t, "10.9.0.3", 5000, C3, FWD);
	decap_is(t, "10.9.1.0", 5000, C4, FWD);
	xtep_close(t);
}

static int
sh(const char *cmd)
{
	char c[512];

	snprintf(c, sizeof(c), "%s >/dev/null 2>&1", cmd);
	return system(c);
}

static int
setup(void **state)
{
	static const char *const cmds[] = {
	    "ip link set lo up",
	    "ip link add xt0 type veth peer name xt1",
	    "ip link set xt1 up",
	    "ip link set xt0 up",
	    "ip addr add 198.51.100.1/24 dev xt0",
	    "ip -6 addr add fd00:d57::2/64 dev xt0 nodad",
	    "ip neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev xt0 nud permanent",
	    "ip -6 neigh add fd00:d57::11 lladdr 02:00:00:00:00:11 dev xt0 nud permanent",
	    "ip -6 neigh add fd00:d57::13 lladdr 02:00:00:00:00:13 dev xt0 nud permanent",
	    "ip -6 neigh add fd00:d57::14 lladdr 02:00:00:00:00:14 dev xt0 nud permanent",
	    "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
	};
	struct xtep_config c = {0};
	struct in6_addr c1 = v6(C1), c3 = v6(C3), c4 = v6(C4);
	struct ifreq ifr;
	int rc = 0, fd;

	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_xdp: not root: skipped\n");
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (sh(cmds[i]) != 0) {
			fprintf(stderr, "test_xdp: \"%s\" failed: skipped\n", cmds[i]);
			return 0;
		}
	ifindex = (int)if_nametoindex("xt0");
	/* ioctl, not /sys: sysfs still shows the namespace we left. */
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "xt0");
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return -1;
	close(fd);
	memcpy(dev_mac, ifr.ifr_hwaddr.sa_data, 6);
	c.tep6 = v6(TEP6);
	c.npools = 1;
	c.pool_addr[0] = v4("192.0.2.0");
	c.pool_plen[0] = 24;
	c.mtu = 1500;
	c.hop_limit = 64;
	c.max_ranges = 1024;
	if ((rc = xtep_open(&c, &x)) < 0 || (c.learn = true, rc = xtep_open(&c, &xl)) < 0) {
		fprintf(stderr, "test_xdp: loading the programs: %s\n", strerror(-rc));
		return -1;
	}
	if (xtep_set(x, v4("192.0.2.10"), 0, 65535, &c1, 0) < 0 ||
	    xtep_set(x, v4("192.0.2.20"), 1024, 2047, &c3, 0) < 0 ||
	    xtep_set(x, v4("192.0.2.20"), 2048, 3071, &c4, 0) < 0 || (rc = xtep_flush(x)) < 0) {
		fprintf(stderr, "test_xdp: writing the maps: %s\n", strerror(-rc));
		return -1;
	}
	usable = true;
	return 0;
}

static int
teardown(void **state)
{
	xtep_close(x);
	xtep_close(xl);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decap_forwards), cmocka_unit_test(test_decap_drops),
	    cmocka_unit_test(test_decap_passes),   cmocka_unit_test(test_encap),
	    cmocka_unit_test(test_encap_passes),   cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_direct_edges),
	};

	int failed = cmocka_run_group_tests_name("xdp", tests, setup, teardown);

	tc = true;
	usable = false;
	return failed + cmocka_run_group_tests_name("tc", tests, setup, teardown);
}
