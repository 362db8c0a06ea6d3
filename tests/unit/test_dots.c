/*
 * Unit tests of the pure half of DOTS discovery (src/dots): name codecs,
 * the DHCPv6 Information-request and Reply, the DHCPv4 options and
 * RFC 3396, the client rules of RFC 8973 §5.1.3/§5.2.3, S-NAPTR
 * selection, RFC 2782 SRV ordering, the DNS-SD/mDNS message reader, the
 * final order of the list and the back-off.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dhcp6/d6.h"
#include "dots/dots.h"

/* ---- helpers ---- */

static size_t
put_name(uint8_t *b, const char *name)
{
	int len = d6_name_encode(name, b, 256);

	assert_true(len > 0);
	return (size_t)len;
}

static size_t
d6_opt(uint8_t *b, uint16_t code, const void *v, uint16_t len)
{
	b[0] = (uint8_t)(code >> 8);
	b[1] = (uint8_t)code;
	b[2] = (uint8_t)(len >> 8);
	b[3] = (uint8_t)len;
	memcpy(b + 4, v, len);
	return 4u + len;
}

static uint32_t
rnd_zero(void *ctx)
{
	(void)ctx;
	return 0;
}

/* A counter used as a deterministic "random" source. */
static uint32_t
rnd_seq(void *ctx)
{
	uint32_t *s = ctx;

	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* ---- names ---- */

static void
test_name_codec(void **state)
{
	uint8_t b[400];
	char out[DOTS_NAME_MAX];
	size_t len, used;
	static const uint8_t fig3[] = "\x04"
	                              "dots"
	                              "\x07"
	                              "example"
	                              "\x03"
	                              "com";

	(void)state;
	/* Seed 003 figure 3: "dots.example.com." */
	len = (size_t)d6_name_encode("dots.example.com.", b, sizeof(b));
	assert_int_equal(len, sizeof(fig3));
	assert_memory_equal(b, fig3, sizeof(fig3));
	assert_int_equal(d6_name_decode_n(b, len, out, sizeof(out), &used), 0);
	assert_string_equal(out, "dots.example.com");
	assert_int_equal(used, len);
	/* No root label. */
	assert_int_equal(d6_name_decode_n(b, len - 1, out, sizeof(out), &used), -EBADMSG);
	/* Root alone. */
	assert_int_equal(d6_name_decode_n((const uint8_t *)"", 1, out, sizeof(out), &used),
	                 -EBADMSG);
	/* A compression pointer is not allowed in DHCP. */
	assert_int_equal(d6_name_decode_n((const uint8_t *)"\xc0\x00", 2, out, sizeof(out), &used),
	                 -EBADMSG);
	/* A label with a space. */
	assert_int_equal(d6_name_decode_n((const uint8_t *)"\x03"
	                                                   "a b",
	                                  5, out, sizeof(out), &used),
	                 -EBADMSG);
	/* Over 255 bytes of wire. */
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 5; i++) {
		b[i * 64] = 63;
		memset(b + i * 64 + 1, 'a', 63);
	}
	assert_int_equal(d6_name_decode_n(b, 5 * 64 + 1, out, sizeof(out), &used), -EBADMSG);
	assert_true(dots_name_valid("a.example"));
	assert_true(dots_name_valid("a.example."));
	assert_false(dots_name_valid("a..example"));
	assert_false(dots_name_valid("."));
	assert_false(dots_name_valid(""));
	assert_false(dots_name_valid("a/b"));
	assert_true(dots_name_eq("A.Example.", "a.example"));
	assert_false(dots_name_eq("a.example", "a.example.net"));
}

static void
test_names_tables(void **state)
{
	enum dots_transport t;
	enum dots_method m;

	(void)state;
	assert_string_equal(dots_dnssd_service(DOTS_SIGNAL_UDP, 0), "_dots-signal._udp");
	assert_string_equal(dots_dnssd_service(DOTS_SIGNAL_UDP, 1), "_dots._signal._udp");
	assert_string_equal(dots_dnssd_service(DOTS_DATA_TCP, 0), "_dots-data._tcp");
	assert_string_equal(dots_dnssd_service(DOTS_DATA_TCP, 1), "_dots._data._tcp");
	assert_null(dots_dnssd_service(DOTS_CALL_HOME_UDP, 1));
	assert_true(dots_transport_parse("SIGNAL.TCP", &t));
	assert_int_equal(t, DOTS_SIGNAL_TCP);
	assert_false(dots_transport_parse("signal.sctp", &t));
	assert_true(dots_method_parse("dhcp", &m));
	assert_int_equal(m, DOTS_M_DHCP);
	assert_true(dots_method_parse("snaptr", &m));
	assert_int_equal(m, DOTS_M_SNAPTR);
	assert_int_equal(dots_default_port(DOTS_SIGNAL_UDP), 4646);
	assert_int_equal(dots_default_port(DOTS_DATA_TCP), 443);
}

