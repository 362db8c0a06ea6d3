/*
 * dstm-tep: the DSTM tunnel end point (border router). A thin main over
 * the forwarding core (src/dataplane) and the shell of this directory:
 * load and check the configuration, build the binding table sized for the
 * pools, open the data plane, the TSP listener and the control socket,
 * then run the event loop until SIGTERM or SIGINT. SIGHUP re-reads the
 * configuration (reload() below says what it can change).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/args.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/privdrop.h"
#include "common/service.h"
#include "netlink/nl.h"
#include "tep/tep.h"

static struct tep tep;

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct tep *t = arg;

	log_info("signal %d: stopping", (int)sig);
	svc_stopping();
	event_base_loopbreak(t->base);
}

/* The config as JSON with what a reload may change set to `from`'s. */
static json_t *
fixed_part(const struct tep_config *c, const struct tep_config *from)
{
	struct tep_config x = *c;
	char *text;
	json_t *o;

	memcpy(x.servers, from->servers, sizeof(x.servers));
	x.nservers = from->nservers;
	x.learn_idle = from->learn_idle;
	x.icmp_rate = from->icmp_rate;
	x.log_level = from->log_level;
	text = tep_config_dump(&x);
	o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return o;
}

/*
 * SIGHUP: apply a valid configuration that changes only the servers (users,
 * secrets, servers added), learn_idle, icmp_rate and log_level; bindings,
 * sessions and the data plane stay. Anything else (addresses, pools, the
 * TUN device, listeners, mode) needs a restart: the reload is refused and
 * the log says which line, and the TEP goes on as it was.
 */
static int
reload(struct tep *t)
{
	struct tep_config nc;
	struct cfg *cfg;
	char err[512];
	json_t *a = NULL, *b = NULL;
	int bad = 0;

	svc_reloading();
	log_info("SIGHUP: reloading %s", t->conffile);
	if (!(cfg = cfg_load(t->conffile, err, sizeof(err)))) {
		log_warnx("%s", err);
		bad = 1;
		goto out;
	}
	if (tep_config_parse(cfg, &nc) > 0) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		if (f) {
			char *save = NULL;

			cfg_print_errors(cfg, f);
			fclose(f);
			for (char *l = strtok_r(text, "\n", &save); l;
			     l = strtok_r(NULL, "\n", &save))
				log_warnx("%s", l);
			free(text);
		}
		bad = 1;
		goto out;
	}
	a = fixed_part(&t->cfg, &t->cfg);
	b = fixed_part(&nc, &t->cfg);
	if (!a || !b) {
		bad = 1;
		goto out;
	}
	bad = cfg_fixed_changes(cfg, t->conffile, "dstm-tep", a, b);
	if (bad || tep_tsp_reload(t, &nc) != 0) {
		bad = bad ? bad : 1;
		goto out;
	}
	t->cfg.learn_idle = nc.learn_idle;
	t->cfg.icmp_rate = nc.icmp_rate;
	t->cfg.log_level = nc.log_level;
	t->dp.cfg.learn_idle = nc.learn_idle;
	t->dp.cfg.icmp_rate = nc.icmp_rate;
	log_setverbose(t->verbose_cli > nc.log_level ? t->verbose_cli : nc.log_level);
out:
	json_decref(a);
	json_decref(b);
	cfg_free(cfg);
	if (bad) {
		t->reload_failures++;
		log_warnx("reload refused: still running with the configuration loaded before");
		svc_ready("forwarding; the last reload was refused (see the log)");
		return -EINVAL;
	}
	t->reloads++;
	log_info("configuration reloaded: %u server(s), learn_idle %us, icmp_rate %u/s",
	         t->cfg.nservers, t->cfg.learn_idle, t->cfg.icmp_rate);
	svc_ready("forwarding; configuration reloaded");
	return 0;
}

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	(void)reload(arg);
}

/* Learn mode: forget idle learned bindings, a slice of the table a second. */
static void
on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct tep *t = arg;

	dp_set_time(&t->dp, clock_mono_ms());
	dp_expire(&t->dp, 65536);
}

static void
config_dp(const struct tep_config *c, struct dp_config *d)
{
	memset(d, 0, sizeof(*d));
	d->tep6 = c->ipv6;
	d->tep4 = c->ipv4;
	d->npools = c->npools;
	for (unsigned i = 0; i < c->npools; i++) {
		d->pools[i].addr = c->pool_addr[i];
		d->pools[i].mask = addr_mask4(c->pool_plen[i]);
	}
	/* The TUN MTU is the inner one; the tunnel's IPv6 path is 40 more. */
	d->mtu = (uint16_t)(c->mtu + 40);
	d->hop_limit = 64;
	d->learn = c->mode == TEP_LEARN;
	d->learn_idle = c->learn_idle;
	/* The kernel forwards what we write into the TUN device and what it
	 * routes into it: it does the TTL work on the IPv4 side. */
	d->decrement_ttl = false;
	d->icmp_rate = c->icmp_rate;
	d->keepalive4 = c->keepalive;
}

