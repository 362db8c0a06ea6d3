/*
 * JSON configuration files with errors an operator can act on. The
 * document is parsed by jansson; a small scanner of our own records the
 * line of every value by its JSON pointer ("/pools/0/prefix"), so that a
 * semantic error reads "dstmd.json:12: /pools/0/prefix: 192.0.2.0/33 is
 * not a prefix". Validation collects every error instead of stopping at
 * the first one. Typed getters report missing, mistyped and out-of-range
 * values themselves; cfg_check_keys() rejects unknown keys, so a typo is
 * an error and not a silently ignored setting.
 */
#ifndef DSTM_CFG_H
#define DSTM_CFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct cfg;

/* NULL with `err` filled ("file:line:col: message") on a syntax error. */
struct cfg *cfg_load(const char *path, char *err, size_t errlen);
/* Parse a document held in memory; `name` stands in for the file name. */
struct cfg *cfg_load_buffer(const char *name, const char *text, size_t len, char *err,
                            size_t errlen);
void cfg_free(struct cfg *c);

json_t *cfg_root(const struct cfg *c);
const char *cfg_path(const struct cfg *c);
/* The value at a JSON pointer, or NULL. */
json_t *cfg_at(const struct cfg *c, const char *ptr);
/* Line of the value at `ptr`, or of its nearest ancestor present; 0 if none. */
int cfg_line(const struct cfg *c, const char *ptr);

/* Record an error at `ptr`; printed as "file:line: ptr: message". */
void cfg_error(struct cfg *c, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cfg_nerrors(const struct cfg *c);
void cfg_print_errors(const struct cfg *c, FILE *f);

/*
 * Typed getters. `ptr` names the value. When it is absent, `required`
 * records an error and otherwise `*out` gets `dflt`. They return false
 * when they recorded an error.
 */
bool cfg_str(struct cfg *c, const char *ptr, bool required, const char *dflt, const char **out);
bool cfg_int(struct cfg *c, const char *ptr, bool required, long long dflt, long long min,
             long long max, long long *out);
bool cfg_bool(struct cfg *c, const char *ptr, bool required, bool dflt, bool *out);
/* An array (absent is an empty array unless required); its length in *n. */
bool cfg_array(struct cfg *c, const char *ptr, bool required, size_t *n);
/* One of `choices` (NULL-terminated); *out is its index. */
bool cfg_enum(struct cfg *c, const char *ptr, bool required, int dflt, const char *const *choices,
              int *out);
/* Every key of the object at `ptr` must be in `allowed` (NULL-terminated). */
bool cfg_check_keys(struct cfg *c, const char *ptr, const char *const *allowed);

/*
 * A reload's check of the part fixed at start: each key whose value B
 * (as read again) changes from A (as running) or that B drops is logged
 * with its file:line in PATH, read into C; how many there are. PROG
 * names the program that must restart to apply them.
 */
int cfg_fixed_changes(const struct cfg *c, const char *path, const char *prog, json_t *a,
                      json_t *b);

/* Print the document normalized (sorted keys, two-space indent). */
void cfg_dump(const struct cfg *c, FILE *f);

#endif
