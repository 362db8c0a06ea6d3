/*
 * The table of dstmctl's verbs and the checker it drives: see verbs.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/verbs.h"

const struct verb verbs[] = {
    {.name = "status",
     .daemon = "every daemon",
     .synopsis = "",
     .help = "what it is doing (dstm-client: lease, TEP, interface)"},
    {.name = "counters",
     .daemon = "every daemon",
     .synopsis = "",
     .help = "its named counters (drops, replies, sessions)"},
    /* leases and history parse their own options (lease_verbs.c): no .args here. */
    {.name = "leases",
     .daemon = "dstmd",
     .synopsis = "[--pool P] [--state S|--all] [--client ID] [--limit N] [--after A]",
     .help = "the leases (IPv4, client, TEP, expiry), fetched page by page"},
    {.name = "history",
     .daemon = "dstmd",
     .synopsis = "ADDRESS [--at TIME] | --client ID",
     .help = "who held an address when, or what a client held (TIME: 2026-03-03T10:14Z)"},
    {.name = "pools",
     .daemon = "dstmd",
     .synopsis = "",
     .help = "each pool: size, used, in quarantine, free"},
    {.name = "teps",
     .daemon = "dstmd",
     .synopsis = "",
     .help = "each TEP: its link's state and queued commands"},
    {.name = "revoke",
     .daemon = "dstmd",
     .synopsis = "ADDRESS [port=N]",
     .help = "end the lease of an IPv4 address now (it goes to quarantine)",
     .positional = {"address"},
     .args = {{.key = "address", .kind = VK_V4, .required = true},
              {.key = "port", .kind = VK_PORT}}},
    {.name = "bindings",
     .daemon = "dstm-tep",
     .synopsis = "[ipv4=ADDRESS] [limit=N]",
     .help = "the IPv4 -> IPv6 binding table (at most limit rows)",
     .args = {{.key = "ipv4", .kind = VK_V4}, {.key = "limit", .kind = VK_INT}}},
    {.name = "binding-add",
     .daemon = "dstm-tep",
     .synopsis = "IPV4 IPV6 [port_lo=N port_hi=N]",
     .help = "add a binding by hand",
     .positional = {"ipv4", "ipv6"},
     .args = {{.key = "ipv4", .kind = VK_V4, .required = true},
              {.key = "ipv6", .kind = VK_V6, .required = true},
              {.key = "port_lo", .kind = VK_PORT},
              {.key = "port_hi", .kind = VK_PORT}}},
    {.name = "binding-del",
     .daemon = "dstm-tep",
     .synopsis = "IPV4 [port_lo=N]",
     .help = "remove a binding (every port range of the address without port_lo)",
     .positional = {"ipv4"},
     .args = {{.key = "ipv4", .kind = VK_V4, .required = true},
              {.key = "port_lo", .kind = VK_PORT}}},
};
const size_t nverbs = sizeof(verbs) / sizeof(verbs[0]);

