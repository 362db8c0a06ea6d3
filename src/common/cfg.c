/*
 * JSON configuration with line numbers: see cfg.h. The position scanner
 * walks the same text jansson accepted, so it needs no error handling of
 * its own beyond staying in bounds; it records (pointer, line) for every
 * value, bounded in depth.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/log.h"

#define CFG_MAX_DEPTH  32
#define CFG_MAX_ERRORS 64

struct cfg_pos {
	char *ptr;
	int line;
};

struct cfg {
	char *name;
	json_t *root;
	struct cfg_pos *pos;
	size_t npos, cappos;
	char *errors[CFG_MAX_ERRORS];
	int nerrors;
};

struct scan {
	const char *s;
	size_t i, n;
	int line;
	struct cfg *c;
};

static void
pos_add(struct cfg *c, const char *ptr, int line)
{
	if (c->npos == c->cappos) {
		size_t cap = c->cappos ? c->cappos * 2 : 64;
		struct cfg_pos *p = realloc(c->pos, cap * sizeof(*p));
		if (!p)
			return;
		c->pos = p;
		c->cappos = cap;
	}
	c->pos[c->npos].ptr = strdup(ptr);
	c->pos[c->npos].line = line;
	if (c->pos[c->npos].ptr)
		c->npos++;
}

static void
skip_ws(struct scan *sc)
{
	while (sc->i < sc->n) {
		char ch = sc->s[sc->i];
		if (ch == '\n')
			sc->line++;
		else if (ch != ' ' && ch != '\t' && ch != '\r')
			break;
		sc->i++;
	}
}

/* Read a JSON string at sc->i into out (escaped as a pointer token). */
static void
scan_string(struct scan *sc, char *out, size_t outlen)
{
	size_t o = 0;

	sc->i++; /* opening quote */
	while (sc->i < sc->n && sc->s[sc->i] != '"') {
		char ch = sc->s[sc->i++];
		if (ch == '\\' && sc->i < sc->n)
			ch = sc->s[sc->i++];
		if (!out || o + 3 >= outlen)
			continue;
		/* RFC 6901: '~' is "~0" and '/' is "~1" in a pointer. */
		if (ch == '~') {
			out[o++] = '~';
			out[o++] = '0';
		} else if (ch == '/') {
			out[o++] = '~';
			out[o++] = '1';
		} else {
			out[o++] = ch;
		}
	}
	sc->i++; /* closing quote */
	if (out)
		out[o] = '\0';
}

static void scan_value(struct scan *sc, char *ptr, size_t plen, int depth);

static void
scan_value(struct scan *sc, char *ptr, size_t plen, int depth)
{
	size_t base = strlen(ptr);

	skip_ws(sc);
	if (sc->i >= sc->n)
		return;
	pos_add(sc->c, ptr[0] ? ptr : "/", sc->line);
	if (depth > CFG_MAX_DEPTH) {
		sc->i = sc->n;
		return;
	}
	switch (sc->s[sc->i]) {
	case '{':
		sc->i++;
		for (;;) {
			char key[256];

			skip_ws(sc);
			if (sc->i >= sc->n || sc->s[sc->i] == '}') {
				sc->i++;
				break;
			}
			if (sc->s[sc->i] == ',') {
				sc->i++;
				continue;
			}
			if (sc->s[sc->i] != '"') {
				sc->i = sc->n;
				break;
			}
			scan_string(sc, key, sizeof(key));
			skip_ws(sc);
			if (sc->i < sc->n && sc->s[sc->i] == ':')
				sc->i++;
			snprintf(ptr + base, plen - base, "/%s", key);
			scan_value(sc, ptr, plen, depth + 1);
			ptr[base] = '\0';
		}
		break;
	case '[': {
		unsigned idx = 0;

		sc->i++;
		for (;;) {
			skip_ws(sc);
			if (sc->i >= sc->n || sc->s[sc->i] == ']') {
				sc->i++;
				break;
			}
			if (sc->s[sc->i] == ',') {
				sc->i++;
				continue;
			}
			snprintf(ptr + base, plen - base, "/%u", idx++);
			scan_value(sc, ptr, plen, depth + 1);
			ptr[base] = '\0';
		}
		break;
	}
	case '"':
		scan_string(sc, NULL, 0);
		break;
	default:
		while (sc->i < sc->n && !strchr(",]} \t\r\n", sc->s[sc->i]))
			sc->i++;
		break;
	}
}

