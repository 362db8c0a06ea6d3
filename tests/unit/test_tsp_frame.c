/*
 * The TSP framer (src/tsp/tsp_frame.c) at every edge: input cut byte by
 * byte, CRLF and bare LF, NUL padding, limits, malformed Content-length
 * headers; status lines and the line-phase decisions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "tsp/tsp_int.h"

static const struct tsp_limits lim = {.line_max = 64, .content_max = 100, .xml_depth = 8};

static struct tsp_frame
next(bool content, const char *buf, size_t len, size_t *consumed)
{
	struct tsp_frame f;

	tsp_frame_next(&lim, content, buf, len, &f, consumed);
	return f;
}

static void
test_lines(void **state)
{
	struct tsp_frame f;
	size_t c;
	static const char in[] = "VERSION=2.0.0\r\nAUTHENTICATE ANONYMOUS\n\0\0\0rest";

	(void)state;
	f = next(false, in, sizeof(in) - 1, &c);
	assert_int_equal(f.kind, TSP_FRAME_LINE);
	assert_int_equal(f.len, 13);
	assert_memory_equal(f.data, "VERSION=2.0.0", 13);
	assert_int_equal(c, 15);
	f = next(false, in + c, sizeof(in) - 1 - c, &c);
	assert_int_equal(f.kind, TSP_FRAME_LINE);
	assert_int_equal(f.len, 22);
	/* NULs after the line are skipped; "rest" has no end yet */
	f = next(false, in + 15 + 23, sizeof(in) - 1 - 38, &c);
	assert_int_equal(f.kind, TSP_FRAME_NEED_MORE);
	assert_int_equal(c, 0);
	/* an empty line is a line (the client's answer to rspauth) */
	f = next(false, "\r\n", 2, &c);
	assert_int_equal(f.kind, TSP_FRAME_LINE);
	assert_int_equal(f.len, 0);
	assert_int_equal(c, 2);
}

static void
test_byte_by_byte(void **state)
{
	static const char in[] = "Content-length: 11\r\n200 Success";
	struct tsp_frame f;
	size_t c;

	(void)state;
	for (size_t n = 0; n < sizeof(in) - 1; n++) {
		f = next(true, in, n, &c);
		assert_int_equal(f.kind, TSP_FRAME_NEED_MORE);
		assert_int_equal(c, 0);
	}
	f = next(true, in, sizeof(in) - 1, &c);
	assert_int_equal(f.kind, TSP_FRAME_CONTENT);
	assert_int_equal(f.len, 11);
	assert_memory_equal(f.data, "200 Success", 11);
	assert_int_equal(c, sizeof(in) - 1);
	/* lines too, split anywhere */
	for (size_t n = 0; n < 5; n++)
		assert_int_equal(next(false, "OK\r\n", n < 3 ? n : 3, &c).kind,
		                 n < 3 ? TSP_FRAME_NEED_MORE : TSP_FRAME_NEED_MORE);
	assert_int_equal(next(false, "OK\r\n", 4, &c).kind, TSP_FRAME_LINE);
}

