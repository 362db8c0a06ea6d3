/*
 * Unit tests of the binding table (src/dataplane/binding.h): whole
 * addresses, shared addresses split into port ranges, updates that keep or
 * reset counters, deletion (checked against a reference model through
 * thousands of random operations, which exercises backward-shift
 * deletion), growth, batched lookups, learned-binding expiry, the
 * memory a million bindings take, and RFC 7597 §5.1 port sets (PSID).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataplane/binding.h"

static struct in6_addr
v6(uint32_t n)
{
	struct in6_addr a = {{{0xfd, 0x00, 0x0d, 0x57}}};

	a.s6_addr[12] = (uint8_t)(n >> 24);
	a.s6_addr[13] = (uint8_t)(n >> 16);
	a.s6_addr[14] = (uint8_t)(n >> 8);
	a.s6_addr[15] = (uint8_t)n;
	return a;
}

#define V4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void
test_whole(void **state)
{
	struct bt *bt = bt_new(16);
	struct in6_addr a = v6(1), b6 = v6(2);
	struct bt_binding *b, *b2;

	assert_int_equal(bt_add(bt, V4(192, 0, 2, 10), 0, 65535, &a, 0, &b), 0);
	assert_int_equal(bt_count(bt), 1);
	assert_ptr_equal(bt_lookup(bt, V4(192, 0, 2, 10), 80), b);
	assert_ptr_equal(bt_lookup(bt, V4(192, 0, 2, 10), 0), b);
	assert_null(bt_lookup(bt, V4(192, 0, 2, 11), 80));
	assert_false(bt_is_shared(bt, V4(192, 0, 2, 10)));
	assert_memory_equal(&b->v6, &a, 16);

	/* Re-adding with the same client keeps the counters. */
	b->pkts_in = 7;
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 10), 0, 65535, &a, 0, &b2), 0);
	assert_ptr_equal(b2, b);
	assert_int_equal(b->pkts_in, 7);
	assert_int_equal(bt_count(bt), 1);
	/* Another client: counters start again. */
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 10), 0, 65535, &b6, 0, &b2), 0);
	assert_int_equal(b->pkts_in, 0);
	assert_memory_equal(&b->v6, &b6, 16);

	/* A range over a whole address is refused. */
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 10), 1024, 2047, &a, 0, NULL), -EEXIST);
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 12), 10, 9, &a, 0, NULL), -EINVAL);

	assert_int_equal(bt_del(bt, V4(192, 0, 2, 10), 1024, false), -ENOENT);
	assert_int_equal(bt_del(bt, V4(192, 0, 2, 10), 0, false), 0);
	assert_int_equal(bt_del(bt, V4(192, 0, 2, 10), 0, false), -ENOENT);
	assert_null(bt_lookup(bt, V4(192, 0, 2, 10), 80));
	assert_int_equal(bt_count(bt), 0);
	bt_free(bt);
}

static void
test_shared(void **state)
{
	struct bt *bt = bt_new(16);
	struct in6_addr a = v6(1), c = v6(2), d = v6(3);
	uint32_t ip = V4(192, 0, 2, 20);
	struct bt_binding *ba, *bc, *bd;

	assert_int_equal(bt_add(bt, ip, 1024, 2047, &a, 0, &ba), 0);
	assert_int_equal(bt_add(bt, ip, 2048, 3071, &c, 0, &bc), 0);
	assert_true(bt_is_shared(bt, ip));
	assert_ptr_equal(bt_lookup(bt, ip, 1024), ba);
	assert_ptr_equal(bt_lookup(bt, ip, 2047), ba);
	assert_ptr_equal(bt_lookup(bt, ip, 2048), bc);
	assert_ptr_equal(bt_lookup(bt, ip, 3071), bc);
	assert_null(bt_lookup(bt, ip, 3072));
	assert_null(bt_lookup(bt, ip, 80));
	assert_null(bt_lookup(bt, ip, 65535));
	/* Misaligned or of another size: refused. */
	assert_int_equal(bt_add(bt, ip, 1500, 2523, &d, 0, NULL), -EINVAL);
	assert_int_equal(bt_add(bt, ip, 4096, 4607, &d, 0, NULL), -EINVAL);
	assert_int_equal(bt_add(bt, ip, 0, 65535, &d, 0, NULL), -EEXIST);
	/* Ranges of 1000 from 1024: the last one is cut short by 65535. */
	assert_int_equal(bt_add(bt, ip + 1, 1024, 2023, &d, 0, NULL), 0);
	assert_int_equal(bt_add(bt, ip + 1, 65024, 65535, &d, 0, &bd), 0);
	assert_ptr_equal(bt_lookup(bt, ip + 1, 65535), bd);
	assert_ptr_equal(bt_lookup(bt, ip + 1, 65024), bd);
	assert_null(bt_lookup(bt, ip + 1, 64023));
	assert_int_equal(bt_count(bt), 4);
	assert_int_equal(bt_del(bt, ip + 1, 0, true), 0);
	assert_int_equal(bt_count(bt), 2);

	assert_int_equal(bt_del(bt, ip, 1500, false), -ENOENT);
	assert_int_equal(bt_del(bt, ip, 1024, false), 0);
	assert_null(bt_lookup(bt, ip, 1024));
	assert_ptr_equal(bt_lookup(bt, ip, 2048), bc);
	assert_true(bt_is_shared(bt, ip));
	assert_int_equal(bt_del(bt, ip, 0, true), 0);
	assert_false(bt_is_shared(bt, ip));
	assert_null(bt_lookup(bt, ip, 2048));
	assert_int_equal(bt_count(bt), 0);
	/* The address can now be bound whole. */
	assert_int_equal(bt_add(bt, ip, 0, 65535, &d, 0, NULL), 0);
	bt_free(bt);
}