static void
test_addr_discard(void **state)
{
	struct dots_addr a;

	(void)state;
	assert_true(dots_addr_parse("224.0.0.251", &a));
	assert_true(dots_addr_discard(&a));
	assert_true(dots_addr_parse("127.0.0.1", &a));
	assert_true(dots_addr_discard(&a));
	assert_true(dots_addr_parse("192.0.2.1", &a));
	assert_false(dots_addr_discard(&a));
	assert_true(dots_addr_parse("ff02::fb", &a));
	assert_true(dots_addr_discard(&a));
	assert_true(dots_addr_parse("::1", &a));
	assert_true(dots_addr_discard(&a));
	assert_true(dots_addr_parse("::ffff:127.0.0.1", &a));
	assert_true(dots_addr_discard(&a));
	assert_true(dots_addr_parse("::ffff:192.0.2.9", &a));
	assert_false(dots_addr_discard(&a));
	assert_true(dots_addr_parse("2001:db8::1", &a));
	assert_false(dots_addr_discard(&a));
	assert_false(dots_addr_parse("2001:db8::1::", &a));
}

/* ---- DHCPv6 ---- */

static void
test_d6_inforeq(void **state)
{
	static const uint8_t duid[] = {0, 3, 0, 1, 2, 0, 0, 0, 0, 1};
	static const uint8_t want[] = {11, 0x12, 0x34, 0x56, 0, 1, 0, 10, 0, 3, 0, 1,
	                               2,  0,    0,    0,    0, 1, 0, 6,  0, 6, 0, 141,
	                               0,  142,  0,    57,   0, 8, 0, 2,  0, 0};
	uint8_t buf[128];
	size_t len;

	(void)state;
	assert_int_equal(
	    dots_d6_build_inforeq(0xab123456, duid, sizeof(duid), 0, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(dots_d6_build_inforeq(1, duid, sizeof(duid), 0, buf, 20, &len), -EMSGSIZE);
	assert_int_equal(dots_d6_build_inforeq(1, duid, 0, 0, buf, sizeof(buf), &len), -EINVAL);
}

static size_t
d6_reply(uint8_t *b, uint32_t xid)
{
	b[0] = DOTS_D6_REPLY;
	b[1] = (uint8_t)(xid >> 16);
	b[2] = (uint8_t)(xid >> 8);
	b[3] = (uint8_t)xid;
	return 4;
}

static void
test_d6_reply_both(void **state)
{
	uint8_t b[512], name[256], addrs[48];
	size_t n = d6_reply(b, 0x123456), nl;
	struct dots_dhcp_info info;
	struct dots_list l;
	bool resolve;
	char ab[INET6_ADDRSTRLEN];

	(void)state;
	nl = put_name(name, "dots.example.net");
	/* Two names in one option: the first is used (RFC 8973 §5.1.3). */
	nl += put_name(name + nl, "other.example.net");
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_RI, name, (uint16_t)nl);
	inet_pton(AF_INET6, "2001:db8::1", addrs);
	inet_pton(AF_INET6, "ff02::1", addrs + 16); /* multicast: discarded */
	inet_pton(AF_INET6, "2001:db8::2", addrs + 32);
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_ADDRESS, addrs, 48);
	/* A second instance of 142: ignored. */
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_ADDRESS, addrs + 32, 16);
	nl = put_name(name, "access.example.net");
	n += d6_opt(b + n, DOTS_D6_OPT_ACCESS_DOMAIN, name, (uint16_t)nl);
	assert_int_equal(dots_d6_parse_reply(b, n, 0xff123456, &info), 0);
	assert_true(info.have_ri);
	assert_string_equal(info.ri, "dots.example.net");
	assert_int_equal(info.st.extra_name, 1);
	assert_int_equal(info.naddr, 2);
	assert_int_equal(info.st.discarded_address, 1);
	assert_int_equal(info.st.extra_instance, 1);
	assert_true(info.have_domain);
	assert_string_equal(info.domain, "access.example.net");

	dots_list_init(&l);
	assert_int_equal(dots_dhcp_servers(&info, "eth0", AF_INET6, &l, &resolve), 0);
	assert_false(resolve);
	/* Two addresses x three transports; the name is the identifier of each. */
	assert_int_equal(l.n, 6);
	assert_string_equal(l.v[0].ri, "dots.example.net");
	assert_string_equal(dots_addr_fmt(&l.v[0].addr, ab), "2001:db8::1");
	assert_int_equal(l.v[0].transport, DOTS_SIGNAL_UDP);
	assert_int_equal(l.v[0].port, 4646);
	assert_int_equal(l.v[2].transport, DOTS_DATA_TCP);
	assert_int_equal(l.v[2].port, 443);
	assert_string_equal(dots_addr_fmt(&l.v[3].addr, ab), "2001:db8::2");
	assert_string_equal(l.v[0].ifname, "eth0");
	dots_list_free(&l);

	/* Wrong transaction id, wrong type. */
	assert_int_equal(dots_d6_parse_reply(b, n, 0x123457, &info), -EPROTO);
	b[0] = 2;
	assert_int_equal(dots_d6_parse_reply(b, n, 0x123456, &info), -EPROTO);
	b[0] = DOTS_D6_REPLY;
	/* Truncated option framing. */
	assert_int_equal(dots_d6_parse_reply(b, n - 1, 0x123456, &info), -EBADMSG);
}

