/*
 * Loading and validating dstmd.json (doc/internals.md). Every check
 * records an error with its file and line and validation goes on, so an
 * operator sees all mistakes at once; nothing half-valid is returned.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/addr.h"
#include "common/cfg.h"
#include "common/metrics.h"
#include "dstmd/config.h"
#include "dstmd/config_int.h"
#include "dstmd/lw4o6.h"

static const char *const top_keys[] = {
    "scenario",  "database",     "control",  "lifetime",  "quarantine", "listen", "auth",
    "pools",     "teps",         "redirect", "limits",    "dhcpv6",     "user",   "seccomp",
    "keepalive", "history_days", "metrics",  "log_level", "lw4o6",      "store",  NULL};
static const char *const store_keys[] = {"postgresql", NULL};
static const char *const log_levels[] = {"info", "debug", "trace", NULL};
static const char *const scenarios[] = {"intranet", "vpn", NULL};
static const char *const auth_keys[] = {"mechanisms", "secrets",   "realm", "plain_without_tls",
                                        "relays",     "endpoints", NULL};
static const char *const listen_keys[] = {"address", "tls", NULL};
static const char *const tls_keys[] = {"certificate", "key", "client_ca",
                                       "require_client_certificate", NULL};
static const char *const limit_keys[] = {"connections",
                                         "line_length",
                                         "content_length",
                                         "xml_depth",
                                         "handshake_timeout",
                                         "idle_timeout",
                                         "per_64",
                                         "connections_per_64",
                                         "allocations_per_64",
                                         "unbound_timeout",
                                         NULL};
static const char *const known_mechs[] = {"SCRAM-SHA-256", "DIGEST-MD5", "PLAIN", "ANONYMOUS",
                                          NULL};

/* A list of IPv6 addresses at `ptr` (absent: none). */
static struct in6_addr *
load_v6_list(struct cfg *doc, const char *ptr, size_t *count)
{
	struct in6_addr *v = NULL;
	const char *s;
	size_t n;
	char p[128];

	*count = 0;
	if (!cfg_array(doc, ptr, false, &n) || !n || !(v = calloc(n, sizeof(*v))))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%zu", ptr, i);
		if (!cfg_str(doc, p, true, NULL, &s) || !s)
			continue;
		if (!addr_parse_v6(s, &v[*count]))
			cfg_error(doc, p,
			          "\"%s\" is not an IPv6 address (a relay is named by its address)",
			          s);
		else
			(*count)++;
	}
	return v;
}

/*
 * auth.endpoints: {"user": ["prefix", …]}: where an authenticated user's
 * tunnel may end other than at the address it connects from.
 */
static void
load_endpoints(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	json_t *o = cfg_at(doc, "/auth/endpoints"), *v;
	const char *user;
	char p[256];

	if (!o)
		return;
	if (!json_is_object(o)) {
		cfg_error(
		    doc, "/auth/endpoints",
		    "needs {\"user\": [\"IPv6 prefix\", …]} (where each user's tunnel may end)");
		return;
	}
	if (!(c->endpoints = calloc(json_object_size(o) + 1, sizeof(*c->endpoints))))
		return;
	json_object_foreach(o, user, v)
	{
		struct dstmd_endpoints *e = &c->endpoints[c->nendpoints];
		size_t n = json_is_array(v) ? json_array_size(v) : 0;

		snprintf(p, sizeof(p), "/auth/endpoints/%s", user);
		if (!json_is_array(v)) {
			cfg_error(doc, p, "needs a list of IPv6 prefixes");
			continue;
		}
		e->user = user;
		if (n && !(e->prefixes = calloc(n, sizeof(*e->prefixes))))
			continue;
		for (size_t i = 0; i < n; i++) {
			const char *s = json_string_value(json_array_get(v, i));
			struct grant_prefix *g = &e->prefixes[e->nprefixes];

			snprintf(p, sizeof(p), "/auth/endpoints/%s/%zu", user, i);
			if (!s || !addr_parse_prefix6(s, &g->prefix, &g->plen))
				cfg_error(doc, p, "\"%s\" is not an IPv6 prefix (fd00:d57::/64)",
				          s ? s : "");
			else
				e->nprefixes++;
		}
		c->nendpoints++;
	}
}

