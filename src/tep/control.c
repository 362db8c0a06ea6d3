/*
 * Where dstm-tep's bindings come from and how operators see them.
 *
 * Server mode (seed 001 C §2.1: "The TEP MUST be configured to accept TSP
 * messages only from a valid DSTM server"; seed 000: in the VPN scenario
 * "the mapping in the TEP must be managed by the DSTM server"): a TSP
 * listener that drops every connection whose peer address is not one of
 * `servers`, and authenticates the rest with that entry's user and secret
 * only (one TSP server object per entry, whose secret function knows no
 * other user). `create` adds the binding and answers `info` with both
 * ends' addresses, or 307 when it cannot; `delete` removes it. dstmd
 * reconnects to a restarted TEP and pushes every live binding again.
 *
 * The control socket (doc/internals.md): status, counters, bindings,
 * binding-add, binding-del.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/ctl.h"
#include "common/log.h"
#include "tep/tep.h"

/* ---- TSP ---- */

static const char *
secret_of(void *arg, const char *user, const char *realm)
{
	const struct tep_server_cfg *sv = arg;

	return user && strcmp(user, sv->user) == 0 ? sv->secret : NULL;
}

static bool
same_host(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family == AF_INET6 && b->ss_family == AF_INET6) {
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	}
	if (a->sa_family == AF_INET && b->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6 && b->ss_family == AF_INET) {
		uint32_t v4;

		/* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d. */
		return addr_is_v4_mapped(&((const struct sockaddr_in6 *)a)->sin6_addr, &v4) &&
		       htonl(v4) == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	}
	return false;
}

static bool
in_pool(const struct tep *t, uint32_t v4)
{
	return dp_in_pool(&t->dp, v4);
}

