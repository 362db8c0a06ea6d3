/*
 * dstm-tep's portable data plane shell (DESIGN §7): a raw
 * socket(AF_INET6, SOCK_RAW, IPPROTO_IPIP) bound to the TEP's address
 * receives the tunnelled packets (the kernel hands over the inner IPv4
 * packet; the outer source comes from recvmmsg, the destination from
 * IPV6_PKTINFO) and sends the return ones (the kernel builds the IPv6
 * header: we send from data + 40); a raw ICMPv6 socket filtered to Packet
 * Too Big feeds the core's path MTU handling; a TUN device carries the
 * IPv4 side (each pool prefix is routed into it; what we write into it the
 * kernel forwards, TTL decremented); the ICMPv4 errors the TEP itself
 * originates leave through a raw IPv4 socket, since the kernel drops a
 * packet arriving on the TUN device with a local source address. The
 * shell rebuilds the IPv6 header of
 * what it receives, so the core always sees whole packets.
 *
 * Batches of DP_BATCH: recvmmsg/sendmmsg on the raw socket, up to
 * DP_BATCH reads from the TUN per turn. IPV6_DONTFRAG is on for every
 * packet the core marks so (per-packet cmsg); EMSGSIZE goes back to the
 * core as dp_too_big(). ENOBUFS/EAGAIN on send: the unsent rest waits for
 * POLLOUT and reading stops meanwhile (backpressure, not drops).
 *
 * The TUN device is opened with offloads where the kernel grants them
 * (dataplane/tun.h): a read may be a TCP super-packet, cut into segments
 * before the core sees them; decapsulated TCP segments of one flow are
 * coalesced into one write.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <netinet/icmp6.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "dataplane/tun.h"
#include "netlink/nl.h"
#include "tep/tep.h"

#define IP6_HLEN   40
#define DATA_MAX   65536 /* a reassembled packet may be this large */
#define SLOT       (DP_HEADROOM + IP6_HLEN + DATA_MAX)
#define SOCKBUF    (4 << 20)
#define MAX_ROUNDS 8 /* batches per event before yielding to the others */

struct tep_io {
	int raw_fd, icmp_fd, tun_fd;
	int raw4_fd; /* our own ICMPv4 errors toward the IPv4 side */
	struct event *ev_raw, *ev_icmp, *ev_tun, *ev_out;
	uint8_t *bufs6, *bufs4; /* DP_BATCH slots each */
	struct dp_pkt pkts6[DP_BATCH], pkts4[DP_BATCH];
	/* Receive side of recvmmsg. */
	struct mmsghdr rmsg[DP_BATCH];
	struct iovec riov[DP_BATCH];
	struct sockaddr_in6 rsrc[DP_BATCH];
	uint8_t rctl[DP_BATCH][128];
	/* Send side of sendmmsg. */
	struct mmsghdr smsg[DP_BATCH];
	struct iovec siov[DP_BATCH];
	struct sockaddr_in6 sdst[DP_BATCH];
	uint8_t sctl[DP_BATCH][64];
	struct dp_pkt *out[DP_BATCH];
	unsigned nout, sent; /* out[sent..nout) still to send */
	bool paused;
	struct log_rl rl;
	/* Offloads: segments of the last read not yet handed to the core. */
	bool vnet;
	struct tun_rx *rx;
	unsigned rxpos;
	struct tun_gro *gro;
};

static int
sysctl_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int
tep_sysctl_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* DESIGN §7: GRO merges tunnelled TCP segments into one with a wrong inner checksum. */
static void
gro_off(struct tep *t)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = 0};
	char ifname[IF_NAMESIZE];
	struct ifreq ifr;
	int idx = nl_addr6_ifindex(t->nl, &t->cfg.ipv6), s;

	if (idx <= 0 || !if_indextoname((unsigned)idx, ifname)) {
		log_warnx("cannot find the interface of the TEP address to turn GRO off");
		return;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
	ifr.ifr_data = (void *)&ev;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCETHTOOL, &ifr) < 0)
		log_warn("%s: cannot turn GRO off (tunnelled TCP may stall)", ifname);
	else
		log_info("%s: GRO off", ifname);
	if (s >= 0)
		close(s);
}

/* ---- Sending toward clients. ---- */

