/*
 * What the I/O files of src/dots share among themselves (not installed,
 * not for other modules): the per-run context, the event log and random
 * numbers (dots_run.c), and the entry points of the link (DHCP, mDNS) and
 * resolver (c-ares) halves that dots_discover.c drives.
 */
#ifndef DSTM_DOTS_INT_H
#define DSTM_DOTS_INT_H

#include <stdarg.h>

#include "dots/dots_io.h"

struct dots_resolver;

/* One (interface, family) pass. */
struct dots_ctx {
	const struct dots_opts *o;
	struct dots_run *r;
	struct dots_resolver *res;
	const char *ifname; /* "" when the pass is not tied to a link */
	unsigned ifindex;
	int family;
	enum dots_method method; /* the method running, for events */
};

void dots_event(struct dots_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Interfaces: name, index, hardware address and first IPv4 address. */
struct dots_if {
	char name[IF_NAMESIZE];
	unsigned index;
	uint8_t mac[6];
	bool has_v4;
	struct in_addr v4;
};

int dots_if_list(const struct dots_opts *o, struct dots_if *out, size_t cap, size_t *n);

/* DHCP on one link; 0 with info filled, or -ETIMEDOUT / -errno. */
int dots_dhcp6_run(struct dots_ctx *x, const struct dots_if *ifp, struct dots_dhcp_info *info);
int dots_dhcp4_run(struct dots_ctx *x, const struct dots_if *ifp, struct dots_dhcp_info *info);

/* mDNS on one link: appends servers for every wanted transport. */
int dots_mdns_run(struct dots_ctx *x);

/* Resolver (c-ares). */
int dots_res_new(const struct dots_opts *o, struct dots_resolver **out);
void dots_res_free(struct dots_resolver *res);
/* A/AAAA of `name` for x->family; appends one server per address and transport. */
int dots_res_name(struct dots_ctx *x, const char *name, const char *ri, const char *via,
                  unsigned transports, uint16_t port);
int dots_res_snaptr(struct dots_ctx *x, const char *domain);
int dots_res_dnssd(struct dots_ctx *x, const char *domain);

/* dots_run.c: getrandom(), for transaction ids and SRV weights. */
uint32_t dots_rand(void *ctx);

#endif
