/*
 * The Dynamic Tunnel Interface of dstm-client (seed 001 §5.2, shell.h): a
 * TUN device whose IPv4 packets go out inside IPv6 (next header 4)
 * through a raw socket bound to the host's global IPv6 address, toward
 * the TEP, and the way back. It also keeps the interface's address,
 * routes and MTU in step with the lease. What may go out is decided by
 * the on-demand part (ondemand.c); whether a lease exists by lease.c.
 *
 * The fast path (DESIGN §7): the TUN device is opened with IFF_VNET_HDR
 * and TCP segmentation offload, so one read carries up to 64 KB of one
 * TCP flow; it is cut into MSS-sized segments here, before encapsulation
 * (the raw socket must never fragment), and the segments leave in one
 * sendmmsg(). The way back reads a batch with recvmmsg() and coalesces
 * in-order segments of a flow into one super-packet per TUN write.
 *
 * The kernel fast path ("fast_path", tc_fast.c) takes the plain cases off
 * this path: with a lease installed, the DTI's egress encapsulates the
 * leased address's packets itself and the IPv6 interface's ingress hands
 * the TEP's packets to the DTI, so whole TSO packets cross the tunnel and
 * this file sees only what the programs leave to it (before the lease,
 * early flows, packets too big, anything suspect). Its binding follows
 * the lease here: set at install and on a new path MTU, cleared at
 * uninstall before the address goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client/shell.h"
#include "common/addr.h"
#include "common/clock.h"

#define TUN_TXQUEUELEN 4096
#define RAW_SOCKBUF    (4 << 20)

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

	t->tun_fd = tun_open_offload(cfg->interface, t->ifname, true, &t->offloaded);
	t->vnet = t->tun_fd >= 0;
	if (t->tun_fd < 0)
		t->tun_fd = tun_open(cfg->interface, t->ifname, true);
	if (t->tun_fd < 0)
		return t->tun_fd;
	log_info("%s: %s", t->ifname,
	         t->offloaded ? "TCP segmentation and checksum offload"
	         : t->vnet    ? "vnet header, no offload granted"
	                      : "no offload (IFF_VNET_HDR refused)");
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
	int one = 1, fd, size = RAW_SOCKBUF;

	fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_IPIP);
	if (fd < 0)
		return -errno;
	/* A TCP window's worth arrives between two reads at multi-Gbit/s:
	 * the default buffer (about 200 KB) drops most of it. FORCE passes
	 * net.core.rmem_max; we are still root here. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
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

/* ---- The kernel fast path's binding ---- */

static void
fast_push(struct client_tunnel *t)
{
	int ret = tc_fast_set(t->fast, &t->fb);

	if (ret < 0)
		log_warnx_rl(&t->rl, "fast path binding: %s", strerror(-ret));
}

/* A new path MTU: the binding's packet size limit follows. */
static void
fast_update(struct client_tunnel *t)
{
	if (!t->fast || !t->fb.active || t->fb.mtu == t->path_mtu)
		return;
	t->fb.mtu = t->path_mtu;
	fast_push(t);
}

void
tunnel_fast_bind(struct client_tunnel *t)
{
	const struct client_lease *l = t->lease;

	if (!t->fast || l->state != LEASE_BOUND || !l->installed)
		return;
	t->fb.active = 1;
	t->fb.v4 = htonl(l->v4);
	t->fb.port_lo = l->port_lo;
	t->fb.port_hi = l->port_hi;
	memcpy(t->fb.v6, &t->v6, 16);
	memcpy(t->fb.tep6, &l->tep6, 16);
	t->fb.mtu = t->path_mtu;
	/* Early flows still need translating on the way in (ondemand_in). */
	t->early_seen = t->od->n.early_translated_out;
	t->fb.rx = early_expire(&t->od->early, clock_mono_ms()) == 0;
	fast_push(t);
}

