/*
 * dstmd's control socket (doc/internals.md): status, counters, leases
 * (paged), history (stepped), pools, revoke. Answers are JSON built from the live state; revoke ends
 * a lease as expiry does (quarantine, delete to the client and the TEP).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/addr.h"
#include "common/args.h"
#include "common/clock.h"
#include "dstmd/dstmd.h"
#include "dstmd/tsp_udp.h"

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
	if (l->psid_len) {
		/* RFC 7597 §5.1: the set inside port_lo..port_hi. */
		json_object_set_new(o, "psid_offset", json_integer(l->psid_offset));
		json_object_set_new(o, "psid_length", json_integer(l->psid_len));
		json_object_set_new(o, "psid", json_integer(l->psid));
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

/*
 * "leases": one page (doc/internals.md). A page holds at most `limit`
 * leases (LEASES_PAGE_MAX) and looks at most at LEASES_BUDGET slots, so
 * that a listing of a million leases is many short answers, each a
 * fraction of a millisecond of the loop and a bounded reply, never one
 * that stalls allocations and takes gigabytes; "next" is the cursor of
 * the next page, null at the end.
 */
#define LEASES_PAGE_DEFAULT 1000
#define LEASES_PAGE_MAX     10000
#define LEASES_BUDGET       262144

struct collect {
	json_t *a;
	int64_t now;
};

static int
collect_one(void *arg, const struct lease *l)
{
	struct collect *c = arg;

	json_array_append_new(c->a, lease_json(l, c->now));
	return 0;
}

/* Every key of `args` is one of `keys`; else an error naming it. */
static bool
args_known(json_t *args, const char *const *keys, const char *command, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v)
	{
		size_t i;

		for (i = 0; keys[i] && strcmp(keys[i], key) != 0; i++)
			;
		if (!keys[i]) {
			snprintf(err, errlen, "%s: unknown argument \"%s\"", command, key);
			return false;
		}
	}
	return true;
}

/* An optional positive integer argument no larger than max (0 when absent). */
static bool
arg_uint(json_t *args, const char *key, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, key);

	*out = 0;
	if (!v)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer from 0 to %llu", key,
		         (unsigned long long)max);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static json_t *
do_leases(struct dstmd *d, json_t *args, char *err, size_t errlen)
{
	static const char *const keys[] = {"pool",  "state", "client", "limit", "cursor",
	                                   "after", "port",  "all",    NULL};
	struct collect c = {.now = clock_wall_s()};
	struct lease_filter f = {0};
	json_t *state = json_object_get(args, "state"), *all = json_object_get(args, "all");
	const char *after = json_string_value(json_object_get(args, "after"));
	uint64_t limit, cursor, port, next;
	json_t *res;

	if (!args_known(args, keys, "leases", err, errlen) ||
	    !arg_uint(args, "limit", LEASES_PAGE_MAX, &limit, err, errlen) ||
	    !arg_uint(args, "cursor", INT64_MAX, &cursor, err, errlen) ||
	    !arg_uint(args, "port", UINT16_MAX, &port, err, errlen))
		return NULL;
	if (all && !json_is_boolean(all)) {
		snprintf(err, errlen, "\"all\" must be true or false");
		return NULL;
	}
	/* Without "state" or "all": the active leases, as before paging. */
	f.state = json_is_true(all) ? 0 : LEASE_ACTIVE;
	if (state) {
		const char *s = json_string_value(state);

		if (s && !strcmp(s, "active"))
			f.state = LEASE_ACTIVE;
		else if (s && !strcmp(s, "quarantine"))
			f.state = LEASE_QUARANTINE;
		else if (s && !strcmp(s, "all"))
			f.state = 0;
		else {
			snprintf(err, errlen, "\"state\" is active, quarantine or all");
			return NULL;
		}
	}
	f.pool = json_string_value(json_object_get(args, "pool"));
	f.identity = json_string_value(json_object_get(args, "client"));
	if ((json_object_get(args, "pool") && !f.pool) ||
	    (json_object_get(args, "client") && !f.identity)) {
		snprintf(err, errlen, "\"pool\" and \"client\" are strings");
		return NULL;
	}
	if (f.pool) {
		size_t i;

		for (i = 0; i < d->cfg->npools && strcmp(pool_name(d->pools[i]), f.pool); i++)
			;
		if (i == d->cfg->npools) {
			snprintf(err, errlen, "no pool is named \"%s\"", f.pool);
			return NULL;
		}
	}
	if (after) {
		uint32_t v4;

		if (!addr_parse_v4(after, &v4) ||
		    lease_page_after(d->leases, v4, (uint16_t)port, &cursor) != 0) {
			snprintf(err, errlen, "\"after\": %s is no address of a pool or lease",
			         after);
			return NULL;
		}
	}
	c.a = json_array();
	lease_page(d->leases, cursor, &f, limit ? (unsigned)limit : LEASES_PAGE_DEFAULT,
	           LEASES_BUDGET, collect_one, &c, &next);
	res = json_pack("{s:o}", "leases", c.a);
	json_object_set_new(res, "next", next ? json_integer((json_int_t)next) : json_null());
	return res;
}

