/*
 * The daemons' command line: see args.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/args.h"

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
	        "usage: %s -c FILE [-d] [-n] [-v]\n"
	        "  -c FILE  the configuration (JSON; see %s(8) and doc/internals.md)\n"
	        "  -d       stay in the foreground and log to stderr\n"
	        "  -n       check the configuration, print it normalized, exit\n"
	        "  -v       log debug messages (repeatable)\n",
	        prog, prog);
}

bool
daemon_args_parse(int argc, char **argv, const char *prog, struct daemon_args *a, int *status)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	int ch;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:dnvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->conffile = optarg;
			break;
		case 'd':
			a->foreground = true;
			break;
		case 'n':
			a->check = true;
			break;
		case 'v':
			a->verbose++;
			break;
		case 'h':
			usage(stdout, prog);
			*status = 0;
			return false;
		default:
			usage(stderr, prog);
			*status = 2;
			return false;
		}
	}
	if (!a->conffile || optind != argc) {
		usage(stderr, prog);
		*status = 2;
		return false;
	}
	return true;
}
