/*
 * TUN devices: see tun.h. /dev/net/tun and TUNSETIFF; the interface ioctls
 * go through a throw-away datagram socket, which is all SIOCSIF* needs.
 * The offload helpers use the packet library's segmentation and
 * coalescing (src/packet) so that the TEP and the client share them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/tun.h"

#define TUN_BUSY_WAIT_MS 3000
#define TUN_BUSY_STEP_MS 50

static int
tun_open_flags(const char *name, char *ifname, bool nonblock, short extra)
{
	struct ifreq ifr;
	int fd, flags, rc;

	if (name && strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	flags = O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0);
	fd = open("/dev/net/tun", flags);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | extra);
	if (name)
		memcpy(ifr.ifr_name, name, strlen(name));
	/*
	 * A predecessor killed a moment ago can still hold the named device:
	 * its files are closed by its last thread, which may outlive the main
	 * one. A restart waits for it (up to TUN_BUSY_WAIT_MS) instead of
	 * failing; any other error, or a device still busy then, is final.
	 */
	for (int waited = 0; ioctl(fd, TUNSETIFF, &ifr) < 0; waited += TUN_BUSY_STEP_MS) {
		rc = -errno;
		if (rc != -EBUSY || !name || waited >= TUN_BUSY_WAIT_MS) {
			close(fd);
			return rc;
		}
		nanosleep(&(struct timespec){.tv_nsec = TUN_BUSY_STEP_MS * 1000000L}, NULL);
	}
	if (ifname) {
		memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
		ifname[IFNAMSIZ - 1] = '\0';
	}
	return fd;
}

int
tun_open(const char *name, char *ifname, bool nonblock)
{
	return tun_open_flags(name, ifname, nonblock, 0);
}

int
tun_open_offload(const char *name, char *ifname, bool nonblock, bool *offloaded)
{
	unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	const char *env = getenv("DSTM_TUN_OFFLOAD");
	int fd;

	*offloaded = false;
	/* The operator's (and the benchmark's) way to compare with the plain path. */
	if (env && strcmp(env, "off") == 0)
		return -EOPNOTSUPP;
	fd = tun_open_flags(name, ifname, nonblock, IFF_VNET_HDR);
	if (fd < 0)
		return fd;
	/* Without TUNSETOFFLOAD the kernel sends no super-packets: the
	 * vnet header is then always empty, and still must be read. */
	if (ioctl(fd, TUNSETOFFLOAD, off) == 0)
		*offloaded = true;
	return fd;
}

ssize_t
tun_rx_read(struct tun_rx *rx, int fd, bool vnet)
{
	struct pkt_vnet v;
	uint8_t *p;
	ssize_t n;
	size_t len;

	rx->n = 0;
	n = read(fd, rx->buf, sizeof(rx->buf));
	if (n < 0)
		return -errno;
	if (!vnet) {
		rx->pkt[0] = rx->buf;
		rx->len[0] = (uint16_t)(n > 65535 ? 65535 : n);
		return rx->n = 1;
	}
	if (!pkt_vnet_parse(rx->buf, (size_t)n, &v)) {
		rx->bad_offload++;
		return 0;
	}
	p = rx->buf + PKT_VNET_HLEN;
	len = (size_t)n - PKT_VNET_HLEN;
	switch (v.gso_type & (uint8_t)~PKT_VNET_GSO_ECN) {
	case PKT_VNET_GSO_NONE:
		if (!pkt_csum_complete(p, len, &v)) {
			rx->bad_offload++;
			return 0;
		}
		rx->pkt[0] = p;
		rx->len[0] = (uint16_t)len;
		return rx->n = 1;
	case PKT_VNET_GSO_TCPV4:
		/* Every segment gets a full checksum of its own. */
		rx->n = pkt_tso4(p, len, v.gso_size, rx->slots, TUN_SLOT, TUN_SEGS_MAX, rx->len);
		if (rx->n == 0) {
			rx->bad_offload++;
			return 0;
		}
		for (unsigned i = 0; i < rx->n; i++)
			rx->pkt[i] = rx->slots + (size_t)i * TUN_SLOT;
		rx->gso_packets++;
		return rx->n;
	default:
		/* TSO6 on an IPv4 device, or UDP: nothing we send. */
		rx->bad_offload++;
		return 0;
	}
}

void
tun_gro_init(struct tun_gro *tg)
{
	memset(tg, 0, offsetof(struct tun_gro, buf));
	tg->writes = tg->packets = tg->coalesced = tg->write_errors = tg->lost = 0;
	tg->g.buf = tg->buf;
	tg->g.max_len = sizeof(tg->buf) - PKT_VNET_HLEN;
}

void
tun_gro_flush(struct tun_gro *tg, int fd)
{
	unsigned segs = tg->g.segs;
	size_t n = pkt_gro_finish(&tg->g);

	if (n == 0)
		return;
	if (write(fd, tg->buf, n) != (ssize_t)n) {
		tg->write_errors++;
		tg->lost += segs;
		return;
	}
	tg->writes++;
	tg->packets += segs;
	if (segs > 1)
		tg->coalesced++;
}

void
tun_gro_add(struct tun_gro *tg, int fd, uint8_t *p, size_t len)
{
	struct pkt_vnet v;

	if (tg->mtu && len > tg->mtu) {
		/* Merged by the kernel already: one write of its own. */
		tun_gro_flush(tg, fd);
		if (tun_write_vnet(fd, p, len, pkt_gso4_prepare(p, len, tg->mtu, &v) ? &v : NULL) !=
		    (ssize_t)len) {
			tg->write_errors++;
			tg->lost++;
			return;
		}
		tg->writes++;
		tg->packets++;
		tg->coalesced++;
		return;
	}
	if (pkt_gro_add(&tg->g, p, len))
		return;
	tun_gro_flush(tg, fd);
	if (!pkt_gro_add(&tg->g, p, len)) {
		/* Longer than a TUN write can be: nothing we can deliver. */
		tg->write_errors++;
		tg->lost++;
	}
}

ssize_t
tun_write_vnet(int fd, const void *p, size_t len, const struct pkt_vnet *v)
{
	uint8_t h[PKT_VNET_HLEN] = {0};
	struct iovec iov[2] = {{h, sizeof(h)}, {(void *)p, len}};
	ssize_t n;

	if (v)
		pkt_vnet_write(h, v);
	n = writev(fd, iov, 2);
	return n < 0 ? n : n - (ssize_t)sizeof(h);
}

static int
if_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	int s, rc = 0;

	if (strlen(ifname) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	memcpy(ifr->ifr_name, ifname, strlen(ifname) + 1);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (ioctl(s, req, ifr) < 0)
		rc = -errno;
	close(s);
	return rc;
}

int
tun_set_txqueuelen(const char *ifname, unsigned qlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_qlen = (int)qlen;
	return if_ioctl(ifname, SIOCSIFTXQLEN, &ifr);
}

int
tun_set_mtu(const char *ifname, unsigned mtu)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	return if_ioctl(ifname, SIOCSIFMTU, &ifr);
}

int
tun_iface_gro(const char *ifname, bool on)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = on};
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_data = (void *)&ev;
	return if_ioctl(ifname, SIOCETHTOOL, &ifr);
}