/* "history": one step of a scan of the history table, filtered (doc/internals.md). */
#define HISTORY_STEP_ROWS 20000

static const char *const event_names[] = {"?", "grant", "renew", "release", "expire", "revoke"};

struct hist_ctx {
	json_t *a;
	bool by_v4;
	uint32_t v4;
	const char *client;
	unsigned limit;
};

static json_t *
time_json(int64_t t)
{
	char b[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(b);
}

static int
hist_one(void *arg, const struct history_row *h)
{
	struct hist_ctx *c = arg;
	char a4[ADDR_STRLEN], a6[ADDR_STRLEN];
	json_t *o;

	if ((c->by_v4 && h->v4 != c->v4) || (c->client && strcmp(h->identity, c->client) != 0))
		return 0;
	o = json_object();
	json_object_set_new(o, "time", time_json(h->t));
	json_object_set_new(o, "event",
	                    json_string(h->event >= LEASE_EV_GRANT && h->event <= LEASE_EV_REVOKE
	                                    ? event_names[h->event]
	                                    : "?"));
	json_object_set_new(o, "ipv4", json_string(addr_fmt_v4(h->v4, a4)));
	if (h->port_lo || h->port_hi) {
		json_object_set_new(o, "port_lo", json_integer(h->port_lo));
		json_object_set_new(o, "port_hi", json_integer(h->port_hi));
	}
	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&h->v6, a6)));
	json_object_set_new(o, "identity", json_string(h->identity));
	json_object_set_new(o, "start", time_json(h->start));
	json_object_set_new(o, "expiry", time_json(h->expiry));
	json_object_set_new(o, "t", json_integer((json_int_t)h->t));
	json_object_set_new(o, "start_t", json_integer((json_int_t)h->start));
	json_object_set_new(o, "expiry_t", json_integer((json_int_t)h->expiry));
	json_array_append_new(c->a, o);
	return --c->limit == 0;
}

static json_t *
do_history(struct dstmd *d, json_t *args, char *err, size_t errlen)
{
	static const char *const keys[] = {"address", "client", "cursor", "limit", NULL};
	struct hist_ctx c = {0};
	const char *addr = json_string_value(json_object_get(args, "address"));
	uint64_t cursor, limit;
	int64_t next;
	json_t *res;

	if (!args_known(args, keys, "history", err, errlen) ||
	    !arg_uint(args, "cursor", INT64_MAX, &cursor, err, errlen) ||
	    !arg_uint(args, "limit", LEASES_PAGE_MAX, &limit, err, errlen))
		return NULL;
	c.client = json_string_value(json_object_get(args, "client"));
	if ((!addr) == (!c.client) || (addr && !addr_parse_v4(addr, &c.v4))) {
		snprintf(err, errlen, "history needs an IPv4 \"address\" or a \"client\"");
		return NULL;
	}
	c.by_v4 = addr != NULL;
	c.limit = limit ? (unsigned)limit : LEASES_PAGE_DEFAULT;
	c.a = json_array();
	if (store_history_scan(d->store, (int64_t)cursor, HISTORY_STEP_ROWS, hist_one, &c, &next) <
	    0) {
		json_decref(c.a);
		snprintf(err, errlen, "%s", store_errmsg(d->store));
		return NULL;
	}
	res = json_pack("{s:o}", "events", c.a);
	json_object_set_new(res, "next", next ? json_integer((json_int_t)next) : json_null());
	return res;
}

