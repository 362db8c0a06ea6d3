/*
 * dstmd's control socket (doc/internals.md): status, counters, leases,
 * pools, revoke. Answers are JSON built from the live state; revoke ends
 * a lease as expiry does (quarantine, delete to the client and the TEP).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/args.h"
#include "common/clock.h"
#include "dstmd/dstmd.h"

static json_t *
lease_json(const struct lease *l, int64_t now)
{
	char a4[ADDR_STRLEN], a6[ADDR_STRLEN];
	json_t *o = json_object();

	json_object_set_new(o, "ipv4", json_string(addr_fmt_v4(l->v4, a4)));
	if (l->port_lo || l->port_hi) {
		json_object_set_new(o, "port_lo", json_integer(l->port_lo));
		json_object_set_new(o, "port_hi", json_integer(l->port_hi));
	}
	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&l->v6, a6)));
	json_object_set_new(o, "identity", json_string(l->identity));
	json_object_set_new(o, "state",
	                    json_string(l->state == LEASE_ACTIVE ? "active" : "quarantine"));
	json_object_set_new(o, "tep", json_string(l->tep ? l->tep : ""));
	json_object_set_new(o, "pool", json_string(l->pool ? l->pool : ""));
	json_object_set_new(
	    o, "expires_in",
	    json_integer(l->state == LEASE_ACTIVE ? l->expiry - now : l->quarantine_until - now));
	return o;
}

struct collect {
	json_t *a;
	int64_t now;
	bool all;
};

static int
collect_one(void *arg, const struct lease *l)
{
	struct collect *c = arg;

	if (c->all || l->state == LEASE_ACTIVE)
		json_array_append_new(c->a, lease_json(l, c->now));
	return 0;
}

static json_t *
do_leases(struct dstmd *d, json_t *args)
{
	struct collect c = {.a = json_array(), .now = clock_wall_s()};

	c.all = json_is_true(json_object_get(args, "all"));
	lease_foreach(d->leases, collect_one, &c);
	return c.a;
}

static json_t *
do_pools(struct dstmd *d)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->cfg->npools; i++) {
		struct pool_stats st;

		pool_stats(d->pools[i], &st);
		json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I, s:i}", "name",
		                                   pool_name(d->pools[i]), "size",
		                                   (json_int_t)st.size, "used", (json_int_t)st.used,
		                                   "quarantined", (json_int_t)st.quarantined,
		                                   "free", (json_int_t)st.free, "port_range_size",
		                                   (int)pool_port_range_size(d->pools[i])));
	}
	return a;
}

json_t *
control_counters(struct dstmd *d)
{
	struct lease_counters lc;
	json_t *o = access_counters(d);

	dhcp_counters(d, o);

	lease_counters(d->leases, &lc);
#define LC(f) json_object_set_new(o, "lease_" #f, json_integer((json_int_t)lc.f))
	LC(allocations);
	LC(renewals);
	LC(moves);
	LC(releases);
	LC(expiries);
	LC(freed);
	LC(exhausted);
	LC(unavailable);
	LC(orphans);
	LC(commits);
	LC(commit_failures);
	LC(active);
	LC(quarantined);
#undef LC
	json_object_set_new(o, "reloads", json_integer((json_int_t)d->reloads));
	json_object_set_new(o, "reload_failures", json_integer((json_int_t)d->reload_failures));
	return o;
}

static json_t *
do_revoke(struct dstmd *d, json_t *args, char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(args, "address"));
	json_t *port = json_object_get(args, "port");
	const struct lease *l;
	uint32_t v4;

	if (!s || !addr_parse_v4(s, &v4)) {
		snprintf(err, errlen, "revoke needs an IPv4 \"address\"");
		return NULL;
	}
	l = lease_find_v4(d->leases, v4, (uint16_t)json_integer_value(port));
	if (!l || l->state != LEASE_ACTIVE) {
		snprintf(err, errlen, "no active lease holds %s", s);
		return NULL;
	}
	d->ctr.revokes++;
	if (dstmd_end_lease(d, l, true) != 0) {
		snprintf(err, errlen, "the lease store failed");
		return NULL;
	}
	/* The lease as it is now (in quarantine), not as it was. */
	l = lease_find_v4(d->leases, v4, (uint16_t)json_integer_value(port));
	if (!l) {
		snprintf(err, errlen, "the lease of %s vanished while it was revoked", s);
		return NULL;
	}
	return lease_json(l, clock_wall_s());
}

json_t *
control_handle(void *arg, const char *command, json_t *args, char *err, size_t errlen)
{
	struct dstmd *d = arg;

	if (!strcmp(command, "status")) {
		struct lease_counters lc;

		lease_counters(d->leases, &lc);
		return json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:o}", "program", "dstmd",
		                 "version", DSTM_VERSION, "uptime",
		                 (json_int_t)(clock_wall_s() - d->started), "active",
		                 (json_int_t)lc.active, "quarantined", (json_int_t)lc.quarantined,
		                 "sessions", (int)d->nconns, "teps", tepctl_status(d->tepctl));
	}
	if (!strcmp(command, "counters"))
		return control_counters(d);
	if (!strcmp(command, "leases"))
		return do_leases(d, args);
	if (!strcmp(command, "pools"))
		return do_pools(d);
	if (!strcmp(command, "teps"))
		return tepctl_status(d->tepctl);
	if (!strcmp(command, "revoke"))
		return do_revoke(d, args, err, errlen);
	snprintf(err, errlen,
	         "unknown command \"%s\"; dstmd answers status, counters, leases, pools, teps, "
	         "revoke",
	         command);
	return NULL;
}
