/*
 * Unit tests of the pool allocator (src/pool): parsing of prefixes and
 * ranges, exclusions, /31 and /32, port ranges (seed 001 appendix B),
 * FIFO reuse, quarantine, exhaustion, configuration errors, and a pool of
 * 1,000,000 slots.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/addr.h"
#include "pool/pool.h"

static uint32_t
v4(const char *s)
{
	uint32_t a;

	assert_true(addr_parse_v4(s, &a));
	return a;
}

static struct pool_range
rng(const char *s)
{
	struct pool_range r;
	char err[256];

	if (!pool_range_parse(s, &r, err, sizeof(err)))
		fail_msg("%s", err);
	return r;
}

static struct pool *
mkpool(const char *const *ranges, size_t n, const char *const *ex, size_t nex, unsigned ports)
{
	struct pool_range r[16], e[16];
	struct pool_config cfg = {"t", r, n, e, nex, ports, 0, 0};
	struct pool *p;
	char err[256];

	for (size_t i = 0; i < n; i++)
		r[i] = rng(ranges[i]);
	for (size_t i = 0; i < nex; i++)
		e[i] = rng(ex[i]);
	p = pool_new(&cfg, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	return p;
}

static void
test_parse(void **state)
{
	struct pool_range r;
	char err[256];

	r = rng("192.0.2.0/24");
	assert_int_equal(r.first, v4("192.0.2.1"));
	assert_int_equal(r.last, v4("192.0.2.254"));
	r = rng("192.0.2.4/31");
	assert_int_equal(r.first, v4("192.0.2.4"));
	assert_int_equal(r.last, v4("192.0.2.5"));
	r = rng("192.0.2.9/32");
	assert_int_equal(r.first, v4("192.0.2.9"));
	assert_int_equal(r.last, v4("192.0.2.9"));
	r = rng("192.0.2.10-192.0.2.20");
	assert_int_equal(r.first, v4("192.0.2.10"));
	assert_int_equal(r.last, v4("192.0.2.20"));
	r = rng("192.0.2.7");
	assert_int_equal(r.first, r.last);

	assert_false(pool_range_parse("192.0.2.0/33", &r, err, sizeof(err)));
	assert_non_null(strstr(err, "192.0.2.0/33"));
	assert_false(pool_range_parse("192.0.2.1/24", &r, err, sizeof(err)));
	assert_false(pool_range_parse("192.0.2.20-192.0.2.10", &r, err, sizeof(err)));
	assert_non_null(strstr(err, "ends before"));
	assert_false(pool_range_parse("192.0.2", &r, err, sizeof(err)));
	assert_false(pool_range_parse("-", &r, err, sizeof(err)));
}

static void
test_prefix_and_exclusions(void **state)
{
	const char *rs[] = {"192.0.2.0/24"};
	const char *ex[] = {"192.0.2.1", "192.0.2.100-192.0.2.199", "192.0.2.150-192.0.2.210",
	                    "10.0.0.0/8"};
	struct pool *p = mkpool(rs, 1, ex, 4, 0);
	struct pool_stats st;
	uint32_t slot, a;
	uint16_t lo, hi;

	pool_stats(p, &st);
	/* 254 hosts - .1 - .100..210 (111 addresses) */
	assert_int_equal(st.size, 254 - 1 - 111);
	assert_int_equal(st.free, st.size);
	assert_false(pool_contains(p, v4("192.0.2.0")));
	assert_false(pool_contains(p, v4("192.0.2.255")));
	assert_false(pool_contains(p, v4("192.0.2.1")));
	assert_false(pool_contains(p, v4("192.0.2.150")));
	assert_true(pool_contains(p, v4("192.0.2.2")));
	assert_true(pool_contains(p, v4("192.0.2.99")));
	assert_true(pool_contains(p, v4("192.0.2.211")));

	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	pool_slot(p, slot, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.2"));
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 0);
	/* Every slot maps back to itself. */
	for (uint32_t s = 0; s < st.size; s++) {
		uint32_t back;

		pool_slot(p, s, &a, &lo, &hi);
		assert_true(pool_contains(p, a));
		assert_true(pool_find(p, a, 0, &back));
		assert_int_equal(back, s);
	}
	pool_slot(p, 97, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.99"));
	pool_slot(p, 98, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.211"));
	assert_false(pool_find(p, v4("192.0.2.100"), 0, &slot));
	pool_free(p);
}

static void
test_31_32_and_ranges(void **state)
{
	const char *rs[] = {"198.51.100.9/32", "198.51.100.4/31", "198.51.100.20-198.51.100.22"};
	struct pool *p = mkpool(rs, 3, NULL, 0, 0);
	struct pool_stats st;
	uint32_t slot, a, order[6];
	uint16_t lo, hi;

	pool_stats(p, &st);
	assert_int_equal(st.size, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pool_alloc(p, 0, &slot), 0);
		pool_slot(p, slot, &a, &lo, &hi);
		order[i] = a;
	}
	/* Address order, whatever the configured order. */
	assert_int_equal(order[0], v4("198.51.100.4"));
	assert_int_equal(order[1], v4("198.51.100.5"));
	assert_int_equal(order[2], v4("198.51.100.9"));
	assert_int_equal(order[3], v4("198.51.100.20"));
	assert_int_equal(order[5], v4("198.51.100.22"));
	assert_int_equal(pool_alloc(p, 0, &slot), -ENOSPC);
	pool_free(p);
}