static void
load_auth(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	size_t n;
	char p[256];

	cfg_check_keys(doc, "/auth", auth_keys);
	cfg_str(doc, "/auth/realm", false, "dstm", &c->realm);
	cfg_bool(doc, "/auth/plain_without_tls", false, false, &c->plain_without_tls);
	c->tsp_relays = load_v6_list(doc, "/auth/relays", &c->ntsp_relays);
	load_endpoints(c);
	cfg_str(doc, "/auth/secrets", false, NULL, &c->secrets_path);
	if (!cfg_at(doc, "/auth/mechanisms")) {
		snprintf(c->mechanisms, sizeof(c->mechanisms), "ANONYMOUS");
		c->anonymous = true;
	} else if (cfg_array(doc, "/auth/mechanisms", true, &n)) {
		for (size_t i = 0; i < n; i++) {
			const char *m;
			bool known = false;

			snprintf(p, sizeof(p), "/auth/mechanisms/%zu", i);
			if (!cfg_str(doc, p, true, NULL, &m) || !m)
				continue;
			for (int k = 0; known_mechs[k]; k++)
				known |= !strcmp(m, known_mechs[k]);
			if (!known) {
				cfg_error(doc, p,
				          "unknown mechanism \"%s\"; use SCRAM-SHA-256, "
				          "DIGEST-MD5, PLAIN or ANONYMOUS",
				          m);
				continue;
			}
			if (!strcmp(m, "ANONYMOUS"))
				c->anonymous = true;
			snprintf(c->mechanisms + strlen(c->mechanisms),
			         sizeof(c->mechanisms) - strlen(c->mechanisms), "%s%s",
			         c->mechanisms[0] ? " " : "", m);
		}
		if (!c->mechanisms[0])
			cfg_error(doc, "/auth/mechanisms",
			          "no mechanism: clients could not log in");
	}
	if (!c->anonymous && !c->secrets_path)
		cfg_error(doc, "/auth", "mechanisms other than ANONYMOUS need a \"secrets\" file");
	if (c->secrets_path) {
		char err[512];

		c->secrets = cfg_load(c->secrets_path, err, sizeof(err));
		if (!c->secrets) {
			cfg_error(doc, "/auth/secrets", "cannot load the secrets file: %s", err);
		} else {
			json_t *users = cfg_at(c->secrets, "/users");
			const char *k;
			json_t *v;

			if (!json_is_object(users))
				cfg_error(doc, "/auth/secrets",
				          "%s: needs {\"users\": {\"name\": \"password\", …}}",
				          c->secrets_path);
			else
				json_object_foreach(users, k, v) if (!json_is_string(v))
				    cfg_error(doc, "/auth/secrets",
				              "%s: the password of \"%s\" must be a string",
				              c->secrets_path, k);
		}
	}
}

/* The last OpenSSL error as text, for a configuration message. */
static const char *
ssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/*
 * TSP over TLS: TLS 1.2 and 1.3 only, the certificate chain and
 * key of the config, and optionally client certificates checked against
 * a CA file. Every failure is a configuration error naming the file.
 */
