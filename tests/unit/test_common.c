/*
 * Unit tests of the shared helpers of src/common: the bounded wire cursor
 * (wire.h) that every parser reads with, address parsing and formatting
 * (addr.h), and JSON configuration files with line-numbered errors
 * (cfg.h).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/addr.h"
#include "common/cfg.h"
#include "common/hash.h"
#include "common/keycount.h"
#include "common/wire.h"

/* ---- wire.h */

static void
test_cur_reads_big_endian(void **state)
{
	static const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xaa, 0xbb};
	struct cur c = cur_make(b, sizeof(b));
	uint8_t two[2];

	assert_int_equal(cur_u8(&c), 0x01);
	assert_int_equal(cur_u16(&c), 0x0203);
	assert_int_equal(cur_u32(&c), 0x04050607u);
	cur_copy(&c, two, 2);
	assert_memory_equal(two, "\xaa\xbb", 2);
	assert_false(c.err);
	assert_int_equal(c.left, 0);
}

static void
test_cur_overrun_sticks(void **state)
{
	static const uint8_t b[] = {0x01, 0x02, 0x03};
	struct cur c = cur_make(b, sizeof(b));
	uint8_t out[4] = {9, 9, 9, 9};

	assert_int_equal(cur_u32(&c), 0); /* 3 bytes left: fails */
	assert_true(c.err);
	assert_int_equal(c.left, 0);
	/* Once failed, even a read that would fit fails. */
	assert_int_equal(cur_u8(&c), 0);
	assert_null(cur_bytes(&c, 0 + 1));
	cur_copy(&c, out, 4);
	assert_memory_equal(out, "\0\0\0\0", 4);
	assert_true(c.err);
}

static void
test_cur_sub(void **state)
{
	static const uint8_t b[] = {0x00, 0x02, 0xde, 0xad, 0xff};
	struct cur c = cur_make(b, sizeof(b)), s, bad;

	s = cur_sub(&c, cur_u16(&c));
	assert_int_equal(cur_u16(&s), 0xdead);
	assert_int_equal(cur_u8(&s), 0); /* the sub-cursor ends where its length says */
	assert_true(s.err);
	assert_false(c.err); /* ... without failing its parent */
	assert_int_equal(cur_u8(&c), 0xff);
	bad = cur_sub(&c, 1);
	assert_true(bad.err);
	assert_true(c.err);
}

static void
test_wcur(void **state)
{
	uint8_t buf[8];
	struct wcur w = wcur_make(buf, sizeof(buf));
	uint8_t *len;

	w_u8(&w, 0x11);
	len = w_reserve(&w, 2);
	w_u32(&w, 0x22334455);
	w_put16_at(len, 4);
	assert_false(w.err);
	assert_int_equal(w_len(&w), 7);
	assert_memory_equal(buf, "\x11\x00\x04\x22\x33\x44\x55", 7);
	w_u16(&w, 0x6677); /* one byte left */
	assert_true(w.err);
	w_u8(&w, 0x88); /* stays failed */
	assert_true(w.err);
	assert_int_equal(w_len(&w), 7);
}

/* ---- addr.h */

static void
test_addr_v4(void **state)
{
	char buf[ADDR_STRLEN];
	uint32_t a;

	assert_true(addr_parse_v4("192.0.2.10", &a));
	assert_int_equal(a, 0xc000020au);
	assert_string_equal(addr_fmt_v4(a, buf), "192.0.2.10");
	assert_false(addr_parse_v4("192.0.2", &a));
	assert_false(addr_parse_v4("192.0.2.256", &a));
	assert_false(addr_parse_v4("fd00::1", &a));
	assert_false(addr_parse_v4("", &a));
}

