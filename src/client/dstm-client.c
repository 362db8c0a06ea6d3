/*
 * dstm-client: the DSTM host side (seed 001 §5). Its server access
 * module is a TSP client (seed 001 appendix C) that obtains a temporary
 * IPv4 address and the TEP, renews it at half its lifetime and gives it
 * up when the server deletes it or when it expires; its Dynamic Tunnel
 * Interface (seed 001 §5.2) is a TUN device whose IPv4 packets go out
 * inside IPv6 (next header 4) through a raw socket bound to the host's
 * global IPv6 address, toward the TEP. Always-on mode acquires at start;
 * on-demand mode (seed 002 §5.1) waits for the first IPv4 packet. The
 * client never updates DNS (seed 001 §5.1, seed 002 §6.3).
 *
 * One libevent loop: the TUN and raw socket events, the TSP session,
 * the lease timers and the control socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/client.h"
#include "common/addr.h"
#include "common/args.h"
#include "common/clock.h"
#include "common/ctl.h"
#include "common/log.h"
#include "common/privdrop.h"
#include "client/lw4o6.h"
#include "dataplane/tun.h"
#include "dhcp6/d6.h"
#include "netlink/nl.h"
#include "tsp/tsp.h"

#define PKT_MAX         65536
#define TUN_TXQUEUELEN  4096
#define TUN_BURST       64   /* packets per readiness event, each way */
#define MAX_REDIRECTS   8    /* in a row, before backing off */
#define RELEASE_WAIT_MS 3000 /* for the server's answer to our delete */

enum client_state { ST_IDLE, ST_ACQUIRING, ST_BOUND, ST_EXPIRED };
static const char *const state_names[] = {"idle", "acquiring", "bound", "expired"};

/* Every drop reason has a counter (STYLE.md). */
#define COUNTERS(X)                                                                                \
	X(tun_rx_packets)                                                                          \
	X(tun_rx_bytes)                                                                            \
	X(tunnel_tx_packets)                                                                       \
	X(tunnel_tx_bytes)                                                                         \
	X(tunnel_rx_packets)                                                                       \
	X(tunnel_rx_bytes)                                                                         \
	X(tun_tx_packets)                                                                          \
	X(tun_tx_bytes)                                                                            \
	X(drop_not_ipv4)                                                                           \
	X(drop_malformed)                                                                          \
	X(drop_bad_source) X(drop_queue_full) X(drop_queue_flushed) X(drop_too_big)                \
	    X(drop_send_error) X(drop_not_tep) X(drop_not_bound) X(drop_bad_destination)           \
	        X(drop_tun_write) X(drop_early_table_full) X(early_translated_out)                 \
	            X(early_translated_in) X(icmp_frag_needed_sent) X(mtu_updates)                 \
	                X(backpressure_waits) X(queued) X(sessions) X(session_failures)            \
	                    X(auth_failures) X(acquisitions) X(acquire_failures) X(renewals)       \
	                        X(renewal_failures) X(redirects) X(server_deletes) X(expiries)     \
	                            X(releases) X(unknown_commands) X(address_changes) X(dhcp6_tx) \
	                                X(dhcp6_rx) X(dhcp6_tx_errors) X(declines) X(tls_refused)

struct counters {
#define X(name) uint64_t name;
	COUNTERS(X)
#undef X
};

struct qpkt {
	uint16_t len;
	uint8_t *data;
};

struct client {
	struct client_config cfg;
	struct event_base *base;
	struct nl *nl;
	struct ctl_server *ctl;
	int tun_fd, raw_fd;
	char ifname[IFNAMSIZ];
	struct event *ev_tun, *ev_raw, *ev_raw_out, *ev_retry, *ev_renew, *ev_expire, *ev_early,
	    *ev_sigterm, *ev_sigint, *ev_release, *ev_mtu;
	struct in6_addr v6, v6ll;
	bool has_v6ll;
	unsigned path_mtu;

	/* server access */
	struct tsp_client *tsp;
	bool tsp_ready, create_pending, releasing;
	unsigned nservers, server_idx, redirects_in_row, attempt;
	struct sockaddr_storage servers[CLIENT_MAX_SERVERS];
	socklen_t serverlens[CLIENT_MAX_SERVERS];
	char server_names[CLIENT_MAX_SERVERS][TSP_DN_MAX];

	/* TSP over TLS: the context, and why the server's certificate was refused */
	SSL_CTX *tls;
	char tls_error[160];

	/* DHCPv6 access (seed 001 A, seed 002 §6): the engine of src/dhcp6 */
	struct d6_client *d6;
	struct lw_nat *nat; /* as an lwB4 (lw4o6.h): host ports into the port set */
	struct d6_key d6key;
	uint8_t duid[D6_DUID_MAX + 2];
	size_t duid_len;
	int d6_fd;
	unsigned d6_ifindex;
	struct event *ev_d6, *ev_d6_timer;

	/* the lease */
	enum client_state state;
	uint32_t v4;
	uint16_t port_lo, port_hi;
	struct in6_addr tep6;
	uint32_t tep4;
	uint32_t lifetime;
	int64_t expires_ms;
	bool installed;

	/* packets waiting for the lease, and one waiting for the socket */
	struct qpkt *queue;
	unsigned qhead, qlen;
	uint8_t pending[PKT_MAX];
	size_t pending_len;
	struct early_table early;

	struct counters n;
	struct log_rl rl;
	int exit_code;
};

static struct client cl;

static void acquire(struct client *c);
static void session_start(struct client *c);
static void session_end(struct client *c, const char *why);
static void retry_later(struct client *c);
static void d6_acquire(struct client *c);
static void d6_stop(struct client *c);

/* ---- The dynamic tunnel interface ---- */

/*
 * RFC 7600 §4 picks 192.0.0.8 as the source of hosts without IPv4; in
 * on-demand mode the DTI holds it (or the configured placeholder) so that
 * connect() before the lease gets a real, local source address, which
 * the early flow table later translates (see dstm-client(8)).
 */