static json_t *
do_pools(struct dstmd *d)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->cfg->npools; i++) {
		struct pool_stats st;
		unsigned off, len;
		json_t *o;

		pool_stats(d->pools[i], &st);
		o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:i}", "name", pool_name(d->pools[i]),
		              "size", (json_int_t)st.size, "used", (json_int_t)st.used,
		              "quarantined", (json_int_t)st.quarantined, "free",
		              (json_int_t)st.free, "port_range_size",
		              (int)pool_port_range_size(d->pools[i]));
		/* RFC 7597 §5.1: a PSID pool's sets. */
		pool_psid(d->pools[i], &off, &len);
		if (len) {
			json_object_set_new(o, "psid_offset", json_integer(off));
			json_object_set_new(o, "psid_length", json_integer(len));
		}
		json_array_append_new(a, o);
	}
	return a;
}

json_t *
control_counters(struct dstmd *d)
{
	struct lease_counters lc;
	json_t *o = access_counters(d);

	dhcp_counters(d, o);
	tsp_udp_counters(d, o);
	identity_counters(d, o);

	lease_counters(d->leases, &lc);
#define LC(f) json_object_set_new(o, "lease_" #f, json_integer((json_int_t)lc.f))
	LC(allocations);
	LC(reclaims);
	LC(renewals);
	LC(moves);
	LC(releases);
	LC(revocations);
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
	/* A gauge (1 while commits fail, changes are refused) and how often it began. */
	json_object_set_new(o, "store_failing", json_integer(d->store_failing));
	json_object_set_new(o, "store_failures", json_integer((json_int_t)d->store_failures));
	json_object_set_new(o, "store_syncs", json_integer((json_int_t)d->store_syncs));
	json_object_set_new(o, "store_expiry_owner", json_boolean(store_expiry_owner(d->store)));
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
	if (dstmd_end_lease(d, l, true, false) != 0) {
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
		json_t *o;

		lease_counters(d->leases, &lc);
		o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:o}", "program", "dstmd", "version",
		              DSTM_VERSION, "uptime", (json_int_t)(clock_wall_s() - d->started),
		              "active", (json_int_t)lc.active, "quarantined",
		              (json_int_t)lc.quarantined, "sessions", (int)d->nconns, "teps",
		              failover_status(d));
		/* "failing since ...: why": every change is refused until a commit goes through. */
		if (d->store_failing) {
			char b[400];

			snprintf(b, sizeof(b), "failing for %llds: %s",
			         (long long)(clock_wall_s() - d->store_failing_since),
			         d->store_error);
			json_object_set_new(o, "store", json_string(b));
		} else {
			json_object_set_new(o, "store", json_string("ok"));
		}
		return o;
	}
	if (!strcmp(command, "counters"))
		return control_counters(d);
	if (!strcmp(command, "leases"))
		return do_leases(d, args, err, errlen);
	if (!strcmp(command, "history"))
		return do_history(d, args, err, errlen);
	if (!strcmp(command, "pools"))
		return do_pools(d);
	if (!strcmp(command, "teps"))
		return failover_status(d);
	if (!strcmp(command, "revoke"))
		return do_revoke(d, args, err, errlen);
	snprintf(err, errlen,
	         "unknown command \"%s\"; dstmd answers status, counters, leases, history, pools, "
	         "teps, revoke",
	         command);
	return NULL;
}
