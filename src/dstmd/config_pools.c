/*
 * The address plan of dstmd.json (doc/internals.md): the IPv4 pools with
 * their ranges, exclusions and port sets, and the TEPs with the clients
 * they serve, the pool they lend from and their control channel. Errors
 * are recorded with file and line, as everywhere in config.c; references
 * between the two are checked there, after everything is loaded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/cfg.h"
#include "dstmd/config.h"
#include "dstmd/config_int.h"

static const char *const pool_keys[] = {
    "name", "prefixes", "ranges", "exclude", "port_range_size", "psid_offset", "psid_length", NULL};
static const char *const tep_keys[] = {"name",    "ipv6",      "ipv4",   "clients",        "pool",
                                       "control", "keepalive", "backup", "failover_after", NULL};
static const char *const tepctl_keys[] = {"address", "mechanism", "user", "secret", NULL};

/* Append the strings of the array at `ptr` as pool ranges. */
static void
load_ranges(struct cfg *doc, const char *ptr, bool prefixes_only, struct pool_range **out,
            size_t *n)
{
	size_t count;
	char p[256], err[256];

	if (!cfg_array(doc, ptr, false, &count) || count == 0)
		return;
	struct pool_range *r = realloc(*out, (*n + count) * sizeof(*r));
	if (!r)
		return;
	*out = r;
	for (size_t i = 0; i < count; i++) {
		const char *s;

		snprintf(p, sizeof(p), "%s/%zu", ptr, i);
		if (!cfg_str(doc, p, true, NULL, &s))
			continue;
		if (prefixes_only && !strchr(s, '/')) {
			cfg_error(doc, p, "\"%s\" is not a prefix (write a.b.c.d/len)", s);
			continue;
		}
		if (!pool_range_parse(s, &r[*n], err, sizeof(err))) {
			cfg_error(doc, p, "%s", err);
			continue;
		}
		(*n)++;
	}
}

void
config_load_pools(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	size_t n;
	char p[256];

	if (!cfg_array(doc, "/pools", true, &n))
		return;
	if (n == 0) {
		cfg_error(doc, "/pools",
		          "no pool: give at least one, e.g. "
		          "{\"name\": \"lab\", \"prefixes\": [\"192.0.2.0/24\"]}");
		return;
	}
	c->pools = calloc(n, sizeof(*c->pools));
	if (!c->pools)
		return;
	for (size_t i = 0; i < n; i++) {
		struct dstmd_pool *dp = &c->pools[c->npools];
		long long size;
		size_t nr = 0;

		snprintf(p, sizeof(p), "/pools/%zu", i);
		cfg_check_keys(doc, p, pool_keys);
		snprintf(p, sizeof(p), "/pools/%zu/name", i);
		cfg_str(doc, p, true, NULL, &dp->pc.name);
		snprintf(p, sizeof(p), "/pools/%zu/prefixes", i);
		load_ranges(doc, p, true, &dp->ranges, &nr);
		snprintf(p, sizeof(p), "/pools/%zu/ranges", i);
		load_ranges(doc, p, false, &dp->ranges, &nr);
		dp->pc.ranges = dp->ranges;
		dp->pc.nranges = nr;
		nr = 0;
		snprintf(p, sizeof(p), "/pools/%zu/exclude", i);
		load_ranges(doc, p, false, &dp->excludes, &nr);
		dp->pc.excludes = dp->excludes;
		dp->pc.nexcludes = nr;
		snprintf(p, sizeof(p), "/pools/%zu/port_range_size", i);
		cfg_int(doc, p, false, 0, 0, POOL_PORTS, &size);
		dp->pc.port_range_size = (unsigned)size;
		/* RFC 7597 §5.1 port sets: the other way to share an address. */
		snprintf(p, sizeof(p), "/pools/%zu/psid_offset", i);
		cfg_int(doc, p, false, 6, 0, 15, &size);
		dp->pc.psid_offset = (unsigned)size;
		snprintf(p, sizeof(p), "/pools/%zu/psid_length", i);
		cfg_int(doc, p, false, 0, 0, 15, &size);
		dp->pc.psid_len = (unsigned)size;
		if (dp->pc.psid_len && dp->pc.port_range_size)
			cfg_error(doc, p,
			          "a pool shares its addresses by \"port_range_size\" or by "
			          "\"psid_length\", not both");
		else if (dp->pc.psid_len + dp->pc.psid_offset > 16)
			cfg_error(doc, p, "psid_offset %u + psid_length %u is more than 16 bits",
			          dp->pc.psid_offset, dp->pc.psid_len);
		if (dp->pc.nranges == 0) {
			snprintf(p, sizeof(p), "/pools/%zu", i);
			cfg_error(doc, p, "pool has no addresses: give \"prefixes\" or \"ranges\"");
		}
		for (size_t j = 0; j < c->npools && dp->pc.name; j++)
			if (c->pools[j].pc.name && !strcmp(c->pools[j].pc.name, dp->pc.name)) {
				snprintf(p, sizeof(p), "/pools/%zu/name", i);
				cfg_error(doc, p, "pool name \"%s\" is used twice", dp->pc.name);
			}
		c->npools++;
	}
}

