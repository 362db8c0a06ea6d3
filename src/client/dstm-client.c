/*
 * dstm-client: the DSTM host side (seed 001 §5). Its server access
 * module (TSP, access_tsp.c, or DHCPv6, access_dhcp6.c) obtains a
 * temporary IPv4 address and the TEP, renews it and gives it up when the
 * server deletes it or when it expires (lease.c); its Dynamic Tunnel
 * Interface (seed 001 §5.2, tunnel.c) is a TUN device whose IPv4 packets
 * go out inside IPv6 (next header 4) through a raw socket bound to the
 * host's global IPv6 address, toward the TEP. Always-on mode acquires at
 * start; on-demand mode (seed 002 §5.1, ondemand.c) waits for the first
 * IPv4 packet. The client never updates DNS (seed 001 §5.1, seed 002 §6.3).
 *
 * This file is main: it opens what needs privileges, wires the parts
 * together (each gets pointers to the parts it uses), drops privileges
 * and runs one libevent loop; signals and the control socket live here.
 */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "client/shell.h"
#include "common/addr.h"
#include "common/args.h"
#include "common/clock.h"
#include "common/ctl.h"
#include "common/privdrop.h"
#include "common/service.h"

struct client {
	struct client_config cfg;
	struct event_base *base;
	struct nl *nl;
	struct ctl_server *ctl;
	struct in6_addr v6;
	struct client_lease lease;
	struct client_ondemand od;
	struct client_tunnel tun;
	struct client_tsp tsp;
	struct client_dhcp6_access d6;
	bool dhcpv6, releasing;
	struct event *ev_renew, *ev_expire, *ev_release, *ev_sigterm, *ev_sigint;
	int exit_code;
};

static struct client cl;

/* ---- The lease machine's actions (struct lease_ops) ---- */

static void
op_request(void *arg, enum lease_ask ask)
{
	struct client *c = arg;

	if (c->dhcpv6)
		d6_access_request(&c->d6);
	else
		tsp_access_request(&c->tsp, ask);
}

static int
op_install(void *arg)
{
	struct client *c = arg;

	return tunnel_install(&c->tun);
}

static void
op_uninstall(void *arg)
{
	struct client *c = arg;

	tunnel_uninstall(&c->tun);
}

static void
op_arm(void *arg, enum lease_timer t, int64_t ms)
{
	struct client *c = arg;
	struct event *ev = t == LEASE_T_RENEW ? c->ev_renew : c->ev_expire;
	struct timeval tv;

	evtimer_del(ev);
	if (ms < 0)
		return;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

static void
op_bound(void *arg)
{
	struct client *c = arg;

	tunnel_fast_bind(&c->tun);
	tunnel_flush(&c->tun);
	c->tsp.held = c->od.len;
}

static void
op_dropped(void *arg)
{
	struct client *c = arg;

	ondemand_drop_all(&c->od);
	tunnel_reset(&c->tun);
	c->tsp.held = 0;
}

static const struct lease_ops client_lease_ops = {
    .request = op_request,
    .install = op_install,
    .uninstall = op_uninstall,
    .arm = op_arm,
    .bound = op_bound,
    .dropped = op_dropped,
};

/* The tunnel's first on-demand packet. */
static void
want_lease(void *arg)
{
	struct client *c = arg;

	c->tsp.held = c->od.len;
	lease_acquire(&c->lease);
}

static void
on_renew(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	lease_timer_fired(&c->lease, LEASE_T_RENEW, clock_mono_ms());
}

static void
on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	lease_timer_fired(&c->lease, LEASE_T_EXPIRE, clock_mono_ms());
}

static void
on_release_done(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	tsp_access_end(&c->tsp, "released");
	lease_drop(&c->lease, "released");
	event_base_loopexit(c->base, NULL);
}

/* SIGTERM, SIGINT: give the address back to the server, then stop. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct client *c = arg;

	if (c->releasing)
		return;
	log_info("signal %d: stopping", (int)sig);
	svc_stopping();
	c->releasing = true;
	if (c->dhcpv6) {
		evtimer_del(c->tsp.ev_retry);
		d6_access_release(&c->d6);
	} else {
		tsp_access_release(&c->tsp);
	}
}

/* ---- Control socket ---- */

