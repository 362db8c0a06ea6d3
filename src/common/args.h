/*
 * The command line every daemon of the suite takes (doc/internals.md):
 * PROG -c FILE [-d] [-n] [-v], plus -h/--help.
 */
#ifndef DSTM_ARGS_H
#define DSTM_ARGS_H

#include <stdbool.h>

struct daemon_args {
	const char *conffile; /* -c FILE */
	bool foreground;      /* -d: stay in the foreground, log to stderr */
	bool check;           /* -n: check the configuration, print it normalized */
	int verbose;          /* -v, repeatable */
};

/*
 * Parse argv: true to go on; false when the program should end at once
 * with *status: 0 after -h (usage on stdout), 2 after a usage error
 * (usage on stderr).
 */
bool daemon_args_parse(int argc, char **argv, const char *prog, struct daemon_args *a, int *status);

#endif