static void
build_msg(struct tep_io *io, unsigned i, struct dp_pkt *p)
{
	struct msghdr *m = &io->smsg[i].msg_hdr;
	struct cmsghdr *c;
	int tclass = (p->data[0] & 0x0f) << 4 | p->data[1] >> 4, df = p->dontfrag;

	memset(&io->sdst[i], 0, sizeof(io->sdst[i]));
	io->sdst[i].sin6_family = AF_INET6;
	io->sdst[i].sin6_addr = p->dst6;
	io->siov[i].iov_base = p->data + IP6_HLEN;
	io->siov[i].iov_len = p->len - IP6_HLEN;
	memset(m, 0, sizeof(*m));
	m->msg_name = &io->sdst[i];
	m->msg_namelen = sizeof(io->sdst[i]);
	m->msg_iov = &io->siov[i];
	m->msg_iovlen = 1;
	m->msg_control = io->sctl[i];
	m->msg_controllen = CMSG_SPACE(sizeof(int)) * 2;
	memset(io->sctl[i], 0, sizeof(io->sctl[i]));
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_TCLASS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &tclass, sizeof(int));
	c = CMSG_NXTHDR(m, c);
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_DONTFRAG;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &df, sizeof(int));
}

static void
tun_write(struct tep *t, const struct dp_pkt *p)
{
	uint32_t src = (uint32_t)p->data[12] << 24 | (uint32_t)p->data[13] << 16 |
	               (uint32_t)p->data[14] << 8 | p->data[15];

	/* An ICMPv4 error of ours has our own address as its source: written
	 * into the TUN device the kernel would drop it as a martian, so it
	 * leaves as a locally originated packet. */
	if (src == t->cfg.ipv4) {
		struct sockaddr_in sa = {.sin_family = AF_INET};

		memcpy(&sa.sin_addr, p->data + 16, 4);
		if (sendto(t->io->raw4_fd, p->data, p->len, MSG_DONTWAIT, (struct sockaddr *)&sa,
		           sizeof(sa)) < 0) {
			t->dp.ctr[DPC_tx_v4_errors]++;
			log_warnx_rl(&t->io->rl, "raw IPv4 send: %s", strerror(errno));
		}
		return;
	}
	if (t->io->vnet) {
		uint64_t errs = t->io->gro->write_errors;

		tun_gro_add(t->io->gro, t->io->tun_fd, p->data, p->len);
		t->dp.ctr[DPC_tx_v4_errors] += t->io->gro->write_errors - errs;
		return;
	}
	if (write(t->io->tun_fd, p->data, p->len) < 0) {
		t->dp.ctr[DPC_tx_v4_errors]++;
		log_warnx_rl(&t->io->rl, "%s: write: %s", t->ifname, strerror(errno));
	}
}

static void pause_reading(struct tep *t, bool pause);

/* Send out[sent..nout); true when all went (or failed for good). */
static bool
send6(struct tep *t)
{
	struct tep_io *io = t->io;

	for (unsigned guard = 0; io->sent < io->nout && guard < 4 * DP_BATCH; guard++) {
		int n =
		    sendmmsg(io->raw_fd, &io->smsg[io->sent], io->nout - io->sent, MSG_DONTWAIT);
		struct dp_pkt *p;
		unsigned mtu = 0;

		if (n > 0) {
			io->sent += (unsigned)n;
			continue;
		}
		if (errno == EAGAIN || errno == ENOBUFS) {
			t->dp.ctr[DPC_tx_enobufs_waits]++;
			return false;
		}
		p = io->out[io->sent];
		if (errno == EMSGSIZE && p->dontfrag) {
			/* The path shrank under us: tell the core, which
			 * answers the sender or lets the packet fragment. */
			nl_route6_get(t->nl, &p->dst6, NULL, NULL, &mtu);
			dp_too_big(&t->dp, p, mtu);
			if (p->bd)
				tep_xdp_bind(t, p->bd);
			if (p->verdict == DP_TO_V6) {
				build_msg(io, io->sent, p);
				continue;
			}
			if (p->verdict == DP_TO_V4)
				tun_write(t, p);
			io->sent++;
			continue;
		}
		t->dp.ctr[DPC_tx_v6_errors]++;
		log_warnx_rl(&io->rl, "sendmmsg: %s", strerror(errno));
		io->sent++;
	}
	io->sent = io->nout = 0;
	return true;
}

/* Hand a processed batch to its destinations. */
static void
emit(struct tep *t, struct dp_pkt *pkts, unsigned n)
{
	struct tep_io *io = t->io;

	io->nout = io->sent = 0;
	for (unsigned i = 0; i < n; i++) {
		if (pkts[i].verdict == DP_TO_V4) {
			tun_write(t, &pkts[i]);
		} else if (pkts[i].verdict == DP_TO_V6) {
			build_msg(io, io->nout, &pkts[i]);
			io->out[io->nout++] = &pkts[i];
		}
	}
	if (io->vnet) {
		uint64_t errs = io->gro->write_errors;

		tun_gro_flush(io->gro, io->tun_fd);
		t->dp.ctr[DPC_tx_v4_errors] += io->gro->write_errors - errs;
		t->ctr.tun_tx_coalesced = io->gro->coalesced;
	}
	if (!send6(t))
		pause_reading(t, true);
}

