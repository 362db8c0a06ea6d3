/*
 * dstmctl's commands as a table: for each verb, the daemon that answers it,
 * its arguments (by name, by position, and their kinds) and one line of
 * help. The table drives the argument checking (a misspelt key, a missing
 * address or "all=maybe" is a usage error before anything is sent), the
 * usage text of --help, and the test that dstmctl(8) names every verb. A
 * new verb is one more row in verbs.c; a verb with a command line of its
 * own (leases, history: lease_verbs.c) has a row too, with no args, for
 * --help and the man page.
 *
 * Arguments are written KEY=VALUE, KEY:=JSON, --KEY VALUE, --KEY=VALUE, a
 * bare --KEY for a boolean, or by position in the order of `positional`.
 */
#ifndef DSTMCTL_VERBS_H
#define DSTMCTL_VERBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define VERB_MAX_ARGS 8

enum verb_kind {
	VK_STR,  /* any string */
	VK_INT,  /* an integer >= 0 */
	VK_BOOL, /* true/false (also yes/no, 1/0, on/off) */
	VK_V4,   /* an IPv4 address */
	VK_V6,   /* an IPv6 address */
	VK_PORT, /* 0..65535 */
};

struct verb_arg {
	const char *key;
	enum verb_kind kind;
	bool required;
};

struct verb {
	const char *name;
	const char *daemon;   /* who answers: "dstmd", "dstm-tep", "every daemon" */
	const char *synopsis; /* the arguments as --help shows them */
	const char *help;
	const char *positional[3]; /* keys that may be given by position, in order */
	struct verb_arg args[VERB_MAX_ARGS];
};

extern const struct verb verbs[];
extern const size_t nverbs;

/* The row of `name`, or NULL. */
const struct verb *verb_find(const char *name);

/*
 * The args object of `v` from the words after the command: NULL with a
 * message in `err` (an unknown key, a value of the wrong kind, a missing
 * required argument, a word too many).
 */
json_t *verb_parse(const struct verb *v, int argc, char *const *argv, char *err, size_t errlen);

/* The "Commands:" part of the usage text, from the table. */
void verbs_usage(FILE *f);

#endif