static void
test_addr_prefix4(void **state)
{
	uint32_t a;
	unsigned plen;

	assert_true(addr_parse_prefix4("192.0.2.0/24", &a, &plen));
	assert_int_equal(a, 0xc0000200u);
	assert_int_equal(plen, 24);
	assert_true(addr_parse_prefix4("0.0.0.0/0", &a, &plen));
	assert_int_equal(plen, 0);
	assert_false(addr_parse_prefix4("192.0.2.1/24", &a, &plen)); /* host bits */
	assert_false(addr_parse_prefix4("192.0.2.0/33", &a, &plen));
	assert_false(addr_parse_prefix4("192.0.2.0/", &a, &plen));
	assert_false(addr_parse_prefix4("192.0.2.0", &a, &plen));
	assert_int_equal(addr_mask4(0), 0);
	assert_int_equal(addr_mask4(24), 0xffffff00u);
	assert_int_equal(addr_mask4(32), 0xffffffffu);
}

static void
test_addr_v6_and_mapped(void **state)
{
	struct in6_addr a, p;
	char buf[ADDR_STRLEN];
	unsigned plen;
	uint32_t v4;

	assert_true(addr_parse_v6("fd00:d57::11", &a));
	assert_string_equal(addr_fmt_v6(&a, buf), "fd00:d57::11");
	assert_false(addr_parse_v6("192.0.2.1", &a));
	assert_true(addr_parse_prefix6("fd00:d57::/64", &p, &plen));
	assert_int_equal(plen, 64);
	assert_true(addr_v6_in_prefix(&a, &p, plen));
	assert_true(addr_parse_v6("fd00:d58::11", &a));
	assert_false(addr_v6_in_prefix(&a, &p, plen));
	assert_false(addr_parse_prefix6("fd00:d57::1/64", &p, &plen));

	/* seed 001 appendix A: the address travels as ::ffff:a.b.c.d */
	addr_v4_mapped(&a, 0xc000020au);
	assert_string_equal(addr_fmt_v6(&a, buf), "::ffff:192.0.2.10");
	assert_true(addr_is_v4_mapped(&a, &v4));
	assert_int_equal(v4, 0xc000020au);
	assert_true(addr_parse_v6("fd00::ffff:c000:20a", &a));
	assert_false(addr_is_v4_mapped(&a, &v4));
}

