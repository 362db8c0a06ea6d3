/*
 * dstmctl's verbs over dstmd's leases: "leases" (paged and filtered) and
 * "history" (who held an address, or what a client held). Both walk the
 * daemon's answer page by page (doc/internals.md: "next" is the cursor of
 * the next page, null at the end) and print each page as it comes, so
 * that a million leases cost neither dstmd nor dstmctl more than a page
 * of memory. Their options are their own: this file is their whole
 * command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ctl.h"
#include "ctl/lease_verbs.h"

/*
 * Leases asked for per request: dstmd builds a page in one go (a few µs a
 * lease), so a smaller page is a shorter pause for the allocations it
 * serves meanwhile, for a round trip more per thousand leases.
 */
#define PAGE 1000

/* One row of a table with fixed columns: widths from the first page, then kept. */
struct cols {
	const char *name[10];
	size_t width[10];
	size_t n;
	bool shown;
};

static const char *
str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static void
ports_of(json_t *o, char *b, size_t n)
{
	json_t *lo = json_object_get(o, "port_lo"), *hi = json_object_get(o, "port_hi");

	if (lo && hi)
		snprintf(b, n, "%lld-%lld", (long long)json_integer_value(lo),
		         (long long)json_integer_value(hi));
	else
		snprintf(b, n, "-");
}

/* The cells of a lease or history row, in the columns' order. */
static void
cells(json_t *o, bool history, char cell[][64], size_t *n)
{
	size_t i = 0;

	if (history) {
		snprintf(cell[i++], 64, "%s", str_of(o, "time"));
		snprintf(cell[i++], 64, "%s", str_of(o, "event"));
	}
	snprintf(cell[i++], 64, "%s", str_of(o, "ipv4"));
	ports_of(o, cell[i++], 64);
	if (history) {
		snprintf(cell[i++], 64, "%s", str_of(o, "start"));
		snprintf(cell[i++], 64, "%s", str_of(o, "expiry"));
	} else {
		snprintf(cell[i++], 64, "%s", str_of(o, "state"));
		snprintf(cell[i++], 64, "%lld",
		         (long long)json_integer_value(json_object_get(o, "expires_in")));
		snprintf(cell[i++], 64, "%s", str_of(o, "pool"));
		snprintf(cell[i++], 64, "%s", str_of(o, "tep"));
	}
	snprintf(cell[i++], 64, "%s", str_of(o, "ipv6"));
	*n = i;
}

static void
cols_init(struct cols *c, bool history)
{
	static const char *const lease_cols[] = {"ipv4", "ports", "state", "expires_in",
	                                         "pool", "tep",   "ipv6"};
	static const char *const hist_cols[] = {"time",  "event",  "ipv4", "ports",
	                                        "start", "expiry", "ipv6"};
	const char *const *names = history ? hist_cols : lease_cols;

	memset(c, 0, sizeof(*c));
	for (c->n = 0; c->n < 7; c->n++) {
		c->name[c->n] = names[c->n];
		c->width[c->n] = strlen(names[c->n]);
	}
}

/* Print one page of rows; the first page sets the widths and prints the header. */
static void
print_rows(struct cols *c, json_t *rows, bool history)
{
	char cell[10][64];
	size_t i, n, k;
	json_t *o;

	if (!c->shown) {
		json_array_foreach(rows, i, o)
		{
			cells(o, history, cell, &n);
			for (k = 0; k < n; k++)
				if (strlen(cell[k]) > c->width[k])
					c->width[k] = strlen(cell[k]);
		}
		for (k = 0; k < c->n; k++)
			printf("%-*s  ", (int)c->width[k], c->name[k]);
		printf("identity\n");
		c->shown = true;
	}
	json_array_foreach(rows, i, o)
	{
		cells(o, history, cell, &n);
		for (k = 0; k < n; k++)
			printf("%-*s  ", (int)c->width[k], cell[k]);
		printf("%s\n", str_of(o, "identity"));
	}
}

/* --json: one array over every page, each element printed as it comes. */
static void
print_json_rows(json_t *rows, bool *first)
{
	size_t i;
	json_t *o;

	json_array_foreach(rows, i, o)
	{
		char *t = json_dumps(o, JSON_COMPACT);

		printf("%s%s", *first ? "[\n  " : ",\n  ", t ? t : "null");
		*first = false;
		free(t);
	}
}

int
dstmctl_request(const char *path, const char *command, json_t *args, unsigned timeout_ms,
                json_t **res)
{
	char err[1024];
	int rc = ctl_request(path, command, args, timeout_ms, res, err, sizeof(err));

	if (rc == CTL_EREPLY) {
		fprintf(stderr, "dstmctl: %s: %s\n", command, err);
		return 1;
	}
	if (rc < 0) {
		fprintf(stderr, "dstmctl: %s\n", err);
		return 2;
	}
	return 0;
}