static void
test_content_headers(void **state)
{
	struct tsp_frame f;
	size_t c;

	(void)state;
	f = next(true, "CONTENT-LENGTH:3\nabc", 20, &c);
	assert_int_equal(f.kind, TSP_FRAME_CONTENT);
	assert_int_equal(f.len, 3);
	f = next(true, "\r\n\0Content-length: 2 \r\nhi", 25, &c);
	assert_int_equal(f.kind, TSP_FRAME_CONTENT);
	assert_memory_equal(f.data, "hi", 2);
	assert_int_equal(c, 25);
	f = next(true, "Content-length: 101\r\n", 21, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	assert_non_null(strstr(f.error, "limit"));
	f = next(true, "Content-length: 99999999999999\r\n", 32, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	f = next(true, "Content-length: -1\r\n", 20, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	f = next(true, "Content-length: 1x\r\n", 20, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	f = next(true, "Content-length:\r\n", 17, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	f = next(true, "GET / HTTP/1.0\r\n", 16, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	assert_non_null(f.error);
	f = next(true, "Content-length: 0\r\n", 19, &c);
	assert_int_equal(f.kind, TSP_FRAME_CONTENT);
	assert_int_equal(f.len, 0);
}

static void
test_limits(void **state)
{
	char buf[300];
	struct tsp_frame f;
	size_t c;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	f = next(false, buf, 65, &c); /* 64 + room for a CR */
	assert_int_equal(f.kind, TSP_FRAME_NEED_MORE);
	f = next(false, buf, 66, &c);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	buf[64] = '\n';
	assert_int_equal(next(false, buf, 65, &c).kind, TSP_FRAME_LINE);
	buf[64] = 'a';
	buf[65] = '\n';
	assert_int_equal(next(false, buf, 66, &c).kind, TSP_FRAME_ERROR);
	memset(buf, 0, sizeof(buf));
	f = next(false, buf, sizeof(buf), &c); /* NUL padding is bounded too */
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
	assert_int_equal(next(false, "a\0b\n", 4, &c).kind, TSP_FRAME_ERROR);
	assert_int_equal(next(false, "a\rb\n", 4, &c).kind, TSP_FRAME_ERROR);
	assert_true(tsp_frame_window(&lim) >= 2 * 64 + 2 + 100);
}

static void
test_status(void **state)
{
	const char *xml;
	size_t n;
	int code;

	(void)state;
	assert_int_equal(tsp_split_status("200 Success\r\n<tunnel/>", 22, &code, &xml, &n), 0);
	assert_int_equal(code, 200);
	assert_int_equal(n, 9);
	assert_memory_equal(xml, "<tunnel/>", 9);
	assert_int_equal(tsp_split_status("306 Address pool exhausted", 26, &code, &xml, &n), 0);
	assert_int_equal(code, 306);
	assert_int_equal(n, 0);
	assert_int_equal(tsp_split_status("1000 Redirect\n<x/>", 18, &code, &xml, &n), 0);
	assert_int_equal(code, 1000);
	assert_int_equal(tsp_split_status("<tunnel/>", 9, &code, &xml, &n), -EINVAL);
	assert_int_equal(tsp_split_status("20x", 3, &code, &xml, &n), -EINVAL);
	assert_string_equal(tsp_status_text(302), "Unsupported client version");
	assert_string_equal(tsp_status_text(300), "Authentication failed");
	assert_string_equal(tsp_status_text(1001), "Redirect");
}

static void
test_line_decisions(void **state)
{
	char v[16], m[32];
	int code;

	(void)state;
	assert_int_equal(tsp_parse_version("VERSION=2.0.1", 13, v, sizeof(v)), 0);
	assert_string_equal(v, "2.0.1");
	assert_true(tsp_version_supported(v));
	assert_true(tsp_version_supported("1.0"));
	assert_false(tsp_version_supported("3.0"));
	assert_false(tsp_version_supported("2.0.3"));
	assert_int_equal(tsp_parse_version("HELLO", 5, v, sizeof(v)), -EINVAL);
	assert_int_equal(tsp_parse_version("VERSION=", 8, v, sizeof(v)), -EINVAL);
	assert_int_equal(tsp_parse_authenticate("AUTHENTICATE digest-md5", 23, m, sizeof(m)), 0);
	assert_string_equal(m, "DIGEST-MD5");
	assert_int_equal(tsp_parse_authenticate("AUTHENTICATE ", 13, m, sizeof(m)), -EINVAL);
	assert_int_equal(tsp_parse_authenticate("AUTHENTICATE A B", 16, m, sizeof(m)), -EINVAL);
	{
		static const char cap[] = "CAPABILITY TUNNEL=V4V6 AUTH=DIGEST-MD5 AUTH=ANONYMOUS";

		assert_true(tsp_capability_offers(cap, strlen(cap), "ANONYMOUS"));
		assert_true(tsp_capability_offers(cap, strlen(cap), "DIGEST-MD5"));
		assert_false(tsp_capability_offers(cap, strlen(cap), "PLAIN"));
	}
	assert_false(tsp_capability_offers("CAPABILITY TUNNEL=V4V6 AUTH=DIGEST-MD5", 38, "DIGEST"));
	assert_false(tsp_capability_offers("300 Authentication failed", 25, "PLAIN"));
	assert_true(tsp_line_is_status("OK Authentication successful", 28, &code));
	assert_int_equal(code, 200);
	assert_true(tsp_line_is_status("302 Unsupported client version", 30, &code));
	assert_int_equal(code, 302);
	assert_false(tsp_line_is_status("cnNwYXV0aD0=", 12, &code));
	assert_false(tsp_line_is_status("", 0, &code));
	assert_false(tsp_line_is_status("1234", 4, &code));
}

/* PLAIN's raw initial response: NULs inside the line are data. */
static void
test_raw_line(void **state)
{
	static const char in[] = "\0\0alice\0pw\r\nnext";
	struct tsp_frame f;
	size_t used;

	(void)state;
	tsp_frame_raw_line(NULL, in, sizeof(in) - 1, &f, &used);
	assert_int_equal(f.kind, TSP_FRAME_LINE);
	assert_int_equal(f.len, 8);
	assert_memory_equal(f.data, "alice\0pw", 8);
	assert_int_equal(used, 12);
	tsp_frame_raw_line(NULL, in, 10, &f, &used);
	assert_int_equal(f.kind, TSP_FRAME_NEED_MORE);
	tsp_frame_raw_line(NULL, "a\rb\r\n", 5, &f, &used);
	assert_int_equal(f.kind, TSP_FRAME_ERROR);
}

/* RFC 5572 §3: 0xF, a 28-bit sequence number, a timestamp, the message. */
static void
test_udp_header(void **state)
{
	static const unsigned char d[] = {0xf0, 0x00, 0x00, 0xf0, 0x00, 0x00, 0x01, 0x2c, 'V', '='};
	struct tsp_udp_hdr h = {0};
	const char *msg;
	size_t n;
	uint8_t out[TSP_UDP_HDR_LEN];

	(void)state;
	assert_int_equal(tsp_udp_parse(d, sizeof(d), &h, &msg, &n), 0);
	assert_int_equal(h.seq, 0xf0);
	assert_int_equal(h.timestamp, 300);
	assert_int_equal(n, 2);
	assert_memory_equal(msg, "V=", 2);
	tsp_udp_header(&h, out);
	assert_memory_equal(out, d, 8);
	/* header only: an empty message (tspc's "read the next answer") */
	assert_int_equal(tsp_udp_parse(d, 8, &h, &msg, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tsp_udp_parse(d, 7, &h, &msg, &n), -EMSGSIZE);
	assert_int_equal(tsp_udp_parse("\x70\0\0\0\0\0\0\0", 8, &h, &msg, &n), -EPROTO);
	h.seq = 0x1fffffff; /* the top nibble is always 0xF on the wire */
	tsp_udp_header(&h, out);
	assert_int_equal(out[0], 0xff);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_raw_line),        cmocka_unit_test(test_udp_header),
	    cmocka_unit_test(test_lines),           cmocka_unit_test(test_byte_by_byte),
	    cmocka_unit_test(test_content_headers), cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_status),          cmocka_unit_test(test_line_decisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