static json_t *
status_json(struct client *c)
{
	const struct client_lease *l = &c->lease;
	char a[ADDR_STRLEN];
	json_t *o = json_object();
	int64_t left = l->expires_ms ? (l->expires_ms - clock_mono_ms()) / 1000 : 0;
	bool bound = l->state == LEASE_BOUND;

	json_object_set_new(o, "state", json_string(lease_state_names[l->state]));
	json_object_set_new(
	    o, "mode", json_string(c->cfg.mode == CLIENT_ON_DEMAND ? "on-demand" : "always-on"));
	json_object_set_new(o, "interface", json_string(c->tun.ifname));
	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&c->v6, a)));
	json_object_set_new(o, "access", json_string(c->dhcpv6 ? "dhcpv6" : "tsp"));
	/* TUN offloads in use: the IPv6 link's GRO is then on (tunnel_gro_setup). */
	json_object_set_new(o, "offload", json_boolean(c->tun.offloaded));
	/* The kernel fast path is attached (tc_fast.c); "fast_bound": it carries the lease. */
	json_object_set_new(o, "fast_path", json_boolean(c->tun.fast != NULL));
	json_object_set_new(o, "fast_bound", json_boolean(c->tun.fast && c->tun.fb.active));
	if (c->dhcpv6) {
		json_object_set_new(o, "server", json_string("ff02::1:2"));
		json_object_set_new(o, "session", json_string(d6_access_session(&c->d6)));
	} else {
		json_object_set_new(o, "server",
		                    json_string(c->tsp.server_names[c->tsp.server_idx]));
		json_object_set_new(o, "session", json_string(tsp_access_session(&c->tsp)));
	}
	json_object_set_new(o, "ipv4", bound ? json_string(addr_fmt_v4(l->v4, a)) : json_null());
	json_object_set_new(o, "port_lo",
	                    bound && l->port_hi ? json_integer(l->port_lo) : json_null());
	json_object_set_new(o, "port_hi",
	                    bound && l->port_hi ? json_integer(l->port_hi) : json_null());
	json_object_set_new(o, "tep_ipv6",
	                    bound ? json_string(addr_fmt_v6(&l->tep6, a)) : json_null());
	if (c->tun.nat && bound && l->lw) {
		/* lw4o6: the softwire's address and the set the translation maps into. */
		json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&c->tun.v6, a)));
		json_object_set_new(o, "lw4o6", json_true());
		json_object_set_new(o, "psid_offset", json_integer(l->psid_offset));
		json_object_set_new(o, "psid_length", json_integer(l->psid_len));
		json_object_set_new(o, "psid", json_integer(l->psid));
	}
	json_object_set_new(o, "tep_ipv4",
	                    bound && l->tep4 ? json_string(addr_fmt_v4(l->tep4, a)) : json_null());
	json_object_set_new(o, "lifetime", bound ? json_integer(l->lifetime) : json_null());
	json_object_set_new(o, "expires_in",
	                    bound && l->expires_ms ? json_integer(left < 0 ? 0 : left)
	                                           : json_null());
	json_object_set_new(o, "mtu", json_integer(c->tun.path_mtu ? c->tun.path_mtu - 40 : 0));
	json_object_set_new(o, "queued", json_integer(c->od.len));
	return o;
}

static json_t *
counters_json(struct client *c)
{
	json_t *o = json_object();

	/* One flat object, whichever part counts (every drop has its name). */
#define X(name) json_object_set_new(o, #name, json_integer((json_int_t)n->name));
	{
		const struct tunnel_counters *n = &c->tun.n;
		TUNNEL_COUNTERS(X)
	}
	{
		struct tc_fast_counters fc;
		const struct tc_fast_counters *n = &fc;

		tc_fast_read(c->tun.fast, &fc);
		TC_FAST_COUNTERS(X)
	}
	{
		const struct ondemand_counters *n = &c->od.n;
		ONDEMAND_COUNTERS(X)
	}
	{
		const struct lease_counters *n = &c->lease.n;
		LEASE_COUNTERS(X)
	}
	{
		const struct tsp_access_counters *n = &c->tsp.n;
		TSP_ACCESS_COUNTERS(X)
	}
	{
		const struct d6_access_counters *n = &c->d6.n;
		D6_ACCESS_COUNTERS(X)
	}
#undef X
	json_object_set_new(o, "releases",
	                    json_integer((json_int_t)(c->tsp.releases + c->d6.releases)));
	if (c->tun.nat)
		lw_nat_counters_json(c->tun.nat, o);
	/* The engine's drops, one counter each (e.g. dhcp6_drop_auth_bad). */
	for (int r = D6_OK + 1; c->d6.d6 && r < D6_DROP__COUNT; r++) {
		char name[64];

		snprintf(name, sizeof(name), "dhcp6_%s", d6_drop_name((enum d6_drop)r));
		json_object_set_new(
		    o, name, json_integer((json_int_t)d6_client_drops(c->d6.d6, (enum d6_drop)r)));
	}
	return o;
}