static void
reply_info(struct tsp_conn *c, struct tep *t, const struct tsp_tunnel *req, int status)
{
	struct tsp_tunnel r;

	if (status != TSP_OK) {
		tsp_conn_reply(c, status, NULL);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.action = TSP_ACTION_INFO;
	snprintf(r.type, sizeof(r.type), "v4v6");
	r.lifetime = req->lifetime;
	r.client = req->client;
	r.client.present = true;
	r.server.present = true;
	r.server.has_v4 = true;
	r.server.v4 = t->cfg.ipv4;
	r.server.has_v6 = true;
	r.server.v6 = t->cfg.ipv6;
	tsp_conn_reply(c, TSP_OK, &r);
}

static void
on_command(struct tsp_conn *c, const struct tsp_tunnel *tn, void *arg)
{
	struct tep *t = arg;
	const struct tsp_endpoint *cl = &tn->client;
	struct bt_binding *b;
	uint16_t lo = 0, hi = 65535;
	char a4[ADDR_STRLEN], a6[ADDR_STRLEN];
	int rc;

	if (tn->action == TSP_ACTION_INFO)
		return; /* an acknowledgement needs no answer */
	if ((tn->action != TSP_ACTION_CREATE && tn->action != TSP_ACTION_DELETE) ||
	    strcmp(tn->type, "v4v6") != 0 || !cl->present || !cl->has_v4 || !cl->has_v6) {
		t->ctr.tsp_bad_command++;
		tsp_conn_reply(
		    c, tn->action == TSP_ACTION_CREATE ? TSP_TEP_CONFIG_ERROR : TSP_INVALID_REQUEST,
		    NULL);
		return;
	}
	if (cl->has_ports) {
		lo = cl->port_lo;
		hi = cl->port_hi;
	}
	addr_fmt_v4(cl->v4, a4);
	addr_fmt_v6(&cl->v6, a6);
	if (tn->action == TSP_ACTION_CREATE) {
		/* Seed 001 C §2.1: a binding that cannot be set up is 307. */
		if (!in_pool(t, cl->v4) || IN6_IS_ADDR_MULTICAST(&cl->v6) ||
		    IN6_IS_ADDR_UNSPECIFIED(&cl->v6)) {
			log_warnx("TSP create %s -> %s: outside the pools", a4, a6);
			t->ctr.tsp_create_refused++;
			reply_info(c, t, tn, TSP_TEP_CONFIG_ERROR);
			return;
		}
		if (cl->has_ports && cl->psid_len)
			rc = bt_add_psid(t->bt, cl->v4, cl->psid_offset, cl->psid_len, cl->psid,
			                 &cl->v6, 0, &b);
		else
			rc = bt_add(t->bt, cl->v4, lo, hi, &cl->v6, 0, &b);
		if (rc == 0)
			tep_xdp_bind(t, b);
		if (rc < 0) {
			log_warnx("TSP create %s ports %u-%u -> %s: %s", a4, lo, hi, a6,
			          strerror(-rc));
			t->ctr.tsp_create_refused++;
			reply_info(c, t, tn, TSP_TEP_CONFIG_ERROR);
			return;
		}
		log_debug("binding %s ports %u-%u -> %s", a4, lo, hi, a6);
		t->ctr.tsp_create_ok++;
		reply_info(c, t, tn, TSP_OK);
		return;
	}
	/* Delete only what names this client: a late delete must not remove
	 * the binding of whoever holds the address now. */
	{
		b = bt_lookup(t->bt, cl->v4, lo);
		if (!b || memcmp(&b->v6, &cl->v6, 16) != 0 ||
		    bt_del(t->bt, cl->v4, lo, !cl->has_ports) < 0) {
			t->ctr.tsp_delete_unknown++;
		} else {
			tep_xdp_unbind(t, cl->v4, lo, !cl->has_ports);
			log_debug("binding %s ports %u-%u removed", a4, lo, hi);
			t->ctr.tsp_delete_ok++;
		}
	}
	reply_info(c, t, tn, TSP_OK);
}

static void
on_closed(struct tsp_conn *c, void *arg)
{
	struct tep *t = arg;

	if (t->sessions)
		t->sessions--;
}

static void
on_authenticated(struct tsp_conn *c, void *arg)
{
	struct tep *t = arg;
	const char *user = tsp_conn_user(c);
	char a[ADDR_STRLEN];

	log_info("TSP: %s authenticated as %s (%s)", addr_fmt_sockaddr(tsp_conn_peer(c), a),
	         user ? user : "(anonymous)", tsp_conn_mechanism(c));
	if (!user) {
		t->ctr.tsp_refused_user++;
		tsp_conn_close(c);
	}
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct tep *t = arg;
	struct bufferevent *bev;
	char a[ADDR_STRLEN];
	unsigned i;

	for (i = 0; i < t->cfg.nservers; i++)
		if (same_host(sa, &t->cfg.servers[i].addr))
			break;
	if (i == t->cfg.nservers) {
		t->ctr.tsp_refused_peer++;
		log_warnx("TSP: %s is not a configured server: connection refused",
		          addr_fmt_sockaddr(sa, a));
		evutil_closesocket(fd);
		return;
	}
	bev = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	if (tsp_server_accept(t->tsp[i], bev, sa, (socklen_t)salen, false))
		t->sessions++;
}

/* The TSP server object of servers entry `i`. */
static int
tep_tsp_server_new(struct tep *t, unsigned i)
{
	static const struct tsp_server_callbacks cb = {
	    .command = on_command,
	    .closed = on_closed,
	    .authenticated = on_authenticated,
	};
	struct tsp_server_config sc = {
	    .limits = {.line_max = 1024, .content_max = 16384, .xml_depth = 16},
	    .mechanisms = "SCRAM-SHA-256 DIGEST-MD5",
	    .realm = "dstm",
	    .service = "tsp",
	    .secret = secret_of,
	    .secret_arg = &t->cfg.servers[i],
	    .handshake_timeout = 10,
	};

	t->tsp[i] = tsp_server_new(t->base, &sc, &cb, t);
	return t->tsp[i] ? 0 : -ENOMEM;
}

int
tep_tsp_start(struct tep *t)
{
	char a[ADDR_STRLEN];

	if (t->cfg.mode != TEP_SERVER)
		return 0;
	for (unsigned i = 0; i < t->cfg.nservers; i++)
		if (tep_tsp_server_new(t, i) != 0)
			return -ENOMEM;
	t->listener = evconnlistener_new_bind(
	    t->base, on_accept, t,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 64,
	    (struct sockaddr *)&t->cfg.listen_sa, (int)t->cfg.listen_salen);
	if (!t->listener) {
		int e = errno ? errno : EADDRNOTAVAIL;
		log_warnx("cannot listen on %s: %s", t->cfg.listen, strerror(e));
		return -e;
	}
	log_info("TSP on %s for %u server(s)",
	         addr_fmt_sockaddr((struct sockaddr *)&t->cfg.listen_sa, a), t->cfg.nservers);
	return 0;
}

int
tep_tsp_reload(struct tep *t, const struct tep_config *nc)
{
	unsigned old = t->cfg.nservers;

	/*
	 * Each TSP server object reads its entry's user and secret through
	 * secret_arg (&t->cfg.servers[i]) at every login: copying the entries
	 * over applies them. Entries beyond the old count get a server object;
	 * a removed entry's object stays (its sessions, if any, run on) but no
	 * new connection maps to it (on_accept walks the current entries).
	 */
	memcpy(t->cfg.servers, nc->servers, sizeof(t->cfg.servers));
	t->cfg.nservers = nc->nservers;
	for (unsigned i = old; t->cfg.mode == TEP_SERVER && i < nc->nservers; i++)
		if (!t->tsp[i] && tep_tsp_server_new(t, i) != 0)
			return -ENOMEM;
	return 0;
}

void
tep_tsp_stop(struct tep *t)
{
	if (t->listener)
		evconnlistener_free(t->listener);
	t->listener = NULL;
	for (unsigned i = 0; i < TEP_MAX_SERVERS; i++)
		if (t->tsp[i]) {
			tsp_server_free(t->tsp[i]);
			t->tsp[i] = NULL;
		}
}

/* ---- The control socket. ---- */

#define BINDINGS_LIMIT 100000

static json_t *
binding_json(const struct tep *t, const struct bt_binding *b)
{
	char a[ADDR_STRLEN];
	json_t *o = json_object();
	uint64_t c[4];

	json_object_set_new(o, "ipv4", json_string(addr_fmt_v4(b->v4, a)));
	if (b->flags & BT_F_PSID) {
		/* RFC 7597 §5.1: the set, not a range. */
		json_object_set_new(o, "psid_offset", json_integer(b->psid_offset));
		json_object_set_new(o, "psid_length", json_integer(b->psid_len));
		json_object_set_new(o, "psid", json_integer(b->psid));
	} else {
		json_object_set_new(o, "port_lo", json_integer(b->port_lo));
		json_object_set_new(o, "port_hi", json_integer(b->port_hi));
	}
	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&b->v6, a)));
	json_object_set_new(o, "origin",
	                    json_string(b->flags & BT_F_LEARNED  ? "learned"
	                                : b->flags & BT_F_STATIC ? "operator"
	                                                         : "server"));
	json_object_set_new(o, "mtu", json_integer(b->mtu));
	tep_xdp_binding_ctr(t, b, c);
	json_object_set_new(o, "pkts_in", json_integer((json_int_t)c[0]));
	json_object_set_new(o, "bytes_in", json_integer((json_int_t)c[1]));
	json_object_set_new(o, "pkts_out", json_integer((json_int_t)c[2]));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)c[3]));
	return o;
}

