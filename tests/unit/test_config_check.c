/*
 * dstmd -n and dstm-tep -n: what the loaders refuse beyond the syntax of each
 * value — references between the parts of the file and to the system —
 * each with file:line and the JSON pointer of the value at fault, and the
 * exit status 1. The programs themselves are run (argv[1] is dstmd,
 * argv[2] dstm-tep): each loader is part of its daemon, not a library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static const char *dstmd, *tep;

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

/* dstmd -n on `body`: its exit status, its output (stdout and stderr) in *out. */
static int
check_with(const char *prog, const char *body, char **out)
{
	const char *path = write_conf(body);
	char cmd[512];
	size_t len = 0, n;
	char buf[4096];
	FILE *f = open_memstream(out, &len), *p;
	int status;

	snprintf(cmd, sizeof(cmd), "'%s' -n -c '%s' 2>&1", prog, path);
	assert_non_null(p = popen(cmd, "r"));
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, f);
	status = pclose(p);
	fclose(f);
	unlink(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
check(const char *body, char **out)
{
	return check_with(dstmd, body, out);
}

static void
refused_by(const char *prog, const char *body, const char *line_and_message)
{
	char *out = NULL;
	int rc = check_with(prog, body, &out);

	if (rc != 1)
		fail_msg("exit %d, not 1:\n%s\n%s", rc, body, out);
	if (!strstr(out, line_and_message))
		fail_msg("\"%s\" not in:\n%s", line_and_message, out);
	free(out);
}

static void
refused(const char *body, const char *line_and_message)
{
	refused_by(dstmd, body, line_and_message);
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
	char *out = NULL;
	int rc = check(HEAD "  \"metrics\": \"[::1]:9653\",\n"
	                    "  \"teps\": [ { \"name\": \"t1\", \"ipv6\": \"fd00::2\", "
	                    "\"ipv4\": \"198.51.100.1\" } ]\n}\n",
	               &out);

	if (rc != 0)
		fail_msg("exit %d: %s", rc, out);
	/* The normalized configuration on stdout. */
	assert_non_null(strstr(out, "\"metrics\": \"[::1]:9653\""));
	free(out);
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

/* ---- dstm-tep -n */

#define TEP_HEAD                         \
	"{\n"                            \
	"  \"ipv6\": \"fd00:d57::2\",\n" \
	"  \"pools\": [ \"192.0.2.0/24\" ],\n"

static void
test_tep_valid(void **state)
{
	char *out = NULL;
	int rc = check_with(tep,
	                    TEP_HEAD "  \"ipv4\": \"198.51.100.1\",\n"
	                             "  \"metrics\": \"[fd00:d57::2]:9653\",\n"
	                             "  \"servers\": [ { \"address\": \"fd00:d57::1\", \"user\": "
	                             "\"dstmd\", \"secret\": \"s\" } ]\n}\n",
	                    &out);

	if (rc != 0)
		fail_msg("exit %d: %s", rc, out);
	assert_non_null(strstr(out, "\"metrics\": \"[fd00:d57::2]:9653\""));
	free(out);
}

static void
test_tep_own_address_in_a_pool(void **state)
{
	refused_by(tep,
	           TEP_HEAD "  \"ipv4\": \"192.0.2.1\",\n"
	                    "  \"servers\": [ { \"address\": \"fd00:d57::1\", \"user\": \"d\", "
	                    "\"secret\": \"s\" } ]\n}\n",
	           ":4: /ipv4: 192.0.2.1 is in /pools/0");
}

static void
test_tep_server_twice(void **state)
{
	refused_by(tep,
	           TEP_HEAD
	           "  \"ipv4\": \"198.51.100.1\",\n"
	           "  \"servers\": [\n"
	           "    { \"address\": \"fd00:d57::1\", \"user\": \"d\", \"secret\": \"s\" },\n"
	           "    { \"address\": \"fd00:d57::1\", \"user\": \"e\", \"secret\": \"t\" } "
	           "]\n}\n",
	           ":7: /servers/1/address: server fd00:d57::1 is listed twice (also /servers/0)");
}

static void
test_tep_metrics_on_the_tsp_port(void **state)
{
	refused_by(tep,
	           TEP_HEAD "  \"ipv4\": \"198.51.100.1\",\n"
	                    "  \"metrics\": \"[fd00:d57::2]:3653\",\n"
	                    "  \"servers\": [ { \"address\": \"fd00:d57::1\", \"user\": \"d\", "
	                    "\"secret\": \"s\" } ]\n}\n",
	           ":5: /metrics: the same endpoint as \"listen\"");
}

int
main(int argc, char **argv)
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
	    cmocka_unit_test(test_tep_valid),
	    cmocka_unit_test(test_tep_own_address_in_a_pool),
	    cmocka_unit_test(test_tep_server_twice),
	    cmocka_unit_test(test_tep_metrics_on_the_tsp_port),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s PATH-OF-DSTMD PATH-OF-DSTM-TEP\n", argv[0]);
		return 2;
	}
	dstmd = argv[1];
	tep = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