static json_t *
ctl_handler(void *arg, const char *command, json_t *args, char *err, size_t errlen)
{
	struct client *c = arg;

	if (!strcmp(command, "status"))
		return status_json(c);
	if (!strcmp(command, "counters"))
		return counters_json(c);
	snprintf(err, errlen, "unknown command \"%s\" (status, counters)", command);
	return NULL;
}

/* ---- Start-up ---- */

static void
find_address(struct client *c)
{
	char a[ADDR_STRLEN];
	char ifn[IFNAMSIZ];
	int ret, idx;

	if (c->cfg.has_ipv6) {
		c->v6 = c->cfg.ipv6;
	} else if (c->cfg.server_sa.ss_family == AF_INET6) {
		/* The host's global address toward the server. */
		ret = nl_route6_get(c->nl, &((struct sockaddr_in6 *)&c->cfg.server_sa)->sin6_addr,
		                    &c->v6, NULL, NULL);
		if (ret < 0)
			fatalx("no IPv6 source toward %s: %s", c->cfg.server, strerror(-ret));
	} else {
		ret = nl_addr6_global(c->nl, NULL, &c->v6);
		if (ret < 0)
			fatalx("no global IPv6 address: %s", strerror(-ret));
	}
	idx = nl_addr6_ifindex(c->nl, &c->v6);
	if (idx < 0 || !if_indextoname((unsigned)idx, ifn))
		fatalx("%s is not an address of this host", addr_fmt_v6(&c->v6, a));
	log_info("IPv6 address %s on %s", addr_fmt_v6(&c->v6, a), ifn);
}

static const char *conffile; /* re-read on SIGHUP */
static int verbose_cli;      /* -v: the log level never goes below it */

/* The configuration's "log_level", or -v's when that is higher. */
static void
apply_log_level(const struct client *c)
{
	log_setverbose(verbose_cli > c->cfg.log_level ? verbose_cli : c->cfg.log_level);
}

/* SIGHUP: the lease, the session and the interface stay (reload.c). */
static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct client *c = arg;

	svc_reloading();
	log_info("SIGHUP: reloading %s", conffile);
	if (client_config_reload(conffile, &c->cfg) == 0)
		apply_log_level(c);
	svc_ready("configuration reloaded or kept (see the log)");
}

/* Each part gets the shared handles and pointers to the parts it uses. */
static void
wire_parts(struct client *c)
{
	lease_init(&c->lease, &c->cfg, &client_lease_ops, c);
	if (ondemand_init(&c->od, &c->cfg) < 0)
		fatal("start-up");

	c->tun.cfg = &c->cfg;
	c->tun.base = c->base;
	c->tun.nl = c->nl;
	c->tun.lease = &c->lease;
	c->tun.od = &c->od;
	c->tun.want_lease = want_lease;
	c->tun.arg = c;
	c->tun.v6 = c->v6;
	if (c->cfg.lw4o6 && !(c->tun.nat = lw_nat_new()))
		fatalx("out of memory");

	c->tsp.cfg = &c->cfg;
	c->tsp.base = c->base;
	c->tsp.nl = c->nl;
	c->tsp.lease = &c->lease;
	c->tsp.ev_release = c->ev_release;
	c->tsp.v6 = c->v6;

	c->d6.cfg = &c->cfg;
	c->d6.base = c->base;
	c->d6.nl = c->nl;
	c->d6.lease = &c->lease;
	c->d6.ev_release = c->ev_release;
	c->d6.v6 = c->v6;
	c->d6.fd = -1;
}

