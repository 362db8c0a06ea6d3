/*
 * SIGHUP: dstmd re-reads its configuration and, when the whole file is
 * valid and changes only what can change in a running daemon, swaps it in
 * without dropping a lease, a TSP session, DHCPv6 state or a TEP link.
 * Otherwise the running configuration stays and the log says why, with
 * file:line, so that a typo in a reload never takes the service down.
 *
 * What a reload applies: lifetime and quarantine (next grant, renewal and
 * release), keepalive (next reply), the secrets file (users and passwords of the next login),
 * limits.connections, connections_per_64, per_64, allocations_per_64,
 * redirect, log_level, keepalive, history_days, TEPs added and the
 * addresses, client prefixes, pool and control credentials of TEPs that
 * stay (a link whose endpoint or credentials changed reconnects and gets
 * every live binding again), and
 * the pools: they are built anew and every lease is reloaded onto them
 * from the store (dstmd_repool) — a pool that grows lends its new
 * addresses, and a lease outside the new pools is never dropped silently:
 * it is logged and revoked at its renewal (dstmd_grant), when the client
 * and the TEP are told.
 * What needs a restart is listed in `fixed` below: the sockets dstmd
 * opened as root before dropping privileges, the store and the TSP
 * engine's limits.
 *
 * The replaced configuration is kept until exit, not freed: sessions,
 * queued TEP commands and listeners hold pointers into it (TEPs, the
 * listeners' TLS contexts), and a reload is rare enough that keeping a few
 * kilobytes each time costs less than tracking every such pointer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/service.h"
#include "dstmd/dstmd.h"

/* JSON pointers whose value must stay as it is for a reload to apply. */
static const char *const fixed[] = {"/database",
                                    "/store",
                                    "/control",
                                    "/user",
                                    "/seccomp",
                                    "/scenario",
                                    "/listen",
                                    "/dhcpv6",
                                    "/lw4o6",
                                    "/metrics",
                                    "/auth/mechanisms",
                                    "/auth/realm",
                                    "/auth/plain_without_tls",
                                    "/limits/line_length",
                                    "/limits/content_length",
                                    "/limits/xml_depth",
                                    "/limits/handshake_timeout",
                                    "/limits/idle_timeout",
                                    NULL};

static bool
json_same(json_t *a, json_t *b)
{
	return (!a && !b) || (a && b && json_equal(a, b));
}

/* Log what the new file changes that only a restart can; the count. */
static int
check_fixed(const struct dstmd_config *old, const struct dstmd_config *nc)
{
	int n = 0;

	for (int i = 0; fixed[i]; i++) {
		if (json_same(cfg_at(old->doc, fixed[i]), cfg_at(nc->doc, fixed[i])))
			continue;
		log_warnx("%s:%d: %s: cannot change while dstmd runs; restart dstmd to apply it",
		          cfg_path(nc->doc), cfg_line(nc->doc, fixed[i]), fixed[i]);
		n++;
	}
	/* A TEP that goes still has bindings and queued deletes: a restart ends them. */
	for (size_t i = 0; i < old->nteps; i++) {
		bool kept = false;

		for (size_t j = 0; j < nc->nteps && !kept; j++)
			kept = !strcmp(old->teps[i].name, nc->teps[j].name) &&
			       old->teps[i].has_control == nc->teps[j].has_control;
		if (!kept) {
			log_warnx("%s:%d: /teps: TEP \"%s\" is gone or lost its \"control\"; "
			          "removing a TEP needs a restart of dstmd",
			          cfg_path(nc->doc), cfg_line(nc->doc, "/teps"), old->teps[i].name);
			n++;
		}
	}
	return n;
}

unsigned
dstmd_quota_64(const struct dstmd_config *cfg, struct pool **pools)
{
	uint64_t total = 0;

	if (cfg->per_64)
		return cfg->per_64;
	for (size_t i = 0; i < cfg->npools; i++) {
		struct pool_stats st;

		pool_stats(pools[i], &st);
		total += st.size;
	}
	/* A small share: one network (one host) never holds more than an eighth of the pools. */
	return total / 8 > 0 ? (unsigned)(total / 8) : 1;
}

/* Each line the loader printed, as a warning (the loader writes to a FILE). */
static void
log_lines(char *text)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		log_warnx("%s", l);
}

int
dstmd_reload(struct dstmd *d)
{
	struct dstmd_config *nc, **r;
	struct lease_policy pol;
	char *errs = NULL;
	size_t errlen = 0;
	FILE *ef = open_memstream(&errs, &errlen);
	int rc;

	svc_reloading();
	log_info("SIGHUP: reloading %s", d->conffile);
	if (!ef)
		return -ENOMEM;
	nc = dstmd_config_load(d->conffile, ef);
	fclose(ef);
	if (!nc) {
		if (errs)
			log_lines(errs);
		rc = -EINVAL;
		goto refuse;
	}
	if (check_fixed(d->cfg, nc) > 0) {
		rc = -EINVAL;
		goto refuse;
	}
	if (!(r = realloc(d->retired, (d->nretired + 1) * sizeof(*r)))) {
		rc = -ENOMEM;
		goto refuse;
	}
	d->retired = r;
	if (!json_same(cfg_at(d->cfg->doc, "/pools"), cfg_at(nc->doc, "/pools"))) {
		char err[512];
		struct pool **pools = dstmd_pools_new(nc, err, sizeof(err));

		if (!pools) {
			log_warnx("%s", err);
			rc = -EINVAL;
			goto refuse;
		}
		if ((rc = dstmd_repool(d, pools, nc->npools, err, sizeof(err))) != 0) {
			log_warnx("%s:%d: /pools: %s", cfg_path(nc->doc),
			          cfg_line(nc->doc, "/pools"), err);
			dstmd_pools_free(pools, nc->npools);
			goto refuse;
		}
	}
	/* The pools may have changed already: there is no going back from here. */
	if (tepctl_reload(d->tepctl, nc) < 0)
		fatalx("out of memory reloading the TEP links");
	memset(&pol, 0, sizeof(pol));
	pol.lifetime = nc->lifetime;
	pol.quarantine = nc->quarantine;
	pol.history_days = nc->history_days;
	lease_set_policy(d->leases, &pol);
	d->retired[d->nretired++] = d->cfg;
	d->cfg = nc;
	d->per_64 = dstmd_quota_64(nc, d->pools);
	log_setverbose(d->verbose_cli > nc->log_level ? d->verbose_cli : nc->log_level);
	d->reloads++;
	free(errs);
	log_info("configuration reloaded: lifetime %us, quarantine %us, %zu TEP(s)", nc->lifetime,
	         nc->quarantine, nc->nteps);
	svc_ready("serving; configuration reloaded");
	return 0;
refuse:
	free(errs);
	dstmd_config_free(nc);
	d->reload_failures++;
	log_warnx("reload refused: still running with the configuration loaded before (%s)",
	          strerror(-rc));
	svc_ready("serving; the last reload was refused (see the log)");
	return rc;
}