static void
test_d6_reply_rules(void **state)
{
	uint8_t b[512], name[256], addrs[32];
	size_t n, nl;
	struct dots_dhcp_info info;
	struct dots_list l;
	bool resolve;

	(void)state;
	dots_list_init(&l);
	/* A name alone: resolve it. */
	n = d6_reply(b, 7);
	nl = put_name(name, "dots.example.net");
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_RI, name, (uint16_t)nl);
	/* A second RI instance: ignored. */
	nl = put_name(name, "second.example.net");
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_RI, name, (uint16_t)nl);
	assert_int_equal(dots_d6_parse_reply(b, n, 7, &info), 0);
	assert_string_equal(info.ri, "dots.example.net");
	assert_int_equal(info.st.extra_instance, 1);
	assert_int_equal(dots_dhcp_servers(&info, "eth0", AF_INET6, &l, &resolve), 0);
	assert_true(resolve);
	assert_int_equal(l.n, 0);

	/* Addresses alone: each is its own identifier. */
	n = d6_reply(b, 7);
	inet_pton(AF_INET6, "2001:db8::5", addrs);
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_ADDRESS, addrs, 16);
	assert_int_equal(dots_d6_parse_reply(b, n, 7, &info), 0);
	assert_false(info.have_ri);
	assert_int_equal(dots_dhcp_servers(&info, "eth0", AF_INET6, &l, &resolve), 0);
	assert_false(resolve);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].ri, "2001:db8::5");

	/* Malformed: length not a multiple of 16, RI with a bad label. */
	n = d6_reply(b, 7);
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_ADDRESS, addrs, 15);
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_RI,
	            "\x03"
	            "a b\x00",
	            5);
	assert_int_equal(dots_d6_parse_reply(b, n, 7, &info), 0);
	assert_int_equal(info.st.bad_address, 1);
	assert_int_equal(info.st.bad_ri, 1);
	assert_false(info.have_ri);
	assert_int_equal(info.naddr, 0);

	/* Name plus an address option whose every address is discarded: never resolve the name. */
	n = d6_reply(b, 7);
	nl = put_name(name, "dots.example.net");
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_RI, name, (uint16_t)nl);
	inet_pton(AF_INET6, "::1", addrs);
	n += d6_opt(b + n, DOTS_D6_OPT_DOTS_ADDRESS, addrs, 16);
	assert_int_equal(dots_d6_parse_reply(b, n, 7, &info), 0);
	assert_int_equal(dots_dhcp_servers(&info, "eth0", AF_INET6, &l, &resolve), 0);
	assert_false(resolve);
	assert_int_equal(info.st.discarded_address, 1);
	dots_list_free(&l);
}

/* ---- DHCPv4 ---- */

static size_t
d4_reply(uint8_t *b, size_t cap)
{
	memset(b, 0, cap);
	b[0] = 2;
	b[236] = 0x63;
	b[237] = 0x82;
	b[238] = 0x53;
	b[239] = 0x63;
	b[240] = D4_OPT_MSG_TYPE;
	b[241] = 1;
	b[242] = D4_ACK;
	return 243;
}