int
main(int argc, char **argv)
{
	struct tep *t = &tep;
	struct daemon_args args;
	int rc, status;
	struct dp_config dc;
	char err[512];
	struct cfg *cfg;

	if (!daemon_args_parse(argc, argv, "dstm-tep", &args, &status))
		return status;
	log_init(args.foreground || args.check, args.verbose, "dstm-tep");
	t->conffile = args.conffile;
	t->verbose_cli = args.verbose;
	cfg = cfg_load(args.conffile, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (tep_config_parse(cfg, &t->cfg) > 0) {
		cfg_print_errors(cfg, stderr);
		cfg_free(cfg);
		return 1;
	}
	cfg_free(cfg);
	if (t->cfg.log_level > args.verbose)
		log_setverbose(t->cfg.log_level);
	if (args.check) {
		char *text = tep_config_dump(&t->cfg);

		printf("%s\n", text);
		free(text);
		return 0;
	}

	/* Sized for the pools, so that no binding ever makes it grow. */
	t->bt = bt_new_pools(t->cfg.pool_addr, t->cfg.pool_plen, t->cfg.npools);
	config_dp(&t->cfg, &dc);
	if (!t->bt || dp_init(&t->dp, &dc, t->bt) < 0)
		fatalx("cannot set up the binding table");
	t->nl = nl_open();
	t->base = event_base_new();
	if (!t->nl || !t->base)
		fatal("start-up");
	if ((rc = tep_io_start(t)) < 0)
		fatalx("data plane: %s", strerror(-rc));
	if ((rc = tep_xdp_start(t)) < 0)
		fatalx("kernel data plane (\"dataplane\": \"%s\"): %s",
		       t->cfg.dataplane == TEP_DP_TC ? "tc" : "xdp", strerror(-rc));
	if ((rc = tep_tsp_start(t)) < 0)
		fatalx("TSP: %s", strerror(-rc));
	if ((rc = tep_ctl_start(t)) < 0)
		fatalx("control socket: %s", strerror(-rc));
	if (!args.foreground && daemon(0, 0) < 0)
		fatal("daemon");
	/* After daemon() (a fork keeps no thread) and before seccomp. */
	if ((rc = tep_stats_start(t)) < 0)
		fatalx("metrics: %s", strerror(-rc));
	/* STYLE.md, least privilege: the TUN device, the raw sockets, the
	 * routes, the sysctls and the listeners are set up; what the loop
	 * does needs no capability (reading a route is unprivileged), but
	 * for the XDP maps' updates (bpf(2) wants CAP_BPF). */
	if (priv_drop("dstm", t->xdp ? PRIV_CAP(CAP_BPF) : 0) < 0)
		fatalx("cannot drop privileges");
	if (priv_seccomp(PRIV_PROFILE_TEP) < 0)
		fatalx("cannot install the seccomp filter");

	t->ev_sigterm = evsignal_new(t->base, SIGTERM, on_signal, t);
	t->ev_sigint = evsignal_new(t->base, SIGINT, on_signal, t);
	t->ev_sighup = evsignal_new(t->base, SIGHUP, on_sighup, t);
	t->ev_expire = event_new(t->base, -1, EV_PERSIST, on_expire, t);
	if (!t->ev_sigterm || !t->ev_sigint || !t->ev_sighup || !t->ev_expire)
		fatal("start-up");
	event_add(t->ev_sigterm, NULL);
	event_add(t->ev_sigint, NULL);
	event_add(t->ev_sighup, NULL);
	if (t->cfg.mode == TEP_LEARN) {
		struct timeval one = {1, 0};
		event_add(t->ev_expire, &one);
	}
	log_info("dstm-tep up: %s mode, %u pool(s)", t->cfg.mode == TEP_SERVER ? "server" : "learn",
	         t->cfg.npools);
	t->ev_watchdog = svc_watchdog_start(t->base);
	svc_ready("forwarding: %s mode, %u pool(s)", t->cfg.mode == TEP_SERVER ? "server" : "learn",
	          t->cfg.npools);
	event_base_dispatch(t->base);

	tep_stats_stop(t);
	tep_ctl_stop(t);
	tep_tsp_stop(t);
	tep_xdp_stop(t);
	tep_io_stop(t);
	event_free(t->ev_sigterm);
	event_free(t->ev_sigint);
	event_free(t->ev_sighup);
	if (t->ev_watchdog)
		event_free(t->ev_watchdog);
	event_free(t->ev_expire);
	event_base_free(t->base);
	nl_close(t->nl);
	bt_free(t->bt);
	return 0;
}
