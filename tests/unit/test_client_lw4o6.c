/*
 * Unit tests of the lwB4's port translation (src/client/lw4o6.h): host
 * ports into the RFC 7597 §5.1 set and back, checksums still right
 * (recomputed here from scratch and compared), a host port already in the
 * set kept, ICMP echo identifiers and the quotes of ICMP errors, TCP
 * flows forgotten after FIN, and a set too small for the flows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/lw4o6.h"

#define V4   0xc0000202u /* 192.0.2.2 */
#define HOST 0xc6336402u /* 198.51.100.2 */

static uint32_t
sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t
fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The transport checksum of packet p verifies (0 folded to 0xffff). */
static bool
l4_ok(const uint8_t *p)
{
	size_t tot = get16(p + 2), l4n = tot - 20;
	uint32_t s = 0;

	if (p[9] == 1)
		return fold(sum16(p + 20, l4n, 0)) == 0xffff;
	s = sum16(p + 12, 8, s) + p[9] + (uint32_t)l4n;
	return fold(sum16(p + 20, l4n, s)) == 0xffff;
}

/* An IPv4 packet src -> dst; proto 6, 17 or 1 (echo type `it`), ports/identifier. */
static size_t
mk(uint8_t *p, uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
   uint8_t it)
{
	size_t l4n = proto == 6 ? 20 : 8 + 6;
	uint8_t *l4 = p + 20;
	uint32_t s;

	memset(p, 0, 20 + l4n);
	p[0] = 0x45;
	put16(p + 2, (uint16_t)(20 + l4n));
	p[8] = 64;
	p[9] = proto;
	put16(p + 12, (uint16_t)(src >> 16)), put16(p + 14, (uint16_t)src);
	put16(p + 16, (uint16_t)(dst >> 16)), put16(p + 18, (uint16_t)dst);
	put16(p + 10, (uint16_t)~fold(sum16(p, 20, 0)));
	if (proto == 1) {
		l4[0] = it;
		put16(l4 + 4, sport);
		put16(l4 + 6, 1);
		memcpy(l4 + 8, "pingpg", 6);
		put16(l4 + 2, (uint16_t)~fold(sum16(l4, l4n, 0)));
		return 20 + l4n;
	}
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (proto == 6) {
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
	} else {
		put16(l4 + 4, (uint16_t)l4n);
		memcpy(l4 + 8, "hello!", 6);
	}
	s = sum16(p + 12, 8, 0) + proto + (uint32_t)l4n;
	put16(l4 + (proto == 6 ? 16 : 6), (uint16_t)~fold(sum16(l4, l4n, s)));
	return 20 + l4n;
}

static void
test_udp_tcp_icmp(void **state)
{
	struct lw_nat *n = lw_nat_new();
	uint8_t p[128];
	size_t len;
	uint16_t m1, m2;

	(void)state;
	assert_non_null(n);
	lw_nat_set(n, 6, 6, 5); /* 1104-1119, 2128-2143, … */
	assert_int_equal(lw_nat_size(n), 63 * 16);
	assert_true(lw_nat_port_in(n, 1104));
	assert_false(lw_nat_port_in(n, 1120));
	assert_false(lw_nat_port_in(n, 80));

	/* UDP from an ephemeral port outside the set: mapped in, checksum right. */
	len = mk(p, 17, V4, HOST, 40000, 7, 0);
	assert_true(lw_nat_out(n, p, len, 1000));
	m1 = get16(p + 20);
	assert_true(lw_nat_port_in(n, m1));
	assert_true(l4_ok(p));
	/* The same host port again: the same mapping (endpoint-independent). */
	len = mk(p, 17, V4, 0x08080808u, 40000, 53, 0);
	assert_true(lw_nat_out(n, p, len, 1001));
	assert_int_equal(get16(p + 20), m1);
	/* The reply comes back to the host port. */
	len = mk(p, 17, HOST, V4, 7, m1, 0);
	lw_nat_in(n, p, len, 1002);
	assert_int_equal(get16(p + 22), 40000);
	assert_true(l4_ok(p));

	/* A host port already in the set is kept. */
	len = mk(p, 17, V4, HOST, 2130, 7, 0);
	assert_true(lw_nat_out(n, p, len, 1003));
	assert_int_equal(get16(p + 20), 2130);
	assert_int_equal(lw_nat_counters(n)->kept, 1);

	/* TCP: SYN out mapped, SYN-ACK in mapped back. */
	len = mk(p, 6, V4, HOST, 50000, 80, 0);
	assert_true(lw_nat_out(n, p, len, 1004));
	m2 = get16(p + 20);
	assert_true(lw_nat_port_in(n, m2));
	assert_true(l4_ok(p));
	len = mk(p, 6, HOST, V4, 80, m2, 0);
	lw_nat_in(n, p, len, 1005);
	assert_int_equal(get16(p + 22), 50000);
	assert_true(l4_ok(p));

	/* ICMP echo: the identifier. */
	len = mk(p, 1, V4, HOST, 7, 0, 8);
	assert_true(lw_nat_out(n, p, len, 1006));
	assert_true(lw_nat_port_in(n, get16(p + 24)));
	assert_true(l4_ok(p));
	m1 = get16(p + 24);
	len = mk(p, 1, HOST, V4, m1, 0, 0);
	lw_nat_in(n, p, len, 1007);
	assert_int_equal(get16(p + 24), 7);
	assert_true(l4_ok(p));
	lw_nat_free(n);
}

