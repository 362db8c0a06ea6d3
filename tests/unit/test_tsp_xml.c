/*
 * The <tunnel> codec (src/tsp/tsp_xml.c): the DSTM profile's examples
 * (seed 001 C §4 as DESIGN §3.1 restates them), unknown elements, the
 * depth bomb, entities and DTDs refused, bad addresses with their error
 * class, and format → parse round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/addr.h"
#include "tsp/tsp_int.h"

static int
parse(const char *xml, struct tsp_tunnel *t, enum tsp_xml_errclass *cls)
{
	char err[128];

	return tsp_xml_parse_ex(xml, strlen(xml), 16, t, err, sizeof(err), cls);
}

static void
test_create_example(void **state)
{
	static const char xml[] = "<tunnel action=\"create\" type=\"v4v6\"><client>"
	                          "<address type=\"ipv6\">fd00:d57::11</address>"
	                          "<address type=\"ipv6\">fe80::211:22ff:fe33:4455</address>"
	                          "<address type=\"ipv4\">192.0.2.10</address>"
	                          "</client></tunnel>\r\n";
	struct tsp_tunnel t;
	char a[ADDR_STRLEN];

	(void)state;
	assert_int_equal(parse(xml, &t, NULL), 0);
	assert_int_equal(t.action, TSP_ACTION_CREATE);
	assert_string_equal(t.type, "v4v6");
	assert_true(t.client.present && t.client.has_v6 && t.client.has_v6ll && t.client.has_v4);
	assert_false(t.server.present);
	assert_string_equal(addr_fmt_v6(&t.client.v6, a), "fd00:d57::11");
	assert_string_equal(addr_fmt_v6(&t.client.v6ll, a), "fe80::211:22ff:fe33:4455");
	assert_string_equal(addr_fmt_v4(t.client.v4, a), "192.0.2.10");
}

static void
test_info_example(void **state)
{
	static const char xml[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<tunnel action=\"info\" type=\"v4v6\" lifetime=\"3600\">\n"
	    "  <server><address type=\"ipv4\">198.51.100.1</address>\n"
	    "          <address type=\"ipv6\">fd00:d57::2</address></server>\n"
	    "  <client><address type=\"ipv4\"> 192.0.2.10 </address>\n"
	    "          <address type=\"ipv6\">fd00:d57::11</address>\n"
	    "          <ports start=\"1024\" end=\"2047\"/>\n"
	    "          <keepalive interval=\"30\"><address "
	    "type=\"ipv6\">fd00::9</address></keepalive>\n"
	    "          <router><prefix length=\"64\">fd00:1::</prefix></router>\n"
	    "          <future-extension a=\"b\"><deep><er/></deep></future-extension>\n"
	    "  </client>\n"
	    "  <whatever/>\n"
	    "</tunnel>";
	struct tsp_tunnel t;
	char a[ADDR_STRLEN];

	(void)state;
	assert_int_equal(parse(xml, &t, NULL), 0);
	assert_int_equal(t.action, TSP_ACTION_INFO);
	assert_int_equal(t.lifetime, 3600);
	assert_string_equal(addr_fmt_v4(t.server.v4, a), "198.51.100.1");
	assert_string_equal(addr_fmt_v6(&t.server.v6, a), "fd00:d57::2");
	assert_string_equal(addr_fmt_v4(t.client.v4, a), "192.0.2.10");
	/* the keepalive's address is not the client's */
	assert_string_equal(addr_fmt_v6(&t.client.v6, a), "fd00:d57::11");
	assert_true(t.client.has_ports);
	assert_int_equal(t.client.port_lo, 1024);
	assert_int_equal(t.client.port_hi, 2047);
	assert_true(t.has_keepalive);
	assert_int_equal(t.keepalive_interval, 30);
	assert_true(t.has_router);
	assert_int_equal(t.router_prefix_len, 64);
}

static void
test_delete_and_brokers(void **state)
{
	struct tsp_tunnel t;

	(void)state;
	assert_int_equal(parse("<tunnel action=\"delete\" type=\"v4v6\"><server/><client>"
	                       "<address type=\"dn\">c1.example</address></client></tunnel>",
	                       &t, NULL),
	                 0);
	assert_int_equal(t.action, TSP_ACTION_DELETE);
	assert_true(t.client.has_dn);
	assert_string_equal(t.client.dn, "c1.example");
	assert_int_equal(parse("<tunnel action=\"info\" type=\"v4v6\"><broker>"
	                       "<address type=\"ipv6\">fd00:d57::3</address>"
	                       "<address type=\"dn\">b.example</address>"
	                       "<address type=\"ipv4\">192.0.2.7</address></broker></tunnel>",
	                       &t, NULL),
	                 0);
	assert_int_equal(t.nbrokers, 3);
	assert_string_equal(t.brokers[0], "fd00:d57::3");
	assert_string_equal(t.brokers[1], "b.example");
	assert_string_equal(t.brokers[2], "192.0.2.7");
}