/* Random adds and deletes against a plain array holding what must be there. */
static void
random_model(struct bt *bt)
{
	enum { N = 4096, OPS = 60000 };
	uint32_t *model = calloc(N, sizeof(*model)); /* client number + 1, or 0 */
	uint32_t seed = 12345, cursor = 0, seen = 0;
	size_t count = 0;

	assert_non_null(model);
	for (int op = 0; op < OPS; op++) {
		uint32_t k, ip;

		seed = seed * 1103515245u + 12345u;
		k = (seed >> 8) % N;
		/* Clustered keys: consecutive addresses of a few /20s. */
		ip = V4(10, (k >> 10) & 3, 0, 0) + (k & 1023) * 4;
		if ((seed >> 4) & 1) {
			struct in6_addr a = v6((uint32_t)op);
			assert_int_equal(bt_add(bt, ip, 0, 65535, &a, 0, NULL), 0);
			if (!model[k])
				count++;
			model[k] = (uint32_t)op + 1;
		} else {
			int rc = bt_del(bt, ip, 0, false);
			assert_int_equal(rc, model[k] ? 0 : -ENOENT);
			if (model[k])
				count--;
			model[k] = 0;
		}
		if (op % 1000 == 0 || op == OPS - 1) {
			for (uint32_t j = 0; j < N; j++) {
				uint32_t jp = V4(10, (j >> 10) & 3, 0, 0) + (j & 1023) * 4;
				struct bt_binding *b = bt_lookup(bt, jp, 1);
				if (!model[j]) {
					assert_null(b);
					continue;
				}
				assert_non_null(b);
				struct in6_addr a = v6(model[j] - 1);
				assert_memory_equal(&b->v6, &a, 16);
			}
			assert_int_equal(bt_count(bt), count);
		}
	}
	while (bt_next(bt, &cursor))
		seen++;
	assert_int_equal(seen, count);
	free(model);
	bt_free(bt);
}

static void
test_random_model(void **state)
{
	random_model(bt_new(8)); /* grows several times on the way */
}

/* Half the keys in a directly indexed pool, half through the hash. */
static void
test_random_model_pools(void **state)
{
	uint32_t base = V4(10, 0, 0, 0);
	unsigned plen = 15;

	random_model(bt_new_pools(&base, &plen, 1));
}

static void
test_pools_shared(void **state)
{
	uint32_t base[2] = {V4(192, 0, 2, 0), V4(198, 18, 0, 0)};
	unsigned plen[2] = {24, 16};
	struct bt *bt = bt_new_pools(base, plen, 2);
	struct in6_addr a = v6(1), c = v6(2);
	struct bt_binding *b;

	assert_non_null(bt);
	assert_int_equal(bt_add(bt, V4(198, 18, 7, 7), 0, 65535, &a, 0, &b), 0);
	assert_ptr_equal(bt_lookup(bt, V4(198, 18, 7, 7), 9), b);
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 5), 1024, 2047, &c, 0, &b), 0);
	assert_true(bt_is_shared(bt, V4(192, 0, 2, 5)));
	assert_ptr_equal(bt_lookup(bt, V4(192, 0, 2, 5), 1500), b);
	assert_null(bt_lookup(bt, V4(192, 0, 2, 5), 2048));
	assert_null(bt_lookup(bt, V4(192, 0, 2, 6), 1500));
	assert_int_equal(bt_del(bt, V4(192, 0, 2, 5), 1024, false), 0);
	assert_false(bt_is_shared(bt, V4(192, 0, 2, 5)));
	assert_int_equal(bt_count(bt), 1);
	/* The directly indexed refs are counted in the memory. */
	assert_true(bt_memory(bt) >= (256 + 65536) * 4);
	bt_free(bt);
}