void
config_load_teps(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	size_t n;
	char p[256];

	if (!cfg_array(doc, "/teps", true, &n))
		return;
	if (n == 0) {
		cfg_error(doc, "/teps", "no TEP: give at least one tunnel end point");
		return;
	}
	c->teps = calloc(n, sizeof(*c->teps));
	if (!c->teps)
		return;
	for (size_t i = 0; i < n; i++) {
		struct dstmd_tep *t = &c->teps[c->nteps++];
		const char *s;
		size_t nc;
		long long v;

		snprintf(p, sizeof(p), "/teps/%zu", i);
		cfg_check_keys(doc, p, tep_keys);
		snprintf(p, sizeof(p), "/teps/%zu/name", i);
		cfg_str(doc, p, true, NULL, &t->name);
		snprintf(p, sizeof(p), "/teps/%zu/ipv6", i);
		if (cfg_str(doc, p, true, NULL, &s) && s && !addr_parse_v6(s, &t->v6))
			cfg_error(doc, p, "\"%s\" is not an IPv6 address", s);
		snprintf(p, sizeof(p), "/teps/%zu/ipv4", i);
		if (cfg_str(doc, p, true, NULL, &s) && s && !addr_parse_v4(s, &t->v4))
			cfg_error(doc, p, "\"%s\" is not an IPv4 address", s);
		/* What clients ping to keep their binding warm: the TEP's IPv4 by default. */
		t->keepalive_v4 = t->v4;
		snprintf(p, sizeof(p), "/teps/%zu/keepalive", i);
		if (cfg_str(doc, p, false, NULL, &s) && s && !addr_parse_v4(s, &t->keepalive_v4))
			cfg_error(doc, p, "\"%s\" is not an IPv4 address", s);
		snprintf(p, sizeof(p), "/teps/%zu/pool", i);
		cfg_str(doc, p, false, NULL, &t->pool);
		if (t->pool) {
			bool found = false, psid = false;
			for (size_t j = 0; j < c->npools; j++)
				if (c->pools[j].pc.name && !strcmp(c->pools[j].pc.name, t->pool)) {
					found = true;
					psid = c->pools[j].pc.psid_len > 0;
				}
			if (!found)
				cfg_error(doc, p, "no pool is named \"%s\"", t->pool);
			else if (psid)
				cfg_error(
				    doc, p,
				    "pool \"%s\" is a PSID pool: it serves lwB4s (\"lw4o6\"), "
				    "not the DSTM clients of a TEP",
				    t->pool);
		}
		/* Failover (failover.c): the TEP that takes this one's bindings. */
		snprintf(p, sizeof(p), "/teps/%zu/backup", i);
		cfg_str(doc, p, false, NULL, &t->backup);
		snprintf(p, sizeof(p), "/teps/%zu/failover_after", i);
		if (cfg_int(doc, p, false, 3, 1, 3600, &v))
			t->failover_after = (unsigned)v;
		snprintf(p, sizeof(p), "/teps/%zu/clients", i);
		if (cfg_array(doc, p, false, &nc) && nc) {
			t->clients = calloc(nc, sizeof(*t->clients));
			for (size_t j = 0; t->clients && j < nc; j++) {
				char q[300];
				snprintf(q, sizeof(q), "/teps/%zu/clients/%zu", i, j);
				if (!cfg_str(doc, q, true, NULL, &s) || !s)
					continue;
				if (!addr_parse_prefix6(s, &t->clients[t->nclients].prefix,
				                        &t->clients[t->nclients].plen))
					cfg_error(
					    doc, q,
					    "\"%s\" is not an IPv6 prefix (host bits must be 0)",
					    s);
				else
					t->nclients++;
			}
		}
		snprintf(p, sizeof(p), "/teps/%zu/control", i);
		if (!cfg_at(doc, p))
			continue;
		t->has_control = true;
		cfg_check_keys(doc, p, tepctl_keys);
		snprintf(p, sizeof(p), "/teps/%zu/control/address", i);
		if (cfg_str(doc, p, true, NULL, &s) && s &&
		    !addr_parse_endpoint(s, TSP_PORT, &t->ctl_addr, &t->ctl_len))
			cfg_error(doc, p, "\"%s\" is not an endpoint ([v6]:port or v4:port)", s);
		snprintf(p, sizeof(p), "/teps/%zu/control/mechanism", i);
		cfg_str(doc, p, false, "SCRAM-SHA-256", &t->ctl_mechanism);
		snprintf(p, sizeof(p), "/teps/%zu/control/user", i);
		cfg_str(doc, p, !!strcmp(t->ctl_mechanism, "ANONYMOUS"), NULL, &t->ctl_user);
		snprintf(p, sizeof(p), "/teps/%zu/control/secret", i);
		cfg_str(doc, p, !!strcmp(t->ctl_mechanism, "ANONYMOUS"), NULL, &t->ctl_secret);
	}
	/*
	 * A backup is another TEP with a control endpoint: failover pushes
	 * the bindings to it, and a learning TEP could not be told.
	 */
	for (size_t i = 0; i < c->nteps; i++) {
		const struct dstmd_tep *t = &c->teps[i], *b = NULL;

		if (!t->backup)
			continue;
		snprintf(p, sizeof(p), "/teps/%zu/backup", i);
		for (size_t j = 0; j < c->nteps && !b; j++)
			if (c->teps[j].name && !strcmp(c->teps[j].name, t->backup))
				b = &c->teps[j];
		if (!b)
			cfg_error(doc, p, "no TEP is named \"%s\"", t->backup);
		else if (b == t)
			cfg_error(doc, p, "a TEP cannot be its own backup");
		else if (!b->has_control || !t->has_control)
			cfg_error(doc, p,
			          "failover needs a \"control\" endpoint on both TEPs (the "
			          "backup is told the bindings, the primary's health is watched)");
		else if (t->pool && b->pool && strcmp(t->pool, b->pool))
			cfg_error(doc, p, "TEP \"%s\" lends from pool \"%s\", not \"%s\"", b->name,
			          b->pool, t->pool);
	}
	/* What src/grant chooses among (grant_tep_choose), in the file's order. */
	if (!(c->tep_views = calloc(c->nteps, sizeof(*c->tep_views)))) {
		cfg_error(doc, "/teps", "out of memory");
		return;
	}
	for (size_t i = 0; i < c->nteps; i++)
		c->tep_views[i] = (struct grant_tep){.ref = &c->teps[i],
		                                     .name = c->teps[i].name,
		                                     .pool = c->teps[i].pool,
		                                     .clients = c->teps[i].clients,
		                                     .nclients = c->teps[i].nclients};
}
