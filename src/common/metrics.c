/*
 * Prometheus text format and its HTTP server: see metrics.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"

/* How long a scrape waits for the loop to render before it answers 503. */
#define METRICS_RENDER_WAIT_S 5

static void
put(struct metrics_text *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *b;

		while (cap < t->len + n + 1)
			cap *= 2;
		if (!(b = realloc(t->buf, cap))) {
			t->oom = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void
puts_(struct metrics_text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void putf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
putf(struct metrics_text *t, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void
metrics_text_free(struct metrics_text *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

/* HELP text escapes \ and newline; label values also ". */
static void
put_escaped(struct metrics_text *t, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(t, "\\\\");
		else if (*s == '\n')
			puts_(t, "\\n");
		else if (quote && *s == '"')
			puts_(t, "\\\"");
		else
			put(t, s, 1);
	}
}

void
metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
	putf(t, "# HELP %s ", name);
	put_escaped(t, help, false);
	putf(t, "\n# TYPE %s %s\n", name, type);
}

static void
put_labels(struct metrics_text *t, va_list ap)
{
	const char *k, *v;
	bool first = true;

	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		puts_(t, first ? "{" : ",");
		first = false;
		puts_(t, k);
		puts_(t, "=\"");
		put_escaped(t, v ? v : "", true);
		puts_(t, "\"");
	}
	if (!first)
		puts_(t, "}");
}

void
metrics_u64(struct metrics_text *t, const char *name, uint64_t v, ...)
{
	va_list ap;

	puts_(t, name);
	va_start(ap, v);
	put_labels(t, ap);
	va_end(ap);
	putf(t, " %llu\n", (unsigned long long)v);
}

static void
put_dbl(struct metrics_text *t, double v)
{
	if (isnan(v))
		puts_(t, "NaN");
	else if (isinf(v))
		puts_(t, v > 0 ? "+Inf" : "-Inf");
	else
		putf(t, "%.17g", v);
}

void
metrics_dbl(struct metrics_text *t, const char *name, double v, ...)
{
	va_list ap;

	puts_(t, name);
	va_start(ap, v);
	put_labels(t, ap);
	va_end(ap);
	puts_(t, " ");
	put_dbl(t, v);
	puts_(t, "\n");
}

void
metrics_hist_init(struct metrics_hist *h, const double *le, unsigned n)
{
	memset(h, 0, sizeof(*h));
	h->n = n < METRICS_HIST_MAX ? n : METRICS_HIST_MAX;
	memcpy(h->le, le, h->n * sizeof(*le));
}

void
metrics_hist_observe(struct metrics_hist *h, double v)
{
	unsigned i;

	for (i = 0; i < h->n && v > h->le[i]; i++)
		;
	if (i < h->n)
		h->bucket[i]++;
	h->count++;
	h->sum += v;
}

void
metrics_hist_write(struct metrics_text *t, const char *name, const char *help,
                   const struct metrics_hist *h)
{
	uint64_t cum = 0;

	metrics_family(t, name, "histogram", help);
	for (unsigned i = 0; i < h->n; i++) {
		cum += h->bucket[i];
		putf(t, "%s_bucket{le=\"", name);
		put_dbl(t, h->le[i]);
		putf(t, "\"} %llu\n", (unsigned long long)cum);
	}
	putf(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	putf(t, "%s_sum ", name);
	put_dbl(t, h->sum);
	putf(t, "\n%s_count %llu\n", name, (unsigned long long)h->count);
}

static bool
listed(const char *k, const char *const *names)
{
	for (; names && *names; names++)
		if (!strcmp(k, *names))
			return true;
	return false;
}

void
metrics_json_counters(struct metrics_text *t, const char *prefix, json_t *o,
                      const char *const *gauges)
{
	const char *k;
	json_t *v;
	char name[192], help[256], reason[128];
	bool drops = false;

	json_object_foreach(o, k, v)
	{
		bool gauge = listed(k, gauges);

		if (!json_is_integer(v) || json_integer_value(v) < 0)
			continue;
		if (strstr(k, "drop_")) {
			drops = true;
			continue;
		}
		snprintf(name, sizeof(name), "%s_%s%s", prefix, k, gauge ? "" : "_total");
		snprintf(help, sizeof(help), "%s \"%s\" of the control socket's counters",
		         gauge ? "gauge" : "counter", k);
		metrics_family(t, name, gauge ? "gauge" : "counter", help);
		metrics_u64(t, name, (uint64_t)json_integer_value(v), NULL);
	}
	if (!drops)
		return;
	snprintf(name, sizeof(name), "%s_drops_total", prefix);
	metrics_family(t, name, "counter",
	               "input dropped, by reason (the drop_ counters of the control socket)");
	json_object_foreach(o, k, v)
	{
		const char *d = strstr(k, "drop_");

		if (!d || !json_is_integer(v) || json_integer_value(v) < 0)
			continue;
		snprintf(reason, sizeof(reason), "%.*s%s", (int)(d - k), k, d + 5);
		metrics_u64(t, name, (uint64_t)json_integer_value(v), "reason", reason, NULL);
	}
}

/* ---------------------------------------------------------------- server */

struct metrics {
	struct MHD_Daemon *mhd;
	struct event *ev;
	int pipe[2]; /* MHD thread -> loop: "render, please" */
	metrics_render_fn render;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t asked, done; /* render generations, under mu */
	char *page;           /* the last rendered page, under mu */
	size_t len;
};

static const char not_found[] = "not found: try /metrics\n";
static const char unavailable[] = "the daemon did not render its metrics in time\n";

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned code, const char *type, const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

/* On MHD's thread: ask the loop for a fresh page and wait for it. */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct metrics *m = cls;
	struct timespec until;
	uint64_t mine;
	enum MHD_Result rc;
	int err = 0;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found, sizeof(not_found) - 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += METRICS_RENDER_WAIT_S;
	pthread_mutex_lock(&m->mu);
	mine = ++m->asked;
	/* A full pipe already holds a request the loop will see. */
	(void)!write(m->pipe[1], "m", 1);
	while (m->done < mine && err == 0)
		err = pthread_cond_timedwait(&m->cv, &m->mu, &until);
	if (m->done < mine)
		rc = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", unavailable,
		           sizeof(unavailable) - 1);
	else
		rc = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", m->page,
		           m->len);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

/* On the loop's thread, between events: render and hand the page over. */
static void
on_ask(evutil_socket_t fd, short ev, void *arg)
{
	struct metrics *m = arg;
	struct metrics_text t = {0};
	char drain[64];
	uint64_t upto;

	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&m->mu);
	upto = m->asked;
	pthread_mutex_unlock(&m->mu);
	m->render(m->arg, &t);
	if (t.oom) {
		log_warnx("metrics: out of memory rendering the page");
		metrics_text_free(&t);
		return;
	}
	log_trace("metrics: rendered %zu bytes", t.len);
	pthread_mutex_lock(&m->mu);
	free(m->page);
	m->page = t.buf ? t.buf : strdup("");
	m->len = t.len;
	m->done = upto;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

struct metrics *
metrics_start(struct event_base *base, const struct sockaddr *sa, socklen_t len,
              metrics_render_fn render, void *arg)
{
	struct metrics *m = calloc(1, sizeof(*m));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	int e;

	if (!m)
		return NULL;
	m->pipe[0] = m->pipe[1] = -1;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->render = render;
	m->arg = arg;
	if (pipe2(m->pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		goto fail;
	if (!(m->ev = event_new(base, m->pipe[0], EV_READ | EV_PERSIST, on_ask, m)) ||
	    event_add(m->ev, NULL) != 0) {
		errno = ENOMEM;
		goto fail;
	}
	if (sa->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, sa,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNS,
	                          MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!m->mhd) {
		if (!errno)
			errno = EADDRNOTAVAIL;
		goto fail;
	}
	return m;
fail:
	e = errno;
	metrics_stop(m);
	errno = e;
	return NULL;
}

void
metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	if (m->mhd) {
		/* A scrape waiting for the loop gives up at once: nothing renders now. */
		pthread_mutex_lock(&m->mu);
		m->done = UINT64_MAX;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		MHD_stop_daemon(m->mhd);
	}
	if (m->ev)
		event_free(m->ev);
	if (m->pipe[0] >= 0)
		close(m->pipe[0]);
	if (m->pipe[1] >= 0)
		close(m->pipe[1]);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m->page);
	free(m);
}
