/*
 * dstm-tep's configuration (doc/internals.md, "dstm-tep"): every key
 * validated at load with file:line errors, defaults filled in, and
 * printed back normalized for -n.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/metrics.h"
#include "tep/tep.h"

static const char *const top_keys[] = {
    "ipv6",      "ipv4",    "mode",      "pools",      "tun",       "mtu",
    "control",   "listen",  "servers",   "learn_idle", "icmp_rate", "scenario",
    "keepalive", "metrics", "log_level", "dataplane",  NULL,
};
static const char *const log_levels[] = {"info", "debug", "trace", NULL};
static const char *const server_keys[] = {"address", "user", "secret", NULL};
static const char *const mode_choices[] = {"server", "learn", NULL};
static const char *const scenario_choices[] = {"intranet", "vpn", NULL};
static const char *const dataplane_choices[] = {"auto", "xdp", "tun", "tc", NULL};

static void
copy_str(struct cfg *c, const char *ptr, const char *s, char *dst, size_t dstlen)
{
	if (strlen(s) >= dstlen) {
		cfg_error(c, ptr, "longer than %zu characters", dstlen - 1);
		return;
	}
	memcpy(dst, s, strlen(s) + 1);
}

static bool
parse_peer(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	uint32_t v4;

	memset(ss, 0, sizeof(*ss));
	if (addr_parse_v6(s, &s6->sin6_addr)) {
		s6->sin6_family = AF_INET6;
		return true;
	}
	if (addr_parse_v4(s, &v4)) {
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(v4);
		return true;
	}
	return false;
}

static void
parse_pools(struct cfg *c, struct tep_config *out)
{
	bool ok[DP_MAX_POOLS] = {false};
	size_t n;
	char ptr[64];
	const char *s;

	if (!cfg_array(c, "/pools", true, &n))
		return;
	if (n == 0)
		cfg_error(c, "/pools", "at least one IPv4 prefix is needed");
	if (n > DP_MAX_POOLS) {
		cfg_error(c, "/pools", "at most %d prefixes", DP_MAX_POOLS);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(ptr, sizeof(ptr), "/pools/%zu", i);
		if (!cfg_str(c, ptr, true, NULL, &s) || !s)
			continue;
		if (!addr_parse_prefix4(s, &out->pool_addr[i], &out->pool_plen[i])) {
			cfg_error(c, ptr,
			          "\"%s\" is not an IPv4 prefix (a.b.c.d/len, no host bits)", s);
			continue;
		}
		if (out->pool_plen[i] < 8)
			cfg_error(c, ptr, "\"%s\" is wider than a /8", s);
		ok[i] = true;
		for (size_t j = 0; j < i; j++) {
			uint32_t m =
			    addr_mask4(out->pool_plen[i] < out->pool_plen[j] ? out->pool_plen[i]
			                                                     : out->pool_plen[j]);
			if (ok[j] && (out->pool_addr[i] & m) == (out->pool_addr[j] & m))
				cfg_error(c, ptr, "\"%s\" overlaps /pools/%zu", s, j);
		}
		out->npools = (unsigned)i + 1;
	}
}

static void
parse_servers(struct cfg *c, struct tep_config *out)
{
	size_t n;
	char ptr[64];
	const char *s;

	if (!cfg_array(c, "/servers", out->mode == TEP_SERVER, &n))
		return;
	if (out->mode == TEP_SERVER && n == 0)
		cfg_error(c, "/servers",
		          "server mode needs at least one server (or use \"mode\": \"learn\")");
	if (n > TEP_MAX_SERVERS) {
		cfg_error(c, "/servers", "at most %d servers", TEP_MAX_SERVERS);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct tep_server_cfg *sv = &out->servers[i];

		snprintf(ptr, sizeof(ptr), "/servers/%zu", i);
		if (!json_is_object(cfg_at(c, ptr))) {
			cfg_error(c, ptr, "must be an object {\"address\", \"user\", \"secret\"}");
			continue;
		}
		cfg_check_keys(c, ptr, server_keys);
		snprintf(ptr, sizeof(ptr), "/servers/%zu/address", i);
		if (cfg_str(c, ptr, true, NULL, &s) && s) {
			copy_str(c, ptr, s, sv->address, sizeof(sv->address));
			if (!parse_peer(s, &sv->addr))
				cfg_error(c, ptr, "\"%s\" is not an IPv6 or IPv4 address", s);
		}
		snprintf(ptr, sizeof(ptr), "/servers/%zu/user", i);
		if (cfg_str(c, ptr, true, NULL, &s) && s)
			copy_str(c, ptr, s, sv->user, sizeof(sv->user));
		snprintf(ptr, sizeof(ptr), "/servers/%zu/secret", i);
		if (cfg_str(c, ptr, true, NULL, &s) && s)
			copy_str(c, ptr, s, sv->secret, sizeof(sv->secret));
		out->nservers = (unsigned)i + 1;
	}
}

/* What -n can tell beyond each value's syntax: references between values. */
static void
check_offline(struct cfg *c, const struct tep_config *tc)
{
	char ptr[64], a[ADDR_STRLEN];

	for (unsigned i = 0; i < tc->npools; i++)
		if ((tc->ipv4 & addr_mask4(tc->pool_plen[i])) == tc->pool_addr[i])
			cfg_error(c, "/ipv4",
			          "%s is in /pools/%u: the TEP's own address cannot be a client's",
			          addr_fmt_v4(tc->ipv4, a), i);
	for (unsigned i = 0; i < tc->nservers; i++)
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(tc->servers[i].address, tc->servers[j].address)) {
				snprintf(ptr, sizeof(ptr), "/servers/%u/address", i);
				cfg_error(c, ptr,
				          "server %s is listed twice (also /servers/%u): one "
				          "entry, one user and secret per server",
				          tc->servers[i].address, j);
			}
	if (tc->has_metrics && tc->mode == TEP_SERVER && tc->metrics_salen == tc->listen_salen &&
	    !memcmp(&tc->metrics_sa, &tc->listen_sa, tc->listen_salen))
		cfg_error(c, "/metrics", "the same endpoint as \"listen\" (TSP): use port %d",
		          METRICS_PORT);
}

