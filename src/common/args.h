/*
 * The command line every daemon of the suite takes (doc/internals.md):
 * PROG [-c FILE] [-d] [-n] [-v[v]], plus -h/--help and -V/--version.
 * Without -c a daemon reads DSTM_CONFDIR/PROG.json (/etc/dstm/dstmd.json,
 * …), so that a service unit needs no argument.
 */
#ifndef DSTM_ARGS_H
#define DSTM_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#ifndef DSTM_VERSION
#define DSTM_VERSION "unknown"
#endif
#ifndef DSTM_CONFDIR
#define DSTM_CONFDIR "/etc/dstm"
#endif

struct daemon_args {
	const char *conffile; /* -c FILE, else DSTM_CONFDIR/PROG.json */
	bool foreground;      /* -d: stay in the foreground, log to stderr */
	bool check;           /* -n: check the configuration, print it normalized */
	int verbose;          /* -v debug, -vv trace */
	char dflt[256];       /* the default path conffile may point to */
};

/*
 * Parse argv: true to go on; false when the program should end at once
 * with *status: 0 after -h (usage on stdout) or -V (version on stdout),
 * 2 after a usage error (usage on stderr).
 */
bool daemon_args_parse(int argc, char **argv, const char *prog, struct daemon_args *a, int *status);

/* "PROG VERSION" and a newline on `f`: what every program's --version prints. */
void print_version(FILE *f, const char *prog);

#endif