static int
dti_open(struct client *c)
{
	char path[128];
	int fd, ret;

	c->tun_fd = tun_open(c->cfg.interface, c->ifname, true);
	if (c->tun_fd < 0)
		return c->tun_fd;
	/* The DTI carries IPv4 only: no IPv6 router solicitations into it. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", c->ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			log_warn("%s", path);
		close(fd);
	}
	ret = nl_link_set(c->nl, c->ifname, true, 0, TUN_TXQUEUELEN);
	if (ret < 0)
		return ret;
	if (c->cfg.mode == CLIENT_ON_DEMAND) {
		ret = nl_addr4_add(c->nl, c->ifname, c->cfg.placeholder, 32);
		if (ret < 0)
			return ret;
		/* The routes must exist for the first packet to reach us. */
		for (unsigned i = 0; i < c->cfg.nroutes; i++) {
			ret = nl_route4_replace(c->nl, c->ifname, c->cfg.routes[i].dst,
			                        c->cfg.routes[i].plen, c->cfg.placeholder);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* Inner MTU = IPv6 path MTU - 40 (DESIGN §7), never below IPv4's 68. */
static void
dti_update_mtu(struct client *c, const struct in6_addr *toward)
{
	unsigned mtu;
	int ret = nl_route6_get(c->nl, toward, NULL, NULL, &mtu);

	if (ret < 0) {
		log_warnx("no IPv6 route toward the tunnel end: %s", strerror(-ret));
		return;
	}
	if (mtu < 1280)
		mtu = 1280;
	if (mtu == c->path_mtu)
		return;
	c->path_mtu = mtu;
	ret = nl_link_set(c->nl, c->ifname, true, mtu - 40, 0);
	if (ret < 0)
		log_warnx("%s: MTU %u: %s", c->ifname, mtu - 40, strerror(-ret));
	else
		log_info("%s: MTU %u (IPv6 path MTU %u)", c->ifname, mtu - 40, mtu);
	c->n.mtu_updates++;
}

static int
dti_install(struct client *c)
{
	char a[ADDR_STRLEN];
	int ret;

	ret = nl_addr4_add(c->nl, c->ifname, c->v4, 32);
	if (ret < 0) {
		log_warnx("%s: address %s: %s", c->ifname, addr_fmt_v4(c->v4, a), strerror(-ret));
		return ret;
	}
	c->installed = true;
	/* Routes with the leased address as preferred source: connections
	 * opened from now on use it, also in on-demand mode where the
	 * placeholder stays on the interface for the early flows. */
	for (unsigned i = 0; i < c->cfg.nroutes; i++) {
		ret = nl_route4_replace(c->nl, c->ifname, c->cfg.routes[i].dst,
		                        c->cfg.routes[i].plen, c->v4);
		if (ret < 0)
			log_warnx("%s: route %s/%u: %s", c->ifname,
			          addr_fmt_v4(c->cfg.routes[i].dst, a), c->cfg.routes[i].plen,
			          strerror(-ret));
	}
	dti_update_mtu(c, &c->tep6);
	log_info("%s: %s/32 through TEP %s", c->ifname, addr_fmt_v4(c->v4, a),
	         addr_fmt_v6(&c->tep6, (char[ADDR_STRLEN]){0}));
	return 0;
}

/* Seed 002 §6.3: once the lifetime is over, the address leaves the interface. */
static void
dti_uninstall(struct client *c)
{
	char a[ADDR_STRLEN];
	int ret;

	if (!c->installed)
		return;
	for (unsigned i = 0; i < c->cfg.nroutes; i++) {
		if (c->cfg.mode == CLIENT_ON_DEMAND)
			ret = nl_route4_replace(c->nl, c->ifname, c->cfg.routes[i].dst,
			                        c->cfg.routes[i].plen, c->cfg.placeholder);
		else
			ret = nl_route4_del(c->nl, c->ifname, c->cfg.routes[i].dst,
			                    c->cfg.routes[i].plen);
		if (ret < 0)
			log_warnx("%s: route: %s", c->ifname, strerror(-ret));
	}
	ret = nl_addr4_del(c->nl, c->ifname, c->v4, 32);
	if (ret < 0)
		log_warnx("%s: remove %s: %s", c->ifname, addr_fmt_v4(c->v4, a), strerror(-ret));
	c->installed = false;
	early_clear(&c->early);
}

/* DESIGN §7: GRO on the interface feeding a raw socket breaks tunnelled TCP. */
static void
gro_off(struct client *c)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = 0};
	struct ifreq ifr = {0};
	int idx, fd;

	idx = nl_addr6_ifindex(c->nl, &c->v6);
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
queue_drop_all(struct client *c)
{
	while (c->qlen) {
		free(c->queue[c->qhead].data);
		c->qhead = (c->qhead + 1) % c->cfg.queue;
		c->qlen--;
		c->n.drop_queue_flushed++;
	}
}

static bool
queue_push(struct client *c, const uint8_t *p, size_t len)
{
	struct qpkt *q;

	if (c->qlen == c->cfg.queue) {
		c->n.drop_queue_full++;
		return false;
	}
	q = &c->queue[(c->qhead + c->qlen) % c->cfg.queue];
	q->data = malloc(len);
	if (!q->data) {
		c->n.drop_queue_full++;
		return false;
	}
	memcpy(q->data, p, len);
	q->len = (uint16_t)len;
	c->qlen++;
	c->n.queued++;
	return true;
}

static void
send_icmp_too_big(struct client *c, const uint8_t *p, size_t len)
{
	uint8_t icmp[576];
	uint32_t from = c->tep4 ? c->tep4 : c->cfg.placeholder;
	size_t n = pkt_icmp_frag_needed(p, len, from, c->path_mtu - 40, icmp, sizeof(icmp));

	if (n && write(c->tun_fd, icmp, n) == (ssize_t)n)
		c->n.icmp_frag_needed_sent++;
}

/*
 * Encapsulate: the kernel builds the IPv6 header (next header 4, source
 * the bound address). Returns 0, or -EAGAIN when the packet must wait
 * for the socket (it is then kept in c->pending).
 */
static int
tunnel_send(struct client *c, const uint8_t *p, size_t len)
{
	struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_addr = c->tep6};
	struct pkt4 h;

	/* IPV6_DONTFRAG does not apply to IPPROTO_IPIP raw sockets (the
	 * kernel would fragment the outer packet): a DF packet too big for
	 * the path is refused here, as a router would (RFC 1191). */
	if (len + 40 > c->path_mtu && pkt_ipv4_parse(p, len, &h) && h.df) {
		c->n.drop_too_big++;
		send_icmp_too_big(c, p, len);
		return 0;
	}
	if (sendto(c->raw_fd, p, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len) {
		c->n.tunnel_tx_packets++;
		c->n.tunnel_tx_bytes += len;
		return 0;
	}
	switch (errno) {
	case EAGAIN:
	case ENOBUFS:
		/* DESIGN §7: wait instead of dropping. */
		memcpy(c->pending, p, len);
		c->pending_len = len;
		c->n.backpressure_waits++;
		event_del(c->ev_tun);
		if (errno == EAGAIN) {
			event_add(c->ev_raw_out, NULL);
		} else {
			/* ENOBUFS comes from a full device queue, not from the
			 * socket buffer, so POLLOUT would not wait: retry soon. */
			struct timeval tv = {0, 1000};

			event_add(c->ev_raw_out, &tv);
		}
		return -EAGAIN;
	case EMSGSIZE:
		/* The path shrank (IPV6_DONTFRAG, where the kernel honours it). */
		c->n.drop_too_big++;
		dti_update_mtu(c, &c->tep6);
		if (pkt_ipv4_parse(p, len, &h) && h.df)
			send_icmp_too_big(c, p, len);
		return 0;
	default:
		c->n.drop_send_error++;
		log_warnx_rl(&c->rl, "send to TEP: %s", strerror(errno));
		return 0;
	}
}

/* One packet from the application side, already parsed. */
static int
outbound(struct client *c, uint8_t *p, size_t len, const struct pkt4 *h)
{
	if (c->state == ST_BOUND) {
		if (h->src == c->v4) {
			/* lw4o6: no free port in the set (counted: drop_port_set_full). */
			if (c->nat && !lw_nat_out(c->nat, p, len, clock_mono_ms()))
				return 0;
			return tunnel_send(c, p, len);
		}
		if (c->cfg.mode == CLIENT_ON_DEMAND && h->src == c->cfg.placeholder) {
			if (!early_out(&c->early, p, len, c->cfg.placeholder, c->v4,
			               clock_mono_ms())) {
				c->n.drop_early_table_full++;
				return 0;
			}
			c->n.early_translated_out++;
			return tunnel_send(c, p, len);
		}
		c->n.drop_bad_source++;
		return 0;
	}
	if (c->cfg.mode != CLIENT_ON_DEMAND || h->src != c->cfg.placeholder) {
		c->n.drop_bad_source++;
		return 0;
	}
	/* Seed 002 §5.1: the first IPv4 packet asks for the address. */
	queue_push(c, p, len);
	if (c->state == ST_IDLE || c->state == ST_EXPIRED)
		acquire(c);
	return 0;
}

static void
queue_flush(struct client *c)
{
	while (c->state == ST_BOUND && c->qlen && c->pending_len == 0) {
		struct qpkt *q = &c->queue[c->qhead];
		struct pkt4 h;

		c->qhead = (c->qhead + 1) % c->cfg.queue;
		c->qlen--;
		if (pkt_ipv4_parse(q->data, q->len, &h))
			outbound(c, q->data, q->len, &h);
		free(q->data);
	}
}

static void
on_tun(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	static uint8_t buf[PKT_MAX];

	for (int i = 0; i < TUN_BURST && c->pending_len == 0; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct pkt4 h;

		if (n <= 0)
			break;
		c->n.tun_rx_packets++;
		c->n.tun_rx_bytes += (uint64_t)n;
		if ((buf[0] >> 4) != 4) {
			c->n.drop_not_ipv4++;
			continue;
		}
		if (!pkt_ipv4_parse(buf, (size_t)n, &h)) {
			c->n.drop_malformed++;
			continue;
		}
		outbound(c, buf, h.total, &h);
	}
}

static void
on_raw_out(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	size_t len = c->pending_len;

	c->pending_len = 0;
	if (len && tunnel_send(c, c->pending, len) == -EAGAIN)
		return;
	queue_flush(c);
	if (c->pending_len == 0)
		event_add(c->ev_tun, NULL);
}

static void
on_raw(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	static uint8_t buf[PKT_MAX];

	for (int i = 0; i < TUN_BURST; i++) {
		struct sockaddr_in6 from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		struct pkt4 h;

		if (n < 0)
			break;
		c->n.tunnel_rx_packets++;
		c->n.tunnel_rx_bytes += (uint64_t)n;
		if (c->state != ST_BOUND) {
			c->n.drop_not_bound++;
			continue;
		}
		/* Only the TEP may inject into our tunnel (seed 004). */
		if (flen < sizeof(from) || from.sin6_family != AF_INET6 ||
		    !IN6_ARE_ADDR_EQUAL(&from.sin6_addr, &c->tep6)) {
			c->n.drop_not_tep++;
			continue;
		}
		if (!pkt_ipv4_parse(buf, (size_t)n, &h)) {
			c->n.drop_malformed++;
			continue;
		}
		if (h.dst != c->v4) {
			c->n.drop_bad_destination++;
			continue;
		}
		if (c->nat)
			lw_nat_in(c->nat, buf, h.total, clock_mono_ms());
		if (c->cfg.mode == CLIENT_ON_DEMAND &&
		    early_in(&c->early, buf, h.total, c->v4, c->cfg.placeholder, clock_mono_ms()))
			c->n.early_translated_in++;
		if (write(c->tun_fd, buf, h.total) != (ssize_t)h.total) {
			c->n.drop_tun_write++;
			continue;
		}
		c->n.tun_tx_packets++;
		c->n.tun_tx_bytes += h.total;
	}
}

static int
raw_open(struct client *c)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = c->v6};
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
	c->raw_fd = fd;
	return 0;
}