/* --limit N of leases and history: a count above 0; otherwise says so and returns false. */
static bool
parse_limit(const char *verb, const char *s, unsigned long long *limit)
{
	char *end;

	errno = 0;
	*limit = strtoull(s, &end, 10);
	if (errno || *end || !*limit || s[0] == '-') {
		fprintf(stderr, "dstmctl: %s: --limit %s: a number above 0\n", verb, s);
		return false;
	}
	return true;
}

static int
usage_leases(void)
{
	fputs("usage: dstmctl leases [--pool NAME] [--state active|quarantine|all] [--all]\n"
	      "                      [--client ID] [--limit N] [--after ADDRESS[:PORT]]\n",
	      stderr);
	return 2;
}

int
dstmctl_leases(const char *path, int argc, char **argv, bool as_json, unsigned timeout_ms)
{
	static const struct option opts[] = {
	    {"pool", required_argument, NULL, 'p'},  {"state", required_argument, NULL, 's'},
	    {"all", no_argument, NULL, 'a'},         {"client", required_argument, NULL, 'c'},
	    {"limit", required_argument, NULL, 'l'}, {"after", required_argument, NULL, 'A'},
	    {"json", no_argument, NULL, 'j'},        {NULL, 0, NULL, 0},
	};
	json_t *args = json_object(), *res = NULL, *next = NULL;
	unsigned long long limit = 0, shown = 0;
	bool first = true;
	struct cols c;
	char *end;
	int ch, rc = 0;

	optind = 0; /* glibc: start over (main's getopt left its own state) */
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(args, "pool", json_string(optarg));
			break;
		case 's':
			if (strcmp(optarg, "active") && strcmp(optarg, "quarantine") &&
			    strcmp(optarg, "all")) {
				fprintf(stderr,
				        "dstmctl: leases: --state %s: active, quarantine "
				        "or all\n",
				        optarg);
				goto usage;
			}
			json_object_set_new(args, "state", json_string(optarg));
			break;
		case 'a':
			json_object_set_new(args, "state", json_string("all"));
			break;
		case 'c':
			json_object_set_new(args, "client", json_string(optarg));
			break;
		case 'j':
			as_json = true;
			break;
		case 'l':
			if (!parse_limit("leases", optarg, &limit))
				goto usage;
			break;
		case 'A': {
			char a[64], *colon;

			snprintf(a, sizeof(a), "%s", optarg);
			if ((colon = strchr(a, ':'))) {
				unsigned long port = strtoul(colon + 1, &end, 10);

				if (*end || port > 65535 || colon[1] == '\0') {
					fprintf(stderr,
					        "dstmctl: leases: --after %s: ADDRESS[:PORT]\n",
					        optarg);
					goto usage;
				}
				*colon = '\0';
				json_object_set_new(args, "port", json_integer((json_int_t)port));
			}
			json_object_set_new(args, "after", json_string(a));
			break;
		}
		default:
			goto usage;
		}
	}
	/* The form of before the options, which scripts and tests use: all=true. */
	for (; optind < argc; optind++) {
		const char *w = argv[optind];

		if (!strcmp(w, "all=true") || !strcmp(w, "all:=true"))
			json_object_set_new(args, "state", json_string("all"));
		else if (strcmp(w, "all=false") && strcmp(w, "all:=false")) {
			fprintf(stderr, "dstmctl: leases: %s: unexpected argument\n", w);
			goto usage;
		}
	}
	cols_init(&c, false);
	for (;;) {
		unsigned long long want = limit ? limit - shown : PAGE;
		json_t *rows;

		json_object_set_new(args, "limit",
		                    json_integer(want < PAGE ? (json_int_t)want : PAGE));
		if ((rc = dstmctl_request(path, "leases", args, timeout_ms, &res)) != 0)
			break;
		rows = json_object_get(res, "leases");
		next = json_object_get(res, "next");
		if (!json_is_array(rows)) {
			fprintf(stderr,
			        "dstmctl: leases: the daemon's answer has no \"leases\" array\n");
			rc = 2;
			break;
		}
		if (as_json)
			print_json_rows(rows, &first);
		else if (json_array_size(rows))
			print_rows(&c, rows, false);
		shown += json_array_size(rows);
		if (!json_is_integer(next) || (limit && shown >= limit))
			break;
		/* From here on the cursor says where to go on. */
		json_object_del(args, "after");
		json_object_del(args, "port");
		json_object_set(args, "cursor", next);
		json_decref(res);
		res = NULL;
	}
	json_decref(res);
	json_decref(args);
	if (rc == 0) {
		if (as_json)
			printf(first ? "[]\n" : "\n]\n");
		else if (!shown)
			printf("(none)\n");
	}
	if (fflush(stdout) == EOF)
		return 2;
	return rc;
usage:
	json_decref(args);
	return usage_leases();
}

/* "2026-03-03T10:14:00Z", "2026-03-03 10:14[:SS]" (UTC) or "@SECONDS". */
static bool
parse_time(const char *s, int64_t *t)
{
	static const char *const forms[] = {
	    "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M",
	    "%Y-%m-%d %H:%M:%S",  "%Y-%m-%d %H:%M",    "%Y-%m-%d",        NULL};
	char *end;

	if (s[0] == '@') {
		errno = 0;
		*t = strtoll(s + 1, &end, 10);
		return !errno && *end == '\0' && s[1] != '\0';
	}
	for (size_t i = 0; forms[i]; i++) {
		struct tm tm = {0};

		end = strptime(s, forms[i], &tm);
		if (end && *end == '\0') {
			*t = (int64_t)timegm(&tm);
			return true;
		}
	}
	return false;
}