struct cfg *
cfg_load_buffer(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	struct cfg *c;
	json_error_t je;
	struct scan sc;
	char ptr[1024] = "";

	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name))) {
		snprintf(err, errlen, "%s: out of memory", name);
		free(c);
		return NULL;
	}
	c->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!c->root) {
		snprintf(err, errlen, "%s:%d:%d: %s", name, je.line, je.column, je.text);
		cfg_free(c);
		return NULL;
	}
	sc = (struct scan){.s = text, .i = 0, .n = len, .line = 1, .c = c};
	scan_value(&sc, ptr, sizeof(ptr), 0);
	return c;
}

struct cfg *
cfg_load(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0, r;
	struct cfg *c;

	if (!(f = fopen(path, "r"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (len + 4096 > cap) {
			char *t;
			cap = cap ? cap * 2 : 8192;
			if (cap > (16u << 20) || !(t = realloc(text, cap))) {
				snprintf(err, errlen, "%s: too large", path);
				free(text);
				fclose(f);
				return NULL;
			}
			text = t;
		}
		r = fread(text + len, 1, cap - len, f);
		len += r;
	} while (r > 0);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		free(text);
		fclose(f);
		return NULL;
	}
	fclose(f);
	c = cfg_load_buffer(path, text ? text : "", len, err, errlen);
	free(text);
	return c;
}

void
cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npos; i++)
		free(c->pos[i].ptr);
	free(c->pos);
	for (int i = 0; i < c->nerrors; i++)
		free(c->errors[i]);
	json_decref(c->root);
	free(c->name);
	free(c);
}

json_t *
cfg_root(const struct cfg *c)
{
	return c->root;
}

const char *
cfg_path(const struct cfg *c)
{
	return c->name;
}

json_t *
cfg_at(const struct cfg *c, const char *ptr)
{
	json_t *v = c->root;
	const char *p = ptr;

	if (!strcmp(ptr, "") || !strcmp(ptr, "/"))
		return v;
	while (v && *p == '/') {
		char tok[256];
		size_t o = 0;

		p++;
		while (*p && *p != '/' && o + 1 < sizeof(tok)) {
			if (p[0] == '~' && p[1] == '1') {
				tok[o++] = '/';
				p += 2;
			} else if (p[0] == '~' && p[1] == '0') {
				tok[o++] = '~';
				p += 2;
			} else {
				tok[o++] = *p++;
			}
		}
		tok[o] = '\0';
		if (json_is_object(v)) {
			v = json_object_get(v, tok);
		} else if (json_is_array(v)) {
			char *end;
			unsigned long idx = strtoul(tok, &end, 10);
			v = (*end || !*tok) ? NULL : json_array_get(v, idx);
		} else {
			v = NULL;
		}
	}
	return v;
}

int
cfg_line(const struct cfg *c, const char *ptr)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", ptr[0] ? ptr : "/");
	for (;;) {
		for (size_t i = 0; i < c->npos; i++)
			if (!strcmp(c->pos[i].ptr, buf))
				return c->pos[i].line;
		char *slash = strrchr(buf, '/');
		if (!slash || slash == buf) {
			if (strcmp(buf, "/") == 0)
				return 0;
			strcpy(buf, "/");
			continue;
		}
		*slash = '\0';
	}
}

void
cfg_error(struct cfg *c, const char *ptr, const char *fmt, ...)
{
	char msg[512], *line;
	va_list ap;

	if (c->nerrors >= CFG_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&line, "%s:%d: %s: %s", c->name, cfg_line(c, ptr), ptr[0] ? ptr : "/", msg) <
	    0)
		return;
	c->errors[c->nerrors++] = line;
}

int
cfg_nerrors(const struct cfg *c)
{
	return c->nerrors;
}

void
cfg_print_errors(const struct cfg *c, FILE *f)
{
	for (int i = 0; i < c->nerrors; i++)
		fprintf(f, "%s\n", c->errors[i]);
}