/* ---- The lease ---- */

static void
lease_drop(struct client *c, const char *why)
{
	char a[ADDR_STRLEN];

	if (c->state == ST_BOUND)
		log_info("lease of %s ends: %s", addr_fmt_v4(c->v4, a), why);
	evtimer_del(c->ev_renew);
	evtimer_del(c->ev_expire);
	dti_uninstall(c);
	queue_drop_all(c);
	c->pending_len = 0;
	if (c->ev_tun)
		event_add(c->ev_tun, NULL);
	c->state = ST_EXPIRED;
	c->v4 = 0;
	c->port_lo = c->port_hi = 0;
}

static void
lease_timers(struct client *c)
{
	struct timeval renew, life;

	evtimer_del(c->ev_renew);
	evtimer_del(c->ev_expire);
	if (c->lifetime == 0) {
		c->expires_ms = 0;
		return;
	}
	/* Renew at half the lifetime (seed 001 C §4.2). */
	renew.tv_sec = c->lifetime / 2;
	renew.tv_usec = (c->lifetime % 2) * 500000;
	life.tv_sec = c->lifetime;
	life.tv_usec = 0;
	c->expires_ms = clock_mono_ms() + (int64_t)c->lifetime * 1000;
	evtimer_add(c->ev_renew, &renew);
	evtimer_add(c->ev_expire, &life);
}

/* Seed 001 C §3.2: the link-local address of the interface of our global one. */
static void
find_linklocal(struct client *c)
{
	char ifn[IFNAMSIZ];
	int idx = nl_addr6_ifindex(c->nl, &c->v6);

	if (idx > 0 && if_indextoname((unsigned)idx, ifn) &&
	    nl_addr6_linklocal(c->nl, ifn, &c->v6ll) == 0)
		c->has_v6ll = true;
}

static void
send_create(struct client *c)
{
	struct tsp_tunnel t;

	/* The link-local address may still have been tentative at start. */
	if (!c->has_v6ll)
		find_linklocal(c);
	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_CREATE;
	snprintf(t.type, sizeof(t.type), "v4v6");
	/* Seed 001 C §3.2: link-local and global addresses; C §4.2: a
	 * renewal carries the IPv4 address. */
	t.client.present = true;
	t.client.has_v6 = true;
	t.client.v6 = c->v6;
	t.client.has_v6ll = c->has_v6ll;
	t.client.v6ll = c->v6ll;
	if (c->state == ST_BOUND) {
		t.client.has_v4 = true;
		t.client.v4 = c->v4;
	}
	if (tsp_client_send(c->tsp, &t) < 0) {
		session_end(c, "cannot send create");
		retry_later(c);
		return;
	}
	c->create_pending = true;
}