static void
load_tls(struct dstmd_config *c, size_t i, struct dstmd_listen *ln)
{
	struct cfg *doc = c->doc;
	const char *cert, *key, *ca;
	bool require;
	char p[64], q[192], e[256];
	SSL_CTX *ctx;

	snprintf(p, sizeof(p), "/listen/%zu/tls", i);
	if (!cfg_at(doc, p))
		return;
	cfg_check_keys(doc, p, tls_keys);
	snprintf(q, sizeof(q), "%s/certificate", p);
	cfg_str(doc, q, true, NULL, &cert);
	snprintf(q, sizeof(q), "%s/key", p);
	cfg_str(doc, q, true, NULL, &key);
	snprintf(q, sizeof(q), "%s/client_ca", p);
	cfg_str(doc, q, false, NULL, &ca);
	snprintf(q, sizeof(q), "%s/require_client_certificate", p);
	cfg_bool(doc, q, false, false, &require);
	if (require && !ca)
		cfg_error(doc, q,
		          "requiring client certificates needs a \"client_ca\" to check them");
	if (!cert || !key)
		return;
	if (!(ctx = SSL_CTX_new(TLS_server_method()))) {
		cfg_error(doc, p, "cannot create a TLS context: %s", ssl_error(e, sizeof(e)));
		return;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	snprintf(q, sizeof(q), "%s/certificate", p);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		cfg_error(doc, q, "%s: %s", cert, ssl_error(e, sizeof(e)));
		goto fail;
	}
	snprintf(q, sizeof(q), "%s/key", p);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		cfg_error(doc, q, "%s: %s (is it the key of the certificate?)", key,
		          ssl_error(e, sizeof(e)));
		goto fail;
	}
	if (ca) {
		snprintf(q, sizeof(q), "%s/client_ca", p);
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			cfg_error(doc, q, "%s: %s", ca, ssl_error(e, sizeof(e)));
			goto fail;
		}
		SSL_CTX_set_verify(
		    ctx, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
		ln->verify_client = true;
	}
	ln->tls = ctx;
	return;
fail:
	SSL_CTX_free(ctx);
}

static void
load_listen(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	size_t n;
	char p[256];

	if (!cfg_at(doc, "/listen")) {
		c->listens = calloc(1, sizeof(*c->listens));
		if (c->listens && addr_parse_endpoint("[::]:3653", TSP_PORT, &c->listens[0].addr,
		                                      &c->listens[0].len))
			c->nlistens = 1;
		return;
	}
	if (!cfg_array(doc, "/listen", true, &n) || n == 0) {
		if (n == 0)
			cfg_error(doc, "/listen", "no listener: clients could not reach dstmd");
		return;
	}
	c->listens = calloc(n, sizeof(*c->listens));
	for (size_t i = 0; c->listens && i < n; i++) {
		const char *s;

		snprintf(p, sizeof(p), "/listen/%zu", i);
		cfg_check_keys(doc, p, listen_keys);
		snprintf(p, sizeof(p), "/listen/%zu/address", i);
		if (!cfg_str(doc, p, true, NULL, &s) || !s)
			continue;
		if (!addr_parse_endpoint(s, TSP_PORT, &c->listens[c->nlistens].addr,
		                         &c->listens[c->nlistens].len)) {
			cfg_error(doc, p, "\"%s\" is not an endpoint ([v6]:port or v4:port)", s);
			continue;
		}
		load_tls(c, i, &c->listens[c->nlistens]);
		c->nlistens++;
	}
}

static const char *const dhcp6_keys[] = {"enable",
                                         "interfaces",
                                         "address",
                                         "port",
                                         "form",
                                         "codes",
                                         "preferred_lifetime",
                                         "valid_lifetime",
                                         "t1",
                                         "t2",
                                         "rapid_commit",
                                         "unicast",
                                         "reconfigure",
                                         "duid_file",
                                         "keys",
                                         "require_auth",
                                         "dots_ri",
                                         "dots_address",
                                         "access_domain",
                                         "limits",
                                         "relays",
                                         "offer_hold",
                                         NULL};
static const char *const dhcp6_key_keys[] = {"realm", "key_id", "secret", NULL};
static const char *const dhcp6_limit_keys[] = {"per_duid", "per_64", "clients", NULL};
static const char *const dhcp6_forms[] = {"both", "ia_dstm", "global_v4", NULL};