int
tep_config_parse(struct cfg *c, struct tep_config *out)
{
	const char *s;
	long long v;
	int idx;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(cfg_root(c))) {
		cfg_error(c, "", "the configuration must be a JSON object");
		return cfg_nerrors(c);
	}
	cfg_check_keys(c, "", top_keys);
	if (cfg_str(c, "/ipv6", true, NULL, &s) && s) {
		if (!addr_parse_v6(s, &out->ipv6) || IN6_IS_ADDR_MULTICAST(&out->ipv6) ||
		    IN6_IS_ADDR_UNSPECIFIED(&out->ipv6) || IN6_IS_ADDR_V4MAPPED(&out->ipv6) ||
		    IN6_IS_ADDR_LINKLOCAL(&out->ipv6))
			cfg_error(c, "/ipv6", "\"%s\" is not a global IPv6 address", s);
	}
	if (cfg_str(c, "/ipv4", true, NULL, &s) && s) {
		if (!addr_parse_v4(s, &out->ipv4) || out->ipv4 == 0)
			cfg_error(c, "/ipv4", "\"%s\" is not an IPv4 address", s);
	}
	if (cfg_enum(c, "/scenario", false, TEP_INTRANET, scenario_choices, &idx))
		out->scenario = (enum tep_scenario)idx;
	if (cfg_enum(c, "/mode", false, TEP_SERVER, mode_choices, &idx))
		out->mode = (enum tep_mode)idx;
	/* Seed 000: in the VPN scenario "the mapping in the TEP must be
	 * managed by the DSTM server which authenticates the DSTM host";
	 * a mapping learned from traffic would let anyone who knows a
	 * temporary IPv4 address use the TEP as a relay. */
	if (out->scenario == TEP_VPN && out->mode == TEP_LEARN)
		cfg_error(c, "/mode",
		          "the vpn scenario refuses learn mode: bindings come only from the "
		          "authenticated dstmd (seed 000); use \"mode\": \"server\" with "
		          "\"servers\", or \"scenario\": \"intranet\"");
	parse_pools(c, out);
	if (cfg_str(c, "/tun", false, "dstm4", &s) && s)
		copy_str(c, "/tun", s, out->tun, sizeof(out->tun));
	/* IPv4 needs 68; the IPv6 path under it at least 1280 (so 1240 inside). */
	if (cfg_int(c, "/mtu", false, 1460, 1240, 65535 - 40, &v))
		out->mtu = (unsigned)v;
	if (cfg_str(c, "/control", false, "/run/dstm/tep.sock", &s) && s)
		copy_str(c, "/control", s, out->control, sizeof(out->control));
	if (out->mode == TEP_SERVER) {
		char dflt[ADDR_STRLEN + 16];
		char a6[ADDR_STRLEN];

		snprintf(dflt, sizeof(dflt), "[%s]:%d", addr_fmt_v6(&out->ipv6, a6), TSP_PORT);
		if (cfg_str(c, "/listen", false, dflt, &s) && s) {
			copy_str(c, "/listen", s, out->listen, sizeof(out->listen));
			if (!addr_parse_endpoint(s, TSP_PORT, &out->listen_sa, &out->listen_salen))
				cfg_error(c, "/listen",
				          "\"%s\" is not an endpoint (\"[v6]:port\", \"v4:port\")",
				          s);
		}
	} else if (cfg_at(c, "/listen")) {
		cfg_error(c, "/listen", "learn mode takes no TSP listener");
	}
	parse_servers(c, out);
	if (cfg_int(c, "/learn_idle", false, 300, 1, 86400 * 7, &v))
		out->learn_idle = (unsigned)v;
	if (cfg_int(c, "/icmp_rate", false, 100, 0, 1000000, &v))
		out->icmp_rate = (unsigned)v;
	/* The address clients ping to keep their binding warm (RFC 5572 §4.3). */
	out->keepalive = out->ipv4;
	if (cfg_str(c, "/keepalive", false, NULL, &s) && s && !addr_parse_v4(s, &out->keepalive))
		cfg_error(c, "/keepalive", "\"%s\" is not an IPv4 address", s);
	if (cfg_str(c, "/metrics", false, NULL, &s) && s) {
		copy_str(c, "/metrics", s, out->metrics, sizeof(out->metrics));
		if (!addr_parse_endpoint(s, METRICS_PORT, &out->metrics_sa, &out->metrics_salen))
			cfg_error(c, "/metrics", "\"%s\" is not an endpoint ([v6]:port or v4:port)",
			          s);
		else
			out->has_metrics = true;
	}
	cfg_enum(c, "/log_level", false, 0, log_levels, &out->log_level);
	if (cfg_nerrors(c) == 0)
		check_offline(c, out);
	if (cfg_enum(c, "/dataplane", false, TEP_DP_AUTO, dataplane_choices, &idx))
		out->dataplane = (enum tep_dataplane)idx;
	return cfg_nerrors(c);
}

