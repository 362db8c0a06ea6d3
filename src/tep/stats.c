/*
 * dstm-tep's Prometheus page (common/metrics.h serves it): the bindings,
 * the TSP sessions of dstmd, and every counter of `dstmctl counters` —
 * the forwarding core's drops as one family with a reason label.
 * Rendered on the loop's thread, between packets.
 */
#include <errno.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/metrics.h"
#include "tep/tep.h"

/* Counters of `dstmctl counters` that are levels, not totals. */
static const char *const gauges[] = {"bindings", "tsp_sessions_open", NULL};

static void
render(void *arg, struct metrics_text *t)
{
	struct tep *tep = arg;
	json_t *o;

	tep_xdp_fold(tep); /* what the XDP programs counted, up to now */
	o = tep_counters_json(tep);

	metrics_json_counters(t, "dstm_tep", o, gauges);
	json_decref(o);
	metrics_family(t, "dstm_tep_sessions", "gauge", "TSP sessions of dstmd servers open now");
	metrics_u64(t, "dstm_tep_sessions", tep->sessions, NULL);
	metrics_family(t, "dstm_tep_reloads_total", "counter", "SIGHUP reloads applied");
	metrics_u64(t, "dstm_tep_reloads_total", tep->reloads, NULL);
	metrics_family(t, "dstm_tep_reload_failures_total", "counter",
	               "SIGHUP reloads refused (the configuration in force stayed)");
	metrics_u64(t, "dstm_tep_reload_failures_total", tep->reload_failures, NULL);
}

int
tep_stats_start(struct tep *t)
{
	char a[ADDR_STRLEN];

	if (!t->cfg.has_metrics)
		return 0;
	t->metrics = metrics_start(t->base, (const struct sockaddr *)&t->cfg.metrics_sa,
	                           t->cfg.metrics_salen, render, t);
	if (!t->metrics) {
		int e = errno ? errno : EADDRNOTAVAIL;

		log_warn("metrics: cannot serve on %s", t->cfg.metrics);
		return -e;
	}
	log_info("metrics on http://%s/metrics",
	         addr_fmt_sockaddr((const struct sockaddr *)&t->cfg.metrics_sa, a));
	return 0;
}

void
tep_stats_stop(struct tep *t)
{
	metrics_stop(t->metrics);
	t->metrics = NULL;
}
