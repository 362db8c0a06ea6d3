/*
 * Metrics in the Prometheus text exposition format (version 0.0.4), served
 * over HTTP by libmicrohttpd. Two halves:
 *
 *  - a formatter, pure and unit-tested: families (# HELP, # TYPE), samples
 *    with escaped label values, and fixed-bucket histograms;
 *  - a server: MHD answers GET /metrics on its own thread. It never reads
 *    the daemon's state itself: it asks the event loop (a byte on a pipe),
 *    the loop's render callback writes the whole page between two events,
 *    where every structure is consistent, and the MHD thread serves that
 *    snapshot. A scrape therefore costs the loop one render and nothing
 *    when nobody scrapes; the only shared data is the finished page, under
 *    one mutex.
 *
 * Untrusted input: the request line and headers, parsed by MHD; we look at
 * the method and the path only. At most METRICS_MAX_CONNS connections,
 * each timed out after 10 s.
 */
#ifndef DSTM_METRICS_H
#define DSTM_METRICS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define METRICS_PORT      9653
#define METRICS_MAX_CONNS 16
#define METRICS_HIST_MAX  16

/* A page being written; `oom` stays set after a failed allocation. */
struct metrics_text {
	char *buf;
	size_t len, cap;
	bool oom;
};

void metrics_text_free(struct metrics_text *t);
/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help);
/*
 * One sample: `name{k1="v1",...} value`. The labels are key, value pairs
 * ending with NULL; values are escaped (\\, \", \n).
 */
void metrics_u64(struct metrics_text *t, const char *name, uint64_t v, ...)
    __attribute__((sentinel));
void metrics_dbl(struct metrics_text *t, const char *name, double v, ...) __attribute__((sentinel));

/* A histogram with fixed upper bounds (ascending), as Prometheus sums it. */
struct metrics_hist {
	unsigned n;
	double le[METRICS_HIST_MAX];
	uint64_t bucket[METRICS_HIST_MAX]; /* not cumulative; +Inf is count */
	uint64_t count;
	double sum;
};

void metrics_hist_init(struct metrics_hist *h, const double *le, unsigned n);
void metrics_hist_observe(struct metrics_hist *h, double v);
/* The family, its cumulative _bucket lines, _sum and _count. */
void metrics_hist_write(struct metrics_text *t, const char *name, const char *help,
                        const struct metrics_hist *h);

/*
 * A control socket's "counters" object as metrics: a key in `gauges`
 * (NULL-terminated) is a gauge PREFIX_KEY; a key with "drop_" in it is a
 * sample of one family PREFIX_drops_total{reason="..."} (the key without
 * "drop_"); every other integer is a counter PREFIX_KEY_total.
 */
struct json_t;
void metrics_json_counters(struct metrics_text *t, const char *prefix, struct json_t *o,
                           const char *const *gauges);

/* Write the daemon's whole page into `t` (called on the loop's thread). */
typedef void (*metrics_render_fn)(void *arg, struct metrics_text *t);

struct metrics;

/*
 * Serve http://ADDR/metrics: NULL with errno set when the address cannot
 * be bound. Call before dropping privileges and installing seccomp (the
 * server's thread is created here).
 */
struct metrics *metrics_start(struct event_base *base, const struct sockaddr *sa, socklen_t len,
                              metrics_render_fn render, void *arg);
void metrics_stop(struct metrics *m);

#endif