int
main(int argc, char **argv)
{
	struct client *c = &cl;
	struct daemon_args args;
	int ret, status;
	char err[512];
	struct cfg *cfg;

	if (!daemon_args_parse(argc, argv, "dstm-client", &args, &status))
		return status;
	log_init(args.foreground || args.check, args.verbose, "dstm-client");
	conffile = args.conffile;
	cfg = cfg_load(args.conffile, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (client_config_parse(cfg, &c->cfg) > 0) {
		cfg_print_errors(cfg, stderr);
		return 1;
	}
	cfg_free(cfg);
	verbose_cli = args.verbose;
	apply_log_level(c);
	if (args.check) {
		char *text = client_config_dump(&c->cfg);

		printf("%s\n", text);
		free(text);
		return 0;
	}
	if (!args.foreground && daemon(0, 0) < 0)
		fatal("daemon");

	c->nl = nl_open();
	c->base = event_base_new();
	if (!c->nl || !c->base)
		fatal("start-up");
	c->ev_renew = evtimer_new(c->base, on_renew, c);
	c->ev_expire = evtimer_new(c->base, on_expire, c);
	c->ev_release = evtimer_new(c->base, on_release_done, c);
	c->ev_sigterm = evsignal_new(c->base, SIGTERM, on_signal, c);
	c->ev_sigint = evsignal_new(c->base, SIGINT, on_signal, c);
	if (!c->ev_renew || !c->ev_expire || !c->ev_release || !c->ev_sigterm || !c->ev_sigint)
		fatal("start-up");
	c->dhcpv6 = c->cfg.access == CLIENT_ACCESS_DHCPV6;

	find_address(c);
	wire_parts(c);
	tsp_access_find_linklocal(&c->tsp);
	if (tunnel_open(&c->tun) < 0)
		fatalx("cannot open the tunnel interface");
	if (tsp_access_init(&c->tsp) < 0)
		fatalx("cannot start the TSP access module");
	if (c->dhcpv6) {
		ret = d6_access_open(&c->d6);
		if (ret < 0)
			fatalx("DHCPv6 socket on [%s]:%u: %s",
			       addr_fmt_v6(&c->v6, (char[ADDR_STRLEN]){0}), D6_CLIENT_PORT,
			       strerror(-ret));
	}
	tunnel_gro_setup(&c->tun);
	if (c->cfg.server_sa.ss_family == AF_INET6)
		tunnel_update_mtu(&c->tun, &((struct sockaddr_in6 *)&c->cfg.server_sa)->sin6_addr);
	if (tunnel_fast_open(&c->tun) < 0)
		fatalx(
		    "\"fast_path\": \"bpf\" asked for the kernel fast path (\"auto\" falls back)");

	tunnel_start(&c->tun);
	event_add(c->ev_sigterm, NULL);
	event_add(c->ev_sigint, NULL);
	event_add(evsignal_new(c->base, SIGHUP, on_sighup, c), NULL);
	signal(SIGPIPE, SIG_IGN);

	c->ctl = ctl_server_new(c->base, c->cfg.control, ctl_handler, c);
	if (!c->ctl)
		fatal("control socket %s", c->cfg.control);

	/*
	 * STYLE "Least privilege": the TUN device, the raw socket, the
	 * netlink socket, port 546, the CA file and the control socket are
	 * open, the fast path's programs attached (its maps are written
	 * through their descriptors from here on); from here on only addresses and routes of the DTI change
	 * (CAP_NET_ADMIN) and the raw socket sends (CAP_NET_RAW). Nothing
	 * from the network has been read yet.
	 */
	if (*c->cfg.run_as &&
	    priv_drop(c->cfg.run_as, PRIV_CAP(CAP_NET_ADMIN) | PRIV_CAP(CAP_NET_RAW)) < 0)
		fatalx("cannot drop privileges to user \"%s\" (\"user\": null keeps root)",
		       c->cfg.run_as);
	if (!*c->cfg.run_as)
		log_info("\"user\" is null: staying root");
	if (priv_seccomp(PRIV_PROFILE_CLIENT) < 0)
		fatalx("cannot install the system call filter");

	if (c->cfg.mode == CLIENT_ALWAYS_ON)
		lease_acquire(&c->lease);
	log_info("started (%s, %s)", c->cfg.mode == CLIENT_ON_DEMAND ? "on-demand" : "always-on",
	         c->tun.ifname);
	svc_watchdog_start(c->base);
	svc_ready("started (%s, %s)", c->cfg.mode == CLIENT_ON_DEMAND ? "on-demand" : "always-on",
	          c->tun.ifname);
	event_base_dispatch(c->base);

	ctl_server_free(c->ctl);
	tsp_access_end(&c->tsp, "exit");
	lease_drop(&c->lease, "exit");
	tunnel_fast_close(&c->tun);
	tunnel_close(&c->tun);
	d6_access_close(&c->d6);
	tsp_access_free(&c->tsp);
	ondemand_free(&c->od);
	nl_close(c->nl);
	log_info("stopped");
	return c->exit_code;
}
