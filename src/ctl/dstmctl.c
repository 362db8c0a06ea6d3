/*
 * dstmctl: the operator's command line for every daemon of the suite.
 * It checks COMMAND and its arguments against the table of verbs.c (a
 * usage error before anything is sent), then sends them over the daemon's
 * control socket
 * (src/common/ctl.h, doc/internals.md) and shows the result for people
 * (an array of objects as a table, an object as "key  value" lines) or
 * passes it through unchanged with --json. Exit status: 0 success,
 * 1 the daemon answered with an error, 2 usage or no daemon reachable.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/args.h"
#include "common/ctl.h"
#include "ctl/lease_verbs.h"
#include "ctl/verbs.h"

#define DSTMCTL_DEFAULT_SOCKET "/run/dstm/dstmd.sock"
#define DSTMCTL_MAX_COLUMNS    64

static void
usage(FILE *f)
{
	fputs("usage: dstmctl [-s SOCKET] [--json] [-t SECONDS] COMMAND [ARG]...\n"
	      "       dstmctl --version\n"
	      "\n"
	      "Talks to a daemon's control socket: -s SOCKET, else $DSTMCTL_SOCKET, else\n" //
	      "  " DSTMCTL_DEFAULT_SOCKET ".\n"
	      "\n",
	      f);
	verbs_usage(f);
	fputs("\n"
	      "Arguments are KEY=VALUE, --KEY VALUE, KEY:=JSON, or by position where the\n"
	      "synopsis shows an upper-case name; each is checked before it is sent.\n"
	      "\n"
	      "Options:\n"
	      "  -s, --socket SOCKET   the control socket\n"
	      "  -j, --json            print the daemon's result as JSON, unchanged\n"
	      "  -t, --timeout SECONDS how long to wait for the reply (default 5)\n"
	      "  -V, --version         the version of dstmctl\n"
	      "  -h, --help            this text\n"
	      "\n"
	      "Exit status: 0 success, 1 the daemon answered with an error,\n"
	      "2 usage error or the daemon cannot be reached. See dstmctl(8).\n",
	      f);
}

/* A scalar as a person reads it; nested values as compact JSON. Caller frees. */
static char *
cell_text(json_t *v)
{
	char *s = NULL;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_NULL:
		return strdup("-");
	default:
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		return s ? s : strdup("?");
	}
}

static bool
is_table(json_t *v)
{
	size_t i;
	json_t *row;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	json_array_foreach(v, i, row)
	{
		if (!json_is_object(row))
			return false;
	}
	return true;
}

/*
 * An array of objects: columns are the keys of the rows in the order they
 * first appear (rows of one table may differ: a PSID binding shows its
 * set where a range shows port_lo and port_hi); a row without one shows -.
 */
static void
print_table(json_t *rows)
{
	const char *cols[DSTMCTL_MAX_COLUMNS];
	size_t width[DSTMCTL_MAX_COLUMNS];
	size_t ncols = 0, i, c;
	const char *key;
	json_t *row, *v;
	char *t;

	json_array_foreach(rows, i, row)
	{
		json_object_foreach(row, key, v)
		{
			for (c = 0; c < ncols && strcmp(cols[c], key) != 0; c++)
				;
			if (c < ncols || ncols == DSTMCTL_MAX_COLUMNS)
				continue;
			cols[ncols] = key;
			width[ncols++] = strlen(key);
		}
	}
	json_array_foreach(rows, i, row)
	{
		for (c = 0; c < ncols; c++) {
			t = cell_text(json_object_get(row, cols[c]) ? json_object_get(row, cols[c])
			                                            : json_null());
			if (t && strlen(t) > width[c])
				width[c] = strlen(t);
			free(t);
		}
	}
	for (c = 0; c < ncols; c++)
		printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cols[c],
		       c + 1 < ncols ? "  " : "\n");
	json_array_foreach(rows, i, row)
	{
		for (c = 0; c < ncols; c++) {
			v = json_object_get(row, cols[c]);
			t = cell_text(v ? v : json_null());
			printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, t ? t : "?",
			       c + 1 < ncols ? "  " : "\n");
			free(t);
		}
	}
}