/* The "dhcpv6" section (dstmd(8)); absent means no DHCPv6 service. */
static void
load_dhcp6(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	struct dstmd_dhcp6 *h = &c->dhcp6;
	const char *s;
	long long v;
	size_t n;
	char p[128];

	if (!cfg_at(doc, "/dhcpv6"))
		return;
	cfg_check_keys(doc, "/dhcpv6", dhcp6_keys);
	cfg_check_keys(doc, "/dhcpv6/limits", dhcp6_limit_keys);
	cfg_bool(doc, "/dhcpv6/enable", false, true, &h->enable);
	if (cfg_array(doc, "/dhcpv6/interfaces", false, &n) && n) {
		h->interfaces = calloc(n, sizeof(*h->interfaces));
		for (size_t i = 0; h->interfaces && i < n; i++) {
			snprintf(p, sizeof(p), "/dhcpv6/interfaces/%zu", i);
			if (cfg_str(doc, p, true, NULL, &h->interfaces[h->ninterfaces]) &&
			    h->interfaces[h->ninterfaces])
				h->ninterfaces++;
		}
	}
	if (cfg_str(doc, "/dhcpv6/address", false, "::", &s) && s && !addr_parse_v6(s, &h->address))
		cfg_error(doc, "/dhcpv6/address", "\"%s\" is not an IPv6 address", s);
	cfg_int(doc, "/dhcpv6/port", false, 547, 1, 65535, &v);
	h->port = (uint16_t)v;
	cfg_enum(doc, "/dhcpv6/form", false, 0, dhcp6_forms, &h->form);
	d6_codes_load(doc, "/dhcpv6/codes", &h->codes);
	cfg_int(doc, "/dhcpv6/preferred_lifetime", false, 0, 0, 7 * 86400, &v);
	h->preferred = (uint32_t)v;
	cfg_int(doc, "/dhcpv6/valid_lifetime", false, 0, 0, 7 * 86400, &v);
	h->valid = (uint32_t)v;
	cfg_int(doc, "/dhcpv6/t1", false, 0, 0, 7 * 86400, &v);
	h->t1 = (uint32_t)v;
	cfg_int(doc, "/dhcpv6/t2", false, 0, 0, 7 * 86400, &v);
	h->t2 = (uint32_t)v;
	if (h->t1 && h->t2 && h->t1 > h->t2)
		cfg_error(doc, "/dhcpv6/t1", "t1 (%u) is after t2 (%u)", h->t1, h->t2);
	cfg_bool(doc, "/dhcpv6/rapid_commit", false, true, &h->rapid_commit);
	cfg_bool(doc, "/dhcpv6/unicast", false, false, &h->unicast);
	cfg_bool(doc, "/dhcpv6/reconfigure", false, true, &h->reconfigure);
	cfg_bool(doc, "/dhcpv6/require_auth", false, false, &h->require_auth);
	cfg_str(doc, "/dhcpv6/duid_file", false, NULL, &h->duid_file);
	if (cfg_array(doc, "/dhcpv6/keys", false, &n) && n) {
		h->keys = calloc(n, sizeof(*h->keys));
		for (size_t i = 0; h->keys && i < n; i++) {
			struct dstmd_dhcp6_key *k = &h->keys[h->nkeys];

			snprintf(p, sizeof(p), "/dhcpv6/keys/%zu", i);
			cfg_check_keys(doc, p, dhcp6_key_keys);
			snprintf(p, sizeof(p), "/dhcpv6/keys/%zu/realm", i);
			cfg_str(doc, p, true, NULL, &k->realm);
			if (k->realm && strlen(k->realm) > 64)
				cfg_error(doc, p, "a realm has at most 64 characters");
			snprintf(p, sizeof(p), "/dhcpv6/keys/%zu/key_id", i);
			cfg_int(doc, p, true, 0, 0, 0xffffffffLL, &v);
			k->key_id = (uint32_t)v;
			snprintf(p, sizeof(p), "/dhcpv6/keys/%zu/secret", i);
			cfg_str(doc, p, true, NULL, &k->secret);
			if (k->secret && !*k->secret)
				cfg_error(doc, p, "the secret is empty");
			h->nkeys++;
		}
	}
	if (h->require_auth && h->nkeys == 0)
		cfg_error(doc, "/dhcpv6/require_auth",
		          "authentication is required but no key is given: add \"keys\"");
	cfg_str(doc, "/dhcpv6/dots_ri", false, NULL, &h->dots_ri);
	cfg_str(doc, "/dhcpv6/access_domain", false, NULL, &h->access_domain);
	if (cfg_array(doc, "/dhcpv6/dots_address", false, &n) && n) {
		h->dots_address = calloc(n, sizeof(*h->dots_address));
		for (size_t i = 0; h->dots_address && i < n; i++) {
			snprintf(p, sizeof(p), "/dhcpv6/dots_address/%zu", i);
			if (!cfg_str(doc, p, true, NULL, &s) || !s)
				continue;
			if (!addr_parse_v6(s, &h->dots_address[h->ndots_address]))
				cfg_error(doc, p, "\"%s\" is not an IPv6 address", s);
			else
				h->ndots_address++;
		}
	}
	h->relays = load_v6_list(doc, "/dhcpv6/relays", &h->nrelays);
	cfg_int(doc, "/dhcpv6/limits/per_duid", false, 4, 0, 16, &v);
	h->per_duid = (unsigned)v;
	cfg_int(doc, "/dhcpv6/limits/per_64", false, 0, 0, 65536, &v);
	h->per_64 = (unsigned)v;
	h->per_64_set = cfg_at(doc, "/dhcpv6/limits/per_64") != NULL;
	cfg_int(doc, "/dhcpv6/limits/clients", false, 16384, 16, 1 << 22, &v);
	h->clients = (unsigned)v;
	cfg_int(doc, "/dhcpv6/offer_hold", false, 10, 0, 3600, &v);
	h->offer_hold = (uint32_t)v;
}

