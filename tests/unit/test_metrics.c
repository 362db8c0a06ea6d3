/*
 * common/metrics: the Prometheus text formatter (exact text out for
 * families, labels with characters to escape, special floats, histograms
 * and control-socket counters) and the HTTP server (a scrape is rendered
 * by the event loop's thread; other paths get 404).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/metrics.h"

static void
test_family_and_samples(void **state)
{
	struct metrics_text t = {0};

	metrics_family(&t, "x_leases", "gauge", "leases \\ by pool\nand state");
	metrics_u64(&t, "x_leases", 3, "pool", "a\"b\\c\nd", "state", "active", NULL);
	metrics_u64(&t, "x_leases", 18446744073709551615ull, NULL);
	metrics_dbl(&t, "x_ratio", 0.25, NULL);
	metrics_dbl(&t, "x_ratio", NAN, "k", "v", NULL);
	metrics_dbl(&t, "x_ratio", INFINITY, NULL);
	metrics_dbl(&t, "x_ratio", -INFINITY, NULL);
	assert_false(t.oom);
	assert_string_equal(t.buf, "# HELP x_leases leases \\\\ by pool\\nand state\n"
	                           "# TYPE x_leases gauge\n"
	                           "x_leases{pool=\"a\\\"b\\\\c\\nd\",state=\"active\"} 3\n"
	                           "x_leases 18446744073709551615\n"
	                           "x_ratio 0.25\n"
	                           "x_ratio{k=\"v\"} NaN\n"
	                           "x_ratio +Inf\n"
	                           "x_ratio -Inf\n");
	metrics_text_free(&t);
}

static void
test_histogram(void **state)
{
	static const double le[] = {0.001, 0.01, 0.1};
	struct metrics_hist h;
	struct metrics_text t = {0};

	metrics_hist_init(&h, le, 3);
	metrics_hist_observe(&h, 0.0005);
	metrics_hist_observe(&h, 0.001); /* le is inclusive */
	metrics_hist_observe(&h, 0.05);
	metrics_hist_observe(&h, 2);
	metrics_hist_write(&t, "x_commit_seconds", "commit latency", &h);
	assert_string_equal(t.buf, "# HELP x_commit_seconds commit latency\n"
	                           "# TYPE x_commit_seconds histogram\n"
	                           "x_commit_seconds_bucket{le=\"0.001\"} 2\n"
	                           "x_commit_seconds_bucket{le=\"0.01\"} 2\n"
	                           "x_commit_seconds_bucket{le=\"0.10000000000000001\"} 3\n"
	                           "x_commit_seconds_bucket{le=\"+Inf\"} 4\n"
	                           "x_commit_seconds_sum 2.0514999999999999\n"
	                           "x_commit_seconds_count 4\n");
	metrics_text_free(&t);
}

static void
test_json_counters(void **state)
{
	static const char *const gauges[] = {"sessions_now", NULL};
	json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:s}", "creates", 7, "sessions_now", 2,
	                      "drop_bad_type", 1, "dhcp6_drop_no_duid", 4, "name", "not a number");
	struct metrics_text t = {0};

	metrics_json_counters(&t, "x", o, gauges);
	json_decref(o);
	assert_string_equal(t.buf,
	                    "# HELP x_creates_total counter \"creates\" of the control socket's "
	                    "counters\n"
	                    "# TYPE x_creates_total counter\n"
	                    "x_creates_total 7\n"
	                    "# HELP x_sessions_now gauge \"sessions_now\" of the control socket's "
	                    "counters\n"
	                    "# TYPE x_sessions_now gauge\n"
	                    "x_sessions_now 2\n"
	                    "# HELP x_drops_total input dropped, by reason (the drop_ counters of "
	                    "the control socket)\n"
	                    "# TYPE x_drops_total counter\n"
	                    "x_drops_total{reason=\"bad_type\"} 1\n"
	                    "x_drops_total{reason=\"dhcp6_no_duid\"} 4\n");
	metrics_text_free(&t);
}

/* ---- the server */

static int renders;

static void
render(void *arg, struct metrics_text *t)
{
	renders++;
	metrics_family(t, "x_up", "gauge", "up");
	metrics_u64(t, "x_up", (uint64_t)renders, NULL);
}

struct get {
	uint16_t port;
	const char *path;
	char reply[4096];
	volatile int done; /* libevent here has no threads: the loop polls this */
};

static void *
get_thread(void *arg)
{
	struct get *g = arg;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
	                          .sin6_port = htons(g->port),
	                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	char req[256];
	size_t n = 0;
	ssize_t r;

	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", g->path);
		(void)!write(s, req, strlen(req));
		while (n < sizeof(g->reply) - 1 &&
		       (r = read(s, g->reply + n, sizeof(g->reply) - 1 - n)) > 0)
			n += (size_t)r;
	}
	g->reply[n] = '\0';
	close(s);
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static uint16_t
free_port(void)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET6, SOCK_STREAM, 0);

	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	close(s);
	return ntohs(sa.sin6_port);
}

static void
fetch(struct event_base *base, uint16_t port, const char *path, struct get *g)
{
	pthread_t th;

	memset(g, 0, sizeof(*g));
	g->port = port;
	g->path = path;
	assert_int_equal(pthread_create(&th, NULL, get_thread, g), 0);
	/* The loop renders on request, until the thread has its reply. */
	while (!__atomic_load_n(&g->done, __ATOMIC_ACQUIRE)) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
	pthread_join(th, NULL);
}

static void
test_server(void **state)
{
	struct event_base *base = event_base_new();
	uint16_t port = free_port();
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct metrics *m = metrics_start(base, (struct sockaddr *)&sa, sizeof(sa), render, NULL);
	struct get g;

	assert_non_null(m);
	fetch(base, port, "/metrics", &g);
	assert_non_null(strstr(g.reply, "HTTP/1.0 200") ? g.reply : strstr(g.reply, "200 OK"));
	assert_non_null(strstr(g.reply, "text/plain; version=0.0.4"));
	assert_non_null(strstr(g.reply, "\r\n\r\n# HELP x_up up\n# TYPE x_up gauge\nx_up 1\n"));
	fetch(base, port, "/metrics", &g);
	assert_non_null(strstr(g.reply, "x_up 2\n")); /* each scrape renders afresh */
	fetch(base, port, "/", &g);
	assert_non_null(strstr(g.reply, " 404 "));
	assert_int_equal(renders, 2);
	metrics_stop(m);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_family_and_samples),
	    cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_json_counters),
	    cmocka_unit_test(test_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