static void
test_d4_options(void **state)
{
	uint8_t b[1500], name[256], val[400];
	struct wcur w;
	size_t n = d4_reply(b, sizeof(b)), nl;
	struct d4_msg m;
	struct dots_dhcp_info info;
	struct dots_list l;
	bool resolve;
	char ab[INET6_ADDRSTRLEN];

	(void)state;
	w = wcur_make(b + n, sizeof(b) - n);
	nl = put_name(name, "dots.example.net");
	d4_opt_put(&w, D4_OPT_DOTS_RI, name, nl);
	/* 70 addresses (280 bytes) need two instances (RFC 3396). */
	for (int i = 0; i < 70; i++) {
		val[i * 4] = 198;
		val[i * 4 + 1] = 51;
		val[i * 4 + 2] = 100;
		val[i * 4 + 3] = (uint8_t)(i + 1);
	}
	val[4 * 3] = 127; /* the 4th is loopback: discarded */
	d4_opt_put(&w, D4_OPT_DOTS_ADDRESS, val, 280);
	nl = put_name(name, "access.example.net");
	d4_opt_put(&w, D4_OPT_ACCESS_DOMAIN, name, nl);
	d4_opt_put(&w, D4_OPT_DOMAIN_NAME, "plain.example.", 14);
	w_u8(&w, D4_OPT_END);
	assert_false(w.err);
	n += w_len(&w);
	assert_int_equal(d4_parse(b, n, &m), 0);
	assert_int_equal(d4_opt_count(&m, D4_OPT_DOTS_ADDRESS), 2);
	dots_d4_info(&m, DOTS_D4_RFC8973, &info);
	assert_string_equal(info.ri, "dots.example.net");
	assert_int_equal(info.st.discarded_address, 1);
	assert_int_equal(info.st.truncated_addrs, 69 - DOTS_MAX_ADDRS);
	assert_int_equal(info.naddr, DOTS_MAX_ADDRS);
	assert_string_equal(dots_addr_fmt(&info.addr[3], ab), "198.51.100.5");
	/* Access domain wins over option 15. */
	assert_string_equal(info.domain, "access.example.net");
	assert_true(info.domain_is_access);
	dots_list_init(&l);
	assert_int_equal(dots_dhcp_servers(&info, "eth0", AF_INET, &l, &resolve), 0);
	assert_int_equal(l.n, 3 * DOTS_MAX_ADDRS);
	assert_string_equal(l.v[0].ri, "dots.example.net");
	dots_list_free(&l);
}

static void
test_d4_domain_and_bad(void **state)
{
	uint8_t b[600];
	struct wcur w;
	size_t n = d4_reply(b, sizeof(b));
	struct d4_msg m;
	struct dots_dhcp_info info;

	(void)state;
	w = wcur_make(b + n, sizeof(b) - n);
	d4_opt_put(&w, D4_OPT_DOMAIN_NAME, "plain.example.\0", 15);
	d4_opt_put(&w, D4_OPT_DOTS_ADDRESS, "\xc0\x00\x02\x01\x01", 5); /* not 4N */
	d4_opt_put(&w, D4_OPT_ACCESS_DOMAIN,
	           "\x05"
	           "bad",
	           4); /* label runs out */
	w_u8(&w, D4_OPT_END);
	n += w_len(&w);
	assert_int_equal(d4_parse(b, n, &m), 0);
	dots_d4_info(&m, DOTS_D4_RFC8973, &info);
	assert_true(info.have_domain);
	assert_false(info.domain_is_access);
	assert_string_equal(info.domain, "plain.example");
	assert_int_equal(info.st.bad_address, 1);
	assert_int_equal(info.st.bad_domain, 1);
	assert_int_equal(info.naddr, 0);
	assert_false(info.have_address_option);
}

