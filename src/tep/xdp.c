/*
 * dstm-tep's XDP data plane (the "dataplane" key; DESIGN §7): the programs
 * of src/xdp attached in native mode to the interface of the TEP's IPv6
 * address and to the one of its IPv4 address, in front of the userspace
 * path of io.c, which stays open and gets whatever XDP passes on. This
 * file keeps the programs' binding maps in step with t->bt (every change
 * of control.c, and the path MTUs the userspace path learns), queued and
 * written in one batch at the end of the event-loop turn, and folds the
 * programs' counters into the TEP's, so that `dstmctl counters` shows one
 * set whichever path a packet took.
 *
 * "auto" uses XDP when both programs attach natively and the TUN path
 * alone otherwise (logged); "xdp" makes that failure fatal.
 *
 * "tc" attaches the same decisions at tc ingress instead (tcx links,
 * Linux 6.6), on skbs: a GSO or GRO packet crosses whole, where XDP sees
 * every wire frame and a veth with XDP takes no GSO packets. Its failure
 * is fatal; "auto" never picks it. The maps, the counters (under the
 * same xdp_* names) and the userspace path behind are the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/addr.h"
#include "common/log.h"
#include "netlink/nl.h"
#include "tep/tep.h"
#include "xdp/xdp.h"

struct tep_xdp {
	struct xtep *x;
	bool tc; /* the tc programs, not XDP */
	struct event *ev_flush, *ev_fold;
	bool queued;
	uint64_t last[XC__COUNT]; /* the programs' counters at the last fold */
};

/* The interface holding IPv4 address v4 (host byte order), or 0. */
static int
ifindex_v4(uint32_t v4)
{
	struct ifaddrs *ifa, *i;
	int idx = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i && !idx; i = i->ifa_next) {
		const struct sockaddr_in *sa = (const struct sockaddr_in *)i->ifa_addr;

		if (sa && sa->sin_family == AF_INET && ntohl(sa->sin_addr.s_addr) == v4)
			idx = (int)if_nametoindex(i->ifa_name);
	}
	freeifaddrs(ifa);
	return idx;
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct tep *t = arg;
	int rc;

	t->xdp->queued = false;
	if ((rc = xtep_flush(t->xdp->x)) < 0)
		log_warnx("XDP: binding map update: %s", strerror(-rc));
}

static void
on_fold(evutil_socket_t fd, short what, void *arg)
{
	tep_xdp_fold(arg);
}

void
tep_xdp_fold(struct tep *t)
{
	struct tep_xdp *xd = t->xdp;
	uint64_t now[XC__COUNT], d[XC__COUNT];

	if (!xd || xtep_counters(xd->x, now) < 0)
		return;
	for (int i = 0; i < XC__COUNT; i++) {
		d[i] = now[i] - xd->last[i];
		xd->last[i] = now[i];
	}
#define FOLD_DP(n)  t->dp.ctr[DPC_##n] += d[XC_##n];
#define FOLD_OWN(n) t->ctr.n += d[XC_##n];
	XTEP_DP_COUNTERS(FOLD_DP)
	XTEP_OWN_COUNTERS(FOLD_OWN)
#undef FOLD_DP
#undef FOLD_OWN
}

void
tep_xdp_bind(struct tep *t, const struct bt_binding *b)
{
	struct tep_xdp *xd = t->xdp;
	int rc;

	/* Learned bindings stay with the userspace path, which keeps their
	 * idle time and may hand them to another client (seed 002 §5.2). */
	if (!xd || (b->flags & BT_F_LEARNED))
		return;
	/* A PSID port set (RFC 7597 §5.1) stays with the userspace core,
	 * which checks the port against the set. */
	if (b->flags & BT_F_PSID)
		rc = xtep_set_core(xd->x, b->v4);
	else
		rc = xtep_set(xd->x, b->v4, b->port_lo, b->port_hi, &b->v6, b->mtu);
	if (rc < 0) {
		log_warnx("XDP: binding map update: %s", strerror(-rc));
		return;
	}
	if (!xd->queued) {
		xd->queued = true;
		event_active(xd->ev_flush, EV_TIMEOUT, 0);
	}
}

void
tep_xdp_unbind(struct tep *t, uint32_t v4, uint16_t lo, bool all)
{
	struct tep_xdp *xd = t->xdp;
	int rc;

	if (!xd)
		return;
	if (all || !bt_is_shared(t->bt, v4))
		rc = xtep_del_addr(xd->x, v4);
	else
		rc = xtep_del_range(xd->x, v4, lo);
	if (rc < 0 && rc != -ENOENT)
		log_warnx("XDP: binding map delete: %s", strerror(-rc));
}

void
tep_xdp_binding_ctr(const struct tep *t, const struct bt_binding *b, uint64_t out[4])
{
	struct xtep_bctr c = {0};

	if (t->xdp && !(b->flags & (BT_F_LEARNED | BT_F_PSID)))
		xtep_binding_ctr(t->xdp->x, b->v4, b->port_lo, b->port_hi, &c);
	out[0] = b->pkts_in + c.pkts_in;
	out[1] = b->bytes_in + c.bytes_in;
	out[2] = b->pkts_out + c.pkts_out;
	out[3] = b->bytes_out + c.bytes_out;
}

const char *
tep_dataplane_name(const struct tep *t)
{
	return !t->xdp ? "tun" : t->xdp->tc ? "tc" : "xdp";
}