static void
test_config_errors(void **state)
{
	struct pool_range r[2] = {rng("192.0.2.0/24"), rng("192.0.2.10-192.0.2.20")};
	struct pool_range e[1] = {rng("192.0.2.0/24")};
	struct pool_config cfg = {"lab", r, 2, NULL, 0, 0, 0, 0};
	char err[256];

	assert_null(pool_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "overlaps"));
	assert_non_null(strstr(err, "\"lab\""));

	cfg.nranges = 1;
	cfg.excludes = e;
	cfg.nexcludes = 1;
	assert_null(pool_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "empty"));

	cfg.nexcludes = 0;
	cfg.port_range_size = 70000;
	assert_null(pool_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "port_range_size"));

	cfg.nranges = 0;
	cfg.port_range_size = 0;
	assert_null(pool_new(&cfg, err, sizeof(err)));

	r[0] = rng("10.0.0.0/8");
	cfg.nranges = 1;
	cfg.port_range_size = 1024; /* 63 ranges per address: too many slots */
	assert_null(pool_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "slots"));
}

static void
test_port_ranges(void **state)
{
	const char *rs[] = {"192.0.2.10-192.0.2.11"};
	struct pool *p = mkpool(rs, 1, NULL, 0, 1000);
	struct pool_stats st;
	uint32_t slot, a;
	uint16_t lo, hi;

	/* floor(64512 / 1000) = 64 clients per address */
	assert_int_equal(pool_slots_per_addr(p), 64);
	pool_stats(p, &st);
	assert_int_equal(st.size, 128);
	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	pool_slot(p, slot, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.10"));
	assert_int_equal(lo, 1024);
	assert_int_equal(hi, 2023);
	pool_slot(p, 63, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.10"));
	assert_int_equal(lo, 1024 + 63 * 1000);
	assert_int_equal(hi, 1024 + 64 * 1000 - 1);
	pool_slot(p, 64, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.11"));
	assert_int_equal(lo, 1024);

	assert_true(pool_find(p, v4("192.0.2.11"), 1024 + 2500, &slot));
	assert_int_equal(slot, 64 + 2);
	assert_false(pool_find(p, v4("192.0.2.11"), 80, &slot));
	/* 65024-65535 belong to no block when N does not divide 64512. */
	assert_false(pool_find(p, v4("192.0.2.11"), 65100, &slot));
	pool_free(p);

	/* N = 1: one port a client, 64512 clients an address. */
	p = mkpool(rs, 1, NULL, 0, 1);
	assert_int_equal(pool_slots_per_addr(p), 64512);
	assert_true(pool_find(p, v4("192.0.2.11"), 65535, &slot));
	assert_int_equal(slot, 2 * 64512 - 1);
	pool_slot(p, slot, &a, &lo, &hi);
	assert_int_equal(lo, 65535);
	assert_int_equal(hi, 65535);
	pool_free(p);
}

/* RFC 7597 §5.1 port sets: a slot is (address, PSID). */
static void
test_psid_sets(void **state)
{
	struct pool_range r[] = {rng("192.0.2.10-192.0.2.11")};
	struct pool_config cfg = {
	    .name = "p", .ranges = r, .nranges = 1, .psid_offset = 6, .psid_len = 6};
	struct pool *p;
	uint32_t slot, a;
	uint16_t lo, hi;
	unsigned off, len;
	char err[256];

	(void)state;
	p = pool_new(&cfg, err, sizeof(err));
	assert_non_null(p);
	pool_psid(p, &off, &len);
	assert_int_equal(off, 6);
	assert_int_equal(len, 6);
	assert_int_equal(pool_slots_per_addr(p), 64);
	pool_slot(p, 5, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.10"));
	assert_int_equal(lo, 1104);  /* i 1, PSID 5, j 0 */
	assert_int_equal(hi, 64607); /* i 63, PSID 5, j 15 */
	pool_slot(p, 64 + 63, &a, &lo, &hi);
	assert_int_equal(a, v4("192.0.2.11"));
	assert_int_equal(lo, 1024 + 63 * 16);
	assert_int_equal(hi, 65535);
	/* Any port of a set finds its slot; ports 0-1023 find none. */
	assert_true(pool_find(p, v4("192.0.2.11"), 2128 + 7, &slot));
	assert_int_equal(slot, 64 + 5);
	assert_true(pool_find(p, v4("192.0.2.10"), lo, &slot));
	assert_false(pool_find(p, v4("192.0.2.10"), 80, &slot));
	pool_free(p);

	/* Offset 0: contiguous sets from port 0. */
	cfg.psid_offset = 0;
	cfg.psid_len = 4;
	p = pool_new(&cfg, err, sizeof(err));
	assert_non_null(p);
	pool_slot(p, 1, &a, &lo, &hi);
	assert_int_equal(lo, 4096);
	assert_int_equal(hi, 8191);
	assert_true(pool_find(p, v4("192.0.2.10"), 0, &slot));
	assert_int_equal(slot, 0);
	pool_free(p);

	/* Both forms, or a set that does not fit 16 bits: refused. */
	cfg.port_range_size = 1000;
	assert_null(pool_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "not both"));
	cfg.port_range_size = 0;
	cfg.psid_offset = 10;
	cfg.psid_len = 7;
	assert_null(pool_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "16 bits"));
}

static void
test_fifo_quarantine(void **state)
{
	const char *rs[] = {"192.0.2.1-192.0.2.4"};
	struct pool *p = mkpool(rs, 1, NULL, 0, 0);
	struct pool_stats st;
	uint32_t s[4], slot;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(pool_alloc(p, 100, &s[i]), 0);
		assert_int_equal(s[i], (uint32_t)i);
	}
	assert_int_equal(pool_alloc(p, 100, &slot), -ENOSPC);
	pool_release(p, s[2], 200);
	pool_release(p, s[0], 150); /* out of order: the list stays sorted */
	pool_stats(p, &st);
	assert_int_equal(st.used, 2);
	assert_int_equal(st.quarantined, 2);
	assert_int_equal(st.free, 0);
	assert_int_equal(pool_alloc(p, 149, &slot), -ENOSPC);
	assert_int_equal(pool_take(p, s[0], 149), -EBUSY);
	assert_int_equal(pool_slot_state(p, s[0], 149), POOL_SLOT_QUARANTINED);
	assert_int_equal(pool_slot_state(p, s[0], 150), POOL_SLOT_FREE);
	assert_int_equal(pool_alloc(p, 150, &slot), 0);
	assert_int_equal(slot, s[0]);
	assert_int_equal(pool_alloc(p, 199, &slot), -ENOSPC);
	assert_int_equal(pool_tick(p, 300), 1);
	assert_int_equal(pool_take(p, s[2], 300), 0);
	assert_int_equal(pool_take(p, s[2], 300), -EBUSY);
	assert_int_equal(pool_take(p, 4, 300), -ENOENT);

	/* FIFO: released slots come back in the order their quarantine ended. */
	pool_release(p, 3, 400);
	pool_release(p, 1, 400);
	pool_release(p, 0, 401);
	assert_int_equal(pool_alloc(p, 500, &slot), 0);
	assert_int_equal(slot, 3);
	assert_int_equal(pool_alloc(p, 500, &slot), 0);
	assert_int_equal(slot, 1);
	assert_int_equal(pool_alloc(p, 500, &slot), 0);
	assert_int_equal(slot, 0);
	pool_free(p);
}

/* pool_rotate: the free queue starts elsewhere, its order and its contents kept. */
static void
test_rotate(void **state)
{
	const char *rs[] = {"192.0.2.1-192.0.2.8"};
	struct pool *p = mkpool(rs, 1, NULL, 0, 0);
	struct pool_stats st;
	uint32_t slot;
	const uint32_t want[] = {6, 7, 0, 1, 3};

	assert_int_equal(pool_take(p, 5, 100), 0);
	assert_int_equal(pool_take(p, 2, 100), 0);
	assert_int_equal(pool_take(p, 4, 100), 0);
	pool_rotate(p, 4); /* 4 and 5 are used: it starts at 6 */
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		assert_int_equal(pool_alloc(p, 100, &slot), 0);
		assert_int_equal(slot, want[i]);
	}
	assert_int_equal(pool_alloc(p, 100, &slot), -ENOSPC);
	pool_stats(p, &st);
	assert_int_equal(st.used, 8);
	/* Rotating an empty queue, or past the end, changes nothing. */
	pool_rotate(p, 3);
	pool_rotate(p, 99);
	pool_release(p, 1, 0);
	pool_release(p, 7, 0);
	assert_int_equal(pool_tick(p, 100), 2); /* free again, in the order 1, 7 */
	pool_rotate(p, 7);
	assert_int_equal(pool_alloc(p, 100, &slot), 0);
	assert_int_equal(slot, 7);
	assert_int_equal(pool_alloc(p, 100, &slot), 0);
	assert_int_equal(slot, 1);
	pool_free(p);
}