static void
test_d4_draft_lists(void **state)
{
	uint8_t b[600];
	struct wcur w;
	size_t n = d4_reply(b, sizeof(b));
	struct d4_msg m;
	struct dots_dhcp_info info;
	struct dots_list l;
	bool resolve;
	/* Seed 003 §9.2.2: two lists, two servers. */
	static const uint8_t lists[] = {8, 192, 0, 2, 1, 192, 0, 2, 2, 4, 198, 51, 100, 7};

	(void)state;
	w = wcur_make(b + n, sizeof(b) - n);
	d4_opt_put(&w, D4_OPT_DOTS_ADDRESS, lists, sizeof(lists));
	w_u8(&w, D4_OPT_END);
	n += w_len(&w);
	assert_int_equal(d4_parse(b, n, &m), 0);
	dots_d4_info(&m, DOTS_D4_DRAFT, &info);
	assert_int_equal(info.naddr, 3);
	assert_int_equal(info.group[0], 0);
	assert_int_equal(info.group[1], 0);
	assert_int_equal(info.group[2], 1);
	dots_list_init(&l);
	assert_int_equal(dots_dhcp_servers(&info, "", AF_INET, &l, &resolve), 0);
	assert_string_equal(l.v[6].via, "option 148 list 2");
	dots_list_free(&l);
	/* The same bytes are not a valid RFC 8973 option (14 is not 4N). */
	dots_d4_info(&m, DOTS_D4_RFC8973, &info);
	assert_int_equal(info.st.bad_address, 1);
	assert_int_equal(info.naddr, 0);
	/* A list length that is not 4N. */
	n = d4_reply(b, sizeof(b));
	w = wcur_make(b + n, sizeof(b) - n);
	d4_opt_put(&w, D4_OPT_DOTS_ADDRESS, "\x03\xc0\x00\x02\x01", 5);
	w_u8(&w, D4_OPT_END);
	n += w_len(&w);
	assert_int_equal(d4_parse(b, n, &m), 0);
	dots_d4_info(&m, DOTS_D4_DRAFT, &info);
	assert_int_equal(info.st.bad_address, 1);
	assert_int_equal(info.naddr, 0);
}

/* ---- S-NAPTR and SRV ---- */

static void
test_naptr_select(void **state)
{
	/* Seed 003 §6 example, plus records a client must skip. */
	struct dots_naptr in[] = {
	    {300, 10, "", "DOTS:data.tcp", "", "data.example.net"},
	    {100, 10, "", "DOTS:signal.udp", "", "signal.example.net"},
	    {200, 10, "", "DOTS:signal.tcp", "", "signal.example.net"},
	    {50, 10, "S", "SIP:d2u", "", "_sip._udp.example.net"},
	    {60, 10, "U", "DOTS:signal.udp", "!.*!x!", "x.example.net"},
	    {70, 10, "X", "DOTS:signal.udp", "", "x.example.net"},
	    {100, 5, "s", "dots:signal.udp:signal.tcp", "", "_dots-signal._udp.example.net"},
	};
	struct dots_naptr_pick out[16];
	struct dots_naptr_stats st = {0};
	size_t k;

	(void)state;
	k = dots_naptr_select(in, 7, 7, out, 16, &st);
	assert_int_equal(k, 5);
	assert_int_equal(st.other_service, 1);
	assert_int_equal(st.bad_record, 2);
	/* order 100 pref 5 first, both of its tags. */
	assert_int_equal(out[0].order, 100);
	assert_int_equal(out[0].pref, 5);
	assert_int_equal(out[0].flag, 'S');
	assert_int_equal(out[0].transport, DOTS_SIGNAL_UDP);
	assert_int_equal(out[1].transport, DOTS_SIGNAL_TCP);
	assert_int_equal(out[1].pref, 5);
	assert_string_equal(out[2].target, "signal.example.net");
	assert_int_equal(out[2].flag, 0);
	assert_int_equal(out[3].order, 200);
	assert_int_equal(out[4].transport, DOTS_DATA_TCP);
	/* Only the data channel wanted. */
	k = dots_naptr_select(in, 7, 1u << DOTS_DATA_TCP, out, 16, &st);
	assert_int_equal(k, 1);
	assert_string_equal(out[0].target, "data.example.net");
	/* The cap holds. */
	k = dots_naptr_select(in, 7, 7, out, 2, &st);
	assert_int_equal(k, 2);
}

