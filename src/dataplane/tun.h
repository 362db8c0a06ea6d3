/*
 * TUN devices for the IPv4 side of DSTM: the TEP writes decapsulated
 * packets into one and reads the return traffic from it (the pools are
 * routed into it); dstm-client uses one as its Dynamic Tunnel Interface
 * (seed 001 §5.2). The device is opened IFF_TUN | IFF_NO_PI, so a read or
 * write is exactly one bare IP packet, with no packet-information prefix.
 * Addresses, routes and link state are the netlink module's business;
 * only what needs the TUN file descriptor or a plain ioctl lives here.
 */
#ifndef DSTM_TUN_H
#define DSTM_TUN_H

#include <net/if.h>
#include <stdbool.h>

/*
 * Open (or create) the TUN device `name` ("" or NULL lets the kernel pick
 * "tunN"). The device's actual name is copied into `ifname` (IFNAMSIZ
 * bytes) when it is not NULL. The descriptor is close-on-exec and, when
 * `nonblock`, non-blocking. Returns the descriptor or -errno.
 */
int tun_open(const char *name, char *ifname, bool nonblock);

/*
 * Set the transmit queue length of an interface (SIOCSIFTXQLEN). A TUN
 * device's queue is where packets wait for the reader; DESIGN §7 asks for
 * a longer one than the default 500. Returns 0 or -errno.
 */
int tun_set_txqueuelen(const char *ifname, unsigned qlen);

/* Set the MTU of an interface (SIOCSIFMTU). Returns 0 or -errno. */
int tun_set_mtu(const char *ifname, unsigned mtu);

#endif