/*
 * --at: keep the events of the leases that covered TIME. A lease is one
 * identity's tenure of the address from its start: it covers TIME from
 * its start to its end (the release, expiry or revocation), or while it
 * lasted (the last expiry seen) when no end is in the history. One
 * address has one holder at a time, so in time order the events of one
 * tenure follow each other: one pass over runs of equal (identity, start).
 */
static json_t *
covering(json_t *events, int64_t at)
{
	json_t *out = json_array();
	size_t n = json_array_size(events), i = 0;

	while (i < n) {
		json_t *e = json_array_get(events, i);
		const char *id = str_of(e, "identity");
		json_int_t start = json_integer_value(json_object_get(e, "start_t")), end = 0;
		bool ended = false;
		size_t j;

		for (j = i; j < n; j++) {
			json_t *f = json_array_get(events, j);
			const char *ev = str_of(f, "event");

			if (strcmp(str_of(f, "identity"), id) ||
			    json_integer_value(json_object_get(f, "start_t")) != start)
				break;
			if (ended)
				continue;
			if (!strcmp(ev, "release") || !strcmp(ev, "expire") ||
			    !strcmp(ev, "revoke")) {
				end = json_integer_value(json_object_get(f, "t"));
				ended = true;
			} else if (json_integer_value(json_object_get(f, "expiry_t")) > end) {
				end = json_integer_value(json_object_get(f, "expiry_t"));
			}
		}
		if (start <= at && at <= end)
			for (size_t k = i; k < j; k++)
				json_array_append(out, json_array_get(events, k));
		i = j;
	}
	return out;
}

static int
usage_history(void)
{
	fputs("usage: dstmctl history ADDRESS [--at TIME] [--limit N]\n"
	      "       dstmctl history --client ID [--at TIME] [--limit N]\n"
	      "TIME: 2026-03-03T10:14:00Z, \"2026-03-03 10:14\" (UTC) or @SECONDS\n",
	      stderr);
	return 2;
}

int
dstmctl_history(const char *path, int argc, char **argv, bool as_json, unsigned timeout_ms)
{
	static const struct option opts[] = {
	    {"at", required_argument, NULL, 't'},
	    {"client", required_argument, NULL, 'c'},
	    {"limit", required_argument, NULL, 'l'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	json_t *args = json_object(), *all = json_array(), *res = NULL, *next, *out;
	const char *address = NULL, *client = NULL;
	unsigned long long limit = 0;
	bool has_at = false, first = true;
	int64_t at = 0;
	struct cols c;
	int ch, rc = 0;

	optind = 0; /* glibc: start over (main's getopt left its own state) */
	opterr = 1;
	/* Options and the address in any order: permute. */
	while ((ch = getopt_long(argc, argv, "-", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (address) {
				fprintf(stderr, "dstmctl: history: %s: one address\n", optarg);
				goto usage;
			}
			address = optarg;
			break;
		case 't':
			if (!parse_time(optarg, &at)) {
				fprintf(stderr, "dstmctl: history: --at %s: not a time\n", optarg);
				goto usage;
			}
			has_at = true;
			break;
		case 'c':
			client = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'l':
			if (!parse_limit("history", optarg, &limit))
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (!address == !client) {
		fprintf(stderr, "dstmctl: history: an ADDRESS or --client ID\n");
		goto usage;
	}
	json_object_set_new(args, address ? "address" : "client",
	                    json_string(address ? address : client));
	/* Step through the whole table; what matches is kept (an address's history is short). */
	for (;;) {
		if ((rc = dstmctl_request(path, "history", args, timeout_ms, &res)) != 0)
			break;
		json_array_extend(all, json_object_get(res, "events"));
		next = json_object_get(res, "next");
		if (!json_is_integer(next))
			break;
		json_object_set(args, "cursor", next);
		json_decref(res);
		res = NULL;
	}
	json_decref(res);
	json_decref(args);
	if (rc != 0) {
		json_decref(all);
		return rc;
	}
	out = has_at ? covering(all, at) : json_incref(all);
	json_decref(all);
	if (limit && json_array_size(out) > limit) {
		/* The latest `limit` events. */
		while (json_array_size(out) > limit)
			json_array_remove(out, 0);
	}
	if (as_json) {
		print_json_rows(out, &first);
		printf(first ? "[]\n" : "\n]\n");
	} else if (json_array_size(out)) {
		cols_init(&c, true);
		print_rows(&c, out, true);
	} else {
		printf("(none)\n");
	}
	json_decref(out);
	return fflush(stdout) == EOF ? 2 : 0;
usage:
	json_decref(args);
	json_decref(all);
	return usage_history();
}