static void
apply_info(struct client *c, const struct tsp_tunnel *t)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	bool renewal = c->state == ST_BOUND;

	if (!t || !t->client.has_v4 || (!t->server.has_v6 && !c->cfg.has_tep6)) {
		log_warnx("server's answer lacks the IPv4 address or the TEP");
		c->n.acquire_failures++;
		session_end(c, "incomplete answer");
		retry_later(c);
		return;
	}
	if (renewal && t->client.v4 != c->v4) {
		log_warnx("server moved us from %s to %s", addr_fmt_v4(c->v4, a),
		          addr_fmt_v4(t->client.v4, b));
		c->n.address_changes++;
		dti_uninstall(c);
		renewal = false;
	}
	c->v4 = t->client.v4;
	c->port_lo = t->client.has_ports ? t->client.port_lo : 0;
	c->port_hi = t->client.has_ports ? t->client.port_hi : 0;
	/* A TEP configured by hand overrides the server's (seed 001 §5.1). */
	c->tep6 = c->cfg.has_tep6 ? c->cfg.tep6 : t->server.v6;
	c->tep4 = c->cfg.has_tep4 ? c->cfg.tep4 : (t->server.has_v4 ? t->server.v4 : 0);
	c->lifetime = t->lifetime;
	if (!c->installed && dti_install(c) < 0) {
		c->n.acquire_failures++;
		lease_drop(c, "cannot configure the interface");
		retry_later(c);
		return;
	}
	c->state = ST_BOUND;
	c->attempt = 0;
	lease_timers(c);
	if (renewal) {
		c->n.renewals++;
		log_debug("lease of %s renewed for %u s", addr_fmt_v4(c->v4, a), c->lifetime);
	} else {
		c->n.acquisitions++;
		log_info("lease of %s for %u s", addr_fmt_v4(c->v4, a), c->lifetime);
	}
	queue_flush(c);
}

/* ---- The TSP session ---- */

static void
on_release_done(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	session_end(c, "released");
	lease_drop(c, "released");
	event_base_loopexit(c->base, NULL);
}

static void
tsp_ready_cb(struct tsp_client *t, void *arg)
{
	struct client *c = arg;

	c->tsp_ready = true;
	c->redirects_in_row = 0;
	log_info("session with %s authenticated", c->server_names[c->server_idx]);
	if (c->releasing)
		return;
	if (c->state == ST_BOUND || c->state == ST_ACQUIRING || c->cfg.mode == CLIENT_ALWAYS_ON ||
	    c->qlen)
		send_create(c);
}

static void
set_name(char *dst, const char *src)
{
	size_t n = strnlen(src, TSP_DN_MAX - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
redirect(struct client *c, const struct tsp_tunnel *t)
{
	unsigned n = 0;

	c->n.redirects++;
	/* The brokers replace the list, tried in order; the configured
	 * server comes back last so that a bad list cannot strand us. */
	for (unsigned i = 0; t && i < t->nbrokers && n < CLIENT_MAX_SERVERS - 1; i++) {
		if (!addr_parse_endpoint(t->brokers[i], TSP_PORT, &c->servers[n],
		                         &c->serverlens[n])) {
			log_warnx("redirect: ignoring broker \"%s\"", t->brokers[i]);
			continue;
		}
		set_name(c->server_names[n], t->brokers[i]);
		n++;
	}
	c->servers[n] = c->cfg.server_sa;
	c->serverlens[n] = c->cfg.server_salen;
	set_name(c->server_names[n], c->cfg.server);
	c->nservers = n + 1;
	c->server_idx = 0;
	session_end(c, "redirected");
	if (++c->redirects_in_row > MAX_REDIRECTS || n == 0) {
		c->redirects_in_row = 0;
		retry_later(c);
		return;
	}
	log_info("redirected to %s", c->server_names[0]);
	session_start(c);
}

static void
tsp_reply_cb(struct tsp_client *t, int status, const struct tsp_tunnel *tun, void *arg)
{
	struct client *c = arg;
	bool renewal = c->state == ST_BOUND;

	if (c->releasing) {
		event_active(c->ev_release, 0, 0);
		return;
	}
	c->create_pending = false;
	if (status == TSP_OK) {
		apply_info(c, tun);
		return;
	}
	if (status >= TSP_REDIRECT) {
		redirect(c, tun);
		return;
	}
	log_warnx("server answered %d %s", status, tsp_status_text(status));
	if (renewal) {
		c->n.renewal_failures++;
		/* The server will not extend this address: give it up now
		 * rather than keep an address it may hand to someone else. */
		if (status == TSP_ADDRESS_UNAVAILABLE || status == TSP_INVALID_IPV4)
			lease_drop(c, "renewal refused");
	} else {
		c->n.acquire_failures++;
	}
	retry_later(c);
}

static void
tsp_command_cb(struct tsp_client *t, const struct tsp_tunnel *tun, void *arg)
{
	struct client *c = arg;

	if (tun->action != TSP_ACTION_DELETE) {
		c->n.unknown_commands++;
		return;
	}
	if (c->state != ST_BOUND || (tun->client.has_v4 && tun->client.v4 != c->v4)) {
		c->n.unknown_commands++;
		return;
	}
	/* Seed 001 C §4.3: the server ends the allocation; stop at once,
	 * then acknowledge with an info (C §2, no answer expected). */
	c->n.server_deletes++;
	lease_drop(c, "deleted by the server");
	{
		struct tsp_tunnel ack = *tun;

		ack.action = TSP_ACTION_INFO;
		tsp_client_send(c->tsp, &ack);
	}
	if (c->cfg.mode == CLIENT_ALWAYS_ON)
		retry_later(c);
}

static void
tsp_closed_cb(struct tsp_client *t, int status, const char *why, void *arg)
{
	struct client *c = arg;

	log_warnx("session with %s ended: %s", c->server_names[c->server_idx],
	          why ? why : "closed");
	/* tsp_client_free() defers the release when called from a callback. */
	tsp_client_free(t);
	c->tsp = NULL;
	c->tsp_ready = false;
	c->create_pending = false;
	if (c->releasing) {
		event_active(c->ev_release, 0, 0);
		return;
	}
	c->n.session_failures++;
	if (status == TSP_AUTH_FAILED)
		c->n.auth_failures++;
	if (c->tls && *c->tls_error) {
		/* Nothing was said to a server we could not verify. */
		c->n.tls_refused++;
		log_warnx("TLS: refusing %s: %s", c->server_names[c->server_idx], c->tls_error);
		c->tls_error[0] = '\0';
	}
	/* The lease outlives the session: a new one renews it. */
	if (c->nservers > 1)
		c->server_idx = (c->server_idx + 1) % c->nservers;
	if (c->state == ST_BOUND || c->state == ST_ACQUIRING)
		retry_later(c);
}

/* ---- TSP over TLS (issue 7) ---- */

/* The SHA-256 of the certificate's SubjectPublicKeyInfo (RFC 7469 §2.4). */
static bool
tls_pin_matches(struct client *c, X509 *cert)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	bool ok = false;

	if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == 32)
		ok = CRYPTO_memcmp(md, c->cfg.tls.pin, 32) == 0;
	OPENSSL_free(der);
	return ok;
}

/*
 * Every certificate of the chain passes here. With a CA the chain and
 * the name must verify; with a pin the server's own key must be the
 * pinned one (with a pin alone, the chain is not judged: the pin is the
 * trust). The first reason to refuse is kept for the log and the counter.
 */