json_t *
tep_counters_json(const struct tep *t)
{
	json_t *o = json_object();
	const struct tsp_server_stats *st;
	uint64_t sum[12] = {0};

	for (int i = 0; i < DPC__COUNT; i++)
		json_object_set_new(o, dp_counter_name((enum dp_counter)i),
		                    json_integer((json_int_t)t->dp.ctr[i]));
#define TEP_X(n) json_object_set_new(o, #n, json_integer((json_int_t)t->ctr.n));
	TEP_COUNTERS(TEP_X)
#undef TEP_X
	for (unsigned i = 0; i < TEP_MAX_SERVERS; i++) {
		if (!t->tsp[i] || !(st = tsp_server_stats(t->tsp[i])))
			continue;
		sum[0] += st->sessions, sum[1] += st->sessions_open, sum[2] += st->auth_ok;
		sum[3] += st->auth_failed, sum[4] += st->bad_version, sum[5] += st->bad_line;
		sum[6] += st->bad_frame, sum[7] += st->bad_xml, sum[8] += st->too_long;
		sum[9] += st->timeouts, sum[10] += st->commands, sum[11] += st->replies;
	}
	{
		static const char *const names[12] = {
		    "tsp_sessions",    "tsp_sessions_open", "tsp_auth_ok",   "tsp_auth_failed",
		    "tsp_bad_version", "tsp_bad_line",      "tsp_bad_frame", "tsp_bad_xml",
		    "tsp_too_long",    "tsp_timeouts",      "tsp_commands",  "tsp_replies"};
		for (int i = 0; i < 12; i++)
			json_object_set_new(o, names[i], json_integer((json_int_t)sum[i]));
	}
	json_object_set_new(o, "bindings", json_integer((json_int_t)bt_count(t->bt)));
	return o;
}

