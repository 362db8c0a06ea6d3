/*
 * Unit tests of dstm-client's configuration (src/client/config.c):
 * defaults, every key, the file:line errors an operator sees, and the
 * reconnection back-off's bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/client.h"
#include "common/addr.h"

static struct cfg *
load(const char *text)
{
	char err[256];
	struct cfg *c = cfg_load_buffer("client.json", text, strlen(text), err, sizeof(err));

	assert_non_null(c);
	return c;
}

/* The errors as printed, in a string the test can search. */
static char *
errors(struct cfg *c)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(f);
	cfg_print_errors(c, f);
	fclose(f);
	return buf;
}

static void
test_minimal(void **state)
{
	struct client_config cc;
	struct cfg *c = load("{\"server\": \"[fd00:d57::1]:3653\"}");
	char buf[ADDR_STRLEN];
	char *dump;

	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(cc.server_sa.ss_family, AF_INET6);
	assert_string_equal(cc.interface, "dstm0");
	assert_int_equal(cc.mode, CLIENT_ALWAYS_ON);
	assert_string_equal(cc.mechanism, "ANONYMOUS");
	assert_int_equal(cc.nroutes, 1);
	assert_int_equal(cc.routes[0].dst, 0);
	assert_int_equal(cc.routes[0].plen, 0);
	assert_false(cc.has_ipv6);
	assert_false(cc.has_tep6);
	assert_int_equal(cc.queue, 64);
	assert_string_equal(addr_fmt_v4(cc.placeholder, buf), "192.0.0.8");
	assert_int_equal(cc.backoff_max, 30);
	dump = client_config_dump(&cc);
	assert_non_null(strstr(dump, "\"routes\": [\n    \"0.0.0.0/0\"\n  ]"));
	assert_non_null(strstr(dump, "\"mode\": \"always-on\""));
	free(dump);
	cfg_free(c);
}

static void
test_full(void **state)
{
	struct client_config cc;
	struct cfg *c = load("{\n"
	                     " \"access\": \"tsp\",\n"
	                     " \"server\": \"[fd00:d57::1]:3700\",\n"
	                     " \"ipv6\": \"fd00:d57::11\",\n"
	                     " \"interface\": \"dti7\",\n"
	                     " \"mode\": \"on-demand\",\n"
	                     " \"auth\": {\"mechanism\": \"SCRAM-SHA-256\", \"user\": \"c1\","
	                     " \"secret\": \"pw\"},\n"
	                     " \"routes\": [\"198.51.100.0/24\", \"203.0.113.0/24\"],\n"
	                     " \"tep\": {\"ipv6\": \"fd00:d57::2\", \"ipv4\": \"198.51.100.1\"},\n"
	                     " \"control\": \"/tmp/x.sock\",\n"
	                     " \"queue\": 8,\n"
	                     " \"placeholder\": \"192.0.0.9\"\n"
	                     "}\n");
	char buf[ADDR_STRLEN];

	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&cc.server_sa)->sin6_port), 3700);
	assert_true(cc.has_ipv6);
	assert_string_equal(addr_fmt_v6(&cc.ipv6, buf), "fd00:d57::11");
	assert_string_equal(cc.interface, "dti7");
	assert_int_equal(cc.mode, CLIENT_ON_DEMAND);
	assert_string_equal(cc.mechanism, "SCRAM-SHA-256");
	assert_string_equal(cc.user, "c1");
	assert_int_equal(cc.nroutes, 2);
	assert_string_equal(addr_fmt_v4(cc.routes[1].dst, buf), "203.0.113.0");
	assert_int_equal(cc.routes[1].plen, 24);
	assert_true(cc.has_tep6 && cc.has_tep4);
	assert_string_equal(cc.control, "/tmp/x.sock");
	assert_int_equal(cc.queue, 8);
	assert_string_equal(addr_fmt_v4(cc.placeholder, buf), "192.0.0.9");
	cfg_free(c);
}