static int
tls_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct client *c = ssl ? SSL_get_app_data(ssl) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(x);

	if (!c)
		return 0;
	if (!*c->cfg.tls.ca)
		ok = 1;
	if (!ok && !*c->tls_error)
		snprintf(c->tls_error, sizeof(c->tls_error), "%s (depth %d)",
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)), depth);
	if (ok && depth == 0 && c->cfg.tls.has_pin &&
	    !tls_pin_matches(c, X509_STORE_CTX_get_current_cert(x))) {
		ok = 0;
		if (!*c->tls_error)
			snprintf(c->tls_error, sizeof(c->tls_error),
			         "its public key does not match the configured pin");
	}
	return ok;
}

static int
tls_init(struct client *c)
{
	c->tls = SSL_CTX_new(TLS_client_method());
	if (!c->tls)
		return -ENOMEM;
	/* TLS 1.2 or later only (issue 7). */
	if (SSL_CTX_set_min_proto_version(c->tls, TLS1_2_VERSION) != 1)
		return -EPROTO;
	if (*c->cfg.tls.ca && SSL_CTX_load_verify_locations(c->tls, c->cfg.tls.ca, NULL) != 1) {
		log_warnx("TLS: cannot load the CA file %s: %s", c->cfg.tls.ca,
		          ERR_reason_error_string(ERR_get_error()));
		return -EINVAL;
	}
	SSL_CTX_set_verify(c->tls, SSL_VERIFY_PEER, tls_verify_cb);
	return 0;
}

/* A TLS connection to the current server, bound to our address; NULL on failure. */
static struct bufferevent *
tls_connect(struct client *c, const struct sockaddr *sa, socklen_t salen, const char *host)
{
	const char *name = *c->cfg.tls.name ? c->cfg.tls.name : host;
	struct sockaddr_in6 bind6 = {.sin6_family = AF_INET6, .sin6_addr = c->v6};
	struct in6_addr a6;
	struct in_addr a4;
	struct bufferevent *bev;
	SSL *ssl;
	int fd;

	ssl = SSL_new(c->tls);
	if (!ssl)
		return NULL;
	SSL_set_app_data(ssl, c);
	/* With a CA, the certificate must name the server (RFC 6125). */
	if (inet_pton(AF_INET6, name, &a6) == 1 || inet_pton(AF_INET, name, &a4) == 1) {
		if (*c->cfg.tls.ca && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
			goto fail;
	} else {
		SSL_set_tlsext_host_name(ssl, name);
		if (*c->cfg.tls.ca && SSL_set1_host(ssl, name) != 1)
			goto fail;
	}
	c->tls_error[0] = '\0';
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 && bind(fd, (struct sockaddr *)&bind6, sizeof(bind6)) < 0) {
		close(fd);
		goto fail;
	}
	bev = bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		goto fail;
	}
	if (bufferevent_socket_connect(bev, sa, (int)salen) < 0) {
		bufferevent_free(bev); /* frees ssl and closes fd */
		return NULL;
	}
	return bev;
fail:
	SSL_free(ssl);
	return NULL;
}

static void
session_start(struct client *c)
{
	static const struct tsp_client_callbacks cb = {
	    .ready = tsp_ready_cb,
	    .reply = tsp_reply_cb,
	    .command = tsp_command_cb,
	    .closed = tsp_closed_cb,
	};
	struct tsp_client_config tc = {
	    .version = "2.0.0",
	    .mechanism = c->cfg.mechanism,
	    .user = c->cfg.user,
	    .secret = c->cfg.secret,
	    .service = "tsp",
	    .timeout = c->cfg.timeout,
	};
	struct sockaddr_in6 bind6 = {.sin6_family = AF_INET6, .sin6_addr = c->v6};
	const struct sockaddr_storage *ss = &c->servers[c->server_idx];
	bool v6 = ss->ss_family == AF_INET6;
	char host[ADDR_STRLEN];

	if (c->tsp)
		return;
	tc.hostname = addr_fmt_sockaddr((const struct sockaddr *)ss, host);
	c->n.sessions++;
	if (c->tls) {
		char ip[ADDR_STRLEN];
		struct bufferevent *bev;

		/* The certificate names the bare address (subjectAltName IP). */
		if (v6)
			addr_fmt_v6(&((const struct sockaddr_in6 *)ss)->sin6_addr, ip);
		else
			addr_fmt_v4(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr), ip);
		bev = tls_connect(c, (const struct sockaddr *)ss, c->serverlens[c->server_idx], ip);

		c->tsp = bev ? tsp_client_new(c->base, bev, &tc, &cb, c) : NULL;
	} else {
		c->tsp = tsp_client_connect(
		    c->base, (const struct sockaddr *)ss, c->serverlens[c->server_idx],
		    v6 ? (struct sockaddr *)&bind6 : NULL, v6 ? sizeof(bind6) : 0, &tc, &cb, c);
	}
	if (!c->tsp) {
		log_warn("connect to %s", c->server_names[c->server_idx]);
		c->n.session_failures++;
		c->server_idx = (c->server_idx + 1) % c->nservers;
		retry_later(c);
	}
}

static void
session_end(struct client *c, const char *why)
{
	if (!c->tsp)
		return;
	log_debug("closing the session: %s", why);
	tsp_client_free(c->tsp);
	c->tsp = NULL;
	c->tsp_ready = false;
	c->create_pending = false;
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	if (c->tsp_ready && !c->create_pending)
		send_create(c);
	else if (!c->tsp)
		session_start(c);
}

static void
retry_later(struct client *c)
{
	uint32_t rnd = 0;
	unsigned ms;
	struct timeval tv;

	if (evtimer_pending(c->ev_retry, NULL))
		return;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)clock_mono_ms();
	ms = client_backoff_ms(c->attempt++, c->cfg.backoff_max, rnd);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	log_debug("next attempt in %u ms", ms);
	evtimer_add(c->ev_retry, &tv);
}

static void
acquire(struct client *c)
{
	if (c->state == ST_BOUND)
		return;
	c->state = ST_ACQUIRING;
	if (c->d6) {
		d6_acquire(c);
		return;
	}
	if (evtimer_pending(c->ev_retry, NULL))
		return;
	if (c->tsp_ready && !c->create_pending)
		send_create(c);
	else if (!c->tsp)
		session_start(c);
}

static void
on_renew(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	if (c->tsp_ready && !c->create_pending)
		send_create(c);
	else if (!c->tsp)
		session_start(c);
}

static void
on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	c->n.expiries++;
	lease_drop(c, "lifetime expired");
	if (c->cfg.mode == CLIENT_ALWAYS_ON)
		acquire(c);
}

static void
on_early(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	early_expire(&c->early, clock_mono_ms());
}

/*
 * The kernel learns a smaller path MTU from Packet Too Big messages (or
 * an operator lowers a route's); no event tells us, so look once a
 * second: one RTM_GETROUTE.
 */