static void
pause_reading(struct tep *t, bool pause)
{
	struct tep_io *io = t->io;

	if (pause == io->paused)
		return;
	io->paused = pause;
	if (pause) {
		event_del(io->ev_raw);
		event_del(io->ev_icmp);
		event_del(io->ev_tun);
		event_add(io->ev_out, NULL);
	} else {
		event_add(io->ev_raw, NULL);
		event_add(io->ev_icmp, NULL);
		event_add(io->ev_tun, NULL);
		/* Segments of a read still wait: no readiness will say so. */
		if (io->vnet && io->rxpos < io->rx->n)
			event_active(io->ev_tun, EV_READ, 0);
	}
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct tep *t = arg;

	if (send6(t))
		pause_reading(t, false);
	else
		event_add(t->io->ev_out, NULL);
}

/* ---- Receiving. ---- */

/* Rebuild the IPv6 header the raw socket took off, before the payload. */
static void
rebuild_v6(struct tep *t, uint8_t *hdr, unsigned plen, uint8_t nh, const struct sockaddr_in6 *src,
           struct msghdr *m)
{
	struct in6_addr dst = t->cfg.ipv6;
	int hlim = 64;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != IPPROTO_IPV6)
			continue;
		if (c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			dst = pi.ipi6_addr;
		} else if (c->cmsg_type == IPV6_HOPLIMIT) {
			memcpy(&hlim, CMSG_DATA(c), sizeof(int));
		}
	}
	hdr[0] = 0x60;
	hdr[1] = hdr[2] = hdr[3] = 0;
	hdr[4] = (uint8_t)(plen >> 8);
	hdr[5] = (uint8_t)plen;
	hdr[6] = nh;
	hdr[7] = (uint8_t)hlim;
	memcpy(hdr + 8, &src->sin6_addr, 16);
	memcpy(hdr + 24, &dst, 16);
}

static void
rx6(struct tep *t, int fd, uint8_t nh)
{
	struct tep_io *io = t->io;

	for (int round = 0; round < MAX_ROUNDS && !io->paused; round++) {
		unsigned k = 0;
		int n;

		for (unsigned i = 0; i < DP_BATCH; i++) {
			struct msghdr *m = &io->rmsg[i].msg_hdr;

			io->riov[i].iov_base =
			    io->bufs6 + (size_t)i * SLOT + DP_HEADROOM + IP6_HLEN;
			io->riov[i].iov_len = DATA_MAX;
			memset(m, 0, sizeof(*m));
			m->msg_name = &io->rsrc[i];
			m->msg_namelen = sizeof(io->rsrc[i]);
			m->msg_iov = &io->riov[i];
			m->msg_iovlen = 1;
			m->msg_control = io->rctl[i];
			m->msg_controllen = sizeof(io->rctl[i]);
		}
		n = recvmmsg(fd, io->rmsg, DP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				t->dp.ctr[DPC_rx_errors]++;
				log_warnx_rl(&io->rl, "recvmmsg: %s", strerror(errno));
			}
			return;
		}
		dp_set_time(&t->dp, clock_mono_ms());
		for (int i = 0; i < n; i++) {
			struct msghdr *m = &io->rmsg[i].msg_hdr;
			uint8_t *slot = io->bufs6 + (size_t)i * SLOT;
			unsigned len = io->rmsg[i].msg_len;

			if ((m->msg_flags & MSG_TRUNC) || len > 65535) {
				t->ctr.rx_truncated++;
				continue;
			}
			rebuild_v6(t, slot + DP_HEADROOM, len, nh, &io->rsrc[i], m);
			memset(&io->pkts6[k], 0, sizeof(io->pkts6[k]));
			io->pkts6[k].data = slot + DP_HEADROOM;
			io->pkts6[k].len = len + IP6_HLEN;
			io->pkts6[k].headroom = DP_HEADROOM;
			k++;
		}
		dp_decap(&t->dp, io->pkts6, k);
		/* A Packet Too Big may have changed a client's path MTU,
		 * which the XDP programs check before they encapsulate. */
		if (nh == 58 && t->xdp)
			for (unsigned i = 0; i < k; i++)
				if (io->pkts6[i].bd)
					tep_xdp_bind(t, io->pkts6[i].bd);
		emit(t, io->pkts6, k);
		if (n < DP_BATCH)
			return;
	}
}

