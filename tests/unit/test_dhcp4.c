/*
 * Unit tests of the DHCPv4 codec (src/dhcp4): header and cookie checks,
 * option framing, option overload, RFC 3396 concatenation across
 * instances and areas, splitting of long options, and the INFORM and
 * DISCOVER requests a DOTS client sends.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dhcp4/dhcp4.h"

/* A reply header: op 2, xid 0x01020304, yiaddr 192.0.2.10, cookie. */
static size_t
reply_hdr(uint8_t *b, size_t cap)
{
	memset(b, 0, cap);
	b[0] = 2;
	b[1] = 1;
	b[2] = 6;
	b[4] = 1;
	b[5] = 2;
	b[6] = 3;
	b[7] = 4;
	b[16] = 192;
	b[17] = 0;
	b[18] = 2;
	b[19] = 10;
	b[236] = 0x63;
	b[237] = 0x82;
	b[238] = 0x53;
	b[239] = 0x63;
	return 240;
}

static void
test_parse_basic(void **state)
{
	uint8_t b[400], v[64];
	size_t n = reply_hdr(b, sizeof(b)), vl;
	struct d4_msg m;

	(void)state;
	b[n++] = D4_OPT_MSG_TYPE;
	b[n++] = 1;
	b[n++] = D4_ACK;
	b[n++] = D4_OPT_PAD;
	b[n++] = 15;
	b[n++] = 3;
	memcpy(b + n, "lab", 3);
	n += 3;
	b[n++] = D4_OPT_END;
	assert_int_equal(d4_parse(b, n, &m), 0);
	assert_int_equal(m.op, 2);
	assert_int_equal(m.xid, 0x01020304);
	assert_int_equal(m.yiaddr, 0xc000020a);
	assert_int_equal(m.msgtype, D4_ACK);
	assert_int_equal(d4_opt_get(&m, 15, v, sizeof(v), &vl), 0);
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "lab", 3);
	assert_int_equal(d4_opt_get(&m, 147, v, sizeof(v), &vl), -ENOENT);
	assert_int_equal(d4_opt_get(&m, 15, v, 2, &vl), -EMSGSIZE);
}

static void
test_parse_bad(void **state)
{
	uint8_t b[400];
	size_t n = reply_hdr(b, sizeof(b));
	struct d4_msg m;

	(void)state;
	assert_int_equal(d4_parse(b, 100, &m), -EBADMSG);
	b[236] = 0;
	assert_int_equal(d4_parse(b, n, &m), -EPROTO);
	b[236] = 0x63;
	b[0] = 9;
	assert_int_equal(d4_parse(b, n, &m), -EPROTO);
	b[0] = 2;
	/* An option whose length runs past the end of the message. */
	b[n] = 147;
	b[n + 1] = 10;
	b[n + 2] = 1;
	assert_int_equal(d4_parse(b, n + 3, &m), -EBADMSG);
	/* A code with no length byte. */
	assert_int_equal(d4_parse(b, n + 1, &m), -EBADMSG);
	/* Overload value out of range. */
	b[n] = D4_OPT_OVERLOAD;
	b[n + 1] = 1;
	b[n + 2] = 7;
	b[n + 3] = D4_OPT_END;
	assert_int_equal(d4_parse(b, n + 4, &m), -EBADMSG);
}

static void
test_concat(void **state)
{
	uint8_t b[600], v[600], want[300];
	size_t n = reply_hdr(b, sizeof(b)), vl;
	struct d4_msg m;

	(void)state;
	/* RFC 3396 §6: 148 split in the options field, continued in file and sname. */
	b[n++] = D4_OPT_OVERLOAD;
	b[n++] = 1;
	b[n++] = 3;
	b[n++] = 148;
	b[n++] = 4;
	memcpy(b + n, "\xc0\x00\x02\x01", 4);
	n += 4;
	b[n++] = 15;
	b[n++] = 1;
	b[n++] = 'x';
	b[n++] = 148;
	b[n++] = 4;
	memcpy(b + n, "\xc0\x00\x02\x02", 4);
	n += 4;
	b[n++] = D4_OPT_END;
	/* file field at 108, sname at 44. */
	memcpy(b + 108, "\x94\x04\xc0\x00\x02\x03\xff", 7);
	memcpy(b + 44, "\x94\x04\xc0\x00\x02\x04\xff", 7);
	assert_int_equal(d4_parse(b, n, &m), 0);
	assert_int_equal(m.overload, 3);
	assert_int_equal(d4_opt_count(&m, 148), 4);
	assert_int_equal(d4_opt_get(&m, 148, v, sizeof(v), &vl), 0);
	assert_int_equal(vl, 16);
	memcpy(want, "\xc0\x00\x02\x01\xc0\x00\x02\x02\xc0\x00\x02\x03\xc0\x00\x02\x04", 16);
	assert_memory_equal(v, want, 16);
	/* Without overload the file field is not read. */
	b[240] = 200;
	assert_int_equal(d4_parse(b, n, &m), 0);
	assert_int_equal(d4_opt_count(&m, 148), 2);
	/* A broken file field makes an overloaded message malformed. */
	b[240] = D4_OPT_OVERLOAD;
	memcpy(b + 108, "\x94\x7f", 2);
	memset(b + 110, 0, 5);
	assert_int_equal(d4_parse(b, n, &m), -EBADMSG);
}