static void
on_mtu(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	if (c->state == ST_BOUND)
		dti_update_mtu(c, &c->tep6);
	else if (c->cfg.server_sa.ss_family == AF_INET6)
		dti_update_mtu(c, &((struct sockaddr_in6 *)&c->cfg.server_sa)->sin6_addr);
}

/*
 * The DSTM profile has no release message of its own: we send a delete
 * of our address (dstmd takes a client's delete as a release), wait a
 * moment for the answer, then close and clear the interface.
 */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct client *c = arg;
	struct tsp_tunnel t;
	struct timeval tv = {RELEASE_WAIT_MS / 1000, (RELEASE_WAIT_MS % 1000) * 1000};

	if (c->releasing)
		return;
	log_info("signal %d: stopping", (int)sig);
	c->releasing = true;
	evtimer_del(c->ev_retry);
	if (c->d6) {
		d6_stop(c);
		return;
	}
	if (c->state != ST_BOUND || !c->tsp_ready) {
		event_active(c->ev_release, 0, 0);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_DELETE;
	snprintf(t.type, sizeof(t.type), "v4v6");
	t.client.present = true;
	t.client.has_v6 = true;
	t.client.v6 = c->v6;
	t.client.has_v4 = true;
	t.client.v4 = c->v4;
	if (tsp_client_send(c->tsp, &t) < 0) {
		event_active(c->ev_release, 0, 0);
		return;
	}
	c->n.releases++;
	evtimer_add(c->ev_release, &tv);
}

/* ---- The DHCPv6 access module ---- */

/*
 * The engine of src/dhcp6 decides; this shell holds the socket, the
 * clock and the DTI. The socket is bound to the host's global address
 * (port 546), because dstmd takes the client's tunnel address from the
 * source of a message when it is global (d6_client_v6), and sends to
 * All_DHCP_Relay_Agents_and_Servers on the link of that address.
 */
static const char *const d6_state_names[] = {
    "init",      "soliciting", "requesting", "bound",   "renewing",
    "rebinding", "releasing",  "declining",  "stopped",
};

static uint32_t
d6_random(void *arg)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)clock_mono_ms() * 2654435761u;
	return r;
}

static void
d6_flush(struct client *c)
{
	struct sockaddr_in6 to = {
	    .sin6_family = AF_INET6,
	    .sin6_port = htons(c->cfg.dhcp6.port),
	    .sin6_scope_id = c->d6_ifindex,
	};
	uint8_t buf[D6_MAX_MSG];
	size_t len;

	/* RFC 8415 §7.1: All_DHCP_Relay_Agents_and_Servers. */
	inet_pton(AF_INET6, "ff02::1:2", &to.sin6_addr);
	while (d6_client_output(c->d6, buf, sizeof(buf), &len)) {
		if (sendto(c->d6_fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) ==
		    (ssize_t)len) {
			c->n.dhcp6_tx++;
		} else {
			c->n.dhcp6_tx_errors++;
			log_warnx_rl(&c->rl, "DHCPv6: send: %s", strerror(errno));
		}
	}
}

static void
d6_schedule(struct client *c)
{
	int64_t next = d6_client_next(c->d6), now = clock_mono_ms();
	struct timeval tv;

	evtimer_del(c->ev_d6_timer);
	if (next == INT64_MAX)
		return;
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(c->ev_d6_timer, &tv);
}

/* The address proves unusable: give it back (RFC 8415 §18.2.8). */
static void
d6_decline(struct client *c, const char *why)
{
	char a[ADDR_STRLEN];

	log_warnx("DHCPv6: declining %s: %s", addr_fmt_v4(c->v4, a), why);
	c->n.declines++;
	c->n.acquire_failures++;
	lease_drop(c, why);
	c->state = ST_ACQUIRING;
	d6_client_decline(c->d6, clock_mono_ms());
}

/*
 * lw4o6 (RFC 7596 §5.1): the softwire is built on the IA_NA address the
 * server gave: it goes on the interface, the raw socket is bound to it
 * (DESIGN §8), and the port set is what the translation maps into.
 */
static int
lw_bind(struct client *c, const struct d6_lease_info *l)
{
	char a[ADDR_STRLEN];
	int ret, oldfd = c->raw_fd;
	struct in6_addr old = c->v6;

	if (!IN6_ARE_ADDR_EQUAL(&c->v6, &l->v6)) {
		if ((ret = nl_addr6_add(c->nl, (int)c->d6_ifindex, &l->v6, 128)) < 0) {
			log_warnx("lw4o6: cannot add %s: %s", addr_fmt_v6(&l->v6, a),
			          strerror(-ret));
			return ret;
		}
		c->v6 = l->v6;
		if ((ret = raw_open(c)) < 0) {
			log_warnx("lw4o6: raw socket on %s: %s", addr_fmt_v6(&l->v6, a),
			          strerror(-ret));
			c->v6 = old;
			c->raw_fd = oldfd;
			return ret;
		}
		event_free(c->ev_raw);
		event_free(c->ev_raw_out);
		c->ev_raw = event_new(c->base, c->raw_fd, EV_READ | EV_PERSIST, on_raw, c);
		c->ev_raw_out = event_new(c->base, c->raw_fd, EV_WRITE, on_raw_out, c);
		event_add(c->ev_raw, NULL);
		close(oldfd);
		log_info("lw4o6: softwire from %s", addr_fmt_v6(&c->v6, a));
	}
	lw_nat_set(c->nat, l->psid_offset, l->psid_len, l->psid);
	if (l->psid_len)
		log_info("lw4o6: port set PSID %u (offset %u, length %u): %u ports", l->psid,
		         l->psid_offset, l->psid_len, lw_nat_size(c->nat));
	return 0;
}

static void
d6_bound(struct client *c)
{
	const struct d6_lease_info *l = d6_client_lease(c->d6);
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	bool renewal = c->state == ST_BOUND;

	if (!l)
		return;
	if (!l->has_tep && !c->cfg.has_tep6) {
		/* Without a TEP the address cannot carry one packet. */
		c->v4 = l->v4;
		d6_decline(c, "the server named no TEP");
		return;
	}
	if (renewal && l->v4 != c->v4) {
		log_warnx("server moved us from %s to %s", addr_fmt_v4(c->v4, a),
		          addr_fmt_v4(l->v4, b));
		c->n.address_changes++;
		dti_uninstall(c);
		renewal = false;
	}
	if (l->lw && c->nat && lw_bind(c, l) < 0) {
		c->v4 = l->v4;
		d6_decline(c, "cannot build the softwire on the IA_NA address");
		return;
	}
	c->v4 = l->v4;
	c->port_lo = l->port_lo;
	c->port_hi = l->port_hi;
	/* A TEP configured by hand overrides the server's (seed 001 §5.1). */
	c->tep6 = c->cfg.has_tep6 ? c->cfg.tep6 : l->tep;
	c->tep4 = c->cfg.has_tep4 ? c->cfg.tep4 : 0;
	c->lifetime = l->valid;
	c->expires_ms = l->obtained + (int64_t)l->valid * 1000;
	if (!c->installed && dti_install(c) < 0) {
		d6_decline(c, "cannot configure the interface");
		return;
	}
	c->state = ST_BOUND;
	c->attempt = 0;
	if (renewal) {
		c->n.renewals++;
		log_debug("lease of %s renewed for %u s", addr_fmt_v4(c->v4, a), c->lifetime);
	} else {
		c->n.acquisitions++;
		log_info("DHCPv6 lease of %s for %u s (T1 %u, T2 %u)", addr_fmt_v4(c->v4, a),
		         c->lifetime, l->t1, l->t2);
	}
	queue_flush(c);
}