static bool
ranges_meet(const struct pool_range *a, const struct pool_range *b)
{
	return a->first <= b->last && b->first <= a->last;
}

/*
 * What -n can tell without the network or the store, beyond the syntax of
 * each value: references between parts of the file and to the system.
 */
static void
check_offline(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	char p[128], a[ADDR_STRLEN];

	if (c->user && c->user[0] && !getpwnam(c->user))
		cfg_error(doc, "/user",
		          "there is no system user \"%s\" (create it: useradd --system %s; "
		          "\"user\": \"\" keeps root)",
		          c->user, c->user);
	for (size_t i = 0; i < c->npools; i++) {
		const struct dstmd_pool *dp = &c->pools[i];

		for (size_t j = 0; j < dp->pc.nexcludes; j++) {
			bool inside = false;

			for (size_t k = 0; k < dp->pc.nranges; k++)
				inside |= ranges_meet(&dp->excludes[j], &dp->ranges[k]);
			if (!inside) {
				snprintf(p, sizeof(p), "/pools/%zu/exclude/%zu", i, j);
				cfg_error(doc, p,
				          "%s is outside pool \"%s\": an exclusion names addresses "
				          "of its own pool",
				          addr_fmt_v4(dp->excludes[j].first, a), dp->pc.name);
			}
		}
	}
	for (size_t i = 0; i < c->nteps; i++) {
		const struct dstmd_tep *t = &c->teps[i];

		for (size_t j = 0; j < i; j++) {
			if (t->name && c->teps[j].name && !strcmp(t->name, c->teps[j].name)) {
				snprintf(p, sizeof(p), "/teps/%zu/name", i);
				cfg_error(doc, p, "TEP name \"%s\" is used twice (also /teps/%zu)",
				          t->name, j);
			}
			if (!memcmp(&t->v6, &c->teps[j].v6, sizeof(t->v6))) {
				snprintf(p, sizeof(p), "/teps/%zu/ipv6", i);
				cfg_error(doc, p, "%s is the address of /teps/%zu too",
				          addr_fmt_v6(&t->v6, a), j);
			}
		}
		for (size_t j = 0; j < c->npools; j++)
			for (size_t k = 0; k < c->pools[j].pc.nranges; k++) {
				struct pool_range r = {t->v4, t->v4};

				if (!ranges_meet(&r, &c->pools[j].ranges[k]))
					continue;
				snprintf(p, sizeof(p), "/teps/%zu/ipv4", i);
				cfg_error(doc, p,
				          "%s is in pool \"%s\": the TEP's own address cannot be "
				          "lent to a client",
				          addr_fmt_v4(t->v4, a), c->pools[j].pc.name);
			}
	}
	for (size_t i = 0; i < c->nlistens; i++)
		for (size_t j = 0; j < i; j++)
			if (c->listens[i].len == c->listens[j].len &&
			    !memcmp(&c->listens[i].addr, &c->listens[j].addr, c->listens[i].len)) {
				snprintf(p, sizeof(p), "/listen/%zu/address", i);
				cfg_error(doc, p, "the same address as /listen/%zu", j);
			}
	/*
	 * A per-/64 quota above the pools is allowed (a test or a tiny pool
	 * uses it to mean "no quota"), but one above the limit it subdivides
	 * can never be reached: a typo.
	 */
	if (cfg_at(doc, "/limits/connections_per_64") && c->conns_per_64 > c->max_connections)
		cfg_error(doc, "/limits/connections_per_64",
		          "%u sessions per /64 is more than limits.connections (%u)",
		          c->conns_per_64, c->max_connections);
	if (c->dhcp6.enable && cfg_at(doc, "/dhcpv6/limits/per_duid") && c->dhcp6.per_64 &&
	    c->dhcp6.per_duid > c->dhcp6.per_64)
		cfg_error(doc, "/dhcpv6/limits/per_duid",
		          "%u leases per DUID is more than the %u of its /64 (limits.per_64)",
		          c->dhcp6.per_duid, c->dhcp6.per_64);
	if (c->dhcp6.valid && c->dhcp6.valid < c->dhcp6.t2)
		cfg_error(doc, "/dhcpv6/t2", "t2 (%u) is after the valid lifetime (%u)",
		          c->dhcp6.t2, c->dhcp6.valid);
}

