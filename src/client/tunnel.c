/*
 * The Dynamic Tunnel Interface of dstm-client (seed 001 §5.2, shell.h): a
 * TUN device whose IPv4 packets go out inside IPv6 (next header 4)
 * through a raw socket bound to the host's global IPv6 address, toward
 * the TEP, and the way back. It also keeps the interface's address,
 * routes and MTU in step with the lease. What may go out is decided by
 * the on-demand part (ondemand.c); whether a lease exists by lease.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/shell.h"
#include "common/addr.h"
#include "common/clock.h"
#include "dataplane/tun.h"

#define TUN_TXQUEUELEN 4096

/*
 * RFC 7600 §4 picks 192.0.0.8 as the source of hosts without IPv4; in
 * on-demand mode the DTI holds it (or the configured placeholder) so that
 * connect() before the lease gets a real, local source address, which
 * the early flow table later translates (see dstm-client(8)).
 */
static int
dti_open(struct client_tunnel *t)
{
	const struct client_config *cfg = t->cfg;
	char path[128];
	int fd, ret;

	t->tun_fd = tun_open(cfg->interface, t->ifname, true);
	if (t->tun_fd < 0)
		return t->tun_fd;
	/* The DTI carries IPv4 only: no IPv6 router solicitations into it. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", t->ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			log_warn("%s", path);
		close(fd);
	}
	ret = nl_link_set(t->nl, t->ifname, true, 0, TUN_TXQUEUELEN);
	if (ret < 0)
		return ret;
	if (cfg->mode == CLIENT_ON_DEMAND) {
		ret = nl_addr4_add(t->nl, t->ifname, cfg->placeholder, 32);
		if (ret < 0)
			return ret;
		/* The routes must exist for the first packet to reach us. */
		for (unsigned i = 0; i < cfg->nroutes; i++) {
			ret = nl_route4_replace(t->nl, t->ifname, cfg->routes[i].dst,
			                        cfg->routes[i].plen, cfg->placeholder);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int
raw_open(struct client_tunnel *t)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = t->v6};
	int one = 1, fd;

	fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_IPIP);
	if (fd < 0)
		return -errno;
	/* DESIGN §7: bound to the address the binding names, or the kernel
	 * may pick another source and the TEP drops us as spoofed. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof(one)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	t->raw_fd = fd;
	return 0;
}

int
tunnel_open(struct client_tunnel *t)
{
	int ret;

	t->tun_fd = t->raw_fd = -1;
	ret = dti_open(t);
	if (ret < 0) {
		log_warnx("%s: %s", t->cfg->interface, strerror(-ret));
		return ret;
	}
	ret = raw_open(t);
	if (ret < 0)
		log_warnx("raw IPv6 socket: %s", strerror(-ret));
	return ret;
}

/* Inner MTU = IPv6 path MTU - 40 (DESIGN §7), never below IPv4's 68. */
void
tunnel_update_mtu(struct client_tunnel *t, const struct in6_addr *toward)
{
	unsigned mtu;
	int ret = nl_route6_get(t->nl, toward, NULL, NULL, &mtu);

	if (ret < 0) {
		log_warnx("no IPv6 route toward the tunnel end: %s", strerror(-ret));
		return;
	}
	if (mtu < 1280)
		mtu = 1280;
	if (mtu == t->path_mtu)
		return;
	t->path_mtu = mtu;
	ret = nl_link_set(t->nl, t->ifname, true, mtu - 40, 0);
	if (ret < 0)
		log_warnx("%s: MTU %u: %s", t->ifname, mtu - 40, strerror(-ret));
	else
		log_info("%s: MTU %u (IPv6 path MTU %u)", t->ifname, mtu - 40, mtu);
	t->n.mtu_updates++;
}

int
tunnel_install(struct client_tunnel *t)
{
	const struct client_config *cfg = t->cfg;
	const struct client_lease *l = t->lease;
	char a[ADDR_STRLEN];
	int ret;

	ret = nl_addr4_add(t->nl, t->ifname, l->v4, 32);
	if (ret < 0) {
		log_warnx("%s: address %s: %s", t->ifname, addr_fmt_v4(l->v4, a), strerror(-ret));
		return ret;
	}
	/* Routes with the leased address as preferred source: connections
	 * opened from now on use it, also in on-demand mode where the
	 * placeholder stays on the interface for the early flows. */
	for (unsigned i = 0; i < cfg->nroutes; i++) {
		ret = nl_route4_replace(t->nl, t->ifname, cfg->routes[i].dst, cfg->routes[i].plen,
		                        l->v4);
		if (ret < 0)
			log_warnx("%s: route %s/%u: %s", t->ifname,
			          addr_fmt_v4(cfg->routes[i].dst, a), cfg->routes[i].plen,
			          strerror(-ret));
	}
	tunnel_update_mtu(t, &l->tep6);
	log_info("%s: %s/32 through TEP %s", t->ifname, addr_fmt_v4(l->v4, a),
	         addr_fmt_v6(&l->tep6, (char[ADDR_STRLEN]){0}));
	return 0;
}