static void
test_bad_documents(void **state)
{
	struct tsp_tunnel t;
	enum tsp_xml_errclass cls;
	char bomb[4096];
	size_t n = 0;

	(void)state;
	assert_int_equal(parse("", &t, &cls), -EINVAL);
	assert_int_equal(parse("<tunnel action=\"create\"", &t, &cls), -EINVAL);
	assert_int_equal(cls, TSP_XML_ERR_SYNTAX);
	assert_int_equal(parse("<tunnel/>", &t, &cls), -EINVAL); /* no action */
	assert_int_equal(parse("<tunnel action=\"explode\"/>", &t, &cls), -EINVAL);
	assert_int_equal(parse("<other action=\"create\"/>", &t, &cls), -EINVAL);
	assert_int_equal(parse("<tunnel action=\"info\" lifetime=\"-5\"/>", &t, &cls), -EINVAL);
	assert_int_equal(parse("<tunnel action=\"info\" type=\"aaaaaaaaaaaaaaaaaaaa\"/>", &t, &cls),
	                 -EINVAL);
	assert_int_equal(parse("<tunnel action=\"create\"><client><address type=\"ipv6\">"
	                       "fd00::1::2</address></client></tunnel>",
	                       &t, &cls),
	                 -EINVAL);
	assert_int_equal(cls, TSP_XML_ERR_IPV6);
	assert_int_equal(parse("<tunnel action=\"create\"><client><address type=\"ipv4\">"
	                       "192.0.2.300</address></client></tunnel>",
	                       &t, &cls),
	                 -EINVAL);
	assert_int_equal(cls, TSP_XML_ERR_IPV4);
	assert_int_equal(parse("<tunnel action=\"create\"><client><ports start=\"9\" end=\"2\"/>"
	                       "</client></tunnel>",
	                       &t, &cls),
	                 -EINVAL);
	/* depth bomb */
	n += (size_t)sprintf(bomb, "<tunnel action=\"info\">");
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(bomb + n, "<a>");
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(bomb + n, "</a>");
	sprintf(bomb + n, "</tunnel>");
	assert_int_equal(parse(bomb, &t, &cls), -EINVAL);
	assert_int_equal(cls, TSP_XML_ERR_SYNTAX);
	/* an overlong address text */
	n = (size_t)sprintf(bomb, "<tunnel action=\"info\"><client><address type=\"dn\">");
	memset(bomb + n, 'x', 400);
	sprintf(bomb + n + 400, "</address></client></tunnel>");
	assert_int_equal(parse(bomb, &t, &cls), -EINVAL);
}

static int
xp(const char *s, struct tsp_tunnel *t, char *err)
{
	return tsp_xml_parse(s, strlen(s), 16, t, err, 128);
}

static void
test_entities_refused(void **state)
{
	struct tsp_tunnel t;
	char err[128];

	(void)state;
	assert_int_equal(xp("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
	                    "\"&lol;&lol;&lol;&lol;\">]><tunnel action=\"info\">"
	                    "&lol2;</tunnel>",
	                    &t, err),
	                 -EINVAL);
	assert_non_null(strstr(err, "DOCTYPE"));
	assert_int_equal(xp("<!DOCTYPE t SYSTEM \"file:///etc/passwd\"><tunnel "
	                    "action=\"info\"/>",
	                    &t, err),
	                 -EINVAL);
	/* an undeclared entity is an error, the predefined ones are fine */
	assert_int_equal(xp("<tunnel action=\"info\">&xxe;</tunnel>", &t, err), -EINVAL);
	assert_int_equal(xp("<tunnel action=\"info\"><client><address type=\"dn\">a&amp;b"
	                    "</address></client></tunnel>",
	                    &t, err),
	                 0);
	assert_string_equal(t.client.dn, "a&b");
}

