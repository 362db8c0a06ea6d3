/*
 * dstmd -n: what dstmd_config_load() refuses beyond the syntax of each
 * value — references between the parts of the file and to the system —
 * each with file:line and the JSON pointer of the value at fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dstmd/config.h"

/* A configuration whose line N holds line N of `body`. */
static const char *
write_conf(const char *body)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/dstmd-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	return path;
}

/* Load `body`: NULL and the error text, or the config. */
static struct dstmd_config *
load(const char *body, char **errs)
{
	const char *path = write_conf(body);
	size_t len = 0;
	FILE *f = open_memstream(errs, &len);
	struct dstmd_config *c = dstmd_config_load(path, f);

	fclose(f);
	unlink(path);
	return c;
}

static void
refused(const char *body, const char *line_and_message)
{
	char *errs = NULL;
	struct dstmd_config *c = load(body, &errs);

	if (c)
		fail_msg("accepted:\n%s", body);
	if (!strstr(errs, line_and_message))
		fail_msg("\"%s\" not in:\n%s", line_and_message, errs);
	free(errs);
}

#define HEAD                                                                      \
	"{\n"                                                                     \
	"  \"user\": \"\",\n"                                                     \
	"  \"database\": \"/tmp/x.db\",\n"                                        \
	"  \"pools\": [ { \"name\": \"a\", \"prefixes\": [ \"192.0.2.0/24\" ],\n" \
	"              \"exclude\": [ \"192.0.2.1\" ] } ],\n"

static void
test_a_valid_file_loads(void **state)
{
	char *errs = NULL;
	struct dstmd_config *c =
	    load(HEAD "  \"metrics\": \"[::1]:9653\",\n"
	              "  \"teps\": [ { \"name\": \"t1\", \"ipv6\": \"fd00::2\", "
	              "\"ipv4\": \"198.51.100.1\" } ]\n}\n",
	         &errs);

	if (!c)
		fail_msg("%s", errs);
	assert_non_null(c->metrics);
	assert_int_equal(c->metrics_len, sizeof(struct sockaddr_in6));
	dstmd_config_free(c);
	free(errs);
}

static void
test_duplicate_tep_name(void **state)
{
	refused(HEAD
	        "  \"teps\": [\n"
	        "    { \"name\": \"t1\", \"ipv6\": \"fd00::2\", \"ipv4\": \"198.51.100.1\" },\n"
	        "    { \"name\": \"t1\", \"ipv6\": \"fd00::3\", \"ipv4\": \"198.51.100.2\" } ]\n"
	        "}\n",
	        ":8: /teps/1/name: TEP name \"t1\" is used twice (also /teps/0)");
}

static void
test_duplicate_tep_address(void **state)
{
	refused(HEAD
	        "  \"teps\": [\n"
	        "    { \"name\": \"t1\", \"ipv6\": \"fd00::2\", \"ipv4\": \"198.51.100.1\" },\n"
	        "    { \"name\": \"t2\", \"ipv6\": \"fd00::2\", \"ipv4\": \"198.51.100.2\" } ]\n"
	        "}\n",
	        ":8: /teps/1/ipv6: fd00::2 is the address of /teps/0 too");
}

static void
test_unknown_user(void **state)
{
	refused(
	    "{\n  \"user\": \"no-such-user-of-dstm\",\n"
	    "  \"pools\": [ { \"name\": \"a\", \"prefixes\": [ \"192.0.2.0/24\" ] } ],\n"
	    "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\", \"ipv4\": \"198.51.100.1\" "
	    "} ]\n}\n",
	    ":2: /user: there is no system user \"no-such-user-of-dstm\"");
}

static void
test_exclusion_outside_its_pool(void **state)
{
	refused(
	    "{\n  \"user\": \"\",\n"
	    "  \"pools\": [ { \"name\": \"a\", \"prefixes\": [ \"192.0.2.0/25\" ],\n"
	    "    \"exclude\": [ \"192.0.2.1\", \"192.0.2.200\" ] } ],\n"
	    "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\", \"ipv4\": \"198.51.100.1\" "
	    "} ]\n}\n",
	    ":4: /pools/0/exclude/1: 192.0.2.200 is outside pool \"a\"");
}

static void
test_tep_address_in_a_pool(void **state)
{
	refused(HEAD "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\",\n"
	             "              \"ipv4\": \"192.0.2.9\" } ]\n}\n",
	        ":7: /teps/0/ipv4: 192.0.2.9 is in pool \"a\"");
}

static void
test_unknown_pool_of_a_tep(void **state)
{
	refused(HEAD "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\", \"ipv4\": "
	             "\"198.51.100.1\",\n"
	             "              \"pool\": \"b\" } ]\n}\n",
	        ":7: /teps/0/pool: no pool is named \"b\"");
}

static void
test_same_listener_twice(void **state)
{
	refused(HEAD "  \"listen\": [ { \"address\": \"[::1]:3653\" },\n"
	             "              { \"address\": \"[::1]:3653\" } ],\n"
	             "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\", \"ipv4\": "
	             "\"198.51.100.1\" } ]\n}\n",
	        ":7: /listen/1/address: the same address as /listen/0");
}

static void
test_quota_above_its_limit(void **state)
{
	refused(HEAD "  \"limits\": { \"connections\": 100,\n"
	             "              \"connections_per_64\": 500 },\n"
	             "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\", \"ipv4\": "
	             "\"198.51.100.1\" } ]\n}\n",
	        ":7: /limits/connections_per_64: 500 sessions per /64 is more than "
	        "limits.connections (100)");
}

static void
test_bad_metrics_endpoint(void **state)
{
	refused(HEAD "  \"metrics\": \"here\",\n"
	             "  \"teps\": [ { \"name\": \"t\", \"ipv6\": \"fd00::2\", \"ipv4\": "
	             "\"198.51.100.1\" } ]\n}\n",
	        ":6: /metrics: \"here\" is not an endpoint");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_valid_file_loads),
	    cmocka_unit_test(test_duplicate_tep_name),
	    cmocka_unit_test(test_duplicate_tep_address),
	    cmocka_unit_test(test_unknown_user),
	    cmocka_unit_test(test_exclusion_outside_its_pool),
	    cmocka_unit_test(test_tep_address_in_a_pool),
	    cmocka_unit_test(test_unknown_pool_of_a_tep),
	    cmocka_unit_test(test_same_listener_twice),
	    cmocka_unit_test(test_quota_above_its_limit),
	    cmocka_unit_test(test_bad_metrics_endpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