/* Off before the address leaves: no packet goes out with a stale binding. */
static void
fast_clear(struct client_tunnel *t)
{
	if (!t->fast || !t->fb.active)
		return;
	t->fb.active = 0;
	t->fb.rx = 0;
	fast_push(t);
}

/*
 * Seed 002 §5.1: an early flow's replies come to the leased address and
 * must reach ondemand_in() to get the placeholder back; while one exists
 * the inbound fast path is off. Called when a packet was just translated
 * out (before it is sent, so that its reply cannot pass) and on the timer.
 */
static void
fast_early(struct client_tunnel *t, bool expired)
{
	if (!t->fast || !t->fb.active)
		return;
	if (t->od->n.early_translated_out != t->early_seen) {
		t->early_seen = t->od->n.early_translated_out;
		if (t->fb.rx) {
			t->fb.rx = 0;
			fast_push(t);
		}
	} else if (expired && !t->fb.rx) {
		t->fb.rx = 1;
		fast_push(t);
	}
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
	if (t->gro)
		t->gro->mtu = mtu - 40;
	fast_update(t);
	ret = nl_link_set(t->nl, t->ifname, true, mtu - 40, 0);
	if (ret < 0)
		log_warnx("%s: MTU %u: %s", t->ifname, mtu - 40, strerror(-ret));
	else
		log_info("%s: MTU %u (IPv6 path MTU %u)", t->ifname, mtu - 40, mtu);
	t->n.mtu_updates++;
}

static void on_raw(evutil_socket_t fd, short what, void *arg);
static void on_raw_out(evutil_socket_t fd, short what, void *arg);

/*
 * lw4o6 (RFC 7596 §5.1): the softwire is built on the IA_NA address the
 * server gave: it goes on the interface of our address, the raw socket is
 * bound to it (DESIGN §8), and the port set is what the translation maps
 * into. Our other address keeps carrying DHCPv6.
 */
static int
lw_bind(struct client_tunnel *t, const struct client_lease *l)
{
	char a[ADDR_STRLEN];
	int ret, oldfd = t->raw_fd, idx;
	struct in6_addr old = t->v6;

	if (!IN6_ARE_ADDR_EQUAL(&t->v6, &l->lw_v6)) {
		idx = nl_addr6_ifindex(t->nl, &t->v6);
		if (idx < 0 || (ret = nl_addr6_add(t->nl, idx, &l->lw_v6, 128)) < 0) {
			ret = idx < 0 ? idx : ret;
			log_warnx("lw4o6: cannot add %s: %s", addr_fmt_v6(&l->lw_v6, a),
			          strerror(-ret));
			return ret;
		}
		t->v6 = l->lw_v6;
		if ((ret = raw_open(t)) < 0) {
			log_warnx("lw4o6: raw socket on %s: %s", addr_fmt_v6(&l->lw_v6, a),
			          strerror(-ret));
			t->v6 = old;
			t->raw_fd = oldfd;
			return ret;
		}
		if (t->ev_raw) {
			event_free(t->ev_raw);
			event_free(t->ev_raw_out);
			t->ev_raw = event_new(t->base, t->raw_fd, EV_READ | EV_PERSIST, on_raw, t);
			t->ev_raw_out = event_new(t->base, t->raw_fd, EV_WRITE, on_raw_out, t);
			event_add(t->ev_raw, NULL);
		}
		close(oldfd);
		log_info("lw4o6: softwire from %s", addr_fmt_v6(&t->v6, a));
	}
	lw_nat_set(t->nat, l->psid_offset, l->psid_len, l->psid);
	if (l->psid_len)
		log_info("lw4o6: port set PSID %u (offset %u, length %u): %u ports", l->psid,
		         l->psid_offset, l->psid_len, lw_nat_size(t->nat));
	return 0;
}