static void
test_dhcpv6_tls_user(void **state)
{
	struct client_config cc;
	struct cfg *c;
	char *dump;

	c = load("{\"access\": \"dhcpv6\", \"user\": null, \"dhcpv6\": {\"form\": "
	         "\"global_v4\", \"rapid_commit\": true, \"codes\": {\"global_v4\": 700}, "
	         "\"auth\": {\"realm\": \"dstm.example\", \"key_id\": 7, \"secret\": \"s\"}}}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(cc.access, CLIENT_ACCESS_DHCPV6);
	assert_true(cc.dhcp6.global_v4_form);
	assert_true(cc.dhcp6.rapid_commit);
	assert_int_equal(cc.dhcp6.codes.global_v4, 700);
	assert_int_equal(cc.dhcp6.codes.ia_dstm, 65001);
	assert_int_equal(cc.dhcp6.codes.tep, 65002);
	assert_int_equal(cc.dhcp6.port, 547);
	assert_true(cc.dhcp6.has_key);
	assert_string_equal(cc.dhcp6.realm, "dstm.example");
	assert_int_equal(cc.dhcp6.key_id, 7);
	assert_string_equal(cc.run_as, "");
	dump = client_config_dump(&cc);
	assert_non_null(strstr(dump, "\"global_v4\": 700"));
	assert_non_null(strstr(dump, "\"user\": null"));
	free(dump);
	cfg_free(c);

	c = load("{\"server\": \"[fd00:d57::1]:3654\", \"tls\": {\"pin\": "
	         "\"sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\", \"name\": \"srv\"}}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_true(cc.tls.enable && cc.tls.has_pin);
	assert_int_equal(cc.tls.pin[0], 0xe3); /* SHA-256 of nothing */
	assert_int_equal(cc.tls.pin[31], 0x55);
	assert_string_equal(cc.tls.name, "srv");
	assert_string_equal(cc.run_as, "dstm");
	dump = client_config_dump(&cc);
	assert_non_null(strstr(dump, "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
	free(dump);
	cfg_free(c);
}

/* An lwB4 (RFC 7596): "lw4o6" with DHCPv6 access only. */
/* "fast_path": auto by default, bpf or off; never bpf for an lwB4. */
static void
test_fast_path(void **state)
{
	struct client_config cc;
	struct cfg *c;
	char *dump;

	(void)state;
	c = load("{\"server\": \"[fd00:d57::1]:3653\"}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(cc.fast_path, CLIENT_FAST_AUTO);
	dump = client_config_dump(&cc);
	assert_non_null(strstr(dump, "\"fast_path\": \"auto\""));
	free(dump);
	cfg_free(c);
	c = load("{\"server\": \"[fd00:d57::1]:3653\", \"fast_path\": \"off\"}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(cc.fast_path, CLIENT_FAST_OFF);
	cfg_free(c);
	c = load("{\"server\": \"[fd00:d57::1]:3653\",\n \"fast_path\": \"xdp\"}");
	assert_int_not_equal(client_config_parse(c, &cc), 0);
	assert_non_null(strstr(errors(c), "client.json:2: /fast_path"));
	cfg_free(c);
	c = load("{\"access\": \"dhcpv6\", \"lw4o6\": true,\n \"fast_path\": \"bpf\"}");
	assert_int_not_equal(client_config_parse(c, &cc), 0);
	assert_non_null(strstr(errors(c), "client.json:2: /fast_path: \"bpf\" cannot translate"));
	cfg_free(c);
}

static void
test_lw4o6(void **state)
{
	struct client_config cc;
	struct cfg *c;
	char *dump;

	(void)state;
	c = load("{\"access\": \"dhcpv6\", \"lw4o6\": true}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_true(cc.lw4o6);
	dump = client_config_dump(&cc);
	assert_non_null(strstr(dump, "\"lw4o6\": true"));
	free(dump);
	cfg_free(c);
	c = load("{\"server\": \"[fd00:d57::1]:3653\",\n \"lw4o6\": true}");
	assert_int_not_equal(client_config_parse(c, &cc), 0);
	assert_non_null(
	    strstr(errors(c), "client.json:2: /lw4o6: an lwB4 is configured over DHCPv6"));
	cfg_free(c);
}

static void
test_errors(void **state)
{
	struct client_config cc;
	struct cfg *c = load("{\n"
	                     " \"server\": \"not an endpoint\",\n"
	                     " \"ipv6\": \"fe80::1\",\n"
	                     " \"mode\": \"sometimes\",\n"
	                     " \"auth\": {\"mechanism\": \"PLAIN\"},\n"
	                     " \"routes\": [\"198.51.100.1/24\"],\n"
	                     " \"queue\": 0,\n"
	                     " \"colour\": \"blue\"\n"
	                     "}\n");
	char *e;

	assert_true(client_config_parse(c, &cc) >= 7);
	e = errors(c);
	assert_non_null(
	    strstr(e, "client.json:2: /server: \"not an endpoint\" is not an endpoint"));
	assert_non_null(strstr(e, "client.json:3: /ipv6:"));
	assert_non_null(strstr(e, "client.json:4: /mode: \"sometimes\" is not one of"));
	assert_non_null(strstr(e, "needs \"user\" and \"secret\""));
	assert_non_null(strstr(e, "client.json:6: /routes/0:"));
	assert_non_null(strstr(e, "client.json:7: /queue"));
	assert_non_null(strstr(e, "colour"));
	cfg_free(c);

	c = load("{\"mode\": \"on-demand\"}");
	assert_int_equal(client_config_parse(c, &cc), 1);
	assert_non_null(strstr(errors(c), "/server: missing"));
	cfg_free(c);

	c = load("{\"server\": \"fd00::1\", \"routes\": []}");
	assert_int_equal(client_config_parse(c, &cc), 1);
	cfg_free(c);
	c = load("{\"server\": \"fd00::1\", \"access\": \"smtp\"}");
	assert_int_equal(client_config_parse(c, &cc), 1);
	cfg_free(c);
	/* TLS is TSP's; a DHCPv6 section needs DHCPv6 access; a pin is a SHA-256. */
	c = load("{\"access\": \"dhcpv6\", \"tls\": {\"ca\": \"/x.pem\"}}");
	assert_int_equal(client_config_parse(c, &cc), 1);
	assert_non_null(strstr(errors(c), "/tls: TLS protects TSP only"));
	cfg_free(c);
	c = load("{\"server\": \"fd00::1\", \"dhcpv6\": {}}");
	assert_int_equal(client_config_parse(c, &cc), 1);
	cfg_free(c);
	c = load("{\"server\": \"fd00::1\", \"tls\": {\"pin\": \"sha256//AAAA\"}}");
	assert_int_equal(client_config_parse(c, &cc), 2); /* a bad pin, and then neither */
	assert_non_null(strstr(errors(c), "/tls/pin:"));
	cfg_free(c);
	c = load("{\"access\": \"dhcpv6\", \"dhcpv6\": {\"form\": \"ia_na\", "
	         "\"codes\": {\"tep\": 0}, \"auth\": {\"realm\": \"r\"}}}");
	assert_int_equal(client_config_parse(c, &cc), 4);
	cfg_free(c);
	c = load("[1]");
	assert_int_equal(client_config_parse(c, &cc), 1);
	cfg_free(c);
}

/* A file of `text` for the reload: its path in `path`. */
static void
write_conf(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "/tmp/test_client_config.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* "log_level": info by default, debug or trace; a reload takes it at once, alone or not at all. */
static void
test_log_level(void **state)
{
	struct client_config cc;
	struct cfg *c;
	char path[64], *dump;

	(void)state;
	c = load("{\"server\": \"[fd00:d57::1]:3653\"}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(cc.log_level, 0);
	dump = client_config_dump(&cc);
	assert_non_null(strstr(dump, "\"log_level\": \"info\""));
	free(dump);
	cfg_free(c);
	c = load("{\"server\": \"[fd00:d57::1]:3653\",\n \"log_level\": \"loud\"}");
	assert_int_not_equal(client_config_parse(c, &cc), 0);
	assert_non_null(strstr(errors(c), "client.json:2: /log_level"));
	cfg_free(c);

	c = load("{\"server\": \"[fd00:d57::1]:3653\", \"log_level\": \"debug\"}");
	assert_int_equal(client_config_parse(c, &cc), 0);
	assert_int_equal(cc.log_level, 1);
	cfg_free(c);
	write_conf(path, sizeof(path),
	           "{\"server\": \"[fd00:d57::1]:3653\", \"log_level\": \"trace\"}");
	assert_int_equal(client_config_reload(path, &cc), 0);
	assert_int_equal(cc.log_level, 2);
	unlink(path);
	/* With another server the whole reload is refused: the level stays. */
	write_conf(path, sizeof(path),
	           "{\"server\": \"[fd00:d57::9]:3653\", \"log_level\": \"info\"}");
	assert_int_not_equal(client_config_reload(path, &cc), 0);
	assert_int_equal(cc.log_level, 2);
	unlink(path);
}

static void
test_backoff(void **state)
{
	/* [d/2, d], doubling from 1 s, capped */
	assert_int_equal(client_backoff_ms(0, 30, 0), 500);
	assert_int_equal(client_backoff_ms(0, 30, 500), 1000);
	assert_int_equal(client_backoff_ms(1, 30, 0), 1000);
	assert_int_equal(client_backoff_ms(3, 30, 0), 4000);
	assert_int_equal(client_backoff_ms(10, 30, 0), 15000);
	assert_int_equal(client_backoff_ms(10, 30, 15000), 30000);
	assert_int_equal(client_backoff_ms(1000, 30, 0xffffffffu) <= 30000, 1);
	for (uint32_t r = 0; r < 100000; r += 777) {
		unsigned ms = client_backoff_ms(5, 30, r * 2654435761u);

		assert_true(ms >= 15000 && ms <= 30000);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal),   cmocka_unit_test(test_full),
	    cmocka_unit_test(test_errors),    cmocka_unit_test(test_lw4o6),
	    cmocka_unit_test(test_fast_path), cmocka_unit_test(test_dhcpv6_tls_user),
	    cmocka_unit_test(test_backoff),   cmocka_unit_test(test_log_level),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
