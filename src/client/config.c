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

#include <openssl/evp.h>

#include "client/client.h"
#include "common/addr.h"
#include "tsp/tsp.h"

static const char *const top_keys[] = {
    "access", "server",  "ipv6",  "interface",   "mode",      "auth",        "routes",
    "tep",    "control", "queue", "placeholder", "timeout",   "backoff_max", "dhcpv6",
    "tls",    "user",    "lw4o6", "fast_path",   "log_level", NULL,
};
static const char *const log_levels[] = {"info", "debug", "trace", NULL};
static const char *const dhcp6_keys[] = {"form", "codes", "rapid_commit", "port", "auth", NULL};
static const char *const dhcp6_auth_keys[] = {"realm", "key_id", "secret", NULL};
static const char *const dhcp6_forms[] = {"ia_dstm", "global_v4", NULL};
static const char *const tls_keys[] = {"ca", "pin", "name", NULL};
static const char *const auth_keys[] = {"mechanism", "user", "secret", NULL};
static const char *const tep_keys[] = {"ipv6", "ipv4", NULL};
static const char *const access_choices[] = {"tsp", "dhcpv6", NULL};
static const char *const mode_choices[] = {"always-on", "on-demand", NULL};
static const char *const fast_choices[] = {"auto", "bpf", "off", NULL};
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

static void
parse_dhcp6(struct cfg *c, struct client_config *out)
{
	struct client_dhcp6 *d = &out->dhcp6;
	const char *s;
	long long v;
	int idx;

	if (cfg_at(c, "/dhcpv6") && !json_is_object(cfg_at(c, "/dhcpv6"))) {
		cfg_error(c, "/dhcpv6", "must be an object");
		return;
	}
	if (cfg_at(c, "/dhcpv6") && out->access != CLIENT_ACCESS_DHCPV6)
		cfg_error(c, "/dhcpv6", "given, but \"access\" is not \"dhcpv6\"");
	/* An lwB4 (RFC 7596) gets its softwire over DHCPv6 only (RFC 7598). */
	cfg_bool(c, "/lw4o6", false, false, &out->lw4o6);
	if (out->lw4o6 && out->access != CLIENT_ACCESS_DHCPV6)
		cfg_error(c, "/lw4o6",
		          "an lwB4 is configured over DHCPv6: set \"access\": \"dhcpv6\"");
	cfg_check_keys(c, "/dhcpv6", dhcp6_keys);
	cfg_check_keys(c, "/dhcpv6/auth", dhcp6_auth_keys);
	if (cfg_enum(c, "/dhcpv6/form", false, 0, dhcp6_forms, &idx))
		d->global_v4_form = idx == 1;
	cfg_bool(c, "/dhcpv6/rapid_commit", false, false, &d->rapid_commit);
	if (cfg_int(c, "/dhcpv6/port", false, 547, 1, 65535, &v))
		d->port = (uint16_t)v;
	d6_codes_load(c, "/dhcpv6/codes", &d->codes);
	if (!cfg_at(c, "/dhcpv6/auth"))
		return;
	d->has_key = true;
	if (cfg_str(c, "/dhcpv6/auth/realm", true, NULL, &s) && s)
		copy_str(c, "/dhcpv6/auth/realm", s, d->realm, sizeof(d->realm));
	if (cfg_int(c, "/dhcpv6/auth/key_id", true, 0, 0, 0xffffffffLL, &v))
		d->key_id = (uint32_t)v;
	if (cfg_str(c, "/dhcpv6/auth/secret", true, NULL, &s) && s) {
		if (!*s)
			cfg_error(c, "/dhcpv6/auth/secret", "the secret is empty");
		copy_str(c, "/dhcpv6/auth/secret", s, d->secret, sizeof(d->secret));
	}
}

/* "sha256//BASE64": the SHA-256 of the server's SubjectPublicKeyInfo. */
static bool
parse_pin(const char *s, uint8_t pin[32])
{
	uint8_t raw[48];
	size_t n;
	int len;

	if (strncmp(s, "sha256//", 8) != 0)
		return false;
	s += 8;
	n = strlen(s);
	if (n != 44 || s[43] != '=' || s[42] == '=')
		return false;
	len = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n);
	if (len != 33) /* 32 octets and the padding's zero */
		return false;
	memcpy(pin, raw, 32);
	return true;
}