static void
d6_event(struct client *c, enum d6_client_event ev)
{
	switch (ev) {
	case D6C_EV_BOUND:
		d6_bound(c);
		break;
	case D6C_EV_RENEWED:
		if (c->state == ST_BOUND) {
			const struct d6_lease_info *l = d6_client_lease(c->d6);

			c->lifetime = l->valid;
			c->expires_ms = l->obtained + (int64_t)l->valid * 1000;
			c->n.renewals++;
		} else {
			d6_bound(c);
		}
		break;
	case D6C_EV_LOST:
		/* Expired, or refused at renewal (seed 002 §6.3): the address goes. */
		if (c->expires_ms && clock_mono_ms() >= c->expires_ms)
			c->n.expiries++;
		else
			c->n.renewal_failures++;
		lease_drop(c, "DHCPv6 lease lost");
		/* The engine solicits again at once. */
		c->state = ST_ACQUIRING;
		break;
	case D6C_EV_RELEASED:
		event_active(c->ev_release, 0, 0);
		break;
	case D6C_EV_NONE:
		break;
	}
}

static void
on_d6(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	uint8_t buf[D6_MAX_MSG];

	for (int i = 0; i < TUN_BURST; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0)
			break;
		c->n.dhcp6_rx++;
		d6_event(c, d6_client_input(c->d6, buf, (size_t)n, clock_mono_ms()));
	}
	d6_flush(c);
	d6_schedule(c);
}

static void
on_d6_timer(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	d6_event(c, d6_client_tick(c->d6, clock_mono_ms()));
	d6_flush(c);
	d6_schedule(c);
}

static void
d6_acquire(struct client *c)
{
	enum d6_client_state st = d6_client_state(c->d6);

	if (st != D6C_INIT && st != D6C_STOPPED)
		return; /* already soliciting or renewing */
	d6_client_start(c->d6, clock_mono_ms());
	d6_flush(c);
	d6_schedule(c);
}

/* SIGTERM: Release (RFC 8415 §18.2.7), wait a moment for the Reply. */
static void
d6_stop(struct client *c)
{
	struct timeval tv = {RELEASE_WAIT_MS / 1000, (RELEASE_WAIT_MS % 1000) * 1000};

	if (c->state != ST_BOUND) {
		event_active(c->ev_release, 0, 0);
		return;
	}
	d6_client_release(c->d6, clock_mono_ms());
	c->n.releases++;
	d6_flush(c);
	d6_schedule(c);
	evtimer_add(c->ev_release, &tv);
}

/*
 * RFC 8415 §11.4: a DUID-LL from the hardware address of the interface
 * holding our global address, stable across restarts; a random DUID-UUID
 * (RFC 6355) when that interface has none.
 */
static void
d6_make_duid(struct client *c, const char *ifname)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	static const uint8_t zero[6];

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 &&
	    memcmp(ifr.ifr_hwaddr.sa_data, zero, 6) != 0) {
		c->duid[0] = 0;
		c->duid[1] = 3; /* DUID-LL */
		c->duid[2] = 0;
		c->duid[3] = 1; /* Ethernet */
		memcpy(c->duid + 4, ifr.ifr_hwaddr.sa_data, 6);
		c->duid_len = 10;
	} else {
		c->duid[0] = 0;
		c->duid[1] = 4; /* DUID-UUID */
		for (int i = 0; i < 16; i += 4) {
			uint32_t r = d6_random(NULL);

			memcpy(c->duid + 2 + i, &r, 4);
		}
		c->duid_len = 18;
	}
	if (fd >= 0)
		close(fd);
}

static int
d6_open(struct client *c)
{
	const struct client_dhcp6 *h = &c->cfg.dhcp6;
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6,
	    .sin6_port = htons(D6_CLIENT_PORT),
	    .sin6_addr = c->v6,
	};
	struct d6_client_config dc = {0};
	char ifn[IFNAMSIZ];
	int idx, fd, zero = 0, one = 1;

	idx = nl_addr6_ifindex(c->nl, &c->v6);
	if (idx <= 0 || !if_indextoname((unsigned)idx, ifn))
		return -EADDRNOTAVAIL;
	c->d6_ifindex = (unsigned)idx;
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	c->d6_fd = fd;

	d6_make_duid(c, ifn);
	dc.codes = h->codes;
	dc.duid = c->duid;
	dc.duid_len = c->duid_len;
	dc.iaid = (uint32_t)idx;
	dc.global_v4_form = h->global_v4_form;
	dc.lw4o6 = c->cfg.lw4o6;
	if (c->cfg.lw4o6 && !(c->nat = lw_nat_new()))
		return -ENOMEM;
	dc.rapid_commit = h->rapid_commit;
	if (h->has_key) {
		c->d6key.realm = h->realm;
		c->d6key.key_id = h->key_id;
		c->d6key.secret = (const uint8_t *)h->secret;
		c->d6key.secret_len = strlen(h->secret);
		dc.key = &c->d6key;
	}
	dc.random = d6_random;
	c->d6 = d6_client_new(&dc);
	if (!c->d6)
		return -ENOMEM;
	c->ev_d6 = event_new(c->base, fd, EV_READ | EV_PERSIST, on_d6, c);
	c->ev_d6_timer = evtimer_new(c->base, on_d6_timer, c);
	event_add(c->ev_d6, NULL);
	log_info("DHCPv6 from [%s]:%u on %s (%s form%s)",
	         addr_fmt_v6(&c->v6, (char[ADDR_STRLEN]){0}), D6_CLIENT_PORT, ifn,
	         h->global_v4_form ? "seed 002 Global IPv4 Address" : "IA_DSTM",
	         h->has_key ? ", authenticated" : "");
	return 0;
}

/* ---- Control socket ---- */