const struct verb *
verb_find(const char *name)
{
	for (size_t i = 0; i < nverbs; i++)
		if (!strcmp(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

static const struct verb_arg *
arg_find(const struct verb *v, const char *key)
{
	for (size_t i = 0; i < VERB_MAX_ARGS && v->args[i].key; i++)
		if (!strcmp(v->args[i].key, key))
			return &v->args[i];
	return NULL;
}

static const char *const kind_names[] = {"a string",        "a whole number",  "true or false",
                                         "an IPv4 address", "an IPv6 address", "a port (0-65535)"};

static bool
is_uint(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 18;
}

/* The value of a word for `a`, or NULL when it is not of its kind. */
static json_t *
word_value(const struct verb_arg *a, const char *s)
{
	struct in6_addr v6;
	struct in_addr v4;

	switch (a->kind) {
	case VK_INT:
	case VK_PORT:
		if (!is_uint(s) || (a->kind == VK_PORT && strtoll(s, NULL, 10) > 65535))
			return NULL;
		return json_integer(strtoll(s, NULL, 10));
	case VK_BOOL:
		if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1") || !strcmp(s, "on"))
			return json_true();
		if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0") || !strcmp(s, "off"))
			return json_false();
		return NULL;
	case VK_V4:
		return inet_pton(AF_INET, s, &v4) == 1 ? json_string(s) : NULL;
	case VK_V6:
		return inet_pton(AF_INET6, s, &v6) == 1 ? json_string(s) : NULL;
	case VK_STR:
		return json_string(s);
	}
	return NULL;
}

/* A KEY:=JSON value must be of the argument's kind too. */
static bool
json_fits(const struct verb_arg *a, json_t *j)
{
	switch (a->kind) {
	case VK_INT:
		return json_is_integer(j) && json_integer_value(j) >= 0;
	case VK_PORT:
		return json_is_integer(j) && json_integer_value(j) >= 0 &&
		       json_integer_value(j) <= 65535;
	case VK_BOOL:
		return json_is_boolean(j);
	case VK_V4:
	case VK_V6: {
		json_t *w;
		bool ok;

		if (!json_is_string(j))
			return false;
		w = word_value(a, json_string_value(j));
		ok = w != NULL;
		json_decref(w);
		return ok;
	}
	case VK_STR:
		return json_is_string(j);
	}
	return false;
}

/* Set key = value (word or JSON) after checking both; false with err. */
static bool
set_arg(const struct verb *v, json_t *args, const char *key, const char *word, bool raw, char *err,
        size_t errlen)
{
	const struct verb_arg *a = arg_find(v, key);
	json_t *val;

	if (!a) {
		snprintf(err, errlen, "%s: no argument \"%s\" (%s %s)", v->name, key, v->name,
		         v->synopsis[0] ? v->synopsis : "takes none");
		return false;
	}
	if (json_object_get(args, key)) {
		snprintf(err, errlen, "%s: \"%s\" is given twice", v->name, key);
		return false;
	}
	if (raw) {
		json_error_t jerr;

		if (!(val = json_loads(word, JSON_DECODE_ANY, &jerr))) {
			snprintf(err, errlen, "%s: %s: bad JSON: %s", v->name, key, jerr.text);
			return false;
		}
		if (!json_fits(a, val)) {
			json_decref(val);
			val = NULL;
		}
	} else {
		val = word_value(a, word);
	}
	if (!val) {
		snprintf(err, errlen, "%s: %s=%s: must be %s", v->name, key, word,
		         kind_names[a->kind]);
		return false;
	}
	json_object_set_new(args, key, val);
	return true;
}

json_t *
verb_parse(const struct verb *v, int argc, char *const *argv, char *err, size_t errlen)
{
	json_t *args = json_object();
	size_t npos = 0;
	char key[128];

	for (int k = 0; k < argc; k++) {
		const char *w = argv[k], *eq = strchr(w, '=');

		if (!strncmp(w, "--", 2) && w[2]) {
			/* --KEY VALUE, --KEY=VALUE, or --KEY alone for a boolean. */
			const char *name = w + 2;
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const struct verb_arg *a;

			if (len >= sizeof(key))
				len = sizeof(key) - 1;
			memcpy(key, name, len);
			key[len] = '\0';
			a = arg_find(v, key);
			if (eq) {
				if (!set_arg(v, args, key, eq + 1, false, err, errlen))
					goto fail;
			} else if (a && a->kind == VK_BOOL &&
			           (k + 1 >= argc || !word_value(a, argv[k + 1]))) {
				if (!set_arg(v, args, key, "true", false, err, errlen))
					goto fail;
			} else if (k + 1 < argc) {
				if (!set_arg(v, args, key, argv[++k], false, err, errlen))
					goto fail;
			} else {
				snprintf(err, errlen, "%s: --%s needs a value", v->name, key);
				goto fail;
			}
			continue;
		}
		if (eq && eq != w) {
			size_t len = (size_t)(eq - w);
			bool raw = w[len - 1] == ':';

			len -= raw;
			if (len == 0 || len >= sizeof(key)) {
				snprintf(err, errlen, "%s: %s: bad KEY=VALUE", v->name, w);
				goto fail;
			}
			memcpy(key, w, len);
			key[len] = '\0';
			if (!set_arg(v, args, key, eq + 1, raw, err, errlen))
				goto fail;
			continue;
		}
		if (npos >= 3 || !v->positional[npos]) {
			snprintf(err, errlen, "%s: unexpected argument \"%s\" (%s %s)", v->name, w,
			         v->name, v->synopsis[0] ? v->synopsis : "takes none");
			goto fail;
		}
		if (!set_arg(v, args, v->positional[npos++], w, false, err, errlen))
			goto fail;
	}
	for (size_t i = 0; i < VERB_MAX_ARGS && v->args[i].key; i++)
		if (v->args[i].required && !json_object_get(args, v->args[i].key)) {
			snprintf(err, errlen, "%s: %s is missing (%s %s)", v->name, v->args[i].key,
			         v->name, v->synopsis);
			goto fail;
		}
	return args;
fail:
	json_decref(args);
	return NULL;
}

void
verbs_usage(FILE *f)
{
	const char *last = "";

	fputs("Commands:\n", f);
	for (size_t i = 0; i < nverbs; i++) {
		char head[128];

		snprintf(head, sizeof(head), "%s%s%s", verbs[i].name,
		         verbs[i].synopsis[0] ? " " : "", verbs[i].synopsis);
		/* A long synopsis gets the help on a line of its own. */
		if (strlen(head) > 34)
			fprintf(f, "  %-13s %s\n  %-13s %-34s %s\n",
			        strcmp(last, verbs[i].daemon) ? verbs[i].daemon : "", head, "", "",
			        verbs[i].help);
		else
			fprintf(f, "  %-13s %-34s %s\n",
			        strcmp(last, verbs[i].daemon) ? verbs[i].daemon : "", head,
			        verbs[i].help);
		last = verbs[i].daemon;
	}
}
