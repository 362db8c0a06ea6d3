/*
 * TUN devices for the IPv4 side of DSTM: the TEP writes decapsulated
 * packets into one and reads the return traffic from it (the pools are
 * routed into it); dstm-client uses one as its Dynamic Tunnel Interface
 * (seed 001 §5.2). The device is opened IFF_TUN | IFF_NO_PI, so a read or
 * write is exactly one bare IP packet, with no packet-information prefix;
 * opened with offloads (tun_open_offload), each packet is preceded by a
 * virtio_net_hdr and may be a TCP super-packet of up to 64 KB, which the
 * tun_rx_* and tun_gro_* helpers below turn into ordinary packets and back
 * (the way userspace VPNs reach multi-Gbit on TUN).
 * Addresses, routes and link state are the netlink module's business;
 * only what needs the TUN file descriptor or a plain ioctl lives here.
 */
#ifndef DSTM_TUN_H
#define DSTM_TUN_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "packet/pkt.h"

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

/* ---- Offloads (IFF_VNET_HDR, TUNSETOFFLOAD) ---- */

/*
 * As tun_open(), with IFF_VNET_HDR and the offloads TUN_F_CSUM,
 * TUN_F_TSO4, TUN_F_TSO6 and TUN_F_TSO_ECN: the kernel hands over TCP
 * super-packets and partial checksums, and takes them. *offloaded says
 * whether TUNSETOFFLOAD was accepted; the descriptor carries the vnet
 * header either way (a kernel without IFF_VNET_HDR makes this fail:
 * the caller falls back to tun_open()). DSTM_TUN_OFFLOAD=off in the
 * environment makes it fail with -EOPNOTSUPP (the plain path, to compare).
 */
int tun_open_offload(const char *name, char *ifname, bool nonblock, bool *offloaded);

/*
 * One read from an offload TUN, made into ordinary IPv4 packets: a
 * partial checksum is completed, a TCP super-packet is cut into segments
 * of its gso_size (pkt_tso4). The packets are `pkt[i]`, `len[i]`, pointing
 * into `slots` (TUN_SEGS_MAX slots of TUN_SLOT bytes) or into `buf`.
 */
#define TUN_SLOT     2048
#define TUN_SEGS_MAX 64
#define TUN_READ_MAX (PKT_VNET_HLEN + 65535)

struct tun_rx {
	uint8_t buf[TUN_READ_MAX];
	uint8_t slots[TUN_SEGS_MAX * TUN_SLOT];
	unsigned n;
	uint8_t *pkt[TUN_SEGS_MAX];
	uint16_t len[TUN_SEGS_MAX];
	uint64_t gso_packets; /* super-packets read */
	uint64_t bad_offload; /* a vnet header we could not honour (dropped) */
};

/*
 * Read one packet from `fd`. Returns the number of packets in rx (0: one
 * was dropped and counted in rx->bad_offload), or -errno (-EAGAIN: none
 * waiting). `vnet`: the descriptor carries the vnet header.
 */
ssize_t tun_rx_read(struct tun_rx *rx, int fd, bool vnet);

/*
 * The way back: packets offered one by one are coalesced (pkt_gro_add)
 * and written with a vnet header; tun_gro_flush() writes what is held.
 * Each write() counts in `writes`, its segments in `packets`, failures
 * (ENOBUFS, a full queue) in `write_errors` with the segments lost.
 */
struct tun_gro {
	unsigned mtu; /* of the device: longer TCP packets are GRO products (pkt_gso4_prepare) */
	struct pkt_gro g;
	uint8_t buf[PKT_VNET_HLEN + 65535];
	uint64_t writes, packets, coalesced, write_errors, lost;
};

void tun_gro_init(struct tun_gro *tg);
void tun_gro_add(struct tun_gro *tg, int fd, uint8_t *p, size_t len);
void tun_gro_flush(struct tun_gro *tg, int fd);

/* Write one packet behind a vnet header (NULL: an empty one, no offload asked). */
ssize_t tun_write_vnet(int fd, const void *p, size_t len, const struct pkt_vnet *v);

/*
 * Turn the kernel's GRO on or off on the interface that holds `ifname`'s
 * traffic. With a TUN taking GSO packets, GRO on the IPv6 side is welcome
 * (pkt_gso4_prepare turns its products into GSO writes); without, it
 * must be off (DESIGN §7). Returns 0 or -errno.
 */
int tun_iface_gro(const char *ifname, bool on);

#endif