static json_t *
status_json(struct client *c)
{
	char a[ADDR_STRLEN];
	json_t *o = json_object();
	int64_t left = c->expires_ms ? (c->expires_ms - clock_mono_ms()) / 1000 : 0;
	bool bound = c->state == ST_BOUND;

	json_object_set_new(o, "state", json_string(state_names[c->state]));
	json_object_set_new(
	    o, "mode", json_string(c->cfg.mode == CLIENT_ON_DEMAND ? "on-demand" : "always-on"));
	json_object_set_new(o, "interface", json_string(c->ifname));
	json_object_set_new(o, "ipv6", json_string(addr_fmt_v6(&c->v6, a)));
	json_object_set_new(o, "access", json_string(c->d6 ? "dhcpv6" : "tsp"));
	if (c->d6) {
		json_object_set_new(o, "server", json_string("ff02::1:2"));
		json_object_set_new(o, "session",
		                    json_string(d6_state_names[d6_client_state(c->d6)]));
	} else {
		json_object_set_new(o, "server", json_string(c->server_names[c->server_idx]));
		json_object_set_new(o, "session",
		                    json_string(c->tsp_ready ? "ready"
		                                : c->tsp     ? "connecting"
		                                             : "none"));
	}
	json_object_set_new(o, "ipv4", bound ? json_string(addr_fmt_v4(c->v4, a)) : json_null());
	json_object_set_new(o, "port_lo",
	                    bound && c->port_hi ? json_integer(c->port_lo) : json_null());
	json_object_set_new(o, "port_hi",
	                    bound && c->port_hi ? json_integer(c->port_hi) : json_null());
	json_object_set_new(o, "tep_ipv6",
	                    bound ? json_string(addr_fmt_v6(&c->tep6, a)) : json_null());
	if (c->nat && bound && c->d6 && d6_client_lease(c->d6)) {
		/* lw4o6: the set the translation maps into (RFC 7597 §5.1). */
		const struct d6_lease_info *l = d6_client_lease(c->d6);

		json_object_set_new(o, "lw4o6", json_true());
		json_object_set_new(o, "psid_offset", json_integer(l->psid_offset));
		json_object_set_new(o, "psid_length", json_integer(l->psid_len));
		json_object_set_new(o, "psid", json_integer(l->psid));
	}
	json_object_set_new(o, "tep_ipv4",
	                    bound && c->tep4 ? json_string(addr_fmt_v4(c->tep4, a)) : json_null());
	json_object_set_new(o, "lifetime", bound ? json_integer(c->lifetime) : json_null());
	json_object_set_new(o, "expires_in",
	                    bound && c->expires_ms ? json_integer(left < 0 ? 0 : left)
	                                           : json_null());
	json_object_set_new(o, "mtu", json_integer(c->path_mtu ? c->path_mtu - 40 : 0));
	json_object_set_new(o, "queued", json_integer(c->qlen));
	return o;
}

static json_t *
counters_json(struct client *c)
{
	json_t *o = json_object();

#define X(name) json_object_set_new(o, #name, json_integer((json_int_t)c->n.name));
	COUNTERS(X)
#undef X
	if (c->nat)
		lw_nat_counters_json(c->nat, o);
	/* The engine's drops, one counter each (e.g. dhcp6_drop_auth_bad). */
	for (int r = D6_OK + 1; c->d6 && r < D6_DROP__COUNT; r++) {
		char name[64];

		snprintf(name, sizeof(name), "dhcp6_%s", d6_drop_name((enum d6_drop)r));
		json_object_set_new(
		    o, name, json_integer((json_int_t)d6_client_drops(c->d6, (enum d6_drop)r)));
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
find_addresses(struct client *c)
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
	find_linklocal(c);
	log_info("IPv6 address %s on %s", addr_fmt_v6(&c->v6, a), ifn);
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
	if (args.check) {
		char *text = client_config_dump(&c->cfg);

		printf("%s\n", text);
		free(text);
		return 0;
	}
	if (!args.foreground && daemon(0, 0) < 0)
		fatal("daemon");

	c->tun_fd = c->raw_fd = -1;
	c->queue = calloc(c->cfg.queue, sizeof(*c->queue));
	c->nl = nl_open();
	c->base = event_base_new();
	if (!c->queue || !c->nl || !c->base)
		fatal("start-up");
	c->servers[0] = c->cfg.server_sa;
	c->serverlens[0] = c->cfg.server_salen;
	set_name(c->server_names[0], c->cfg.server);
	c->nservers = 1;

	find_addresses(c);
	ret = dti_open(c);
	if (ret < 0)
		fatalx("%s: %s", c->cfg.interface, strerror(-ret));
	ret = raw_open(c);
	if (ret < 0)
		fatalx("raw IPv6 socket: %s", strerror(-ret));
	if (c->cfg.tls.enable && tls_init(c) < 0)
		fatalx("TLS: cannot set up the client context");
	c->d6_fd = -1;
	if (c->cfg.access == CLIENT_ACCESS_DHCPV6) {
		ret = d6_open(c);
		if (ret < 0)
			fatalx("DHCPv6 socket on [%s]:%u: %s",
			       addr_fmt_v6(&c->v6, (char[ADDR_STRLEN]){0}), D6_CLIENT_PORT,
			       strerror(-ret));
	}
	gro_off(c);
	if (c->cfg.server_sa.ss_family == AF_INET6)
		dti_update_mtu(c, &((struct sockaddr_in6 *)&c->cfg.server_sa)->sin6_addr);

	c->ev_tun = event_new(c->base, c->tun_fd, EV_READ | EV_PERSIST, on_tun, c);
	c->ev_raw = event_new(c->base, c->raw_fd, EV_READ | EV_PERSIST, on_raw, c);
	c->ev_raw_out = event_new(c->base, c->raw_fd, EV_WRITE, on_raw_out, c);
	c->ev_retry = evtimer_new(c->base, on_retry, c);
	c->ev_renew = evtimer_new(c->base, on_renew, c);
	c->ev_expire = evtimer_new(c->base, on_expire, c);
	c->ev_early = event_new(c->base, -1, EV_PERSIST, on_early, c);
	c->ev_release = evtimer_new(c->base, on_release_done, c);
	c->ev_mtu = event_new(c->base, -1, EV_PERSIST, on_mtu, c);
	c->ev_sigterm = evsignal_new(c->base, SIGTERM, on_signal, c);
	c->ev_sigint = evsignal_new(c->base, SIGINT, on_signal, c);
	event_add(c->ev_tun, NULL);
	event_add(c->ev_raw, NULL);
	event_add(c->ev_early, &(struct timeval){5, 0});
	event_add(c->ev_mtu, &(struct timeval){1, 0});
	event_add(c->ev_sigterm, NULL);
	event_add(c->ev_sigint, NULL);
	signal(SIGPIPE, SIG_IGN);

	c->ctl = ctl_server_new(c->base, c->cfg.control, ctl_handler, c);
	if (!c->ctl)
		fatal("control socket %s", c->cfg.control);

	/*
	 * STYLE "Least privilege": the TUN device, the raw socket, the
	 * netlink socket, port 546, the CA file and the control socket are
	 * open; from here on only addresses and routes of the DTI change
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

	c->state = ST_IDLE;
	if (c->cfg.mode == CLIENT_ALWAYS_ON)
		acquire(c);
	log_info("started (%s, %s)", c->cfg.mode == CLIENT_ON_DEMAND ? "on-demand" : "always-on",
	         c->ifname);
	event_base_dispatch(c->base);

	ctl_server_free(c->ctl);
	session_end(c, "exit");
	lease_drop(c, "exit");
	close(c->raw_fd);
	close(c->tun_fd);
	if (c->d6) {
		event_free(c->ev_d6);
		event_free(c->ev_d6_timer);
		d6_client_free(c->d6);
		close(c->d6_fd);
	}
	nl_close(c->nl);
	SSL_CTX_free(c->tls);
	log_info("stopped");
	return c->exit_code;
}
