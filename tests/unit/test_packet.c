/*
 * Unit tests of the packet library (src/packet): checksums against
 * RFC 1071's worked example, the IPv4 check, the ICMPv4 error header,
 * and the TUN offload pair: a TCP super-packet split into segments
 * (every byte of every segment compared with a segment built by hand,
 * checksums recomputed from scratch) and segments coalesced back (the
 * super-packet's bytes and its virtio_net_hdr compared, then the
 * partial checksum completed and verified).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "packet/pkt.h"

#define SRC 0xc000020au /* 192.0.2.10 */
#define DST 0xc6336402u /* 198.51.100.2 */

/* The TCP checksum of an IPv4 packet, computed the slow way: 0 when correct. */
static uint16_t
tcp_check(const uint8_t *p)
{
	unsigned ihl = (p[0] & 15) * 4, tot = pkt_ld16(p + 2);
	uint32_t sum = 0;
	unsigned l4 = tot - ihl;

	for (unsigned i = 12; i < 20; i += 2)
		sum += pkt_ld16(p + i);
	sum += PKT_PROTO_TCP + l4;
	for (unsigned i = 0; i + 1 < l4; i += 2)
		sum += pkt_ld16(p + ihl + i);
	if (l4 & 1)
		sum += (uint32_t)p[ihl + l4 - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint16_t
ip_check(const uint8_t *p)
{
	return (uint16_t)~pkt_csum(p, (p[0] & 15) * 4u, 0);
}

/* A TCP/IPv4 packet with correct checksums; `opt` bytes of TCP options (NOPs). */
static size_t
mk_tcp(uint8_t *b, uint16_t id, uint32_t seq, uint8_t flags, size_t payload, unsigned opt,
       uint8_t fill)
{
	unsigned thl = 20 + opt;
	size_t tot = 20 + thl + payload;

	memset(b, 0, 20 + thl);
	b[0] = 0x45;
	pkt_st16(b + 2, (uint16_t)tot);
	pkt_st16(b + 4, id);
	b[6] = 0x40;
	b[8] = 64;
	b[9] = PKT_PROTO_TCP;
	pkt_st32(b + 12, SRC);
	pkt_st32(b + 16, DST);
	pkt_st16(b + 20, 40000);
	pkt_st16(b + 22, 5201);
	pkt_st32(b + 24, seq);
	pkt_st32(b + 28, 0x01020304);
	b[32] = (uint8_t)((thl / 4) << 4);
	b[33] = flags;
	pkt_st16(b + 34, 65000);
	memset(b + 40, 1, opt);
	for (size_t i = 0; i < payload; i++)
		b[20 + thl + i] = (uint8_t)(fill + i * 7);
	pkt_st16(b + 10, (uint16_t)~pkt_csum(b, 20, 0));
	pkt_st16(b + 36, tcp_check(b));
	return tot;
}

static void
test_csum(void **state)
{
	/* RFC 1071 §3: the sum of these words is ddf2. */
	static const uint8_t w[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	assert_int_equal(pkt_csum(w, sizeof(w), 0), 0xddf2);
	assert_int_equal(pkt_csum_fold(pkt_csum_add(0, w, sizeof(w))), 0x220d);
	assert_int_equal(pkt_csum(w, 3, 0), 0xf201); /* 0x0001 + 0xf200: the odd byte is padded */
	/* RFC 1624: replacing a field gives what a full recomputation gives. */
	{
		uint8_t b[1500];
		size_t n = mk_tcp(b, 7, 1000, 0x10, 100, 0, 3);
		uint16_t ck = pkt_ld16(b + 36);

		assert_int_equal(n, 140);
		pkt_st32(b + 12, 0xc0000008u);
		pkt_st16(b + 36, pkt_csum_replace32(ck, SRC, 0xc0000008u));
		assert_int_equal(tcp_check(b), 0);
	}
}

static void
test_ip4_parse(void **state)
{
	uint8_t b[200];
	struct pkt4 p;
	size_t n = mk_tcp(b, 0x1234, 1, 0x10, 10, 0, 0);

	assert_true(pkt_ip4_parse(b, n, &p));
	assert_int_equal(p.ihl, 20);
	assert_int_equal(p.total, n);
	assert_int_equal(p.id, 0x1234);
	assert_int_equal(p.proto, PKT_PROTO_TCP);
	assert_int_equal(p.src, SRC);
	assert_true(p.df);
	assert_false(p.fragment);
	assert_false(pkt_ip4_parse(b, n - 1, &p)); /* total past the buffer */
	assert_false(pkt_ip4_parse(b, 19, &p));
	b[0] = 0x44;
	assert_false(pkt_ip4_parse(b, n, &p)); /* ihl 16 */
	b[0] = 0x65;
	assert_false(pkt_ip4_parse(b, n, &p)); /* version 6 */
}

static void
test_icmp4_error(void **state)
{
	uint8_t out[128];
	static const uint8_t want[28] = {
	    0x45, 0xc0, 0x00, 0x24, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc6, 0x33,
	    0x64, 0x01, 0xc0, 0x00, 0x02, 0x0a, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x05, 0x14,
	};
	size_t n;

	memset(out + 28, 0xab, 8);
	n = pkt_icmp4_error_hdr(out, 3, 4, 1300, 0xc6336401u, SRC, 0x4000, 8);
	assert_int_equal(n, 36);
	/* Everything but the two checksums, byte for byte; those verify. */
	assert_memory_equal(out, want, 10);
	assert_memory_equal(out + 12, want + 12, 10);
	assert_memory_equal(out + 24, want + 24, 4);
	assert_int_equal(pkt_csum(out, 20, 0), 0xffff);
	assert_int_equal(pkt_csum(out + 20, 16, 0), 0xffff);
}

/* A 3,000-byte super-packet at MSS 1,400: 1,400 + 1,400 + 200. */
static void
test_tso4(void **state)
{
	static uint8_t sup[65536], segs[8][2048], want[2048];
	uint16_t lens[8];
	size_t n = mk_tcp(sup, 100, 5000, 0x18 | 0x01 | 0x80, 3000, 12, 9); /* PSH FIN CWR */
	unsigned k;

	k = pkt_tso4(sup, n, 1400, &segs[0][0], sizeof(segs[0]), 8, lens);
	assert_int_equal(k, 3);
	for (unsigned i = 0; i < k; i++) {
		size_t pl = i < 2 ? 1400 : 200;
		uint8_t flags = 0x10;

		if (i == 0)
			flags |= 0x80;
		if (i == 2)
			flags |= 0x08 | 0x01;
		/* The segment a sender would have sent itself. */
		mk_tcp(want, (uint16_t)(100 + i), 5000 + 1400 * i, flags, pl, 12,
		       (uint8_t)(9 + 1400 * 7 * i));
		assert_int_equal(lens[i], 52 + pl);
		assert_memory_equal(segs[i], want, lens[i]);
		assert_int_equal(ip_check(segs[i]), 0);
		assert_int_equal(tcp_check(segs[i]), 0);
	}
	/* Too few slots, a zero MSS, not TCP: nothing. */
	assert_int_equal(pkt_tso4(sup, n, 1400, &segs[0][0], sizeof(segs[0]), 2, lens), 0);
	assert_int_equal(pkt_tso4(sup, n, 0, &segs[0][0], sizeof(segs[0]), 8, lens), 0);
	sup[9] = PKT_PROTO_UDP;
	assert_int_equal(pkt_tso4(sup, n, 1400, &segs[0][0], sizeof(segs[0]), 8, lens), 0);
}

/* Three in-order segments become one GSO_TCPV4 packet; the fourth out of order does not join. */
static void
test_gro(void **state)
{
	static uint8_t buf[PKT_VNET_HLEN + 65535], seg[2048], want[8192];
	struct pkt_gro g = {.buf = buf, .max_len = 65535};
	struct pkt_vnet v;
	size_t n, out;

	for (unsigned i = 0; i < 3; i++) {
		n = mk_tcp(seg, (uint16_t)(7 + i), 1000 + 1000 * i, i == 2 ? 0x18 : 0x10,
		           i == 2 ? 500 : 1000, 12, (uint8_t)(1000 * 7 * i));
		assert_true(pkt_gro_add(&g, seg, n));
	}
	/* Out of order: does not join. */
	n = mk_tcp(seg, 10, 9999, 0x10, 1000, 12, 0);
	assert_false(pkt_gro_add(&g, seg, n));

	out = pkt_gro_finish(&g);
	assert_int_equal(out, PKT_VNET_HLEN + 52 + 2500);
	assert_true(pkt_vnet_parse(buf, out, &v));
	assert_int_equal(v.flags, PKT_VNET_F_NEEDS_CSUM);
	assert_int_equal(v.gso_type, PKT_VNET_GSO_TCPV4);
	assert_int_equal(v.gso_size, 1000);
	assert_int_equal(v.hdr_len, 52);
	assert_int_equal(v.csum_start, 20);
	assert_int_equal(v.csum_offset, 16);
	/* The merged packet is the one a sender would have sent whole (first id, PSH). */
	mk_tcp(want, 7, 1000, 0x18, 2500, 12, 0);
	assert_memory_equal(buf + PKT_VNET_HLEN, want, 36);
	assert_memory_equal(buf + PKT_VNET_HLEN + 38, want + 38, 52 + 2500 - 38);
	assert_int_equal(ip_check(buf + PKT_VNET_HLEN), 0);
	/* What the kernel does with NEEDS_CSUM gives the right checksum. */
	assert_true(pkt_csum_complete(buf + PKT_VNET_HLEN, out - PKT_VNET_HLEN, &v));
	assert_int_equal(tcp_check(buf + PKT_VNET_HLEN), 0);
	assert_memory_equal(buf + PKT_VNET_HLEN, want, 52 + 2500);

	/* The packet that did not join starts the next one and passes alone. */
	assert_true(pkt_gro_add(&g, seg, n));
	out = pkt_gro_finish(&g);
	assert_int_equal(out, PKT_VNET_HLEN + n);
	assert_true(pkt_vnet_parse(buf, out, &v));
	assert_int_equal(v.gso_type, PKT_VNET_GSO_NONE);
	assert_int_equal(v.flags, 0);
	assert_memory_equal(buf + PKT_VNET_HLEN, seg, n);
}

/* What must not be merged: a bad checksum, other flags, another flow. */
static void
test_gro_refuses(void **state)
{
	static uint8_t buf[PKT_VNET_HLEN + 65535], a[2048], b[2048];
	struct pkt_gro g = {.buf = buf, .max_len = 65535};
	size_t na = mk_tcp(a, 1, 1000, 0x10, 1000, 0, 0), nb;

	assert_true(pkt_gro_add(&g, a, na));
	nb = mk_tcp(b, 2, 2000, 0x10, 1000, 0, 0);
	b[100] ^= 1; /* corrupted on the way */
	assert_false(pkt_gro_add(&g, b, nb));
	nb = mk_tcp(b, 2, 2000, 0x11, 1000, 0, 0); /* FIN */
	assert_false(pkt_gro_add(&g, b, nb));
	nb = mk_tcp(b, 2, 2000, 0x10, 1000, 0, 0);
	pkt_st16(b + 22, 5202); /* another flow */
	pkt_st16(b + 36, 0);
	pkt_st16(b + 36, tcp_check(b));
	assert_false(pkt_gro_add(&g, b, nb));
	nb = mk_tcp(b, 2, 2000, 0x10, 1001, 0, 0); /* larger than the first */
	assert_false(pkt_gro_add(&g, b, nb));
	nb = mk_tcp(b, 2, 2000, 0x10, 1000, 0, 0);
	assert_true(pkt_gro_add(&g, b, nb));
	assert_int_equal(g.segs, 2);

	/* A full buffer ends the train. */
	g.max_len = g.len + 999;
	nb = mk_tcp(b, 3, 3000, 0x10, 1000, 0, 0);
	assert_false(pkt_gro_add(&g, b, nb));
}

/* What GRO merged before the raw socket becomes a GSO write (partial checksum). */
static void
test_gso4_prepare(void **state)
{
	static uint8_t b[8192], want[8192];
	struct pkt_vnet v;
	size_t n = mk_tcp(b, 5, 77, 0x10, 3000, 12, 1);

	memcpy(want, b, n);
	assert_false(pkt_gso4_prepare(b, n, 4000, &v)); /* fits: not a merged packet */
	assert_true(pkt_gso4_prepare(b, n, 1500, &v));  /* a full checksum, checked */
	assert_int_equal(v.flags, PKT_VNET_F_NEEDS_CSUM);
	assert_int_equal(v.gso_type, PKT_VNET_GSO_TCPV4);
	assert_int_equal(v.gso_size, 1500 - 52);
	assert_int_equal(v.hdr_len, 52);
	assert_int_equal(v.csum_start, 20);
	assert_int_equal(v.csum_offset, 16);
	/* Now partial, as GRO leaves it: accepted again, and completed it is the original. */
	assert_true(pkt_gso4_prepare(b, n, 1500, &v));
	assert_true(pkt_csum_complete(b, n, &v));
	assert_memory_equal(b, want, n);
	/* Neither checksum holds: left alone. */
	b[200] ^= 0x40;
	assert_false(pkt_gso4_prepare(b, n, 1500, &v));
	assert_int_equal(pkt_ld16(b + 36), pkt_ld16(want + 36));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csum),         cmocka_unit_test(test_ip4_parse),
	    cmocka_unit_test(test_icmp4_error),  cmocka_unit_test(test_tso4),
	    cmocka_unit_test(test_gro),          cmocka_unit_test(test_gro_refuses),
	    cmocka_unit_test(test_gso4_prepare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