static void
test_icmp_error_quote(void **state)
{
	struct lw_nat *n = lw_nat_new();
	uint8_t p[256], q[64], e[256];
	size_t len, qlen;
	uint16_t m;

	(void)state;
	lw_nat_set(n, 6, 6, 5);
	len = mk(p, 17, V4, HOST, 40000, 7, 0);
	assert_true(lw_nat_out(n, p, len, 1000));
	m = get16(p + 20);
	assert_int_not_equal(m, 40000);
	/* The network says port unreachable, quoting what left (source port m). */
	qlen = len;
	memcpy(q, p, qlen);
	memset(e, 0, sizeof(e));
	e[0] = 0x45;
	put16(e + 2, (uint16_t)(20 + 8 + qlen));
	e[8] = 64;
	e[9] = 1;
	put16(e + 12, (uint16_t)(HOST >> 16)), put16(e + 14, (uint16_t)HOST);
	put16(e + 16, (uint16_t)(V4 >> 16)), put16(e + 18, (uint16_t)V4);
	e[20] = 3;
	e[21] = 3;
	memcpy(e + 28, q, qlen);
	put16(e + 22, (uint16_t)~fold(sum16(e + 20, 8 + qlen, 0)));
	lw_nat_in(n, e, 20 + 8 + qlen, 1001);
	assert_int_equal(get16(e + 28 + 20), 40000); /* the host sees its own port quoted */
	assert_true(l4_ok(e));
	assert_int_equal(lw_nat_counters(n)->icmp_quotes, 1);
	lw_nat_free(n);
}

static void
test_exhaustion_and_expiry(void **state)
{
	struct lw_nat *n = lw_nat_new();
	uint8_t p[128];
	size_t len;

	(void)state;
	/* Offset 0, PSID length 15: two ports (psid << 1 | j). */
	lw_nat_set(n, 0, 15, 700);
	assert_int_equal(lw_nat_size(n), 2);
	len = mk(p, 6, V4, HOST, 30001, 80, 0);
	assert_true(lw_nat_out(n, p, len, 0));
	len = mk(p, 6, V4, HOST, 30002, 80, 0);
	assert_true(lw_nat_out(n, p, len, 0));
	len = mk(p, 6, V4, HOST, 30003, 80, 0);
	assert_false(lw_nat_out(n, p, len, 0));
	assert_int_equal(lw_nat_counters(n)->exhausted, 1);
	/* UDP has ports of its own. */
	len = mk(p, 17, V4, HOST, 30003, 7, 0);
	assert_true(lw_nat_out(n, p, len, 0));
	/* After an hour the UDP flow (5 min) is gone, the TCP ones stay (2 h 04)... */
	assert_int_equal(lw_nat_expire(n, 3600 * 1000), 2);
	len = mk(p, 6, V4, HOST, 30003, 80, 0);
	assert_false(lw_nat_out(n, p, len, 3600 * 1000));
	/* ...and after 2 h 04 the port is free again. */
	len = mk(p, 6, V4, HOST, 30003, 80, 0);
	assert_true(lw_nat_out(n, p, len, 7441 * 1000));
	/* A new set forgets everything; a whole address translates nothing. */
	lw_nat_set(n, 6, 0, 0);
	len = mk(p, 17, V4, HOST, 40000, 7, 0);
	assert_true(lw_nat_out(n, p, len, 0));
	assert_int_equal(get16(p + 20), 40000);
	lw_nat_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_udp_tcp_icmp),
	    cmocka_unit_test(test_icmp_error_quote),
	    cmocka_unit_test(test_exhaustion_and_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