/* Seed 002 §6.3: once the lifetime is over, the address leaves the interface. */
void
tunnel_uninstall(struct client_tunnel *t)
{
	const struct client_config *cfg = t->cfg;
	char a[ADDR_STRLEN];
	int ret;

	for (unsigned i = 0; i < cfg->nroutes; i++) {
		if (cfg->mode == CLIENT_ON_DEMAND)
			ret = nl_route4_replace(t->nl, t->ifname, cfg->routes[i].dst,
			                        cfg->routes[i].plen, cfg->placeholder);
		else
			ret = nl_route4_del(t->nl, t->ifname, cfg->routes[i].dst,
			                    cfg->routes[i].plen);
		if (ret < 0)
			log_warnx("%s: route: %s", t->ifname, strerror(-ret));
	}
	ret = nl_addr4_del(t->nl, t->ifname, t->lease->v4, 32);
	if (ret < 0)
		log_warnx("%s: remove %s: %s", t->ifname, addr_fmt_v4(t->lease->v4, a),
		          strerror(-ret));
	early_clear(&t->od->early);
}

/* DESIGN §7: GRO on the interface feeding a raw socket breaks tunnelled TCP. */
void
tunnel_gro_off(struct client_tunnel *t)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = 0};
	struct ifreq ifr = {0};
	int idx, fd;

	idx = nl_addr6_ifindex(t->nl, &t->v6);
	if (idx < 0 || !if_indextoname((unsigned)idx, ifr.ifr_name))
		return;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	ifr.ifr_data = (void *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0 && errno != EOPNOTSUPP)
		log_warn("%s: turning GRO off", ifr.ifr_name);
	close(fd);
}

/* ---- The data path ---- */

static void
send_icmp_too_big(struct client_tunnel *t, const uint8_t *p, size_t len)
{
	uint8_t icmp[576];
	uint32_t from = t->lease->tep4 ? t->lease->tep4 : t->cfg->placeholder;
	size_t n = pkt_icmp_frag_needed(p, len, from, t->path_mtu - 40, icmp, sizeof(icmp));

	if (n && write(t->tun_fd, icmp, n) == (ssize_t)n)
		t->n.icmp_frag_needed_sent++;
}

/*
 * Encapsulate: the kernel builds the IPv6 header (next header 4, source
 * the bound address). Returns 0, or -EAGAIN when the packet must wait
 * for the socket (it is then kept in t->pending).
 */
static int
tunnel_send(struct client_tunnel *t, const uint8_t *p, size_t len)
{
	struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_addr = t->lease->tep6};
	struct pkt4 h;

	/* IPV6_DONTFRAG does not apply to IPPROTO_IPIP raw sockets (the
	 * kernel would fragment the outer packet): a DF packet too big for
	 * the path is refused here, as a router would (RFC 1191). */
	if (len + 40 > t->path_mtu && pkt_ip4_parse(p, len, &h) && h.df) {
		t->n.drop_too_big++;
		send_icmp_too_big(t, p, len);
		return 0;
	}
	if (sendto(t->raw_fd, p, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len) {
		t->n.tunnel_tx_packets++;
		t->n.tunnel_tx_bytes += len;
		return 0;
	}
	switch (errno) {
	case EAGAIN:
	case ENOBUFS:
		/* DESIGN §7: wait instead of dropping. */
		memcpy(t->pending, p, len);
		t->pending_len = len;
		t->n.backpressure_waits++;
		event_del(t->ev_tun);
		if (errno == EAGAIN) {
			event_add(t->ev_raw_out, NULL);
		} else {
			/* ENOBUFS comes from a full device queue, not from the
			 * socket buffer, so POLLOUT would not wait: retry soon. */
			struct timeval tv = {0, 1000};

			event_add(t->ev_raw_out, &tv);
		}
		return -EAGAIN;
	case EMSGSIZE:
		/* The path shrank (IPV6_DONTFRAG, where the kernel honours it). */
		t->n.drop_too_big++;
		tunnel_update_mtu(t, &t->lease->tep6);
		if (pkt_ip4_parse(p, len, &h) && h.df)
			send_icmp_too_big(t, p, len);
		return 0;
	default:
		t->n.drop_send_error++;
		log_warnx_rl(&t->rl, "send to TEP: %s", strerror(errno));
		return 0;
	}
}

/* One packet from the application side, already parsed. */
static int
outbound(struct client_tunnel *t, uint8_t *p, size_t len, const struct pkt4 *h)
{
	enum lease_state st = t->lease->state;

	switch (ondemand_out(t->od, t->lease, p, len, h, clock_mono_ms())) {
	case OD_SEND:
		return tunnel_send(t, p, len);
	case OD_HOLD:
		if (st == LEASE_IDLE || st == LEASE_EXPIRED)
			t->want_lease(t->arg);
		return 0;
	case OD_BAD_SOURCE:
		t->n.drop_bad_source++;
		return 0;
	case OD_DROP:
		return 0;
	}
	return 0;
}

