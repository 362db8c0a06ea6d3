/*
 * Unit tests of dstm-client's pure packet functions (src/client/packet.c):
 * the IPv4 check, the early flow translation of on-demand mode (every
 * checksum recomputed from scratch and compared) and the ICMP
 * "fragmentation needed" it sends back when the tunnel shrinks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "client/client.h"

#define PH     0xc0000008u /* 192.0.0.8 */
#define LEASED 0xc000020au /* 192.0.2.10 */
#define REMOTE 0xc6336402u /* 198.51.100.2 */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A packet with correct checksums; l4len bytes of L4 (header + payload). */
static size_t
mkpkt(uint8_t *b, uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
      size_t l4len, uint8_t tcpflags)
{
	size_t total = 20 + l4len;
	uint8_t *l4 = b + 20;
	uint8_t ph[12];

	memset(b, 0, total);
	b[0] = 0x45;
	put16(b + 2, (uint16_t)total);
	put16(b + 6, 0x4000);
	b[8] = 64;
	b[9] = proto;
	put32(b + 12, src);
	put32(b + 16, dst);
	for (size_t i = 28; i < l4len; i++)
		l4[i] = (uint8_t)(i * 7);
	put32(ph, src);
	put32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = proto;
	put16(ph + 10, (uint16_t)l4len);
	if (proto == IPPROTO_TCP) {
		put16(l4, sport);
		put16(l4 + 2, dport);
		l4[12] = 0x50;
		l4[13] = tcpflags;
		put16(l4 + 16, (uint16_t)~pkt_csum(l4, l4len, pkt_csum(ph, 12, 0)));
	} else if (proto == IPPROTO_UDP) {
		put16(l4, sport);
		put16(l4 + 2, dport);
		put16(l4 + 4, (uint16_t)l4len);
		put16(l4 + 6, (uint16_t)~pkt_csum(l4, l4len, pkt_csum(ph, 12, 0)));
	} else if (proto == IPPROTO_ICMP) {
		l4[0] = (uint8_t)sport; /* type */
		put16(l4 + 4, dport);   /* identifier */
		put16(l4 + 2, (uint16_t)~pkt_csum(l4, l4len, 0));
	}
	put16(b + 10, (uint16_t)~pkt_csum(b, 20, 0));
	return total;
}

/* Every checksum of the packet verifies. */
static void
assert_csums(const uint8_t *b)
{
	size_t total = (size_t)(b[2] << 8 | b[3]);
	uint8_t ph[12];

	assert_int_equal(pkt_csum(b, 20, 0), 0xffff);
	memcpy(ph, b + 12, 8);
	ph[8] = 0;
	ph[9] = b[9];
	put16(ph + 10, (uint16_t)(total - 20));
	if (b[9] == IPPROTO_TCP || b[9] == IPPROTO_UDP)
		assert_int_equal(pkt_csum(b + 20, total - 20, pkt_csum(ph, 12, 0)), 0xffff);
	else if (b[9] == IPPROTO_ICMP)
		assert_int_equal(pkt_csum(b + 20, total - 20, 0), 0xffff);
}

static void
test_parse(void **state)
{
	uint8_t b[1500];
	struct pkt4 p;
	size_t n = mkpkt(b, IPPROTO_UDP, LEASED, REMOTE, 5000, 53, 40, 0);

	assert_true(pkt_ip4_parse(b, n, &p));
	assert_int_equal(p.src, LEASED);
	assert_int_equal(p.dst, REMOTE);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.ihl, 20);
	assert_true(p.df);
	assert_false(p.fragment);
	/* trailing bytes after total length are allowed */
	assert_true(pkt_ip4_parse(b, n + 10, &p));
	assert_false(pkt_ip4_parse(b, n - 1, &p));
	assert_false(pkt_ip4_parse(b, 19, &p));
	b[0] = 0x65;
	assert_false(pkt_ip4_parse(b, n, &p));
	b[0] = 0x44; /* ihl 16 */
	assert_false(pkt_ip4_parse(b, n, &p));
	b[0] = 0x4f; /* ihl 60 > total 40 */
	put16(b + 2, 40);
	assert_false(pkt_ip4_parse(b, n, &p));
}

static void
test_early_tcp(void **state)
{
	static struct early_table t;
	uint8_t b[1500];
	size_t n;

	memset(&t, 0, sizeof(t));
	/* SYN from the placeholder before the lease, sent after it */
	n = mkpkt(b, IPPROTO_TCP, PH, REMOTE, 40000, 80, 20 + 33, 0x02);
	assert_true(early_out(&t, b, n, PH, LEASED, 1000));
	assert_int_equal(get32(b + 12), LEASED);
	assert_csums(b);
	/* SYN-ACK back to the leased address: translated to the placeholder */
	n = mkpkt(b, IPPROTO_TCP, REMOTE, LEASED, 80, 40000, 20 + 11, 0x12);
	assert_true(early_in(&t, b, n, LEASED, PH, 1100));
	assert_int_equal(get32(b + 16), PH);
	assert_csums(b);
	/* a connection opened after the lease is left alone */
	n = mkpkt(b, IPPROTO_TCP, REMOTE, LEASED, 80, 40001, 20, 0x12);
	assert_false(early_in(&t, b, n, LEASED, PH, 1100));
	assert_int_equal(get32(b + 16), LEASED);
	n = mkpkt(b, IPPROTO_TCP, REMOTE, LEASED, 443, 40000, 20, 0x12);
	assert_false(early_in(&t, b, n, LEASED, PH, 1100));
	/* an outbound packet whose source is not the placeholder is refused */
	n = mkpkt(b, IPPROTO_TCP, LEASED, REMOTE, 40000, 80, 20, 0x10);
	assert_false(early_out(&t, b, n, PH, LEASED, 1200));
	assert_int_equal(t.translated_out, 1);
	assert_int_equal(t.translated_in, 1);
	/* FIN both ways: forgotten after the short delay, not before */
	n = mkpkt(b, IPPROTO_TCP, PH, REMOTE, 40000, 80, 20, 0x11);
	assert_true(early_out(&t, b, n, PH, LEASED, 2000));
	n = mkpkt(b, IPPROTO_TCP, REMOTE, LEASED, 80, 40000, 20, 0x11);
	assert_true(early_in(&t, b, n, LEASED, PH, 2000));
	assert_int_equal(early_expire(&t, 2000 + EARLY_CLOSED_MS - 1), 1);
	assert_int_equal(early_expire(&t, 2000 + EARLY_CLOSED_MS), 0);
	assert_int_equal(t.expired, 1);
	n = mkpkt(b, IPPROTO_TCP, REMOTE, LEASED, 80, 40000, 20, 0x10);
	assert_false(early_in(&t, b, n, LEASED, PH, 20000));
}