/* "metrics": "[v6]:port" or "v4:port" (default port 9653); absent: none. */
static void
load_metrics(struct dstmd_config *c)
{
	const char *s;

	if (!cfg_str(c->doc, "/metrics", false, NULL, &s) || !s)
		return;
	if (!addr_parse_endpoint(s, METRICS_PORT, &c->metrics_addr, &c->metrics_len))
		cfg_error(c->doc, "/metrics", "\"%s\" is not an endpoint ([v6]:port or v4:port)",
		          s);
	else
		c->metrics = s;
}

/* The "lw4o6" section: lwB4s served over DHCPv6 (lw4o6.c). */
static const char *const lw_keys[] = {"ipv6_pool", "pool", "per_source", "allocations_per_source",
                                      NULL};

void
lw4o6_config_load(struct dstmd_config *c)
{
	struct cfg *doc = c->doc;
	struct dstmd_lw4o6 *lw = &c->lw4o6;
	const struct dstmd_pool *dp = NULL;
	const char *s;
	long long v;

	if (!cfg_at(doc, "/lw4o6"))
		return;
	cfg_check_keys(doc, "/lw4o6", lw_keys);
	if (cfg_str(doc, "/lw4o6/ipv6_pool", true, NULL, &s) && s) {
		if (!addr_parse_prefix6(s, &lw->prefix, &lw->plen))
			cfg_error(doc, "/lw4o6/ipv6_pool", "\"%s\" is not an IPv6 prefix", s);
		else if (lw->plen < 112 || lw->plen > 127)
			cfg_error(doc, "/lw4o6/ipv6_pool",
			          "%s: give a prefix of /112 to /127 (at most 65536 lwB4s)", s);
		else
			lw->enable = true;
	}
	cfg_str(doc, "/lw4o6/pool", false, NULL, &lw->pool);
	/* A sender on the link (a link-local address, a relay's peer): see lw4o6.c. */
	cfg_int(doc, "/lw4o6/per_source", false, 4, 0, LW4O6_PER_SOURCE_MAX, &v);
	lw->per_source = (unsigned)v;
	cfg_int(doc, "/lw4o6/allocations_per_source", false, 2, 0, 1000, &v);
	lw->rate = (unsigned)v;
	for (size_t i = 0; i < c->npools; i++) {
		const struct dstmd_pool *p = &c->pools[i];

		if (lw->pool ? p->pc.name && !strcmp(p->pc.name, lw->pool) : p->pc.psid_len > 0) {
			dp = p;
			break;
		}
	}
	if (!dp && !lw->pool && c->npools)
		dp = &c->pools[0];
	if (!dp) {
		cfg_error(doc, "/lw4o6/pool", "no pool is named \"%s\"", lw->pool ? lw->pool : "");
		lw->enable = false;
		return;
	}
	lw->pool = dp->pc.name;
	if (dp->pc.port_range_size) {
		/* RFC 7598 carries a PSID, never a port range. */
		cfg_error(doc, "/lw4o6/pool",
		          "pool \"%s\" shares addresses by port_range_size; lwB4s need "
		          "\"psid_length\" (or whole addresses)",
		          lw->pool);
		lw->enable = false;
	}
	if (lw->enable && !c->dhcp6.enable)
		cfg_error(doc, "/lw4o6", "lwB4s are served over DHCPv6: enable \"dhcpv6\"");
}

