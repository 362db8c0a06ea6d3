/*
 * SASL through src/tsp/tsp_sasl.c, server and client stepped against each
 * other in process (no sockets): PLAIN, DIGEST-MD5 and SCRAM-SHA-256 with
 * the right password, a wrong one and an unknown user.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tsp/tsp_int.h"

static unsigned secret_calls;

static const char *
secret(void *arg, const char *user, const char *realm)
{
	(void)arg;
	secret_calls++;
	if (strcmp(user, "alice") == 0 && strcmp(realm, "dstm") == 0)
		return "wonderland";
	return NULL;
}

/* Run the exchange as the session machines do; true when both agree. */
static bool
exchange(const char *mech, const char *user, const char *pw, const char **srv_user)
{
	struct tsp_sasl_server *ss = tsp_sasl_server_new("dstm", "tsp", "srv", secret, NULL);
	struct tsp_sasl *s = NULL, *c = NULL;
	enum tsp_sasl_result rs, rc;
	char *so = NULL, *co = NULL;
	const char *why;
	bool ok = false;

	assert_non_null(ss);
	assert_int_equal(tsp_sasl_server_start(ss, mech, &s), 0);
	assert_int_equal(tsp_sasl_client_start(mech, user, pw, "tsp", "client-name", &c), 0);
	rs = tsp_sasl_step(s, NULL, 0, &so, &why);
	rc = tsp_sasl_step(c, NULL, 0, &co, &why);
	assert_int_not_equal(rc, TSP_SASL_FAIL);
	/* The side with something to say first speaks; bounded exchange. */
	for (int i = 0; i < 8; i++) {
		if (co && co[0]) {
			free(so);
			so = NULL;
			rs = tsp_sasl_step(s, co, strlen(co), &so, &why);
			free(co);
			co = NULL;
			if (rs == TSP_SASL_FAIL)
				break;
			if (rs == TSP_SASL_DONE && (so == NULL || so[0] == '\0')) {
				ok = rc == TSP_SASL_DONE;
				break;
			}
		}
		if (so && so[0]) {
			free(co);
			co = NULL;
			rc = tsp_sasl_step(c, so, strlen(so), &co, &why);
			free(so);
			so = NULL;
			if (rc == TSP_SASL_FAIL)
				break;
			if (rs == TSP_SASL_DONE && rc == TSP_SASL_DONE) {
				ok = true;
				break;
			}
		}
	}
	if (ok && srv_user) {
		static char u[64];

		strncpy(u, tsp_sasl_user(s) ? tsp_sasl_user(s) : "", sizeof(u) - 1);
		*srv_user = u;
	}
	free(so);
	free(co);
	tsp_sasl_free(s);
	tsp_sasl_free(c);
	tsp_sasl_server_free(ss);
	return ok;
}

static void
check(const char *mech)
{
	const char *u = NULL;

	assert_true(exchange(mech, "alice", "wonderland", &u));
	assert_string_equal(u, "alice");
	assert_false(exchange(mech, "alice", "looking-glass", NULL));
	assert_false(exchange(mech, "bob", "wonderland", NULL));
}

static void
test_plain(void **state)
{
	(void)state;
	check("PLAIN");
}

static void
test_digest_md5(void **state)
{
	(void)state;
	check("DIGEST-MD5");
}

static void
test_scram_sha256(void **state)
{
	(void)state;
	check("SCRAM-SHA-256");
}

static void
test_supported(void **state)
{
	struct tsp_sasl_server *ss = tsp_sasl_server_new(NULL, NULL, NULL, secret, NULL);
	struct tsp_sasl *s;

	(void)state;
	assert_true(tsp_sasl_server_supports(ss, "SCRAM-SHA-256"));
	assert_true(tsp_sasl_server_supports(ss, "DIGEST-MD5"));
	assert_true(tsp_sasl_server_supports(ss, "PLAIN"));
	assert_false(tsp_sasl_server_supports(ss, "NO-SUCH-MECH"));
	assert_int_equal(tsp_sasl_server_start(ss, "NO-SUCH-MECH", &s), -ENOTSUP);
	tsp_sasl_server_free(ss);
}

/* The challenge as deployed clients can split it: "," and no blank. */
static void
test_digest_tidy(void **state)
{
	static const char in[] = "realm=\"dstm\", nonce=\"a, b\\\" c\" ,qop=\"auth\",  "
	                         "charset=utf-8, algorithm=md5-sess";
	char out[sizeof(in)];
	size_t n;

	(void)state;
	n = tsp_digest_tidy(in, sizeof(in) - 1, out);
	out[n] = '\0';
	assert_string_equal(out, "realm=\"dstm\",nonce=\"a, b\\\" c\",qop=\"auth\","
	                         "charset=utf-8,algorithm=md5-sess");
	/* in place, and a list without blanks is left alone */
	n = tsp_digest_tidy(out, strlen(out), out);
	out[n] = '\0';
	assert_string_equal(out, "realm=\"dstm\",nonce=\"a, b\\\" c\",qop=\"auth\","
	                         "charset=utf-8,algorithm=md5-sess");
}

static void
test_plain_initial(void **state)
{
	char raw[64];
	size_t n;

	(void)state;
	/* raw, the leading NUL already skipped by the framer */
	assert_int_equal(tsp_plain_initial("alice\0pw", 8, raw, sizeof(raw), &n), 0);
	assert_int_equal(n, 9);
	assert_memory_equal(raw, "\0alice\0pw", 9);
	/* raw with an authzid */
	assert_int_equal(tsp_plain_initial("bob\0alice\0pw", 12, raw, sizeof(raw), &n), 0);
	assert_int_equal(n, 12);
	assert_memory_equal(raw, "bob\0alice\0pw", 12);
	/* base64 of "\0alice\0pw" */
	assert_int_equal(tsp_plain_initial("AGFsaWNlAHB3", 12, raw, sizeof(raw), &n), 0);
	assert_int_equal(n, 9);
	assert_memory_equal(raw, "\0alice\0pw", 9);
	assert_int_equal(tsp_plain_initial("", 0, raw, sizeof(raw), &n), -EINVAL);
	assert_int_equal(tsp_plain_initial("!!!", 3, raw, sizeof(raw), &n), -EINVAL);
	assert_int_equal(tsp_plain_initial("alice\0pw", 8, raw, 8, &n), -EMSGSIZE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),        cmocka_unit_test(test_digest_md5),
	    cmocka_unit_test(test_scram_sha256), cmocka_unit_test(test_supported),
	    cmocka_unit_test(test_digest_tidy),  cmocka_unit_test(test_plain_initial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