void
tunnel_flush(struct client_tunnel *t)
{
	struct ondemand_pkt q;

	while (t->lease->state == LEASE_BOUND && t->pending_len == 0 && ondemand_pop(t->od, &q)) {
		struct pkt4 h;

		if (pkt_ip4_parse(q.data, q.len, &h))
			outbound(t, q.data, q.len, &h);
		free(q.data);
	}
}

void
tunnel_reset(struct client_tunnel *t)
{
	t->pending_len = 0;
	if (t->ev_tun)
		event_add(t->ev_tun, NULL);
}

static void
on_tun(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;
	static uint8_t buf[CLIENT_PKT_MAX];

	for (int i = 0; i < CLIENT_BURST && t->pending_len == 0; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct pkt4 h;

		if (n <= 0)
			break;
		t->n.tun_rx_packets++;
		t->n.tun_rx_bytes += (uint64_t)n;
		if ((buf[0] >> 4) != 4) {
			t->n.drop_not_ipv4++;
			continue;
		}
		if (!pkt_ip4_parse(buf, (size_t)n, &h)) {
			t->n.drop_malformed++;
			continue;
		}
		outbound(t, buf, h.total, &h);
	}
}

static void
on_raw_out(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;
	size_t len = t->pending_len;

	t->pending_len = 0;
	if (len && tunnel_send(t, t->pending, len) == -EAGAIN)
		return;
	tunnel_flush(t);
	if (t->pending_len == 0)
		event_add(t->ev_tun, NULL);
}

static void
on_raw(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;
	const struct client_lease *l = t->lease;
	static uint8_t buf[CLIENT_PKT_MAX];

	for (int i = 0; i < CLIENT_BURST; i++) {
		struct sockaddr_in6 from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		struct pkt4 h;

		if (n < 0)
			break;
		t->n.tunnel_rx_packets++;
		t->n.tunnel_rx_bytes += (uint64_t)n;
		if (l->state != LEASE_BOUND) {
			t->n.drop_not_bound++;
			continue;
		}
		/* Only the TEP may inject into our tunnel (seed 004). */
		if (flen < sizeof(from) || from.sin6_family != AF_INET6 ||
		    !IN6_ARE_ADDR_EQUAL(&from.sin6_addr, &l->tep6)) {
			t->n.drop_not_tep++;
			continue;
		}
		if (!pkt_ip4_parse(buf, (size_t)n, &h)) {
			t->n.drop_malformed++;
			continue;
		}
		if (h.dst != l->v4) {
			t->n.drop_bad_destination++;
			continue;
		}
		ondemand_in(t->od, l, buf, h.total, clock_mono_ms());
		if (write(t->tun_fd, buf, h.total) != (ssize_t)h.total) {
			t->n.drop_tun_write++;
			continue;
		}
		t->n.tun_tx_packets++;
		t->n.tun_tx_bytes += h.total;
	}
}

static void
on_early(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;

	early_expire(&t->od->early, clock_mono_ms());
}

/*
 * The kernel learns a smaller path MTU from Packet Too Big messages (or
 * an operator lowers a route's); no event tells us, so look once a
 * second: one RTM_GETROUTE.
 */
static void
on_mtu(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;

	if (t->lease->state == LEASE_BOUND)
		tunnel_update_mtu(t, &t->lease->tep6);
	else if (t->cfg->server_sa.ss_family == AF_INET6)
		tunnel_update_mtu(t, &((const struct sockaddr_in6 *)&t->cfg->server_sa)->sin6_addr);
}

void
tunnel_start(struct client_tunnel *t)
{
	t->ev_tun = event_new(t->base, t->tun_fd, EV_READ | EV_PERSIST, on_tun, t);
	t->ev_raw = event_new(t->base, t->raw_fd, EV_READ | EV_PERSIST, on_raw, t);
	t->ev_raw_out = event_new(t->base, t->raw_fd, EV_WRITE, on_raw_out, t);
	t->ev_early = event_new(t->base, -1, EV_PERSIST, on_early, t);
	t->ev_mtu = event_new(t->base, -1, EV_PERSIST, on_mtu, t);
	if (!t->ev_tun || !t->ev_raw || !t->ev_raw_out || !t->ev_early || !t->ev_mtu)
		fatal("tunnel events");
	event_add(t->ev_tun, NULL);
	event_add(t->ev_raw, NULL);
	event_add(t->ev_early, &(struct timeval){5, 0});
	event_add(t->ev_mtu, &(struct timeval){1, 0});
}

void
tunnel_close(struct client_tunnel *t)
{
	struct event *evs[] = {t->ev_tun, t->ev_raw, t->ev_raw_out, t->ev_early, t->ev_mtu};

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	t->ev_tun = t->ev_raw = t->ev_raw_out = t->ev_early = t->ev_mtu = NULL;
	if (t->raw_fd >= 0)
		close(t->raw_fd);
	if (t->tun_fd >= 0)
		close(t->tun_fd);
	t->raw_fd = t->tun_fd = -1;
}
