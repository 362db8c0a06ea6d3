/*
 * TUN devices: see tun.h. /dev/net/tun and TUNSETIFF; the interface ioctls
 * go through a throw-away datagram socket, which is all SIOCSIF* needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/tun.h"

int
tun_open(const char *name, char *ifname, bool nonblock)
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
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (name)
		memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (ifname) {
		memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
		ifname[IFNAMSIZ - 1] = '\0';
	}
	return fd;
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