static void
test_addr_endpoint(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[ADDR_STRLEN];

	assert_true(addr_parse_endpoint("[fd00:d57::1]:3654", 3653, &ss, &len));
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_string_equal(addr_fmt_sockaddr((struct sockaddr *)&ss, buf), "[fd00:d57::1]:3654");
	assert_true(addr_parse_endpoint("fd00:d57::1", 3653, &ss, &len));
	assert_string_equal(addr_fmt_sockaddr((struct sockaddr *)&ss, buf), "[fd00:d57::1]:3653");
	assert_true(addr_parse_endpoint("[::]", 3653, &ss, &len));
	assert_string_equal(addr_fmt_sockaddr((struct sockaddr *)&ss, buf), "[::]:3653");
	assert_true(addr_parse_endpoint("198.51.100.1:80", 3653, &ss, &len));
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_string_equal(addr_fmt_sockaddr((struct sockaddr *)&ss, buf), "198.51.100.1:80");
	assert_true(addr_parse_endpoint("198.51.100.1", 3653, &ss, &len));
	assert_string_equal(addr_fmt_sockaddr((struct sockaddr *)&ss, buf), "198.51.100.1:3653");

	assert_false(addr_parse_endpoint("[fd00:d57::1]:0", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("[fd00:d57::1]:65536", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("[fd00:d57::1]x", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("[fd00:d57::1", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("198.51.100.1:", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("198.51.100.1:-1", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("example.org:80", 3653, &ss, &len));
	assert_false(addr_parse_endpoint("", 3653, &ss, &len));
}

/* ---- cfg.h */

/* Everything cfg_print_errors() says, as one string (caller frees). */
static char *
errors_of(const struct cfg *c)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	cfg_print_errors(c, f);
	fclose(f);
	return text;
}

static const char doc[] = "{\n"
                          "  \"lifetime\": 3600,\n"
                          "  \"name\": \"lab\",\n"
                          "  \"debug\": true,\n"
                          "  \"pools\": [\n"
                          "    { \"prefix\": \"192.0.2.0/33\" }\n"
                          "  ],\n"
                          "  \"mode\": \"learn\"\n"
                          "}\n";

static void
test_cfg_getters(void **state)
{
	static const char *const modes[] = {"server", "learn", NULL};
	struct cfg *c;
	char err[256];
	const char *s;
	long long n;
	bool b;
	size_t len;
	int mode;

	c = cfg_load_buffer("t.json", doc, strlen(doc), err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(cfg_path(c), "t.json");
	assert_true(cfg_int(c, "/lifetime", true, 0, 1, 86400, &n));
	assert_int_equal(n, 3600);
	assert_true(cfg_int(c, "/quarantine", false, 300, 0, 86400, &n));
	assert_int_equal(n, 300);
	assert_true(cfg_str(c, "/name", true, NULL, &s));
	assert_string_equal(s, "lab");
	assert_true(cfg_bool(c, "/debug", false, false, &b));
	assert_true(b);
	assert_true(cfg_array(c, "/pools", true, &len));
	assert_int_equal(len, 1);
	assert_true(cfg_str(c, "/pools/0/prefix", true, NULL, &s));
	assert_string_equal(s, "192.0.2.0/33");
	assert_true(cfg_enum(c, "/mode", true, 0, modes, &mode));
	assert_int_equal(mode, 1);
	assert_int_equal(cfg_nerrors(c), 0);
	assert_int_equal(cfg_line(c, "/pools/0/prefix"), 6);
	assert_int_equal(cfg_line(c, "/mode"), 8);
	assert_int_equal(cfg_line(c, "/pools/0/missing"), 6); /* nearest ancestor */
	cfg_free(c);
}

static void
test_cfg_errors_name_file_and_line(void **state)
{
	static const char *const allowed[] = {"lifetime", "name", "debug", "pools", NULL};
	static const char *const modes[] = {"server", NULL};
	struct cfg *c;
	char err[256], *text;
	const char *s;
	long long n;
	int mode;

	c = cfg_load_buffer("t.json", doc, strlen(doc), err, sizeof(err));
	assert_non_null(c);
	assert_false(cfg_int(c, "/lifetime", true, 0, 1, 60, &n)); /* out of range */
	assert_false(cfg_int(c, "/name", true, 0, 0, 10, &n));     /* mistyped */
	assert_false(cfg_str(c, "/database", true, NULL, &s));     /* missing */
	assert_false(cfg_enum(c, "/mode", true, 0, modes, &mode)); /* not a choice */
	assert_false(cfg_check_keys(c, "", allowed));              /* "mode" is unknown */
	cfg_error(c, "/pools/0/prefix", "%s is not a prefix", "192.0.2.0/33");
	assert_int_equal(cfg_nerrors(c), 6);
	text = errors_of(c);
	assert_non_null(strstr(text, "t.json:2: /lifetime: "));
	assert_non_null(strstr(text, "t.json:3: /name: "));
	assert_non_null(strstr(text, "/database: "));
	assert_non_null(strstr(text, "t.json:8: /mode: "));
	assert_non_null(strstr(text, "mode"));
	assert_non_null(strstr(text, "t.json:6: /pools/0/prefix: 192.0.2.0/33 is not a prefix\n"));
	free(text);
	cfg_free(c);
}

static void
test_cfg_syntax_error(void **state)
{
	static const char bad[] = "{\n  \"a\": 1,\n  \"b\": \n}\n";
	static const char dup[] = "{ \"a\": 1, \"a\": 2 }";
	char err[256];

	err[0] = '\0';
	assert_null(cfg_load_buffer("bad.json", bad, strlen(bad), err, sizeof(err)));
	assert_non_null(strstr(err, "bad.json:4"));
	assert_null(cfg_load_buffer("dup.json", dup, strlen(dup), err, sizeof(err)));
	assert_non_null(strstr(err, "dup.json:"));
	assert_null(cfg_load("/nonexistent/x.json", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/x.json"));
}

static void
test_cfg_dump_is_normalized(void **state)
{
	static const char in[] = "{\"b\":1,\"a\":{\"d\":[1,2],\"c\":\"x\"}}";
	struct cfg *c, *again;
	char err[256], *text = NULL;
	size_t n = 0;
	FILE *f;

	c = cfg_load_buffer("t.json", in, strlen(in), err, sizeof(err));
	assert_non_null(c);
	f = open_memstream(&text, &n);
	cfg_dump(c, f);
	fclose(f);
	assert_true(strstr(text, "\"a\"") < strstr(text, "\"b\"")); /* sorted keys */
	again = cfg_load_buffer("again.json", text, strlen(text), err, sizeof(err));
	assert_non_null(again);
	assert_true(json_equal(cfg_root(c), cfg_root(again)));
	cfg_free(again);
	cfg_free(c);
	free(text);
}

/*
 * keycount against a plain array: random increments and decrements of
 * keys chosen to collide in the table (same low bits), with growth and
 * backward-shift deletions, must always agree.
 */
static void
test_keycount_matches_reference(void **state)
{
	enum { NKEYS = 3000 };
	static uint32_t ref[NKEYS];
	struct keycount kc = {0};
	unsigned seed = 12345;

	for (int round = 0; round < 200000; round++) {
		unsigned k;
		uint64_t key;

		seed = seed * 1103515245u + 12345u;
		k = (seed >> 8) % NKEYS;
		key = (uint64_t)k << 40 | 0x1234;
		if ((seed >> 4) % 3 == 0 && ref[k] > 0) {
			assert_int_equal(keycount_add(&kc, key, -1), 0);
			ref[k]--;
		} else {
			assert_int_equal(keycount_add(&kc, key, 1), 0);
			ref[k]++;
		}
		if (round % 997 == 0)
			for (unsigned j = 0; j < NKEYS; j++)
				assert_int_equal(keycount_get(&kc, (uint64_t)j << 40 | 0x1234),
				                 ref[j]);
	}
	/* Everything back to zero empties the table. */
	for (unsigned j = 0; j < NKEYS; j++)
		assert_int_equal(keycount_add(&kc, (uint64_t)j << 40 | 0x1234, -(int)ref[j]), 0);
	assert_int_equal(kc.used, 0);
	keycount_free(&kc);
}

/* hash.h's core against the published SipHash-2-4 vectors (key 00..0f, message 00..len-1). */
static void
test_siphash_vectors(void **state)
{
	uint8_t msg[16];
	uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;

	(void)state;
	for (int i = 0; i < 16; i++)
		msg[i] = (uint8_t)i;
	assert_true(siphash(k0, k1, msg, 0, 2, 4) == 0x726fdb47dd0e0e31ull);
	assert_true(siphash(k0, k1, msg, 1, 2, 4) == 0x74f839c593dc67fdull);
	assert_true(siphash(k0, k1, msg, 15, 2, 4) == 0xa129ca6149be45e5ull);
	/* The keyed 1-3 variant depends on the key. */
	hash_set_key(1, 2);
	uint64_t a = hash_str("tsp:alice");
	hash_set_key(3, 4);
	assert_true(hash_str("tsp:alice") != a);
}

/*
 * Buckets of 2^16 filled with 2^16 keys: with a good hash about e^-1 of
 * them stay empty and the fullest holds about 8. Sequential /64s, the
 * /64s of one site (only the top bits of the little-endian key differ),
 * sequential identities and DUIDs that differ in one byte must all look
 * like that; the multiplicative hash this replaced put each /64 of a
 * site in one of a few buckets.
 */
static void
check_spread(const uint64_t *h, size_t n)
{
	static uint16_t count[1 << 16];
	size_t empty = 0, max = 0;

	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++)
		count[h[i] & 0xffff]++;
	for (size_t i = 0; i < 1 << 16; i++) {
		if (!count[i])
			empty++;
		if (count[i] > max)
			max = count[i];
	}
	assert_in_range(empty, 22000, 26300); /* 65536 / e = 24109 */
	assert_in_range(max, 3, 16);
}

static void
test_hash_spread(void **state)
{
	static uint64_t h[1 << 16];
	struct in6_addr a;
	char id[64];

	(void)state;
	hash_set_key(0x0123456789abcdefull, 0xfedcba9876543210ull);
	inet_pton(AF_INET6, "2001:db8::", &a);
	for (size_t i = 0; i < 1 << 16; i++) { /* 2001:db8:0:i::/64, sequential */
		a.s6_addr[6] = (uint8_t)(i >> 8);
		a.s6_addr[7] = (uint8_t)i;
		h[i] = hash_u64(keycount_prefix64(&a));
	}
	check_spread(h, 1 << 16);
	for (size_t i = 0; i < 1 << 16; i++) { /* clustered: 16 sites of 4096 /64s each */
		a.s6_addr[4] = (uint8_t)(0x10 * (i >> 12));
		a.s6_addr[6] = (uint8_t)((i >> 8) & 0x0f);
		a.s6_addr[7] = (uint8_t)i;
		h[i] = hash_u64(keycount_prefix64(&a));
	}
	check_spread(h, 1 << 16);
	for (size_t i = 0; i < 1 << 16; i++) {
		snprintf(id, sizeof(id), "tsp:user%zu", i);
		h[i] = hash_str(id);
	}
	check_spread(h, 1 << 16);
	for (size_t i = 0; i < 1 << 16; i++) { /* DUID-LLT + IAID differing in two bytes */
		uint8_t duid[18] = {0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d, 0x02, 0, 0, 0, 0, 0};

		duid[12] = (uint8_t)(i >> 8);
		duid[13] = (uint8_t)i;
		h[i] = hash_bytes(duid, sizeof(duid));
	}
	check_spread(h, 1 << 16);
}

/* 100,000 clustered /64s go into a keycount in bounded time (quadratic before). */
static void
test_keycount_clustered(void **state)
{
	struct keycount kc = {0};
	struct in6_addr a;

	(void)state;
	inet_pton(AF_INET6, "2001:db8:aa00::", &a);
	for (uint32_t i = 0; i < 100000; i++) {
		a.s6_addr[5] = (uint8_t)(i >> 16);
		a.s6_addr[6] = (uint8_t)(i >> 8);
		a.s6_addr[7] = (uint8_t)i;
		assert_int_equal(keycount_add(&kc, keycount_prefix64(&a), 1), 0);
	}
	assert_int_equal(kc.used, 100000);
	for (uint32_t i = 0; i < 100000; i += 2) {
		a.s6_addr[5] = (uint8_t)(i >> 16);
		a.s6_addr[6] = (uint8_t)(i >> 8);
		a.s6_addr[7] = (uint8_t)i;
		assert_int_equal(keycount_get(&kc, keycount_prefix64(&a)), 1);
		assert_int_equal(keycount_add(&kc, keycount_prefix64(&a), -1), 0);
	}
	assert_int_equal(kc.used, 50000);
	keycount_free(&kc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cur_reads_big_endian),
	    cmocka_unit_test(test_cur_overrun_sticks),
	    cmocka_unit_test(test_cur_sub),
	    cmocka_unit_test(test_wcur),
	    cmocka_unit_test(test_addr_v4),
	    cmocka_unit_test(test_addr_prefix4),
	    cmocka_unit_test(test_addr_v6_and_mapped),
	    cmocka_unit_test(test_addr_endpoint),
	    cmocka_unit_test(test_cfg_getters),
	    cmocka_unit_test(test_cfg_errors_name_file_and_line),
	    cmocka_unit_test(test_cfg_syntax_error),
	    cmocka_unit_test(test_cfg_dump_is_normalized),
	    cmocka_unit_test(test_keycount_matches_reference),
	    cmocka_unit_test(test_siphash_vectors),
	    cmocka_unit_test(test_hash_spread),
	    cmocka_unit_test(test_keycount_clustered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
