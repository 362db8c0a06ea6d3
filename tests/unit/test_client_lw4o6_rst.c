/*
 * The lwB4's port translation (src/client/lw4o6.h) against a blind RST:
 * anyone on the IPv4 side can send a TCP RST to every port of the
 * shared address's set. The host's TCP drops one out of its window, so
 * its connection lives on; the translation must not forget the flow
 * after the short closed-flow time, or the connection's next packet
 * leaves from another mapped port and the remote resets it. The flow
 * waits RFC 7857 §2.2's 4 minutes after an outside RST (less than the
 * idle time of an established flow), and the host's own RST still ends
 * it quickly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/lw4o6.h"

#define V4     0xc0000202u /* 192.0.2.2: the shared address */
#define REMOTE 0xc6336402u /* 198.51.100.2 */

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

/* A TCP segment src:sport -> dst:dport with `flags` (checksums not needed here). */
static size_t
tcp(uint8_t *p, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags)
{
	memset(p, 0, 40);
	p[0] = 0x45;
	put16(p + 2, 40);
	p[8] = 64;
	p[9] = 6;
	put16(p + 12, (uint16_t)(src >> 16)), put16(p + 14, (uint16_t)src);
	put16(p + 16, (uint16_t)(dst >> 16)), put16(p + 18, (uint16_t)dst);
	put16(p + 20, sport);
	put16(p + 22, dport);
	p[32] = 5 << 4;
	p[33] = flags;
	return 40;
}

static void
test_blind_rst_keeps_the_mapping(void **state)
{
	struct lw_nat *n = lw_nat_new();
	uint8_t p[64];
	uint16_t mapped;
	int64_t t = 1000;

	(void)state;
	/* Offset 6, PSID length 6, PSID 5: 1008 ports; host port 40000 is outside. */
	lw_nat_set(n, 6, 6, 5);
	assert_false(lw_nat_port_in(n, 40000));
	assert_true(lw_nat_out(n, p, tcp(p, V4, REMOTE, 40000, 22, 0x02), t));
	mapped = get16(p + 20);
	assert_int_not_equal(mapped, 40000);

	/* A stranger's RST to the mapped port; the host's TCP ignores it. */
	lw_nat_in(n, p, tcp(p, REMOTE, V4, 22, mapped, 0x04), t);
	assert_int_equal(get16(p + 22), 40000); /* translated all the same */

	/* An idle minute later (an SSH session waiting for a key), the flow is still there. */
	t += 60 * 1000;
	assert_int_equal(lw_nat_expire(n, t), 1);
	assert_true(lw_nat_out(n, p, tcp(p, V4, REMOTE, 40000, 22, 0x10), t));
	assert_int_equal(get16(p + 20), mapped);

	/* The host's packet said the connection lives: the next RST starts the wait again... */
	lw_nat_in(n, p, tcp(p, REMOTE, V4, 22, mapped, 0x04), t);
	assert_int_equal(lw_nat_expire(n, t + 239 * 1000), 1);
	/* ...and after 4 minutes of silence the flow goes. */
	assert_int_equal(lw_nat_expire(n, t + 240 * 1000), 0);
	t += 240 * 1000;

	/* The host's own RST ends its flow after the short time. */
	assert_true(lw_nat_out(n, p, tcp(p, V4, REMOTE, 40001, 22, 0x02), t));
	assert_true(lw_nat_out(n, p, tcp(p, V4, REMOTE, 40001, 22, 0x04), t));
	assert_int_equal(lw_nat_expire(n, t + 10 * 1000), 0);
	lw_nat_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blind_rst_keeps_the_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