static json_t *
status_json(const struct tep *t)
{
	json_t *o = json_object(), *pools = json_array();
	char a[ADDR_STRLEN], p[ADDR_STRLEN + 8];

	json_object_set_new(o, "scenario",
	                    json_string(t->cfg.scenario == TEP_VPN ? "vpn" : "intranet"));
	json_object_set_new(o, "mode", json_string(t->cfg.mode == TEP_SERVER ? "server" : "learn"));
	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&t->cfg.ipv6, a)));
	json_object_set_new(o, "ipv4", json_string(addr_fmt_v4(t->cfg.ipv4, a)));
	json_object_set_new(o, "tun", json_string(t->ifname));
	json_object_set_new(o, "dataplane", json_string(tep_dataplane_name(t)));
	json_object_set_new(o, "mtu", json_integer(t->cfg.mtu));
	for (unsigned i = 0; i < t->cfg.npools; i++) {
		snprintf(p, sizeof(p), "%s/%u", addr_fmt_v4(t->cfg.pool_addr[i], a),
		         t->cfg.pool_plen[i]);
		json_array_append_new(pools, json_string(p));
	}
	json_object_set_new(o, "pools", pools);
	json_object_set_new(o, "bindings", json_integer((json_int_t)bt_count(t->bt)));
	json_object_set_new(o, "table_bytes", json_integer((json_int_t)bt_memory(t->bt)));
	json_object_set_new(o, "tsp_sessions", json_integer(t->sessions));
	return o;
}

static bool
arg_port(json_t *args, const char *key, long long dflt, uint16_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, key);

	if (!v) {
		*out = (uint16_t)dflt;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535) {
		snprintf(err, errlen, "\"%s\" must be a port number (0-65535)", key);
		return false;
	}
	*out = (uint16_t)json_integer_value(v);
	return true;
}

static bool
arg_v4(json_t *args, uint32_t *v4, char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(args, "ipv4"));

	if (!s || !addr_parse_v4(s, v4)) {
		snprintf(err, errlen, "\"ipv4\" must be an IPv4 address");
		return false;
	}
	return true;
}