static void
test_srv_order(void **state)
{
	struct dots_srv v[] = {
	    {20, 0, 1, "c.example"}, {10, 0, 2, "a.example"}, {10, 100, 3, "b.example"},
	    {30, 5, 4, "d.example"}, {30, 0, 5, "e.example"},
	};
	struct dots_srv one[] = {{0, 0, 0, "."}};
	size_t n;
	uint32_t seed = 1;
	unsigned first_b = 0, first_heavy = 0;

	(void)state;
	/* With a draw of 0 the zero-weight record placed first wins (RFC 2782). */
	n = dots_srv_order(v, 5, rnd_zero, NULL);
	assert_int_equal(n, 5);
	assert_string_equal(v[0].target, "a.example");
	assert_string_equal(v[1].target, "b.example");
	assert_string_equal(v[2].target, "c.example");
	assert_string_equal(v[3].target, "e.example");
	assert_string_equal(v[4].target, "d.example");
	/* "." alone: not offered. */
	assert_int_equal(dots_srv_order(one, 1, rnd_zero, NULL), 0);
	/* Weighted: weight 100 against weight 0 wins almost always. */
	for (int i = 0; i < 1000; i++) {
		struct dots_srv w[] = {{10, 0, 2, "a.example"}, {10, 100, 3, "b.example"}};

		dots_srv_order(w, 2, rnd_seq, &seed);
		first_b += strcmp(w[0].target, "b.example") == 0;
	}
	assert_true(first_b > 950);
	/*
	 * Weights 3:1: RFC 2782 draws 0..sum inclusive, so the light record
	 * wins on {0, 1} and the heavy on {2, 3, 4}: 60 % first places.
	 */
	for (int i = 0; i < 4000; i++) {
		struct dots_srv w[] = {{1, 1, 2, "light"}, {1, 3, 3, "heavy"}};

		dots_srv_order(w, 2, rnd_seq, &seed);
		first_heavy += strcmp(w[0].target, "heavy") == 0;
	}
	assert_true(first_heavy > 2200 && first_heavy < 2600);
}

/* ---- DNS messages ---- */

/* An mDNS response: PTR in the answers, SRV and AAAA/A in the additionals, compressed. */
static size_t
mdns_response(uint8_t *b)
{
	size_t n = 0, svc, inst, host, nl;

	memset(b, 0, 512);
	b[2] = 0x84; /* response, authoritative */
	b[7] = 1;    /* ancount */
	b[11] = 3;   /* arcount */
	n = 12;
	svc = n;
	nl = put_name(b + n, "_dots-signal._udp.local");
	n += nl;
	memcpy(b + n, "\x00\x0c\x00\x01\x00\x00\x11\x94", 8);
	n += 8;
	b[n++] = 0;
	b[n++] = 6;
	inst = n;
	b[n++] = 3;
	memcpy(b + n, "gw1", 3);
	n += 3;
	b[n++] = (uint8_t)(0xc0 | (svc >> 8));
	b[n++] = (uint8_t)svc;
	/* SRV for the instance, pointer to it. */
	b[n++] = (uint8_t)(0xc0 | (inst >> 8));
	b[n++] = (uint8_t)inst;
	memcpy(b + n, "\x00\x21\x80\x01\x00\x00\x00\x78", 8); /* cache-flush bit set */
	n += 8;
	b[n++] = 0;
	b[n++] = 6 + 11;
	memcpy(b + n, "\x00\x00\x00\x00\x12\x26", 6); /* port 4646 */
	n += 6;
	host = n;
	n += put_name(b + n, "gw1.local"); /* 11 bytes: 3gw15local0 */
	/* AAAA for the host. */
	b[n++] = (uint8_t)(0xc0 | (host >> 8));
	b[n++] = (uint8_t)host;
	memcpy(b + n, "\x00\x1c\x80\x01\x00\x00\x00\x78\x00\x10", 10);
	n += 10;
	inet_pton(AF_INET6, "fd00:d57::53", b + n);
	n += 16;
	/* A for the host. */
	b[n++] = (uint8_t)(0xc0 | (host >> 8));
	b[n++] = (uint8_t)host;
	memcpy(b + n, "\x00\x01\x80\x01\x00\x00\x00\x78\x00\x04", 10);
	n += 10;
	inet_pton(AF_INET, "192.0.2.53", b + n);
	n += 4;
	return n;
}