struct dstmd_config *
dstmd_config_load(const char *path, FILE *errf)
{
	struct dstmd_config *c;
	char err[512];
	long long v;
	size_t n;

	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	if (!(c->doc = cfg_load(path, err, sizeof(err)))) {
		fprintf(errf, "%s\n", err);
		free(c);
		return NULL;
	}
	struct cfg *doc = c->doc;
	if (!json_is_object(cfg_root(doc))) {
		cfg_error(doc, "/", "the configuration must be a JSON object");
		goto fail;
	}
	cfg_check_keys(doc, "/", top_keys);
	{
		int sc;

		cfg_enum(doc, "/scenario", false, DSTMD_INTRANET, scenarios, &sc);
		c->scenario = (enum dstmd_scenario)sc;
	}
	cfg_str(doc, "/database", false, "/var/lib/dstm/leases.db", &c->database);
	/* The lease store on PostgreSQL, shared by several instances; otherwise the file. */
	if (cfg_at(doc, "/store")) {
		if (!json_is_object(cfg_at(doc, "/store")))
			cfg_error(doc, "/store", "an object: {\"postgresql\": \"conninfo\"}");
		else {
			cfg_check_keys(doc, "/store", store_keys);
			cfg_str(doc, "/store/postgresql", true, NULL, &c->store_pg);
		}
	}
	cfg_str(doc, "/user", false, "dstm", &c->user);
	cfg_bool(doc, "/seccomp", false, true, &c->seccomp);
	cfg_str(doc, "/control", false, "/run/dstm/dstmd.sock", &c->control);
	cfg_int(doc, "/lifetime", false, 3600, 10, 7 * 86400, &v);
	c->lifetime = (uint32_t)v;
	cfg_int(doc, "/quarantine", false, 300, 0, 7 * 86400, &v);
	c->quarantine = (uint32_t)v;
	cfg_int(doc, "/keepalive", false, 30, 0, 86400, &v);
	c->keepalive = (uint32_t)v;
	cfg_int(doc, "/history_days", false, 90, 0, 36500, &v);
	c->history_days = (uint32_t)v;
	load_listen(c);
	load_auth(c);
	config_load_pools(c);
	config_load_teps(c);
	if (cfg_array(doc, "/redirect", false, &n) && n) {
		c->redirect = calloc(n, sizeof(*c->redirect));
		for (size_t i = 0; c->redirect && i < n && i < TSP_MAX_BROKERS; i++) {
			char p[64];
			struct sockaddr_storage ss;
			socklen_t len;

			snprintf(p, sizeof(p), "/redirect/%zu", i);
			if (!cfg_str(doc, p, true, NULL, &c->redirect[c->nredirect]) ||
			    !c->redirect[c->nredirect])
				continue;
			if (!addr_parse_endpoint(c->redirect[c->nredirect], TSP_PORT, &ss, &len))
				cfg_error(doc, p, "\"%s\" is not an endpoint",
				          c->redirect[c->nredirect]);
			else
				c->nredirect++;
		}
	}
	/* seed 000: in the VPN scenario clients are authenticated, never known by their address. */
	if (c->scenario == DSTMD_VPN && c->anonymous)
		cfg_error(doc, "/auth/mechanisms",
		          "the vpn scenario refuses ANONYMOUS: clients must authenticate "
		          "(remove it, or set \"scenario\": \"intranet\")");
	cfg_check_keys(doc, "/limits", limit_keys);
	cfg_int(doc, "/limits/connections", false, 10000, 1, 1000000, &v);
	c->max_connections = (unsigned)v;
	cfg_int(doc, "/limits/line_length", false, 1024, 128, 65536, &v);
	c->limits.line_max = (size_t)v;
	cfg_int(doc, "/limits/content_length", false, 16384, 512, 1 << 20, &v);
	c->limits.content_max = (size_t)v;
	cfg_int(doc, "/limits/xml_depth", false, 16, 4, 64, &v);
	c->limits.xml_depth = (unsigned)v;
	cfg_int(doc, "/limits/handshake_timeout", false, 10, 1, 3600, &v);
	c->handshake_timeout = (unsigned)v;
	cfg_int(doc, "/limits/idle_timeout", false, 0, 0, 7 * 86400, &v);
	c->idle_timeout = (unsigned)v;
	cfg_int(doc, "/limits/unbound_timeout", false, 60, 0, 7 * 86400, &v);
	c->unbound_timeout = (unsigned)v;
	cfg_int(doc, "/limits/per_64", false, 0, 0, 1 << 24, &v);
	c->per_64 = (unsigned)v;
	cfg_int(doc, "/limits/connections_per_64", false,
	        c->max_connections / 8 > 64 ? c->max_connections / 8 : 64, 1, 1000000, &v);
	c->conns_per_64 = (unsigned)v;
	cfg_int(doc, "/limits/allocations_per_64", false, 0, 0, 1000000, &v);
	c->alloc_rate_64 = (unsigned)v;
	load_dhcp6(c);
	lw4o6_config_load(c);
	load_metrics(c);
	cfg_enum(doc, "/log_level", false, 0, log_levels, &c->log_level);
	if (cfg_nerrors(doc) == 0)
		check_offline(c);
	/* seed 000: "In the VPN scenario, DHCPv6 must not be used for address allocation". */
	if (c->scenario == DSTMD_VPN && c->dhcp6.enable)
		cfg_error(doc, "/dhcpv6",
		          "the vpn scenario does not allocate over DHCPv6 "
		          "(seed 000); disable it or use \"scenario\": \"intranet\"");
	if (cfg_nerrors(doc) == 0)
		return c;
fail:
	cfg_print_errors(doc, errf);
	dstmd_config_free(c);
	return NULL;
}