static void
test_fifo_reuse_late(void **state)
{
	const char *rs[] = {"192.0.2.0/29"}; /* .1-.6 */
	struct pool *p = mkpool(rs, 1, NULL, 0, 0);
	uint32_t slot;

	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	assert_int_equal(slot, 0);
	pool_release(p, slot, 0); /* no quarantine: straight to the tail */
	for (uint32_t want = 1; want < 6; want++) {
		assert_int_equal(pool_alloc(p, 0, &slot), 0);
		assert_int_equal(slot, want);
	}
	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	assert_int_equal(slot, 0);
	/* Taking a slot from the middle of the free queue keeps the queue intact. */
	pool_release(p, 2, 0);
	pool_release(p, 4, 0);
	pool_release(p, 3, 0);
	assert_int_equal(pool_take(p, 4, 0), 0);
	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	assert_int_equal(slot, 2);
	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	assert_int_equal(slot, 3);
	assert_int_equal(pool_alloc(p, 0, &slot), -ENOSPC);
	pool_free(p);
}

static void
test_overlaps(void **state)
{
	const char *a[] = {"192.0.2.0/25"}, *b[] = {"192.0.2.128/25"},
	           *c[] = {"192.0.2.100-192.0.2.130"};
	struct pool *pa = mkpool(a, 1, NULL, 0, 0), *pb = mkpool(b, 1, NULL, 0, 0),
	            *pc = mkpool(c, 1, NULL, 0, 0);

	assert_false(pool_overlaps(pa, pb));
	assert_true(pool_overlaps(pa, pc));
	assert_true(pool_overlaps(pc, pb));
	pool_free(pa);
	pool_free(pb);
	pool_free(pc);
}