static void
test_dns_parse_mdns(void **state)
{
	uint8_t b[512];
	size_t n = mdns_response(b), inc;
	struct dots_dns_msg h;
	struct dots_rr rr[8];
	struct dots_dns_stats st = {0};
	struct dots_list l;
	char ab[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(dots_dns_parse(b, n, &h, rr, 8, &st), 0);
	assert_true(h.response);
	assert_int_equal(h.nrr, 4);
	assert_int_equal(rr[0].type, DOTS_T_PTR);
	assert_string_equal(rr[0].name, "_dots-signal._udp.local");
	assert_string_equal(rr[0].ptr, "gw1._dots-signal._udp.local");
	assert_int_equal(rr[1].type, DOTS_T_SRV);
	assert_int_equal(rr[1].srv.port, 4646);
	assert_string_equal(rr[1].srv.target, "gw1.local");
	dots_list_init(&l);
	assert_int_equal(dots_dnssd_collect(rr, h.nrr, "_dots-signal._udp.local", DOTS_SIGNAL_UDP,
	                                    DOTS_M_MDNS, "veth0", AF_INET6, rnd_zero, NULL, &l,
	                                    &inc),
	                 1);
	assert_int_equal(inc, 0);
	assert_string_equal(dots_addr_fmt(&l.v[0].addr, ab), "fd00:d57::53");
	assert_int_equal(l.v[0].port, 4646);
	assert_string_equal(l.v[0].ri, "gw1.local");
	assert_string_equal(l.v[0].via, "gw1._dots-signal._udp.local");
	assert_int_equal(dots_dnssd_collect(rr, h.nrr, "_dots-signal._udp.local", DOTS_SIGNAL_UDP,
	                                    DOTS_M_MDNS, "veth0", AF_UNSPEC, rnd_zero, NULL, &l,
	                                    &inc),
	                 2);
	/* Another service name finds nothing. */
	assert_int_equal(dots_dnssd_collect(rr, h.nrr, "_dots-data._tcp.local", DOTS_DATA_TCP,
	                                    DOTS_M_MDNS, "veth0", AF_INET6, rnd_zero, NULL, &l,
	                                    &inc),
	                 0);
	dots_list_free(&l);
	/* Without the SRV the instance is incomplete. */
	assert_int_equal(dots_dns_parse(b, n, &h, rr, 1, &st), 0);
	assert_int_equal(st.truncated, 3);
	dots_list_init(&l);
	assert_int_equal(dots_dnssd_collect(rr, h.nrr, "_dots-signal._udp.local", DOTS_SIGNAL_UDP,
	                                    DOTS_M_MDNS, "veth0", AF_INET6, rnd_zero, NULL, &l,
	                                    &inc),
	                 0);
	assert_int_equal(inc, 1);
	dots_list_free(&l);
}

static void
test_dns_parse_bad(void **state)
{
	uint8_t b[512];
	size_t n = mdns_response(b);
	struct dots_dns_msg h;
	struct dots_rr rr[8];
	struct dots_dns_stats st = {0};

	(void)state;
	/* Truncated anywhere: never a crash, an error or fewer records. */
	for (size_t cut = 0; cut < n; cut++) {
		int rc = dots_dns_parse(b, cut, &h, rr, 8, &st);

		assert_true(rc == 0 || rc == -EBADMSG);
		if (cut < 12)
			assert_int_equal(rc, -EBADMSG);
	}
	/* A pointer to itself (a loop). */
	memset(b, 0, 64);
	b[7] = 1;
	b[12] = 0xc0;
	b[13] = 12;
	assert_int_equal(dots_dns_parse(b, 30, &h, rr, 8, &st), -EBADMSG);
	assert_true(st.bad_name > 0);
	/* A forward pointer. */
	b[13] = 20;
	assert_int_equal(dots_dns_parse(b, 30, &h, rr, 8, &st), -EBADMSG);
	/* An A record with rdlength 5. */
	memset(b, 0, 64);
	b[7] = 1;
	memcpy(b + 13, "\x00\x01\x00\x01\x00\x00\x00\x01\x00\x05", 10);
	assert_int_equal(dots_dns_parse(b, 28, &h, rr, 8, &st), -EBADMSG);
	/* A question count far beyond the message. */
	memset(b, 0, 64);
	b[4] = 0xff;
	b[5] = 0xff;
	assert_int_equal(dots_dns_parse(b, 64, &h, rr, 8, &st), -EBADMSG);
}

static void
test_dns_query(void **state)
{
	uint8_t b[512];
	size_t n;
	struct dots_dns_msg h;
	struct dots_rr rr[1];
	struct dots_dns_stats st = {0};

	(void)state;
	assert_int_equal(dots_dns_build_query(0, "_dots-signal._udp.local", DOTS_T_PTR, true, false,
	                                      b, sizeof(b), &n),
	                 0);
	assert_int_equal(n, 12 + 25 + 4);
	assert_int_equal(b[5], 1);
	assert_int_equal(b[n - 2], 0x80); /* QU */
	assert_int_equal(b[n - 1], 1);
	assert_int_equal(dots_dns_parse(b, n, &h, rr, 1, &st), 0);
	assert_false(h.response);
	assert_int_equal(h.nrr, 0);
	assert_int_equal(dots_dns_build_query(0, "a..b", DOTS_T_PTR, false, true, b, sizeof(b), &n),
	                 -EINVAL);
	assert_int_equal(dots_dns_build_query(0, "a.b", DOTS_T_PTR, false, true, b, 14, &n),
	                 -EMSGSIZE);
}

/* ---- list and back-off ---- */

static void
test_list_order(void **state)
{
	struct dots_list l;
	struct dots_server s = {0};

	(void)state;
	dots_list_init(&l);
	s.addr.family = AF_INET6;
	s.port = 4646;
	/* Appended out of method order; DHCP first within its method. */
	s.method = DOTS_M_ANYCAST;
	s.addr.v6.s6_addr[15] = 9;
	assert_int_equal(dots_list_add(&l, &s), 0);
	s.method = DOTS_M_DHCP;
	s.addr.v6.s6_addr[15] = 2;
	assert_int_equal(dots_list_add(&l, &s), 0);
	s.addr.v6.s6_addr[15] = 1;
	assert_int_equal(dots_list_add(&l, &s), 0);
	s.method = DOTS_M_EXPLICIT;
	s.addr.v6.s6_addr[15] = 3;
	assert_int_equal(dots_list_add(&l, &s), 0);
	/* Same endpoint as the DHCP one, found by S-NAPTR: a duplicate. */
	s.method = DOTS_M_SNAPTR;
	s.addr.v6.s6_addr[15] = 2;
	assert_int_equal(dots_list_add(&l, &s), 0);
	/* Same address, other transport: kept. */
	s.transport = DOTS_SIGNAL_TCP;
	assert_int_equal(dots_list_add(&l, &s), 0);
	dots_list_finish(&l);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.v[0].method, DOTS_M_EXPLICIT);
	assert_int_equal(l.v[1].method, DOTS_M_DHCP);
	assert_int_equal(l.v[1].addr.v6.s6_addr[15], 2);
	assert_int_equal(l.v[2].addr.v6.s6_addr[15], 1);
	assert_int_equal(l.v[3].method, DOTS_M_SNAPTR);
	assert_int_equal(l.v[3].transport, DOTS_SIGNAL_TCP);
	assert_int_equal(l.v[4].method, DOTS_M_ANYCAST);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].order, i + 1);
	dots_list_free(&l);
}

