/*
 * dstm-client's configuration (doc/internals.md, "dstm-client"): every
 * key validated at load with file:line errors, defaults filled in, and
 * printed back normalized for -n. Also the reconnection back-off, a pure
 * function of the attempt number and a random draw.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "common/addr.h"
#include "tsp/tsp.h"

static const char *const top_keys[] = {
    "access", "server",  "ipv6",  "interface",   "mode",    "auth",        "routes",
    "tep",    "control", "queue", "placeholder", "timeout", "backoff_max", NULL,
};
static const char *const auth_keys[] = {"mechanism", "user", "secret", NULL};
static const char *const tep_keys[] = {"ipv6", "ipv4", NULL};
static const char *const access_choices[] = {"tsp", NULL};
static const char *const mode_choices[] = {"always-on", "on-demand", NULL};
static const char *const mech_choices[] = {"ANONYMOUS", "PLAIN", "DIGEST-MD5", "SCRAM-SHA-256",
                                           NULL};

static void
copy_str(struct cfg *c, const char *ptr, const char *s, char *dst, size_t dstlen)
{
	if (strlen(s) >= dstlen) {
		cfg_error(c, ptr, "longer than %zu characters", dstlen - 1);
		return;
	}
	memcpy(dst, s, strlen(s) + 1);
}

/* RFC 7600: 192.0.0.8, the IPv4 dummy address of hosts with no IPv4. */
#define DEFAULT_PLACEHOLDER 0xc0000008u

int
client_config_parse(struct cfg *c, struct client_config *out)
{
	const char *s;
	long long v;
	size_t n;
	int idx;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(cfg_root(c))) {
		cfg_error(c, "", "the configuration must be a JSON object");
		return cfg_nerrors(c);
	}
	cfg_check_keys(c, "", top_keys);
	cfg_enum(c, "/access", false, 0, access_choices, &idx);

	if (cfg_str(c, "/server", true, NULL, &s) && s) {
		copy_str(c, "/server", s, out->server, sizeof(out->server));
		if (!addr_parse_endpoint(s, TSP_PORT, &out->server_sa, &out->server_salen))
			cfg_error(c, "/server",
			          "\"%s\" is not an endpoint (\"[v6]:port\", \"v6\", \"v4:port\")",
			          s);
	}
	if (cfg_str(c, "/ipv6", false, NULL, &s) && s) {
		if (!addr_parse_v6(s, &out->ipv6) || IN6_IS_ADDR_LINKLOCAL(&out->ipv6) ||
		    IN6_IS_ADDR_MULTICAST(&out->ipv6) || IN6_IS_ADDR_UNSPECIFIED(&out->ipv6) ||
		    IN6_IS_ADDR_V4MAPPED(&out->ipv6))
			cfg_error(c, "/ipv6", "\"%s\" is not a global IPv6 address", s);
		else
			out->has_ipv6 = true;
	}
	if (cfg_str(c, "/interface", false, "dstm0", &s) && s)
		copy_str(c, "/interface", s, out->interface, sizeof(out->interface));
	if (cfg_enum(c, "/mode", false, CLIENT_ALWAYS_ON, mode_choices, &idx))
		out->mode = (enum client_mode)idx;

	if (cfg_at(c, "/auth") && !json_is_object(cfg_at(c, "/auth")))
		cfg_error(c, "/auth", "must be an object");
	else
		cfg_check_keys(c, "/auth", auth_keys);
	if (cfg_enum(c, "/auth/mechanism", false, 0, mech_choices, &idx))
		snprintf(out->mechanism, sizeof(out->mechanism), "%s", mech_choices[idx]);
	if (cfg_str(c, "/auth/user", false, "", &s) && s)
		copy_str(c, "/auth/user", s, out->user, sizeof(out->user));
	if (cfg_str(c, "/auth/secret", false, "", &s) && s)
		copy_str(c, "/auth/secret", s, out->secret, sizeof(out->secret));
	if (strcmp(out->mechanism, "ANONYMOUS") != 0 && (!*out->user || !*out->secret))
		cfg_error(c, "/auth", "mechanism %s needs \"user\" and \"secret\"", out->mechanism);

	if (!cfg_at(c, "/routes")) {
		out->nroutes = 1; /* 0.0.0.0/0 */
	} else if (cfg_array(c, "/routes", false, &n)) {
		if (n == 0)
			cfg_error(c, "/routes",
			          "empty: give at least one prefix, e.g. \"0.0.0.0/0\"");
		if (n > CLIENT_MAX_ROUTES)
			cfg_error(c, "/routes", "more than %d prefixes", CLIENT_MAX_ROUTES);
		for (size_t i = 0; i < n && i < CLIENT_MAX_ROUTES; i++) {
			char ptr[32];
			struct client_route *r = &out->routes[out->nroutes];

			snprintf(ptr, sizeof(ptr), "/routes/%zu", i);
			if (!cfg_str(c, ptr, true, NULL, &s) || !s)
				continue;
			if (!addr_parse_prefix4(s, &r->dst, &r->plen))
				cfg_error(
				    c, ptr,
				    "\"%s\" is not an IPv4 prefix (a.b.c.d/len, no host bits)", s);
			else
				out->nroutes++;
		}
	}

	if (cfg_at(c, "/tep") && !json_is_object(cfg_at(c, "/tep")))
		cfg_error(c, "/tep", "must be an object");
	else
		cfg_check_keys(c, "/tep", tep_keys);
	if (cfg_str(c, "/tep/ipv6", false, NULL, &s) && s) {
		if (!addr_parse_v6(s, &out->tep6) || IN6_IS_ADDR_MULTICAST(&out->tep6) ||
		    IN6_IS_ADDR_UNSPECIFIED(&out->tep6))
			cfg_error(c, "/tep/ipv6", "\"%s\" is not a unicast IPv6 address", s);
		else
			out->has_tep6 = true;
	}
	if (cfg_str(c, "/tep/ipv4", false, NULL, &s) && s) {
		if (!addr_parse_v4(s, &out->tep4))
			cfg_error(c, "/tep/ipv4", "\"%s\" is not an IPv4 address", s);
		else
			out->has_tep4 = true;
	}

	if (cfg_str(c, "/control", false, "/run/dstm/client.sock", &s) && s)
		copy_str(c, "/control", s, out->control, sizeof(out->control));
	if (cfg_int(c, "/queue", false, 64, 1, 65536, &v))
		out->queue = (unsigned)v;
	out->placeholder = DEFAULT_PLACEHOLDER;
	if (cfg_str(c, "/placeholder", false, NULL, &s) && s) {
		if (!addr_parse_v4(s, &out->placeholder) || out->placeholder == 0 ||
		    (out->placeholder >> 24) == 127 || (out->placeholder >> 28) >= 14)
			cfg_error(c, "/placeholder", "\"%s\" is not a unicast IPv4 address", s);
	}
	if (cfg_int(c, "/timeout", false, 10, 1, 300, &v))
		out->timeout = (unsigned)v;
	if (cfg_int(c, "/backoff_max", false, 30, 1, 3600, &v))
		out->backoff_max = (unsigned)v;
	return cfg_nerrors(c);
}