static void
test_million(void **state)
{
	/* 10.0.0.0/12 minus its ends is 1,048,574 addresses. */
	const char *rs[] = {"10.0.0.0/12"};
	struct pool *p = mkpool(rs, 1, NULL, 0, 0);
	struct pool_stats st;
	uint32_t slot;

	pool_stats(p, &st);
	assert_int_equal(st.size, 1048574);
	for (uint32_t i = 0; i < 1000000; i++) {
		assert_int_equal(pool_alloc(p, 0, &slot), 0);
		assert_int_equal(slot, i);
	}
	for (uint32_t i = 0; i < 1000000; i += 2)
		pool_release(p, i, 10 + i / 1000);
	pool_stats(p, &st);
	assert_int_equal(st.used, 500000);
	assert_int_equal(st.quarantined, 500000);
	assert_int_equal(st.free, 48574);
	assert_int_equal(pool_tick(p, 10 + 499), 250000);
	for (uint32_t i = 0; i < 48574; i++)
		assert_int_equal(pool_alloc(p, 0, &slot), 0);
	assert_int_equal(pool_alloc(p, 0, &slot), 0);
	assert_int_equal(slot, 0); /* the first quarantine to end */
	pool_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_prefix_and_exclusions),
	    cmocka_unit_test(test_31_32_and_ranges),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_port_ranges),
	    cmocka_unit_test(test_psid_sets),
	    cmocka_unit_test(test_fifo_quarantine),
	    cmocka_unit_test(test_fifo_reuse_late),
	    cmocka_unit_test(test_rotate),
	    cmocka_unit_test(test_overlaps),
	    cmocka_unit_test(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