void
dstmd_config_free(struct dstmd_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npools; i++) {
		free(c->pools[i].ranges);
		free(c->pools[i].excludes);
	}
	free(c->pools);
	for (size_t i = 0; i < c->nlistens; i++)
		SSL_CTX_free(c->listens[i].tls);
	for (size_t i = 0; i < c->nteps; i++)
		free(c->teps[i].clients);
	free(c->teps);
	free(c->tep_views);
	free(c->listens);
	free(c->redirect);
	free(c->dhcp6.interfaces);
	free(c->dhcp6.keys);
	free(c->dhcp6.dots_address);
	free(c->dhcp6.relays);
	free(c->tsp_relays);
	for (size_t i = 0; i < c->nendpoints; i++)
		free(c->endpoints[i].prefixes);
	free(c->endpoints);
	cfg_free(c->secrets);
	cfg_free(c->doc);
	free(c);
}

const char *
dstmd_config_secret(const struct dstmd_config *c, const char *user)
{
	json_t *users, *v;

	if (!c->secrets || !user)
		return NULL;
	users = cfg_at(c->secrets, "/users");
	v = json_object_get(users, user);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

const struct grant_prefix *
dstmd_config_endpoints(const struct dstmd_config *c, const char *user, size_t *n)
{
	*n = 0;
	for (size_t i = 0; user && i < c->nendpoints; i++)
		if (!strcmp(c->endpoints[i].user, user)) {
			*n = c->endpoints[i].nprefixes;
			return c->endpoints[i].prefixes;
		}
	return NULL;
}

const struct dstmd_tep *
dstmd_config_tep_for(const struct dstmd_config *c, const struct in6_addr *v6)
{
	const struct grant_tep *t = grant_tep_choose(c->tep_views, c->nteps, v6);

	return t ? t->ref : NULL;
}

void
dstmd_config_dump(const struct dstmd_config *c, FILE *f)
{
	cfg_dump(c->doc, f);
}