static void
on_raw(evutil_socket_t fd, short what, void *arg)
{
	rx6(arg, fd, 4);
}

static void
on_icmp(evutil_socket_t fd, short what, void *arg)
{
	rx6(arg, fd, 58);
}

/*
 * Fill a batch from an offload TUN: the segments of one read may span
 * batches (a 64 KB read is about 45 of them), so what is left waits in
 * io->rx for the next call. Returns the batch's size.
 */
static unsigned
tun_fill(struct tep *t, int fd)
{
	struct tep_io *io = t->io;
	unsigned k = 0;

	while (k < DP_BATCH) {
		uint8_t *slot = io->bufs4 + (size_t)k * SLOT + DP_HEADROOM;
		ssize_t n;

		if (io->rxpos < io->rx->n) {
			unsigned i = io->rxpos++;

			memcpy(slot, io->rx->pkt[i], io->rx->len[i]);
			memset(&io->pkts4[k], 0, sizeof(io->pkts4[k]));
			io->pkts4[k].data = slot;
			io->pkts4[k].len = io->rx->len[i];
			io->pkts4[k].headroom = DP_HEADROOM;
			k++;
			continue;
		}
		io->rxpos = 0;
		n = tun_rx_read(io->rx, fd, true);
		if (n > 1)
			t->ctr.tun_rx_gso++;
		if (n == 0) {
			t->dp.ctr[DPC_rx_errors]++;
			log_warnx_rl(&io->rl, "%s: a packet with offloads we cannot honour",
			             t->ifname);
			continue;
		}
		if (n < 0) {
			io->rx->n = 0;
			if (n != -EAGAIN && n != -EINTR) {
				t->dp.ctr[DPC_rx_errors]++;
				log_warnx_rl(&io->rl, "%s: read: %s", t->ifname, strerror((int)-n));
			}
			break;
		}
	}
	return k;
}

static void
on_tun(evutil_socket_t fd, short what, void *arg)
{
	struct tep *t = arg;
	struct tep_io *io = t->io;

	for (int round = 0; round < MAX_ROUNDS && !io->paused; round++) {
		unsigned k = 0;

		if (io->vnet)
			k = tun_fill(t, fd);
		for (; !io->vnet && k < DP_BATCH; k++) {
			uint8_t *slot = io->bufs4 + (size_t)k * SLOT;
			ssize_t n = read(fd, slot + DP_HEADROOM, DATA_MAX);

			if (n <= 0) {
				if (n < 0 && errno != EAGAIN && errno != EINTR) {
					t->dp.ctr[DPC_rx_errors]++;
					log_warnx_rl(&io->rl, "%s: read: %s", t->ifname,
					             strerror(errno));
				}
				break;
			}
			memset(&io->pkts4[k], 0, sizeof(io->pkts4[k]));
			io->pkts4[k].data = slot + DP_HEADROOM;
			io->pkts4[k].len = (uint32_t)n;
			io->pkts4[k].headroom = DP_HEADROOM;
		}
		if (k == 0)
			return;
		dp_set_time(&t->dp, clock_mono_ms());
		dp_encap(&t->dp, io->pkts4, k);
		emit(t, io->pkts4, k);
		if (k < DP_BATCH)
			return;
	}
}

static int
open_raw(struct tep *t, int proto)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = t->cfg.ipv6};
	int fd, one = 1, size = SOCKBUF;
	char a[ADDR_STRLEN];

	fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof(one)) < 0)
		goto fail;
	if (proto == IPPROTO_ICMPV6) {
		struct icmp6_filter f;

		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &f);
		if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f)) < 0)
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		log_warnx("cannot bind to %s: %s%s", addr_fmt_v6(&t->cfg.ipv6, a), strerror(e),
		          e == EADDRNOTAVAIL ? " (configure the \"ipv6\" address on an interface)"
		                             : "");
		close(fd);
		return -e;
	}
	return fd;
fail : {
	int e = errno;
	close(fd);
	return -e;
}
}