char *
tep_config_dump(const struct tep_config *tc)
{
	json_t *o = json_object(), *pools = json_array(), *servers = json_array();
	char buf[ADDR_STRLEN], p[ADDR_STRLEN + 8];
	char *text;

	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&tc->ipv6, buf)));
	json_object_set_new(o, "ipv4", json_string(addr_fmt_v4(tc->ipv4, buf)));
	json_object_set_new(o, "scenario", json_string(scenario_choices[tc->scenario]));
	json_object_set_new(o, "mode", json_string(mode_choices[tc->mode]));
	for (unsigned i = 0; i < tc->npools; i++) {
		snprintf(p, sizeof(p), "%s/%u", addr_fmt_v4(tc->pool_addr[i], buf),
		         tc->pool_plen[i]);
		json_array_append_new(pools, json_string(p));
	}
	json_object_set_new(o, "pools", pools);
	json_object_set_new(o, "tun", json_string(tc->tun));
	json_object_set_new(o, "mtu", json_integer(tc->mtu));
	json_object_set_new(o, "control", json_string(tc->control));
	if (tc->mode == TEP_SERVER)
		json_object_set_new(o, "listen", json_string(tc->listen));
	for (unsigned i = 0; i < tc->nservers; i++) {
		json_t *s = json_object();

		json_object_set_new(s, "address", json_string(tc->servers[i].address));
		json_object_set_new(s, "user", json_string(tc->servers[i].user));
		json_object_set_new(s, "secret", json_string(tc->servers[i].secret));
		json_array_append_new(servers, s);
	}
	json_object_set_new(o, "servers", servers);
	json_object_set_new(o, "learn_idle", json_integer(tc->learn_idle));
	json_object_set_new(o, "icmp_rate", json_integer(tc->icmp_rate));
	json_object_set_new(o, "keepalive", json_string(addr_fmt_v4(tc->keepalive, buf)));
	if (tc->has_metrics)
		json_object_set_new(o, "metrics", json_string(tc->metrics));
	if (tc->log_level)
		json_object_set_new(o, "log_level",
		                    json_string(tc->log_level == 1 ? "debug" : "trace"));
	json_object_set_new(o, "dataplane", json_string(dataplane_choices[tc->dataplane]));
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}