/* Widest flattened key of an object, for alignment. */
static size_t
key_width(json_t *obj, size_t prefix, unsigned depth)
{
	const char *key;
	json_t *v;
	size_t w = 0, k;

	json_object_foreach(obj, key, v)
	{
		if (json_is_object(v) && json_object_size(v) > 0 && depth < 16)
			k = key_width(v, prefix + strlen(key) + 1, depth + 1);
		else
			k = prefix + strlen(key);
		if (k > w)
			w = k;
	}
	return w;
}

/* "key  value" lines; nested objects flattened as "outer.inner". */
static void
print_object(json_t *obj, const char *prefix, int width, unsigned depth)
{
	const char *key;
	json_t *v;
	char name[512], *t;

	json_object_foreach(obj, key, v)
	{
		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if (json_is_object(v) && json_object_size(v) > 0 && depth < 16) {
			print_object(v, name, width, depth + 1);
			continue;
		}
		t = cell_text(v);
		printf("%-*s  %s\n", width, name, t ? t : "?");
		free(t);
	}
}

static void
print_result(json_t *r)
{
	char *t;

	if (is_table(r)) {
		print_table(r);
	} else if (json_is_array(r) && json_array_size(r) == 0) {
		printf("(none)\n");
	} else if (json_is_object(r)) {
		print_object(r, "", (int)key_width(r, 0, 0), 0);
	} else if (json_is_array(r)) {
		size_t i;
		json_t *v;

		json_array_foreach(r, i, v)
		{
			t = cell_text(v);
			printf("%s\n", t ? t : "?");
			free(t);
		}
	} else if (!json_is_null(r) && !json_is_true(r)) {
		t = cell_text(r);
		printf("%s\n", t ? t : "?");
		free(t);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
	};
	const struct verb *verb;
	const char *path = NULL, *command;
	bool as_json = false;
	double timeout = 5.0;
	char err[1024], *end, *text;
	json_t *args, *result;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "+s:jt:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			path = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (*end || !(timeout > 0) || timeout > 86400) {
				fprintf(stderr, "dstmctl: -t %s: seconds, more than 0\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			print_version(stdout, "dstmctl");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	command = argv[optind];
	if (path == NULL)
		path = getenv("DSTMCTL_SOCKET");
	if (path == NULL || path[0] == '\0')
		path = DSTMCTL_DEFAULT_SOCKET;
	if (!(verb = verb_find(command))) {
		fprintf(stderr, "dstmctl: unknown command \"%s\"\n", command);
		usage(stderr);
		return 2;
	}
	/* Verbs with options and paging of their own (lease_verbs.c). */
	if (!strcmp(command, "leases"))
		return dstmctl_leases(path, argc - optind, argv + optind, as_json,
		                      (unsigned)(timeout * 1000));
	if (!strcmp(command, "history"))
		return dstmctl_history(path, argc - optind, argv + optind, as_json,
		                       (unsigned)(timeout * 1000));
	args = verb_parse(verb, argc - optind - 1, argv + optind + 1, err, sizeof(err));
	if (args == NULL) {
		fprintf(stderr, "dstmctl: %s\n(dstmctl --help lists every command)\n", err);
		return 2;
	}
	rc = dstmctl_request(path, command, args, (unsigned)(timeout * 1000), &result);
	json_decref(args);
	if (rc != 0)
		return rc;
	if (as_json) {
		text = json_dumps(result, JSON_INDENT(2) | JSON_ENCODE_ANY);
		if (text)
			printf("%s\n", text);
		free(text);
	} else {
		print_result(result);
	}
	json_decref(result);
	if (fflush(stdout) == EOF)
		return 2;
	return 0;
}