int
tep_io_start(struct tep *t)
{
	struct tep_io *io = calloc(1, sizeof(*io));
	char path[128], val[16], a[ADDR_STRLEN];
	int rc;

	if (!io)
		return -ENOMEM;
	t->io = io;
	io->raw_fd = io->icmp_fd = io->tun_fd = io->raw4_fd = -1;
	io->rl.burst = 5;
	io->bufs6 = malloc((size_t)DP_BATCH * SLOT);
	io->bufs4 = malloc((size_t)DP_BATCH * SLOT);
	if (!io->bufs6 || !io->bufs4)
		return -ENOMEM;

	/* The kernel forwards what we write into the TUN device. */
	if (sysctl_read("/proc/sys/net/ipv4/ip_forward", val, sizeof(val)) < 0 || val[0] != '1') {
		log_warnx("IPv4 forwarding is off: the decapsulated packets would go nowhere; "
		          "run `sysctl -w net.ipv4.ip_forward=1` first");
		return -EPERM;
	}
	rc = tun_open_offload(t->cfg.tun, t->ifname, true, &io->vnet);
	if (io->vnet) {
		io->rx = calloc(1, sizeof(*io->rx));
		io->gro = malloc(sizeof(*io->gro));
		if (!io->rx || !io->gro)
			return -ENOMEM;
		tun_gro_init(io->gro);
	} else {
		/* Offloads refused: the plain device, one packet a read. */
		if (rc >= 0)
			close(rc);
		rc = tun_open(t->cfg.tun, t->ifname, true);
	}
	if (rc < 0) {
		log_warnx("cannot open TUN device %s: %s", t->cfg.tun, strerror(-rc));
		return rc;
	}
	io->tun_fd = rc;
	/* The IPv4 side carries IPv4 only: no link-local, MLD or RS into it. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", t->ifname);
	if (tep_sysctl_write(path, "1") < 0)
		log_warn("%s", path);
	rc = nl_link_set(t->nl, t->ifname, true, t->cfg.mtu, TEP_TXQUEUELEN);
	if (rc < 0) {
		log_warnx("%s: cannot bring it up: %s", t->ifname, strerror(-rc));
		return rc;
	}
	/* Decapsulated sources arrive on the TUN device, whose route they
	 * own (the pools); no reverse-path filter is wanted there. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", t->ifname);
	if (tep_sysctl_write(path, "0") < 0)
		log_warn("%s", path);
	for (unsigned i = 0; i < t->cfg.npools; i++) {
		rc = nl_route4_replace(t->nl, t->ifname, t->cfg.pool_addr[i], t->cfg.pool_plen[i],
		                       0);
		if (rc < 0) {
			log_warnx("route %s/%u into %s: %s", addr_fmt_v4(t->cfg.pool_addr[i], a),
			          t->cfg.pool_plen[i], t->ifname, strerror(-rc));
			return rc;
		}
	}
	if ((rc = open_raw(t, IPPROTO_IPIP)) < 0)
		return rc;
	io->raw_fd = rc;
	if ((rc = open_raw(t, IPPROTO_ICMPV6)) < 0)
		return rc;
	io->icmp_fd = rc;
	io->raw4_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
	if (io->raw4_fd < 0)
		return -errno;
	gro_off(t);

	io->ev_raw = event_new(t->base, io->raw_fd, EV_READ | EV_PERSIST, on_raw, t);
	io->ev_icmp = event_new(t->base, io->icmp_fd, EV_READ | EV_PERSIST, on_icmp, t);
	io->ev_tun = event_new(t->base, io->tun_fd, EV_READ | EV_PERSIST, on_tun, t);
	io->ev_out = event_new(t->base, io->raw_fd, EV_WRITE, on_writable, t);
	if (!io->ev_raw || !io->ev_icmp || !io->ev_tun || !io->ev_out)
		return -ENOMEM;
	event_add(io->ev_raw, NULL);
	event_add(io->ev_icmp, NULL);
	event_add(io->ev_tun, NULL);
	log_info("data plane: %s (IPv4 MTU %u, pools routed into it), 4in6 on %s", t->ifname,
	         t->cfg.mtu, addr_fmt_v6(&t->cfg.ipv6, a));
	return 0;
}

void
tep_io_stop(struct tep *t)
{
	struct tep_io *io = t->io;

	if (!io)
		return;
	if (io->ev_raw)
		event_free(io->ev_raw);
	if (io->ev_icmp)
		event_free(io->ev_icmp);
	if (io->ev_tun)
		event_free(io->ev_tun);
	if (io->ev_out)
		event_free(io->ev_out);
	if (io->raw_fd >= 0)
		close(io->raw_fd);
	if (io->icmp_fd >= 0)
		close(io->icmp_fd);
	if (io->raw4_fd >= 0)
		close(io->raw4_fd);
	/* Closing the TUN device removes it, and its routes with it. */
	if (io->tun_fd >= 0)
		close(io->tun_fd);
	free(io->bufs6);
	free(io->bufs4);
	free(io->rx);
	free(io->gro);
	free(io);
	t->io = NULL;
}