static json_t *
ctl_handler(void *arg, const char *cmd, json_t *args, char *err, size_t errlen)
{
	struct tep *t = arg;

	tep_xdp_fold(t);
	if (strcmp(cmd, "status") == 0)
		return status_json(t);
	if (strcmp(cmd, "counters") == 0)
		return tep_counters_json(t);
	if (strcmp(cmd, "bindings") == 0) {
		/* A million bindings would not fit one reply: "limit" (default
		 * BINDINGS_LIMIT) bounds it, "ipv4" picks one address. */
		json_t *a, *lim = json_object_get(args, "limit");
		struct bt_binding *b;
		uint32_t cur = 0, v4 = 0;
		json_int_t limit = BINDINGS_LIMIT;
		bool one = json_object_get(args, "ipv4") != NULL;

		if (one && !arg_v4(args, &v4, err, errlen))
			return NULL;
		if (lim && (!json_is_integer(lim) || json_integer_value(lim) < 0)) {
			snprintf(err, errlen, "\"limit\" must be a number of bindings");
			return NULL;
		}
		if (lim)
			limit = json_integer_value(lim);
		a = json_array();
		while ((json_int_t)json_array_size(a) < limit && (b = bt_next(t->bt, &cur)) != NULL)
			if (!one || b->v4 == v4)
				json_array_append_new(a, binding_json(t, b));
		return a;
	}
	if (strcmp(cmd, "binding-add") == 0) {
		const char *s = json_string_value(json_object_get(args, "ipv6"));
		struct in6_addr v6;
		struct bt_binding *b;
		uint16_t lo, hi, off, len, psid;
		uint32_t v4;
		int rc;

		if (!arg_v4(args, &v4, err, errlen) ||
		    !arg_port(args, "port_lo", 0, &lo, err, errlen) ||
		    !arg_port(args, "port_hi", 65535, &hi, err, errlen) ||
		    !arg_port(args, "psid_offset", 6, &off, err, errlen) ||
		    !arg_port(args, "psid_length", 0, &len, err, errlen) ||
		    !arg_port(args, "psid", 0, &psid, err, errlen))
			return NULL;
		if (!s || !addr_parse_v6(s, &v6) || IN6_IS_ADDR_MULTICAST(&v6)) {
			snprintf(err, errlen, "\"ipv6\" must be a unicast IPv6 address");
			return NULL;
		}
		if (!in_pool(t, v4)) {
			char a[ADDR_STRLEN];
			snprintf(err, errlen, "%s is outside the pools", addr_fmt_v4(v4, a));
			return NULL;
		}
		if (len > 15 || off > 15) {
			snprintf(err, errlen, "\"psid_offset\" and \"psid_length\" are 0-15");
			return NULL;
		}
		if (len)
			rc = bt_add_psid(t->bt, v4, (uint8_t)off, (uint8_t)len, psid, &v6,
			                 BT_F_STATIC, &b);
		else
			rc = bt_add(t->bt, v4, lo, hi, &v6, BT_F_STATIC, &b);
		if (rc == 0)
			tep_xdp_bind(t, b);
		if (rc < 0) {
			snprintf(err, errlen, "%s",
			         rc == -EEXIST ? "it overlaps a binding of another shape"
			         : rc == -EINVAL
			             ? "the port range (or set) does not fit the address's"
			             : strerror(-rc));
			return NULL;
		}
		return binding_json(t, b);
	}
	if (strcmp(cmd, "binding-del") == 0) {
		uint32_t v4;
		uint16_t lo;
		bool all = !json_object_get(args, "port_lo");

		if (!arg_v4(args, &v4, err, errlen) ||
		    !arg_port(args, "port_lo", 0, &lo, err, errlen))
			return NULL;
		if (bt_del(t->bt, v4, lo, all) < 0) {
			snprintf(err, errlen, "no such binding");
			return NULL;
		}
		tep_xdp_unbind(t, v4, lo, all);
		return json_object();
	}
	snprintf(err, errlen,
	         "unknown command \"%s\" (status, counters, bindings, binding-add, "
	         "binding-del)",
	         cmd);
	return NULL;
}

int
tep_ctl_start(struct tep *t)
{
	t->ctl = ctl_server_new(t->base, t->cfg.control, ctl_handler, t);
	if (!t->ctl) {
		int e = errno;
		log_warn("control socket %s", t->cfg.control);
		return -e;
	}
	return 0;
}

void
tep_ctl_stop(struct tep *t)
{
	if (t->ctl)
		ctl_server_free(t->ctl);
	t->ctl = NULL;
}