static void
test_put_split(void **state)
{
	uint8_t buf[1024], val[600], v[700];
	struct wcur w = wcur_make(buf, sizeof(buf));
	uint8_t pkt[1500];
	size_t n = reply_hdr(pkt, sizeof(pkt)), vl;
	struct d4_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)i;
	d4_opt_put(&w, 147, val, sizeof(val));
	assert_false(w.err);
	/* 600 = 255 + 255 + 90: three instances. */
	assert_int_equal(w_len(&w), 606);
	assert_int_equal(buf[0], 147);
	assert_int_equal(buf[1], 255);
	assert_int_equal(buf[258], 255);
	assert_int_equal(buf[515], 90);
	memcpy(pkt + n, buf, w_len(&w));
	n += w_len(&w);
	pkt[n++] = D4_OPT_END;
	assert_int_equal(d4_parse(pkt, n, &m), 0);
	assert_int_equal(d4_opt_count(&m, 147), 3);
	assert_int_equal(d4_opt_get(&m, 147, v, sizeof(v), &vl), 0);
	assert_int_equal(vl, sizeof(val));
	assert_memory_equal(v, val, sizeof(val));
	/* An empty value is one instance of length 0. */
	w = wcur_make(buf, sizeof(buf));
	d4_opt_put(&w, 80, NULL, 0);
	assert_int_equal(w_len(&w), 2);
}

static void
test_build(void **state)
{
	static const uint8_t prl[] = {147, 148, 213, 15};
	struct d4_req r = {.type = D4_INFORM,
	                   .xid = 0xdeadbeef,
	                   .ciaddr = 0xc0000205,
	                   .chaddr = {2, 0, 0, 0, 0, 1},
	                   .prl = prl,
	                   .nprl = sizeof(prl),
	                   .max_size = 1500};
	uint8_t buf[600], v[16];
	size_t len, vl;
	struct d4_msg m;

	(void)state;
	assert_int_equal(d4_build(&r, buf, sizeof(buf), &len), 0);
	assert_true(len >= 300);
	assert_int_equal(d4_parse(buf, len, &m), 0);
	assert_int_equal(m.op, 1);
	assert_int_equal(m.xid, 0xdeadbeef);
	assert_int_equal(m.ciaddr, 0xc0000205);
	assert_int_equal(m.msgtype, D4_INFORM);
	assert_int_equal(d4_opt_get(&m, D4_OPT_PRL, v, sizeof(v), &vl), 0);
	assert_int_equal(vl, 4);
	assert_memory_equal(v, prl, 4);
	assert_int_equal(d4_opt_get(&m, D4_OPT_CLIENT_ID, v, sizeof(v), &vl), 0);
	assert_int_equal(vl, 7);
	assert_int_equal(v[0], 1);

	r.type = D4_DISCOVER;
	r.broadcast = true;
	assert_int_equal(d4_build(&r, buf, sizeof(buf), &len), 0);
	assert_int_equal(d4_parse(buf, len, &m), 0);
	assert_int_equal(m.ciaddr, 0); /* DISCOVER has no ciaddr */
	assert_int_equal(m.flags, 0x8000);
	assert_int_equal(m.msgtype, D4_DISCOVER);

	assert_int_equal(d4_build(&r, buf, 200, &len), -EMSGSIZE);
	r.type = D4_ACK;
	assert_int_equal(d4_build(&r, buf, sizeof(buf), &len), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_basic), cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_concat),      cmocka_unit_test(test_put_split),
	    cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
