/*
 * Netlink helpers (libmnl) for the programs that configure interfaces:
 * dstm-client sets up its dynamic tunnel interface (address, routes,
 * MTU) and dstm-tep routes its pools into its TUN device. Each call is
 * one synchronous request on an rtnetlink socket followed by its ack or
 * its dump; every reply attribute is validated by libmnl before use.
 * IPv4 addresses are uint32_t in host byte order, as everywhere in the
 * suite (common/addr.h). Functions return 0 or -errno.
 */
#ifndef DSTM_NL_H
#define DSTM_NL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct nl;

/* An rtnetlink socket; NULL with errno set on failure. */
struct nl *nl_open(void);
void nl_close(struct nl *nl);

/* Index of the interface `name`, or -ENODEV. */
int nl_ifindex(const char *name);

/*
 * Bring `ifname` up or down and set its MTU and transmit queue length;
 * 0 for mtu or txqueuelen leaves that value alone.
 */
int nl_link_set(struct nl *nl, const char *ifname, bool up, unsigned mtu, unsigned txqueuelen);
/* The MTU of `ifname`. */
int nl_link_mtu(struct nl *nl, const char *ifname, unsigned *mtu);

/*
 * IPv4 address v4/plen on ifname. Adding an address that is already
 * there and deleting one that is not both succeed (idempotent).
 */
int nl_addr4_add(struct nl *nl, const char *ifname, uint32_t v4, unsigned plen);
int nl_addr4_del(struct nl *nl, const char *ifname, uint32_t v4, unsigned plen);
/* Whether ifname holds v4 (any prefix length): 1, 0 or -errno. */
int nl_addr4_has(struct nl *nl, const char *ifname, uint32_t v4);

/*
 * IPv4 route dst/plen through ifname (a device route, scope link),
 * main table. `src_hint` (0 for none) is the preferred source address
 * (RTA_PREFSRC); it must be an address of the host when given. Adding
 * an existing route and deleting a missing one succeed.
 */
int nl_route4_add(struct nl *nl, const char *ifname, uint32_t dst, unsigned plen,
                  uint32_t src_hint);
int nl_route4_del(struct nl *nl, const char *ifname, uint32_t dst, unsigned plen);
/* Add or change in place (a new source hint) without a moment with no route. */
int nl_route4_replace(struct nl *nl, const char *ifname, uint32_t dst, unsigned plen,
                      uint32_t src_hint);

/*
 * The first global-scope IPv6 address of ifname, or of any interface
 * when ifname is NULL (tentative and deprecated addresses are skipped).
 * -EADDRNOTAVAIL when there is none.
 */
int nl_addr6_global(struct nl *nl, const char *ifname, struct in6_addr *out);
/* The link-local (fe80::/10) address of ifname. */
int nl_addr6_linklocal(struct nl *nl, const char *ifname, struct in6_addr *out);
/* Index of the interface that holds the IPv6 address `a`, or -EADDRNOTAVAIL. */
int nl_addr6_ifindex(struct nl *nl, const struct in6_addr *a);
/* Add v6/plen to interface `ifindex`, without duplicate address detection (usable at once). */
int nl_addr6_add(struct nl *nl, int ifindex, const struct in6_addr *v6, unsigned plen);

/*
 * The kernel's route toward an IPv6 destination (RTM_GETROUTE): the
 * source address it would pick (`src`, may be NULL), the outgoing
 * interface (`oif`, may be NULL) and the path MTU (`mtu`, may be NULL):
 * the route's cached PMTU when the kernel learned one from a Packet Too
 * Big, else the route's MTU metric, else the outgoing link's MTU.
 */
int nl_route6_get(struct nl *nl, const struct in6_addr *dst, struct in6_addr *src, int *oif,
                  unsigned *mtu);

#endif