/* Load and attach (xd->tc: the tc programs); 0 or -errno with the reason logged. */
static int
attach(struct tep *t, struct tep_xdp *xd)
{
	const char *what = xd->tc ? "tc" : "XDP";
	struct xtep_config xc = {0};
	char if6[IF_NAMESIZE], if4[IF_NAMESIZE], path[128], a[ADDR_STRLEN];
	int idx6 = nl_addr6_ifindex(t->nl, &t->cfg.ipv6), idx4 = ifindex_v4(t->cfg.ipv4), rc;
	uint64_t addrs = 0;
	uint32_t cur = 0;
	struct bt_binding *b;

	if (idx6 <= 0 || !if_indextoname((unsigned)idx6, if6)) {
		log_warnx("%s: no interface holds %s", what, addr_fmt_v6(&t->cfg.ipv6, a));
		return -ENODEV;
	}
	if (idx4 <= 0 || !if_indextoname((unsigned)idx4, if4)) {
		log_warnx("%s: no interface holds the \"ipv4\" address %s (the IPv4 side)", what,
		          addr_fmt_v4(t->cfg.ipv4, a));
		return -ENODEV;
	}
	xc.tep6 = t->cfg.ipv6;
	xc.npools = t->cfg.npools;
	for (unsigned i = 0; i < t->cfg.npools; i++) {
		xc.pool_addr[i] = t->cfg.pool_addr[i];
		xc.pool_plen[i] = t->cfg.pool_plen[i];
		addrs += UINT64_C(1) << (32 - t->cfg.pool_plen[i]);
	}
	xc.mtu = (uint16_t)(t->cfg.mtu + 40);
	xc.hop_limit = 64;
	xc.learn = t->cfg.mode == TEP_LEARN;
	/* The maps are arrays, allocated whole (xdp_tep.h): 64 bytes an
	 * address of the pools, and range blocks for the shared addresses
	 * (64 entries of 56 bytes for one shared by ranges of 1024 ports):
	 * room for every pool address shared that way, at most 2^20 entries
	 * (56 MiB). A shared address beyond that goes to the userspace core. */
	if (addrs > XTEP_DIRECT_MAX) {
		log_warnx("%s: the pools hold %llu addresses, more than the %u its direct "
		          "table takes",
		          what, (unsigned long long)addrs, XTEP_DIRECT_MAX);
		return -E2BIG;
	}
	xc.max_ranges = addrs * 64 < (1u << 20) ? (uint32_t)addrs * 64 : 1u << 20;
	if ((rc = xtep_open(&xc, &xd->x)) < 0) {
		log_warnx("%s: cannot load the programs: %s", what, strerror(-rc));
		return rc;
	}
	/* bpf_fib_lookup() for IPv6 asks whether the ingress device forwards
	 * (DESIGN §8): the encapsulated packets come in on the IPv4 side. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", if4);
	if ((rc = tep_sysctl_write(path, "1")) < 0) {
		log_warnx("%s: %s: %s", what, path, strerror(-rc));
		return rc;
	}
	rc = xd->tc ? xtep_attach_tc(xd->x, idx6, idx4) : xtep_attach(xd->x, idx6, idx4);
	if (rc < 0) {
		log_warnx("%s: %s %s and %s failed: %s", what,
		          xd->tc ? "attach at tc ingress (tcx, Linux 6.6) of" : "native attach on", if6,
		          if4, strerror(-rc));
		return rc;
	}
	while ((b = bt_next(t->bt, &cur))) {
		if (b->flags & BT_F_LEARNED)
			continue;
		if (b->flags & BT_F_PSID) /* the userspace core checks the set */
			xtep_set_core(xd->x, b->v4);
		else
			xtep_set(xd->x, b->v4, b->port_lo, b->port_hi, &b->v6, b->mtu);
	}
	if ((rc = xtep_flush(xd->x)) < 0)
		return rc;
	log_info("data plane: %s on %s (4in6 in) and %s (IPv4 in), the TUN path behind it",
	         xd->tc ? "tc (ingress)" : "XDP (native)", if6, if4);
	return 0;
}

int
tep_xdp_start(struct tep *t)
{
	struct tep_xdp *xd;
	struct timeval one = {1, 0};
	int rc;

	if (t->cfg.dataplane == TEP_DP_TUN) {
		log_info("data plane: TUN (\"dataplane\": \"tun\")");
		return 0;
	}
	if (!(xd = calloc(1, sizeof(*xd))))
		return -ENOMEM;
	xd->tc = t->cfg.dataplane == TEP_DP_TC;
	rc = attach(t, xd);
	if (rc == 0) {
		xd->ev_flush = event_new(t->base, -1, 0, on_flush, t);
		xd->ev_fold = event_new(t->base, -1, EV_PERSIST, on_fold, t);
		if (!xd->ev_flush || !xd->ev_fold)
			rc = -ENOMEM;
		else
			event_add(xd->ev_fold, &one);
	}
	if (rc < 0) {
		if (xd->ev_flush)
			event_free(xd->ev_flush);
		if (xd->ev_fold)
			event_free(xd->ev_fold);
		xtep_close(xd->x);
		free(xd);
		if (t->cfg.dataplane == TEP_DP_XDP || t->cfg.dataplane == TEP_DP_TC)
			return rc;
		log_info("data plane: TUN (\"dataplane\": \"auto\" and XDP is not available)");
		return 0;
	}
	t->xdp = xd;
	return 0;
}

void
tep_xdp_stop(struct tep *t)
{
	struct tep_xdp *xd = t->xdp;

	if (!xd)
		return;
	event_free(xd->ev_flush);
	event_free(xd->ev_fold);
	xtep_close(xd->x);
	free(xd);
	t->xdp = NULL;
}