char *
client_config_dump(const struct client_config *cc)
{
	char buf[ADDR_STRLEN];
	json_t *o, *routes, *auth;
	char *text;

	o = json_object();
	json_object_set_new(o, "access", json_string("tsp"));
	json_object_set_new(o, "server", json_string(cc->server));
	if (cc->has_ipv6)
		json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&cc->ipv6, buf)));
	json_object_set_new(o, "interface", json_string(cc->interface));
	json_object_set_new(o, "mode",
	                    json_string(cc->mode == CLIENT_ON_DEMAND ? "on-demand" : "always-on"));
	auth = json_object();
	json_object_set_new(auth, "mechanism", json_string(cc->mechanism));
	if (*cc->user)
		json_object_set_new(auth, "user", json_string(cc->user));
	if (*cc->secret)
		json_object_set_new(auth, "secret", json_string(cc->secret));
	json_object_set_new(o, "auth", auth);
	routes = json_array();
	for (unsigned i = 0; i < cc->nroutes; i++) {
		char p[ADDR_STRLEN + 4];

		snprintf(p, sizeof(p), "%s/%u", addr_fmt_v4(cc->routes[i].dst, buf),
		         cc->routes[i].plen);
		json_array_append_new(routes, json_string(p));
	}
	json_object_set_new(o, "routes", routes);
	if (cc->has_tep6 || cc->has_tep4) {
		json_t *tep = json_object();

		if (cc->has_tep6)
			json_object_set_new(tep, "ipv6", json_string(addr_fmt_v6(&cc->tep6, buf)));
		if (cc->has_tep4)
			json_object_set_new(tep, "ipv4", json_string(addr_fmt_v4(cc->tep4, buf)));
		json_object_set_new(o, "tep", tep);
	}
	json_object_set_new(o, "control", json_string(cc->control));
	json_object_set_new(o, "queue", json_integer(cc->queue));
	json_object_set_new(o, "placeholder", json_string(addr_fmt_v4(cc->placeholder, buf)));
	json_object_set_new(o, "timeout", json_integer(cc->timeout));
	json_object_set_new(o, "backoff_max", json_integer(cc->backoff_max));
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

unsigned
client_backoff_ms(unsigned attempt, unsigned max_s, uint32_t rnd)
{
	uint64_t d = 1000;

	for (unsigned i = 0; i < attempt && d < (uint64_t)max_s * 1000; i++)
		d *= 2;
	if (d > (uint64_t)max_s * 1000)
		d = (uint64_t)max_s * 1000;
	/* [d/2, d] */
	return (unsigned)(d / 2 + (uint64_t)rnd % (d / 2 + 1));
}