static void
test_batch(void **state)
{
	struct bt *bt = bt_new(1000);
	uint32_t keys[70];
	uint16_t ports[70];
	struct bt_binding *out[70];

	for (uint32_t i = 0; i < 1000; i += 2) {
		struct in6_addr a = v6(i);
		assert_int_equal(bt_add(bt, V4(10, 0, 0, 0) + i, 0, 65535, &a, 0, NULL), 0);
	}
	for (uint32_t i = 0; i < 70; i++) {
		keys[i] = V4(10, 0, 0, 0) + i * 7;
		ports[i] = 9;
	}
	bt_lookup_batch(bt, keys, ports, 70, out);
	for (uint32_t i = 0; i < 70; i++) {
		if ((i * 7) % 2) {
			assert_null(out[i]);
		} else {
			assert_non_null(out[i]);
			assert_int_equal(out[i]->v4, keys[i]);
		}
	}
	bt_free(bt);
}

static void
test_expire(void **state)
{
	struct bt *bt = bt_new(16);
	struct in6_addr a = v6(1);
	struct bt_binding *b;

	assert_int_equal(bt_add(bt, V4(192, 0, 2, 30), 0, 65535, &a, BT_F_LEARNED, &b), 0);
	b->last_seen = 100;
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 31), 0, 65535, &a, BT_F_LEARNED, &b), 0);
	b->last_seen = 500;
	assert_int_equal(bt_add(bt, V4(192, 0, 2, 32), 0, 65535, &a, 0, &b), 0);
	b->last_seen = 0; /* not learned: never expires */
	assert_int_equal(bt_expire_learned(bt, 200, 10), 1);
	assert_null(bt_lookup(bt, V4(192, 0, 2, 30), 0));
	assert_non_null(bt_lookup(bt, V4(192, 0, 2, 31), 0));
	assert_non_null(bt_lookup(bt, V4(192, 0, 2, 32), 0));
	assert_int_equal(bt_expire_learned(bt, 1000, 10), 1);
	assert_int_equal(bt_count(bt), 1);
	bt_free(bt);
}

