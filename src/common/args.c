/*
 * The daemons' command line: see args.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/args.h"

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
	        "usage: %s [-c FILE] [-d] [-n] [-v[v]]\n"
	        "       %s -V | --version\n"
	        "  -c FILE  the configuration (JSON; see %s(8)); default %s/%s.json\n"
	        "  -d       stay in the foreground and log to stderr\n"
	        "  -n       check the configuration, print it normalized, exit\n"
	        "  -v       log debug messages; -vv also every control request and scrape\n"
	        "  -V       print the version and exit\n"
	        "SIGHUP reloads the configuration; SIGTERM stops the daemon.\n",
	        prog, prog, prog, DSTM_CONFDIR, prog);
}

void
print_version(FILE *f, const char *prog)
{
	fprintf(f, "%s %s\n", prog, DSTM_VERSION);
}

bool
daemon_args_parse(int argc, char **argv, const char *prog, struct daemon_args *a, int *status)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {NULL, 0, NULL, 0}};
	int ch;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:dnvhV", longopts, NULL)) != -1) {
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
		case 'V':
			print_version(stdout, prog);
			*status = 0;
			return false;
		default:
			usage(stderr, prog);
			*status = 2;
			return false;
		}
	}
	if (optind != argc) {
		usage(stderr, prog);
		*status = 2;
		return false;
	}
	/* Started by systemd (Type=notify): it supervises, journald logs. */
	if (getenv("NOTIFY_SOCKET"))
		a->foreground = true;
	if (!a->conffile) {
		snprintf(a->dflt, sizeof(a->dflt), "%s/%s.json", DSTM_CONFDIR, prog);
		a->conffile = a->dflt;
	}
	return true;
}