static void
test_round_trip(void **state)
{
	struct tsp_tunnel t, u;
	char buf[2048], err[128];
	int n;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_INFO;
	strcpy(t.type, "v4v6");
	t.lifetime = 7200;
	t.server.present = t.server.has_v4 = t.server.has_v6 = true;
	addr_parse_v4("198.51.100.1", &t.server.v4);
	addr_parse_v6("fd00:d57::2", &t.server.v6);
	t.client.present = t.client.has_v4 = t.client.has_v6 = t.client.has_v6ll = true;
	t.client.has_dn = t.client.has_ports = true;
	addr_parse_v4("192.0.2.10", &t.client.v4);
	addr_parse_v6("fd00:d57::11", &t.client.v6);
	addr_parse_v6("fe80::1", &t.client.v6ll);
	strcpy(t.client.dn, "<c1>&\"'");
	t.client.port_lo = 1024;
	t.client.port_hi = 2047;
	t.has_keepalive = true;
	t.keepalive_interval = 30;
	t.has_keepalive_v4 = true;
	addr_parse_v4("198.51.100.1", &t.keepalive_v4);
	t.has_router = true;
	t.router_prefix_len = 48;
	t.nbrokers = 2;
	strcpy(t.brokers[0], "fd00:d57::3");
	strcpy(t.brokers[1], "b.example");
	n = tsp_xml_format(&t, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(strlen(buf), (size_t)n);
	assert_non_null(strstr(buf, "<tunnel action=\"info\" type=\"v4v6\" lifetime=\"7200\">"
	                            "<server><address type=\"ipv4\">198.51.100.1</address>"));
	/* RFC 5572 §4.3: inside <client>, the address the client pings */
	assert_non_null(strstr(buf, "<keepalive interval=\"30\"><address type=\"ipv4\">"
	                            "198.51.100.1</address></keepalive>"
	                            "<router><prefix length=\"48\"/></router></client>"));
	assert_int_equal(tsp_xml_parse(buf, (size_t)n, 16, &u, err, sizeof(err)), 0);
	assert_int_equal(memcmp(&t, &u, sizeof(t)), 0);
	assert_int_equal(tsp_xml_format(&t, buf, 40), -ENOSPC);
}

/* dstmd -> TEP: a PSID port set (RFC 7597 §5.1) inside <ports>. */
static void
test_psid_ports(void **state)
{
	static const char good[] =
	    "<tunnel action=\"create\" type=\"v4v6\"><client>"
	    "<address type=\"ipv4\">192.0.2.2</address>"
	    "<address type=\"ipv6\">fd00:d57::1274</address>"
	    "<ports start=\"1104\" end=\"64607\" psid-offset=\"6\" psid-length=\"6\" "
	    "psid=\"5\"/></client></tunnel>";
	static const char *const bad[] = {
	    "psid-offset=\"6\" psid-length=\"6\" psid=\"64\"", /* does not fit 6 bits */
	    "psid-offset=\"10\" psid-length=\"7\" psid=\"1\"", /* 17 bits */
	    "psid-length=\"6\" psid=\"5\"",                    /* no offset */
	};
	struct tsp_tunnel t, u;
	char buf[1024], err[128];
	int n;

	(void)state;
	assert_int_equal(tsp_xml_parse(good, strlen(good), 16, &t, err, sizeof(err)), 0);
	assert_true(t.client.has_ports);
	assert_int_equal(t.client.port_lo, 1104);
	assert_int_equal(t.client.psid_offset, 6);
	assert_int_equal(t.client.psid_len, 6);
	assert_int_equal(t.client.psid, 5);
	n = tsp_xml_format(&t, buf, sizeof(buf));
	assert_true(n > 0);
	assert_non_null(strstr(buf, "psid-offset=\"6\" psid-length=\"6\" psid=\"5\"/>"));
	assert_int_equal(tsp_xml_parse(buf, (size_t)n, 16, &u, err, sizeof(err)), 0);
	assert_int_equal(memcmp(&t, &u, sizeof(t)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf),
		         "<tunnel action=\"create\" type=\"v4v6\"><client>"
		         "<ports start=\"1104\" end=\"64607\" %s/></client></tunnel>",
		         bad[i]);
		assert_int_not_equal(tsp_xml_parse(buf, strlen(buf), 16, &u, err, sizeof(err)), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_example),     cmocka_unit_test(test_info_example),
	    cmocka_unit_test(test_delete_and_brokers), cmocka_unit_test(test_bad_documents),
	    cmocka_unit_test(test_entities_refused),   cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_psid_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