/* The budget: a million bindings in well under 100 MB. */
/* RFC 7597 §5.1: offset a, PSID length k; ports i|PSID|j, i != 0 when a > 0. */
static void
test_psid(void **state)
{
	uint32_t base = V4(192, 0, 2, 0);
	unsigned plen = 24;
	struct bt *bts[2] = {bt_new(16), bt_new_pools(&base, &plen, 1)};
	struct in6_addr a = v6(1), b6 = v6(2);

	(void)state;
	for (int t = 0; t < 2; t++) {
		struct bt *bt = bts[t];
		uint32_t x = V4(192, 0, 2, 30);
		struct bt_binding *b, *c;

		assert_non_null(bt);
		assert_int_equal(bt_add_psid(bt, x, 6, 6, 5, &a, 0, &b), 0);
		assert_int_equal(bt_add_psid(bt, x, 6, 6, 6, &b6, 0, &c), 0);
		assert_true(bt_is_shared(bt, x));
		assert_true(bt_is_psid(bt, x));
		assert_int_equal(bt_count(bt), 2);
		assert_true(b->flags & BT_F_PSID);
		assert_int_equal(b->psid, 5);
		assert_int_equal(b->psid_offset, 6);
		assert_int_equal(b->psid_len, 6);
		/* PSID 5 holds 1104-1119, 2128-2143, …, 64592-64607. */
		assert_ptr_equal(bt_lookup(bt, x, 1104), b);
		assert_ptr_equal(bt_lookup(bt, x, 1119), b);
		assert_ptr_equal(bt_lookup(bt, x, 2128), b);
		assert_ptr_equal(bt_lookup(bt, x, 64607), b);
		assert_ptr_equal(bt_lookup(bt, x, 1120), c);
		assert_null(bt_lookup(bt, x, 1103));
		assert_null(bt_lookup(bt, x, 1136));
		/* i = 0: ports 0-1023 belong to nobody, PSID bits or not. */
		assert_null(bt_lookup(bt, x, 80));
		assert_null(bt_lookup(bt, x, 0));
		assert_true(bt_port_in(b, 1110));
		assert_false(bt_port_in(b, 1120));
		assert_false(bt_port_in(b, 85));

		/* Same PSID again: an update that keeps the counters. */
		b->pkts_in = 3;
		assert_int_equal(bt_add_psid(bt, x, 6, 6, 5, &a, 0, &c), 0);
		assert_ptr_equal(c, b);
		assert_int_equal(b->pkts_in, 3);
		/* Other shapes over a PSID address, bad parameters. */
		assert_int_equal(bt_add_psid(bt, x, 4, 6, 5, &a, 0, NULL), -EINVAL);
		assert_int_equal(bt_add_psid(bt, x, 6, 5, 5, &a, 0, NULL), -EINVAL);
		assert_int_equal(bt_add(bt, x, 1024, 2047, &a, 0, NULL), -EINVAL);
		assert_int_equal(bt_add(bt, x, 0, 65535, &a, 0, NULL), -EEXIST);
		assert_int_equal(bt_add_psid(bt, V4(192, 0, 2, 31), 6, 6, 64, &a, 0, NULL),
		                 -EINVAL);
		assert_int_equal(bt_add_psid(bt, V4(192, 0, 2, 31), 10, 7, 1, &a, 0, NULL),
		                 -EINVAL);
		assert_int_equal(bt_add(bt, V4(192, 0, 2, 32), 1024, 2047, &a, 0, NULL), 0);
		assert_int_equal(bt_add_psid(bt, V4(192, 0, 2, 32), 6, 6, 1, &a, 0, NULL), -EINVAL);
		assert_false(bt_is_psid(bt, V4(192, 0, 2, 32)));

		/* Offset 0 (MAP-E without exclusion): every port is someone's. */
		assert_int_equal(bt_add_psid(bt, V4(192, 0, 2, 33), 0, 8, 0, &b6, 0, &c), 0);
		assert_ptr_equal(bt_lookup(bt, V4(192, 0, 2, 33), 0), c);
		assert_ptr_equal(bt_lookup(bt, V4(192, 0, 2, 33), 255), c);
		assert_null(bt_lookup(bt, V4(192, 0, 2, 33), 256));
		/* PSID length 0: a whole address. */
		assert_int_equal(bt_add_psid(bt, V4(192, 0, 2, 34), 6, 0, 0, &a, 0, &c), 0);
		assert_false(c->flags & BT_F_PSID);
		assert_false(bt_is_shared(bt, V4(192, 0, 2, 34)));
		assert_ptr_equal(bt_lookup(bt, V4(192, 0, 2, 34), 80), c);

		/* Deletion by PSID, and by a port of the set. */
		assert_int_equal(bt_del_psid(bt, x, 7), -ENOENT);
		assert_int_equal(bt_del_psid(bt, x, 5), 0);
		assert_null(bt_lookup(bt, x, 1104));
		assert_int_equal(bt_del_psid(bt, x, 5), -ENOENT);
		assert_true(bt_is_psid(bt, x));
		assert_int_equal(bt_del(bt, x, 2150, false), 0); /* PSID 6 */
		assert_false(bt_is_shared(bt, x));
		assert_null(bt_lookup(bt, x, 1120));
		/* The address is free for another shape now. */
		assert_int_equal(bt_add(bt, x, 0, 65535, &a, 0, NULL), 0);
		bt_free(bt);
	}
}

static void
test_million(void **state)
{
	enum { N = 1000000 };
	uint32_t base = V4(10, 0, 0, 0);
	unsigned plen = 12;
	struct bt *bt = bt_new_pools(&base, &plen, 1);
	size_t mem;

	for (uint32_t i = 0; i < N; i++) {
		struct in6_addr a = v6(i);
		assert_int_equal(bt_add(bt, V4(10, 0, 0, 0) + i, 0, 65535, &a, 0, NULL), 0);
	}
	assert_int_equal(bt_count(bt), N);
	mem = bt_memory(bt);
	print_message("1,000,000 bindings: %zu bytes, %.1f bytes per binding\n", mem,
	              (double)mem / N);
	assert_true(mem < 90u * 1000 * 1000);
	for (uint32_t i = 0; i < N; i += 9973) {
		struct bt_binding *b = bt_lookup(bt, V4(10, 0, 0, 0) + i, 0);
		assert_non_null(b);
		assert_int_equal(b->v4, V4(10, 0, 0, 0) + i);
	}
	bt_free(bt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole),        cmocka_unit_test(test_shared),
	    cmocka_unit_test(test_random_model), cmocka_unit_test(test_random_model_pools),
	    cmocka_unit_test(test_pools_shared), cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_expire),       cmocka_unit_test(test_million),
	    cmocka_unit_test(test_psid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