int
tunnel_install(struct client_tunnel *t)
{
	const struct client_config *cfg = t->cfg;
	const struct client_lease *l = t->lease;
	char a[ADDR_STRLEN];
	int ret;

	if (t->nat && l->lw && (ret = lw_bind(t, l)) < 0)
		return ret;

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

	fast_clear(t);
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

/*
 * DESIGN §7: GRO on the interface feeding the raw socket merges tunnelled
 * TCP segments into one packet with a partial inner checksum. Without
 * offloads on the DTI that breaks TCP, so GRO goes off; with them, such a
 * packet is written as one GSO packet (pkt_gso4_prepare), so GRO stays on
 * and the kernel does the coalescing for us, before the socket.
 */
void
tunnel_gro_setup(struct client_tunnel *t)
{
	char ifname[IFNAMSIZ];
	int idx, ret;

	idx = nl_addr6_ifindex(t->nl, &t->v6);
	if (idx < 0 || !if_indextoname((unsigned)idx, ifname))
		return;
	ret = tun_iface_gro(ifname, t->offloaded);
	if (ret < 0 && ret != -EOPNOTSUPP)
		log_warnx("%s: turning GRO %s: %s", ifname, t->offloaded ? "on" : "off",
		          strerror(-ret));
	else if (ret == 0)
		log_info("%s: GRO %s", ifname,
		         t->offloaded ? "on (merged segments reach the DTI as GSO packets)"
		                      : "off");
}

/* The outer hop limit: the IPv6 interface's, what the raw socket of the
 * userspace path sends with. */
static unsigned
hop_limit(const char *ifname)
{
	char path[128], buf[16];
	ssize_t n;
	int fd, v;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/hop_limit", ifname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 64;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	v = atoi(buf);
	return v > 0 && v < 256 ? (unsigned)v : 64;
}

/* The veth's transmit checksumming on again, if this run turned it off. */
static void
veth_csum_restore(struct client_tunnel *t)
{
	char ifname[IF_NAMESIZE];
	int rc;

	if (!t->csum_ifindex)
		return;
	rc = if_indextoname(t->csum_ifindex, ifname) ? tc_fast_veth_csum_restore(ifname) : -errno;
	if (rc < 0)
		log_warnx("fast path: cannot turn transmit checksumming on again on ifindex %u: %s "
		          "(ethtool -K IFACE tx on does)",
		          t->csum_ifindex, strerror(-rc));
	else
		log_info("%s: transmit checksumming on again", ifname);
	t->csum_ifindex = 0;
}

int
tunnel_fast_open(struct client_tunnel *t)
{
	enum client_fast want = t->cfg->fast_path;
	char ifname[IFNAMSIZ];
	unsigned dti;
	int idx, ret;

	idx = nl_addr6_ifindex(t->nl, &t->v6);
	if (idx <= 0 || !if_indextoname((unsigned)idx, ifname)) {
		ret = idx < 0 ? idx : -ENODEV;
		goto fail;
	}
	if (want == CLIENT_FAST_OFF || t->nat) {
		tc_fast_clear_stale((unsigned)idx);
		log_info("fast path off (%s): every packet through %s",
		         t->nat ? "lw4o6 translates in userspace" : "\"fast_path\": \"off\"",
		         t->ifname);
		return 0;
	}
	dti = if_nametoindex(t->ifname);
	if (!dti) {
		ret = -errno;
		goto fail;
	}
	ret = tc_fast_veth_csum(ifname);
	if (ret < 0)
		goto fail;
	if (ret > 0) {
		t->csum_ifindex = (unsigned)idx;
		log_info("%s: transmit checksumming off until exit (a veth leaves checksums to "
		         "the receiver, which a TEP cannot do)",
		         ifname);
	}
	ret = tc_fast_open(&t->fast, dti, (unsigned)idx);
	if (ret < 0)
		goto fail;
	memset(&t->fb, 0, sizeof(t->fb));
	t->fb.out_ifindex = (uint32_t)idx;
	t->fb.dti_ifindex = dti;
	t->fb.hop_limit = hop_limit(ifname);
	t->fb.mtu = t->path_mtu;
	fast_push(t);
	log_info("fast path: tc BPF on %s egress and %s ingress", t->ifname, ifname);
	return 0;
fail:
	t->fast = NULL;
	veth_csum_restore(t);
	if (want == CLIENT_FAST_BPF) {
		log_warnx("fast path: cannot load or attach the tc programs: %s", strerror(-ret));
		return ret;
	}
	log_info("fast path unavailable (%s): every packet through %s", strerror(-ret), t->ifname);
	return 0;
}

void
tunnel_fast_close(struct client_tunnel *t)
{
	tc_fast_close(t->fast);
	t->fast = NULL;
	veth_csum_restore(t);
}

/* ---- The data path ---- */

/* One packet toward the applications (behind an empty vnet header if need be). */
static ssize_t
dti_write(struct client_tunnel *t, const uint8_t *p, size_t len)
{
	return t->vnet ? tun_write_vnet(t->tun_fd, p, len, NULL) : write(t->tun_fd, p, len);
}

static bool
tunnel_blocked(const struct client_tunnel *t)
{
	return t->pending_len != 0 || t->tx.n != 0;
}

/* DESIGN §7: wait for the socket instead of dropping. */
static void
tunnel_wait(struct client_tunnel *t, int err)
{
	t->n.backpressure_waits++;
	event_del(t->ev_tun);
	if (err == EAGAIN) {
		event_add(t->ev_raw_out, NULL);
	} else {
		/* ENOBUFS comes from a full device queue, not from the
		 * socket buffer, so POLLOUT would not wait: retry soon. */
		struct timeval tv = {0, 1000};

		event_add(t->ev_raw_out, &tv);
	}
}

static void
send_icmp_too_big(struct client_tunnel *t, const uint8_t *p, size_t len)
{
	uint8_t icmp[576];
	uint32_t from = t->lease->tep4 ? t->lease->tep4 : t->cfg->placeholder;
	size_t n = pkt_icmp_frag_needed(p, len, from, t->path_mtu - 40, icmp, sizeof(icmp));

	if (n && dti_write(t, icmp, n) == (ssize_t)n)
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
		memcpy(t->pending, p, len);
		t->pending_len = len;
		tunnel_wait(t, errno);
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

/* Into the batch toward the TEP; the packet stays where it is until tx_flush(). */
static void
tx_add(struct client_tunnel *t, uint8_t *p, size_t len)
{
	struct pkt4 h;
	unsigned i = t->tx.n;

	if (len + 40 > t->path_mtu && pkt_ip4_parse(p, len, &h) && h.df) {
		t->n.drop_too_big++;
		send_icmp_too_big(t, p, len);
		return;
	}
	if (i == TUN_SEGS_MAX) {
		/* Cannot happen: a read yields at most TUN_SEGS_MAX packets. */
		t->n.drop_send_error++;
		return;
	}
	t->tx.iov[i].iov_base = p;
	t->tx.iov[i].iov_len = len;
	memset(&t->tx.m[i], 0, sizeof(t->tx.m[i]));
	t->tx.m[i].msg_hdr.msg_name = &t->tx.to;
	t->tx.m[i].msg_hdr.msg_namelen = sizeof(t->tx.to);
	t->tx.m[i].msg_hdr.msg_iov = &t->tx.iov[i];
	t->tx.m[i].msg_hdr.msg_iovlen = 1;
	t->tx.n++;
}

/* Send the batch; -EAGAIN when the rest must wait for the socket. */
static int
tx_flush(struct client_tunnel *t)
{
	while (t->tx.done < t->tx.n) {
		unsigned left = t->tx.n - t->tx.done;
		int r = sendmmsg(t->raw_fd, &t->tx.m[t->tx.done], left, 0);
		struct pkt4 h;
		const struct iovec *v;

		if (r > 0) {
			for (unsigned i = t->tx.done; i < t->tx.done + (unsigned)r; i++) {
				t->n.tunnel_tx_packets++;
				t->n.tunnel_tx_bytes += t->tx.iov[i].iov_len;
			}
			t->n.tunnel_tx_batches++;
			t->tx.done += (unsigned)r;
			continue;
		}
		v = &t->tx.iov[t->tx.done];
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
		case ENOBUFS:
			tunnel_wait(t, errno);
			return -EAGAIN;
		case EMSGSIZE:
			/* The path shrank (IPV6_DONTFRAG, where the kernel honours it). */
			t->n.drop_too_big++;
			tunnel_update_mtu(t, &t->lease->tep6);
			if (pkt_ip4_parse(v->iov_base, v->iov_len, &h) && h.df)
				send_icmp_too_big(t, v->iov_base, v->iov_len);
			break;
		default:
			t->n.drop_send_error++;
			log_warnx_rl(&t->rl, "send to TEP: %s", strerror(errno));
			break;
		}
		t->tx.done++;
	}
	t->tx.n = t->tx.done = 0;
	return 0;
}

/* One packet from the application side, already parsed. */
static int
outbound(struct client_tunnel *t, uint8_t *p, size_t len, const struct pkt4 *h, bool batch)
{
	enum lease_state st = t->lease->state;

	switch (ondemand_out(t->od, t->lease, p, len, h, clock_mono_ms())) {
	case OD_SEND:
		/* lw4o6: no free port in the set (counted: drop_port_set_full). */
		if (t->nat && !lw_nat_out(t->nat, p, len, clock_mono_ms()))
			return 0;
		fast_early(t, false);
		if (batch) {
			t->tx.to.sin6_addr = t->lease->tep6;
			tx_add(t, p, len);
			return 0;
		}
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

	while (t->lease->state == LEASE_BOUND && !tunnel_blocked(t) && ondemand_pop(t->od, &q)) {
		struct pkt4 h;

		if (pkt_ip4_parse(q.data, q.len, &h))
			outbound(t, q.data, q.len, &h, false);
		free(q.data);
	}
}

void
tunnel_reset(struct client_tunnel *t)
{
	t->pending_len = 0;
	t->tx.n = t->tx.done = 0;
	if (t->ev_tun)
		event_add(t->ev_tun, NULL);
}

static void
on_tun(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;
	struct tun_rx *rx = t->rx;

	for (int i = 0; i < CLIENT_BURST && !tunnel_blocked(t); i++) {
		ssize_t n = tun_rx_read(rx, fd, t->vnet);

		if (n < 0)
			break;
		if (n == 0) {
			t->n.drop_offload++;
			continue;
		}
		if (n > 1)
			t->n.tun_rx_gso++;
		for (unsigned k = 0; k < rx->n; k++) {
			uint8_t *p = rx->pkt[k];
			struct pkt4 h;

			t->n.tun_rx_packets++;
			t->n.tun_rx_bytes += rx->len[k];
			if ((p[0] >> 4) != 4) {
				t->n.drop_not_ipv4++;
				continue;
			}
			if (!pkt_ip4_parse(p, rx->len[k], &h)) {
				t->n.drop_malformed++;
				continue;
			}
			outbound(t, p, h.total, &h, true);
		}
		/* The packets point into rx: they leave before the next read. */
		tx_flush(t);
	}
}

static void
on_raw_out(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;
	size_t len = t->pending_len;

	if (tx_flush(t) == -EAGAIN)
		return;
	t->pending_len = 0;
	if (len && tunnel_send(t, t->pending, len) == -EAGAIN)
		return;
	tunnel_flush(t);
	if (!tunnel_blocked(t))
		event_add(t->ev_tun, NULL);
}

/* One packet from the TEP, for the applications. */
static void
inbound(struct client_tunnel *t, uint8_t *p, size_t n, const struct sockaddr_in6 *from,
        socklen_t flen)
{
	const struct client_lease *l = t->lease;
	struct pkt4 h;

	t->n.tunnel_rx_packets++;
	t->n.tunnel_rx_bytes += (uint64_t)n;
	if (l->state != LEASE_BOUND) {
		t->n.drop_not_bound++;
		return;
	}
	/* Only the TEP may inject into our tunnel (seed 004). */
	if (flen < sizeof(*from) || from->sin6_family != AF_INET6 ||
	    !IN6_ARE_ADDR_EQUAL(&from->sin6_addr, &l->tep6)) {
		t->n.drop_not_tep++;
		return;
	}
	if (!pkt_ip4_parse(p, n, &h)) {
		t->n.drop_malformed++;
		return;
	}
	if (h.dst != l->v4) {
		t->n.drop_bad_destination++;
		return;
	}
	if (t->nat)
		lw_nat_in(t->nat, p, h.total, clock_mono_ms());
	ondemand_in(t->od, l, p, h.total, clock_mono_ms());
	if (t->vnet) {
		t->n.tun_tx_bytes += h.total;
		tun_gro_add(t->gro, t->tun_fd, p, h.total);
		return;
	}
	if (write(t->tun_fd, p, h.total) != (ssize_t)h.total) {
		t->n.drop_tun_write++;
		return;
	}
	t->n.tun_tx_packets++;
	t->n.tun_tx_bytes += h.total;
}

static void
on_raw(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;
	struct tun_gro *g = t->gro;
	uint64_t lost = g->lost, packets = g->packets, coalesced = g->coalesced;
	int n;

	for (unsigned i = 0; i < CLIENT_BURST; i++) {
		t->rxb.iov[i].iov_base = t->rxb.buf + (size_t)i * CLIENT_RX_SLOT;
		t->rxb.iov[i].iov_len = CLIENT_RX_SLOT;
		memset(&t->rxb.m[i], 0, sizeof(t->rxb.m[i]));
		t->rxb.m[i].msg_hdr.msg_name = &t->rxb.from[i];
		t->rxb.m[i].msg_hdr.msg_namelen = sizeof(t->rxb.from[i]);
		t->rxb.m[i].msg_hdr.msg_iov = &t->rxb.iov[i];
		t->rxb.m[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(fd, t->rxb.m, CLIENT_BURST, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		const struct msghdr *m = &t->rxb.m[i].msg_hdr;

		if (m->msg_flags & MSG_TRUNC) {
			t->n.tunnel_rx_packets++;
			t->n.drop_malformed++;
			continue;
		}
		inbound(t, t->rxb.iov[i].iov_base, t->rxb.m[i].msg_len, &t->rxb.from[i],
		        m->msg_namelen);
	}
	if (!t->vnet)
		return;
	tun_gro_flush(g, t->tun_fd);
	/* The coalescer counts per write; the counters are per packet. */
	t->n.drop_tun_write += g->lost - lost;
	t->n.tun_tx_packets += g->packets - packets;
	t->n.tun_tx_coalesced += g->coalesced - coalesced;
}

static void
on_early(evutil_socket_t fd, short what, void *arg)
{
	struct client_tunnel *t = arg;

	fast_early(t, early_expire(&t->od->early, clock_mono_ms()) == 0);
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
	t->rx = malloc(sizeof(*t->rx));
	t->gro = malloc(sizeof(*t->gro));
	t->rxb.buf = malloc((size_t)CLIENT_BURST * CLIENT_RX_SLOT);
	if (!t->rx || !t->gro || !t->rxb.buf)
		fatal("tunnel buffers");
	memset(t->rx, 0, sizeof(*t->rx));
	tun_gro_init(t->gro);
	if (t->offloaded && t->path_mtu)
		t->gro->mtu = t->path_mtu - 40;
	t->tx.to.sin6_family = AF_INET6;
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
	free(t->rx);
	free(t->gro);
	free(t->rxb.buf);
	t->rx = NULL;
	t->gro = NULL;
	t->rxb.buf = NULL;
}