static void
test_early_udp_icmp(void **state)
{
	static struct early_table t;
	uint8_t b[1500];
	size_t n;

	memset(&t, 0, sizeof(t));
	n = mkpkt(b, IPPROTO_UDP, PH, REMOTE, 5353, 53, 8 + 100, 0);
	assert_true(early_out(&t, b, n, PH, LEASED, 0));
	assert_csums(b);
	n = mkpkt(b, IPPROTO_UDP, REMOTE, LEASED, 53, 5353, 8 + 3, 0);
	assert_true(early_in(&t, b, n, LEASED, PH, 0));
	assert_csums(b);
	/* UDP without checksum stays without */
	n = mkpkt(b, IPPROTO_UDP, PH, REMOTE, 5353, 53, 8, 0);
	put16(b + 26, 0);
	assert_true(early_out(&t, b, n, PH, LEASED, 0));
	assert_int_equal(b[26] << 8 | b[27], 0);
	/* ping: echo request out, echo reply in, keyed on the identifier */
	n = mkpkt(b, IPPROTO_ICMP, PH, REMOTE, 8, 0x1234, 64, 0);
	assert_true(early_out(&t, b, n, PH, LEASED, 0));
	assert_csums(b);
	n = mkpkt(b, IPPROTO_ICMP, REMOTE, LEASED, 0, 0x1234, 64, 0);
	assert_true(early_in(&t, b, n, LEASED, PH, 0));
	assert_csums(b);
	n = mkpkt(b, IPPROTO_ICMP, REMOTE, LEASED, 0, 0x4321, 64, 0);
	assert_false(early_in(&t, b, n, LEASED, PH, 0));
	/* idle flows go */
	assert_int_equal(early_expire(&t, EARLY_IDLE_MS), 0);
	/* a full table drops and counts */
	for (unsigned i = 0; i < EARLY_MAX_FLOWS; i++) {
		n = mkpkt(b, IPPROTO_UDP, PH, REMOTE, (uint16_t)(1000 + i), 53, 8, 0);
		assert_true(early_out(&t, b, n, PH, LEASED, 0));
	}
	n = mkpkt(b, IPPROTO_UDP, PH, REMOTE, 999, 53, 8, 0);
	assert_false(early_out(&t, b, n, PH, LEASED, 0));
	assert_int_equal(t.table_full, 1);
	early_clear(&t);
	assert_true(early_out(&t, b, n, PH, LEASED, 0));
}

static void
test_frag_needed(void **state)
{
	uint8_t b[1500], out[576];
	size_t n = mkpkt(b, IPPROTO_TCP, LEASED, REMOTE, 40000, 80, 1400, 0x10);
	size_t m = pkt_icmp_frag_needed(b, n, 0xc6336401u, 1240, out, sizeof(out));
	struct pkt4 p;

	assert_int_equal(m, 576);
	assert_true(pkt_ip4_parse(out, m, &p));
	assert_int_equal(p.src, 0xc6336401u);
	assert_int_equal(p.dst, LEASED);
	assert_int_equal(p.proto, IPPROTO_ICMP);
	assert_int_equal(out[20], 3);
	assert_int_equal(out[21], 4);
	assert_int_equal(out[26] << 8 | out[27], 1240);
	assert_memory_equal(out + 28, b, 576 - 28);
	assert_csums(out);
	/* small packet quoted whole */
	n = mkpkt(b, IPPROTO_UDP, LEASED, REMOTE, 1, 2, 30, 0);
	assert_int_equal(pkt_icmp_frag_needed(b, n, 1, 1240, out, sizeof(out)), 28 + n);
	/* never about an ICMP error */
	n = mkpkt(b, IPPROTO_ICMP, LEASED, REMOTE, 3, 0, 36, 0);
	assert_int_equal(pkt_icmp_frag_needed(b, n, 1, 1240, out, sizeof(out)), 0);
	/* but about an echo request, yes */
	n = mkpkt(b, IPPROTO_ICMP, LEASED, REMOTE, 8, 0, 36, 0);
	assert_true(pkt_icmp_frag_needed(b, n, 1, 1240, out, sizeof(out)) > 0);
	assert_int_equal(pkt_icmp_frag_needed(b, n, 1, 1240, out, 40), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_early_tcp),
	    cmocka_unit_test(test_early_udp_icmp),
	    cmocka_unit_test(test_frag_needed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
