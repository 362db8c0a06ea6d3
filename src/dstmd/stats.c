/*
 * dstmd's Prometheus page (common/metrics.h serves it): leases per pool
 * and state, pool sizes and free addresses, TSP sessions, TEP links, every
 * counter of `dstmctl counters` (drops as one family with a reason label)
 * and the commit latency histogram. Rendered on the loop's thread, so it
 * reads the live structures directly.
 */
#include <errno.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "dstmd/dstmd.h"

/* Counters of `dstmctl counters` that are levels, not totals. */
static const char *const gauges[] = {
    "per_64",        "sessions_now", "sessions_bound",    "udp_sessions_now",
    "dhcp6_waiting", "lease_active", "lease_quarantined", NULL};

static void
render(void *arg, struct metrics_text *t)
{
	struct dstmd *d = arg;
	json_t *o, *teps, *v;
	size_t i;

	metrics_family(t, "dstmd_pool_addresses", "gauge",
	               "slots (addresses, or address and port range) of a pool");
	for (i = 0; i < d->cfg->npools; i++) {
		struct pool_stats st;

		pool_stats(d->pools[i], &st);
		metrics_u64(t, "dstmd_pool_addresses", st.size, "pool", pool_name(d->pools[i]),
		            NULL);
	}
	metrics_family(t, "dstmd_pool_free", "gauge", "slots of a pool free to lend now");
	for (i = 0; i < d->cfg->npools; i++) {
		struct pool_stats st;

		pool_stats(d->pools[i], &st);
		metrics_u64(t, "dstmd_pool_free", st.free, "pool", pool_name(d->pools[i]), NULL);
	}
	metrics_family(t, "dstmd_leases", "gauge", "leases by pool and state");
	for (i = 0; i < d->cfg->npools; i++) {
		struct pool_stats st;

		pool_stats(d->pools[i], &st);
		metrics_u64(t, "dstmd_leases", st.used, "pool", pool_name(d->pools[i]), "state",
		            "active", NULL);
		metrics_u64(t, "dstmd_leases", st.quarantined, "pool", pool_name(d->pools[i]),
		            "state", "quarantine", NULL);
	}
	metrics_family(t, "dstmd_tsp_sessions", "gauge", "open TSP sessions of clients");
	metrics_u64(t, "dstmd_tsp_sessions", d->nconns, NULL);

	teps = failover_status(d);
	metrics_family(t, "dstmd_tep_up", "gauge",
	               "1 when dstmd's control session to the TEP is up (or it learns), else 0");
	json_array_foreach(teps, i, v)
	{
		const char *st = json_string_value(json_object_get(v, "state"));

		metrics_u64(t, "dstmd_tep_up", st && strcmp(st, "down") != 0, "tep",
		            json_string_value(json_object_get(v, "name")), NULL);
	}
	metrics_family(t, "dstmd_tep_queued", "gauge", "binding commands waiting for a TEP");
	json_array_foreach(teps, i, v) metrics_u64(
	    t, "dstmd_tep_queued", (uint64_t)json_integer_value(json_object_get(v, "queued")),
	    "tep", json_string_value(json_object_get(v, "name")), NULL);
	metrics_family(t, "dstmd_tep_failures_total", "counter",
	               "control sessions to the TEP that failed or were lost");
	json_array_foreach(teps, i, v)
	    metrics_u64(t, "dstmd_tep_failures_total",
	                (uint64_t)json_integer_value(json_object_get(v, "failures")), "tep",
	                json_string_value(json_object_get(v, "name")), NULL);
	metrics_family(t, "dstmd_tep_failed_over", "gauge",
	               "1 while the TEP's bindings are its backup's (TEPs with a backup)");
	json_array_foreach(teps, i, v)
	{
		if (json_object_get(v, "backup"))
			metrics_u64(t, "dstmd_tep_failed_over",
			            json_is_true(json_object_get(v, "failed_over")), "tep",
			            json_string_value(json_object_get(v, "name")), NULL);
	}
	metrics_family(t, "dstmd_tep_moved_total", "counter",
	               "leases this dstmd moved from the TEP to its backup");
	json_array_foreach(teps, i, v)
	{
		if (json_object_get(v, "backup"))
			metrics_u64(t, "dstmd_tep_moved_total",
			            (uint64_t)json_integer_value(json_object_get(v, "moved")),
			            "tep", json_string_value(json_object_get(v, "name")), NULL);
	}
	json_decref(teps);

	o = control_counters(d);
	metrics_json_counters(t, "dstmd", o, gauges);
	json_decref(o);
	metrics_hist_write(t, "dstmd_commit_seconds",
	                   "time from handing a batch of lease changes to the store writer to "
	                   "its being durable",
	                   &d->commit_latency);
	metrics_family(t, "dstmd_start_time_seconds", "gauge", "when dstmd started (Unix time)");
	metrics_u64(t, "dstmd_start_time_seconds", (uint64_t)d->started, NULL);
}

int
stats_start(struct dstmd *d)
{
	static const double le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	                            0.05,   0.1,   0.25,   0.5,   1,    2.5};
	char a[ADDR_STRLEN];

	metrics_hist_init(&d->commit_latency, le, sizeof(le) / sizeof(le[0]));
	if (!d->cfg->metrics)
		return 0;
	d->metrics = metrics_start(d->base, (const struct sockaddr *)&d->cfg->metrics_addr,
	                           d->cfg->metrics_len, render, d);
	if (!d->metrics) {
		int e = errno ? errno : EADDRNOTAVAIL;

		log_warn("metrics: cannot serve on %s",
		         addr_fmt_sockaddr((const struct sockaddr *)&d->cfg->metrics_addr, a));
		return -e;
	}
	log_info("metrics on http://%s/metrics",
	         addr_fmt_sockaddr((const struct sockaddr *)&d->cfg->metrics_addr, a));
	return 0;
}

void
stats_stop(struct dstmd *d)
{
	metrics_stop(d->metrics);
	d->metrics = NULL;
}