static void
test_backoff(void **state)
{
	struct dots_backoff b = {0};

	(void)state;
	assert_true(dots_backoff_ready(&b, 0));
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_TIMEOUT, 0), 1000);
	assert_false(dots_backoff_ready(&b, 999));
	assert_true(dots_backoff_ready(&b, 1000));
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_TIMEOUT, 1000), 2000);
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_TIMEOUT, 3000), 4000);
	for (int i = 0; i < 20; i++)
		dots_backoff_fail(&b, DOTS_FAIL_TIMEOUT, 0);
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_TIMEOUT, 0), 64000);
	/* A different error starts its own schedule, much longer for NXDOMAIN. */
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_NXDOMAIN, 0), 300000);
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_NXDOMAIN, 0), 600000);
	for (int i = 0; i < 20; i++)
		dots_backoff_fail(&b, DOTS_FAIL_NXDOMAIN, 0);
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_NXDOMAIN, 0), 3600000);
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_SERVFAIL, 0), 5000);
	assert_int_equal(dots_backoff_fail(&b, DOTS_FAIL_NONE, 0), 0);
	assert_true(dots_backoff_ready(&b, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_codec),     cmocka_unit_test(test_names_tables),
	    cmocka_unit_test(test_addr_discard),   cmocka_unit_test(test_d6_inforeq),
	    cmocka_unit_test(test_d6_reply_both),  cmocka_unit_test(test_d6_reply_rules),
	    cmocka_unit_test(test_d4_options),     cmocka_unit_test(test_d4_domain_and_bad),
	    cmocka_unit_test(test_d4_draft_lists), cmocka_unit_test(test_naptr_select),
	    cmocka_unit_test(test_srv_order),      cmocka_unit_test(test_dns_parse_mdns),
	    cmocka_unit_test(test_dns_parse_bad),  cmocka_unit_test(test_dns_query),
	    cmocka_unit_test(test_list_order),     cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