static void
parse_tls(struct cfg *c, struct client_config *out)
{
	struct client_tls *t = &out->tls;
	const char *s;

	if (!cfg_at(c, "/tls"))
		return;
	if (!json_is_object(cfg_at(c, "/tls"))) {
		cfg_error(c, "/tls", "must be an object");
		return;
	}
	t->enable = true;
	cfg_check_keys(c, "/tls", tls_keys);
	if (out->access != CLIENT_ACCESS_TSP)
		cfg_error(c, "/tls", "TLS protects TSP only: \"access\" must be \"tsp\"");
	if (cfg_str(c, "/tls/ca", false, NULL, &s) && s)
		copy_str(c, "/tls/ca", s, t->ca, sizeof(t->ca));
	if (cfg_str(c, "/tls/pin", false, NULL, &s) && s) {
		if (!parse_pin(s, t->pin))
			cfg_error(c, "/tls/pin",
			          "\"%s\" is not \"sha256//\" and the base64 of a SHA-256 "
			          "(openssl x509 -pubkey -noout | openssl pkey -pubin -outform der "
			          "| openssl dgst -sha256 -binary | base64)",
			          s);
		else
			t->has_pin = true;
	}
	if (cfg_str(c, "/tls/name", false, NULL, &s) && s)
		copy_str(c, "/tls/name", s, t->name, sizeof(t->name));
	if (!*t->ca && !t->has_pin)
		cfg_error(c, "/tls", "give \"ca\" (a PEM file) or \"pin\" to check the server by");
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
	if (cfg_enum(c, "/access", false, 0, access_choices, &idx))
		out->access = (enum client_access)idx;

	/* DHCPv6 finds its servers by multicast: "server" is TSP's. */
	if (cfg_str(c, "/server", out->access == CLIENT_ACCESS_TSP, NULL, &s) && s) {
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
	parse_dhcp6(c, out);
	parse_tls(c, out);
	if (cfg_enum(c, "/fast_path", false, CLIENT_FAST_AUTO, fast_choices, &idx))
		out->fast_path = (enum client_fast)idx;
	if (cfg_enum(c, "/log_level", false, 0, log_levels, &idx))
		out->log_level = idx;
	/* The port translation of an lwB4 happens in userspace only. */
	if (out->lw4o6 && out->fast_path == CLIENT_FAST_BPF)
		cfg_error(c, "/fast_path",
		          "\"bpf\" cannot translate lw4o6 ports: use \"auto\" or \"off\"");
	/* "user": null or "" keeps root (tests); absent is "dstm". */
	if (cfg_at(c, "/user") && json_is_null(cfg_at(c, "/user")))
		out->run_as[0] = '\0';
	else if (cfg_str(c, "/user", false, "dstm", &s) && s)
		copy_str(c, "/user", s, out->run_as, sizeof(out->run_as));
	return cfg_nerrors(c);
}

char *
client_config_dump(const struct client_config *cc)
{
	char buf[ADDR_STRLEN];
	json_t *o, *routes, *auth;
	char *text;

	o = json_object();
	json_object_set_new(o, "access", json_string(access_choices[cc->access]));
	if (*cc->server)
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
	json_object_set_new(o, "user", *cc->run_as ? json_string(cc->run_as) : json_null());
	if (cc->lw4o6)
		json_object_set_new(o, "lw4o6", json_true());
	json_object_set_new(o, "fast_path", json_string(fast_choices[cc->fast_path]));
	json_object_set_new(o, "log_level", json_string(log_levels[cc->log_level]));
	if (cc->access == CLIENT_ACCESS_DHCPV6) {
		const struct client_dhcp6 *d = &cc->dhcp6;
		json_t *h = json_object();

		json_object_set_new(h, "form", json_string(dhcp6_forms[d->global_v4_form]));
		json_object_set_new(h, "rapid_commit", json_boolean(d->rapid_commit));
		json_object_set_new(h, "port", json_integer(d->port));
		json_object_set_new(h, "codes", d6_codes_json(&d->codes));
		if (d->has_key)
			json_object_set_new(h, "auth",
			                    json_pack("{s:s, s:I, s:s}", "realm", d->realm,
			                              "key_id", (json_int_t)d->key_id, "secret",
			                              d->secret));
		json_object_set_new(o, "dhcpv6", h);
	}
	if (cc->tls.enable) {
		json_t *t = json_object();

		if (*cc->tls.ca)
			json_object_set_new(t, "ca", json_string(cc->tls.ca));
		if (cc->tls.has_pin) {
			char b64[64] = "sha256//";

			EVP_EncodeBlock((unsigned char *)b64 + 8, cc->tls.pin, 32);
			json_object_set_new(t, "pin", json_string(b64));
		}
		if (*cc->tls.name)
			json_object_set_new(t, "name", json_string(cc->tls.name));
		json_object_set_new(o, "tls", t);
	}
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