bool
cfg_str(struct cfg *c, const char *ptr, bool required, const char *dflt, const char **out)
{
	json_t *v = cfg_at(c, ptr);

	*out = dflt;
	if (!v) {
		if (required)
			cfg_error(c, ptr, "missing; it is required");
		return !required;
	}
	if (!json_is_string(v)) {
		cfg_error(c, ptr, "must be a string");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool
cfg_int(struct cfg *c, const char *ptr, bool required, long long dflt, long long min, long long max,
        long long *out)
{
	json_t *v = cfg_at(c, ptr);

	*out = dflt;
	if (!v) {
		if (required)
			cfg_error(c, ptr, "missing; it is required");
		return !required;
	}
	if (!json_is_integer(v)) {
		cfg_error(c, ptr, "must be an integer between %lld and %lld", min, max);
		return false;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		cfg_error(c, ptr, "%lld is out of range; use %lld to %lld", json_integer_value(v),
		          min, max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

bool
cfg_bool(struct cfg *c, const char *ptr, bool required, bool dflt, bool *out)
{
	json_t *v = cfg_at(c, ptr);

	*out = dflt;
	if (!v) {
		if (required)
			cfg_error(c, ptr, "missing; it is required");
		return !required;
	}
	if (!json_is_boolean(v)) {
		cfg_error(c, ptr, "must be true or false");
		return false;
	}
	*out = json_is_true(v);
	return true;
}

bool
cfg_array(struct cfg *c, const char *ptr, bool required, size_t *n)
{
	json_t *v = cfg_at(c, ptr);

	*n = 0;
	if (!v) {
		if (required)
			cfg_error(c, ptr, "missing; it is required");
		return !required;
	}
	if (!json_is_array(v)) {
		cfg_error(c, ptr, "must be an array");
		return false;
	}
	*n = json_array_size(v);
	return true;
}

bool
cfg_enum(struct cfg *c, const char *ptr, bool required, int dflt, const char *const *choices,
         int *out)
{
	const char *s;
	char list[256] = "";

	*out = dflt;
	if (!cfg_str(c, ptr, required, NULL, &s))
		return false;
	if (!s)
		return true;
	for (int i = 0; choices[i]; i++) {
		if (!strcmp(s, choices[i])) {
			*out = i;
			return true;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
		         i ? ", " : "", choices[i]);
	}
	cfg_error(c, ptr, "\"%s\" is not one of %s", s, list);
	return false;
}

bool
cfg_check_keys(struct cfg *c, const char *ptr, const char *const *allowed)
{
	json_t *obj = cfg_at(c, ptr);
	const char *key;
	json_t *v;
	bool ok = true;

	if (!obj)
		return true;
	if (!json_is_object(obj)) {
		cfg_error(c, ptr, "must be an object");
		return false;
	}
	json_object_foreach(obj, key, v)
	{
		bool known = false;
		char sub[1024];

		for (int i = 0; allowed[i] && !known; i++)
			known = !strcmp(key, allowed[i]);
		if (known)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(ptr, "/") ? ptr : "", key);
		cfg_error(c, sub, "unknown key \"%s\" (check its spelling; see the man page)", key);
		ok = false;
	}
	return ok;
}

void
cfg_dump(const struct cfg *c, FILE *f)
{
	json_dumpf(c->root, f, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', f);
}

int
cfg_fixed_changes(const struct cfg *c, const char *path, const char *prog, json_t *a, json_t *b)
{
	const char *k;
	json_t *v;
	int n = 0;

	json_object_foreach(b, k, v)
	{
		char ptr[80];

		if (json_equal(v, json_object_get(a, k)))
			continue;
		snprintf(ptr, sizeof(ptr), "/%s", k);
		log_warnx("%s:%d: %s: cannot change while %s runs; restart it to apply", path,
		          cfg_line(c, ptr), ptr, prog);
		n++;
	}
	json_object_foreach(a, k, v) if (!json_object_get(b, k))
	{
		log_warnx("%s: /%s: cannot be removed while %s runs; restart it to apply", path, k,
		          prog);
		n++;
	}
	return n;
}
