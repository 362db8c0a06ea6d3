/*
 * dstmctl's table of verbs (src/ctl/verbs.c): the checker turns words into
 * typed arguments and refuses what the daemon would not understand, and
 * every verb of the table is in --help and in dstmctl(8).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/verbs.h"

/* A verb of every kind of argument, for the checker alone. */
static const struct verb every_kind = {
    .name = "kinds",
    .daemon = "test",
    .synopsis = "NAME [flag=BOOL]",
    .help = "",
    .positional = {"name"},
    .args = {{.key = "name", .kind = VK_STR, .required = true},
             {.key = "flag", .kind = VK_BOOL},
             {.key = "n", .kind = VK_INT}},
};

static json_t *
parse(const char *verb, const char *words, char *err, size_t errlen)
{
	char buf[512], *argv[16], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w && argc < 16; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	err[0] = '\0';
	if (!strcmp(verb, "kinds"))
		return verb_parse(&every_kind, argc, argv, err, errlen);
	assert_non_null(verb_find(verb));
	return verb_parse(verb_find(verb), argc, argv, err, errlen);
}

static void
expect(const char *verb, const char *words, const char *json)
{
	char err[256];
	json_t *got = parse(verb, words, err, sizeof(err)), *want = json_loads(json, 0, NULL);

	if (!got)
		fail_msg("%s %s: %s", verb, words, err);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT);
		fail_msg("%s %s: got %s, want %s", verb, words, g, json);
	}
	json_decref(got);
	json_decref(want);
}

static void
refuse(const char *verb, const char *words, const char *why)
{
	char err[256];
	json_t *got = parse(verb, words, err, sizeof(err));

	if (got)
		fail_msg("%s %s: accepted", verb, words);
	if (!strstr(err, why))
		fail_msg("%s %s: \"%s\" does not say \"%s\"", verb, words, err, why);
}

static void
test_typed_arguments(void **state)
{
	expect("status", "", "{}");
	expect("kinds", "x flag=true", "{\"name\": \"x\", \"flag\": true}");
	expect("kinds", "x --flag", "{\"name\": \"x\", \"flag\": true}");
	expect("kinds", "--flag no x", "{\"name\": \"x\", \"flag\": false}");
	expect("kinds", "flag:=false name=y n=3", "{\"name\": \"y\", \"flag\": false, \"n\": 3}");
	expect("revoke", "192.0.2.7", "{\"address\": \"192.0.2.7\"}");
	expect("revoke", "192.0.2.7 port=2048", "{\"address\": \"192.0.2.7\", \"port\": 2048}");
	expect("revoke", "--address=192.0.2.7", "{\"address\": \"192.0.2.7\"}");
	expect("bindings", "limit=10 ipv4=192.0.2.7", "{\"limit\": 10, \"ipv4\": \"192.0.2.7\"}");
	expect("binding-add", "192.0.2.7 fd00:d57::11",
	       "{\"ipv4\": \"192.0.2.7\", \"ipv6\": \"fd00:d57::11\"}");
	expect("binding-add", "ipv6:=\"fd00::1\" 192.0.2.7",
	       "{\"ipv4\": \"192.0.2.7\", \"ipv6\": \"fd00::1\"}");
}

static void
test_refusals(void **state)
{
	/* leases and history parse their own options (lease_verbs.c, test_ctl.c). */
	refuse("bindings", "limit=many", "a whole number");
	refuse("bindings", "colour=red", "no argument \"colour\"");
	refuse("pools", "192.0.2.7", "unexpected argument");
	refuse("kinds", "x flag=maybe", "true or false");
	refuse("kinds", "x y", "unexpected argument");
	refuse("kinds", "flag=true", "name is missing");
	refuse("status", "now", "unexpected argument");
	refuse("revoke", "", "address is missing");
	refuse("revoke", "192.0.2.300", "an IPv4 address");
	refuse("revoke", "fd00::1", "an IPv4 address");
	refuse("revoke", "192.0.2.7 port=65536", "a port");
	refuse("revoke", "192.0.2.7 address=192.0.2.8", "given twice");
	refuse("revoke", "192.0.2.7 192.0.2.8", "unexpected argument");
	refuse("bindings", "limit=ten", "a whole number");
	refuse("bindings", "limit:=-1", "a whole number");
	refuse("bindings", "--limit", "needs a value");
	refuse("binding-add", "192.0.2.7 192.0.2.8", "an IPv6 address");
	refuse("binding-add", "ipv4:=[1 ipv6=::1", "bad JSON");
	refuse("binding-add", "ipv4:=7 ipv6=::1", "an IPv4 address");
	refuse("binding-del", ":=1", "bad KEY=VALUE");
	refuse("binding-del", "=x", "an IPv4 address");
}

/* Every verb is in --help and has its own entry in dstmctl(8). */
static void
test_every_verb_is_documented(void **state)
{
	char *text = NULL, *man = NULL;
	size_t len = 0, mlen = 0;
	FILE *f = open_memstream(&text, &len), *m;
	const char *path = getenv("DSTMCTL_MAN");

	verbs_usage(f);
	fclose(f);
	if (!path)
		skip();
	assert_non_null(m = fopen(path, "r"));
	assert_non_null(man = malloc(1 << 20));
	mlen = fread(man, 1, (1 << 20) - 1, m);
	man[mlen] = '\0';
	fclose(m);
	/* roff writes a minus as "\-": read it as the "-" of binding-add. */
	for (char *r = man, *w = man;; r++) {
		if (r[0] == '\\' && r[1] == '-')
			continue;
		if (!(*w++ = *r))
			break;
	}
	for (size_t i = 0; i < nverbs; i++) {
		char head[64], args[64];

		if (!strstr(text, verbs[i].name))
			fail_msg("--help lacks %s", verbs[i].name);
		/* The man page gives each verb a tagged paragraph: ".B NAME" on a line
		 * of its own, or ".BI \"NAME \" ARG..." when it takes arguments. */
		snprintf(head, sizeof(head), "\n.B %s\n", verbs[i].name);
		snprintf(args, sizeof(args), "\n.BI \"%s \"", verbs[i].name);
		if (!strstr(man, head) && !strstr(man, args))
			fail_msg("dstmctl(8) has no entry for %s", verbs[i].name);
	}
	free(text);
	free(man);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_typed_arguments),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_every_verb_is_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
