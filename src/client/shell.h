/*
 * The I/O parts of dstm-client (client.h lists them all): the tunnel
 * device and its data path (tunnel.c), the TSP access module
 * (access_tsp.c) and the DHCPv6 access module (access_dhcp6.c). Each has
 * one state struct, initialised by main (dstm-client.c) with pointers to
 * the parts it works with; none reaches another through a global.
 */
#ifndef DSTM_CLIENT_SHELL_H
#define DSTM_CLIENT_SHELL_H

#include <event2/event.h>
#include <net/if.h>
#include <openssl/ssl.h>

#include "client/client.h"
#include "client/lw4o6.h"
#include "client/tc_fast.h"
#include "common/log.h"
#include "dataplane/tun.h"
#include "dhcp6/d6.h"
#include "netlink/nl.h"
#include "tsp/tsp.h"

#define CLIENT_PKT_MAX  65536
#define CLIENT_BURST    64    /* packets per readiness event, each way */
#define CLIENT_RX_SLOT  65536 /* a packet from the TEP, merged by GRO perhaps */
#define RELEASE_WAIT_MS 3000  /* for the server's answer to our release */

/* ---- The Dynamic Tunnel Interface (tunnel.c) ---- */

#define TUNNEL_COUNTERS(X)       \
	X(tun_rx_packets)        \
	X(tun_rx_bytes)          \
	X(tunnel_tx_packets)     \
	X(tunnel_tx_bytes)       \
	X(tunnel_rx_packets)     \
	X(tunnel_rx_bytes)       \
	X(tun_tx_packets)        \
	X(tun_tx_bytes)          \
	X(drop_not_ipv4)         \
	X(drop_malformed)        \
	X(drop_bad_source)       \
	X(drop_too_big)          \
	X(drop_send_error)       \
	X(drop_not_tep)          \
	X(drop_not_bound)        \
	X(drop_bad_destination)  \
	X(drop_tun_write)        \
	X(icmp_frag_needed_sent) \
	X(mtu_updates)           \
	X(backpressure_waits)    \
	X(tun_rx_gso)            \
	X(tun_tx_coalesced)      \
	X(tunnel_tx_batches)     \
	X(drop_offload)

struct tunnel_counters {
#define TUN_X(n) uint64_t n;
	TUNNEL_COUNTERS(TUN_X)
#undef TUN_X
};

struct client_tunnel {
	const struct client_config *cfg;
	struct event_base *base;
	struct nl *nl;
	struct client_lease *lease; /* read: state, address, TEP */
	struct client_ondemand *od;
	void (*want_lease)(void *arg); /* on-demand: the first packet asks */
	void *arg;
	struct in6_addr v6; /* the source of the tunnel */
	int tun_fd, raw_fd;
	char ifname[IFNAMSIZ];
	unsigned path_mtu; /* IPv6 path MTU toward the TEP (or the server) */
	struct event *ev_tun, *ev_raw, *ev_raw_out, *ev_early, *ev_mtu;
	uint8_t pending[CLIENT_PKT_MAX]; /* one packet waiting for the socket */
	size_t pending_len;

	/* Offloads (tun.h): TCP super-packets in, coalesced segments out. */
	bool vnet, offloaded;
	struct tun_rx *rx;
	struct tun_gro *gro;
	/* A batch toward the TEP (sendmmsg), packets pointing into rx. */
	struct {
		unsigned n, done;
		struct sockaddr_in6 to;
		struct mmsghdr m[TUN_SEGS_MAX];
		struct iovec iov[TUN_SEGS_MAX];
	} tx;
	/* A batch from the TEP (recvmmsg). */
	struct {
		uint8_t *buf; /* CLIENT_BURST slots of CLIENT_RX_SLOT bytes */
		struct mmsghdr m[CLIENT_BURST];
		struct iovec iov[CLIENT_BURST];
		struct sockaddr_in6 from[CLIENT_BURST];
	} rxb;
	struct tunnel_counters n;
	struct log_rl rl;
	struct lw_nat *nat; /* an lwB4's port translation (lw4o6.h), or NULL */

	/* The kernel fast path (tc_fast.c), NULL when off; `fb` is what its
	 * map holds. `early_seen`: the early translations already known, so
	 * that a new early flow turns the inbound fast path off at once.
	 * `csum_ifindex`: the veth whose transmit checksumming this run
	 * turned off, to turn on again at exit (0: none). */
	struct tc_fast *fast;
	struct tc_fast_binding fb;
	uint64_t early_seen;
	unsigned csum_ifindex;
};

/* Open the TUN device (on-demand: placeholder + routes) and the raw socket. */
int tunnel_open(struct client_tunnel *t);
/* Start reading both sides and the MTU and early-flow timers. */
void tunnel_start(struct client_tunnel *t);
void tunnel_close(struct client_tunnel *t);
/* The lease's address and routes onto the DTI, and off again. */
int tunnel_install(struct client_tunnel *t);
void tunnel_uninstall(struct client_tunnel *t);
/* Held packets may go (bound); or the lease ended (forget the pending one). */
void tunnel_flush(struct client_tunnel *t);
void tunnel_reset(struct client_tunnel *t);
/* Inner MTU = IPv6 path MTU - 40 toward `toward`. */
void tunnel_update_mtu(struct client_tunnel *t, const struct in6_addr *toward);
/* DESIGN §7: GRO on the interface that holds our IPv6 address: on with offloads, else off. */
void tunnel_gro_setup(struct client_tunnel *t);
/*
 * The kernel fast path as "fast_path" asks (auto: if it loads, else the
 * userspace path, logged); 0, or -errno when "bpf" was asked and it failed.
 */
int tunnel_fast_open(struct client_tunnel *t);
void tunnel_fast_close(struct client_tunnel *t);
/* The lease is bound (granted or renewed): its binding into the fast path. */
void tunnel_fast_bind(struct client_tunnel *t);

/* ---- The kernel fast path's loader (tc_fast.c) ---- */

struct tc_fast;

/* Load tc_fast.bpf.c and attach it (DTI egress, IPv6 interface ingress). */
int tc_fast_open(struct tc_fast **out, unsigned dti_ifindex, unsigned out_ifindex);
/* Detach (and remove the clsact hooks this run made). */
void tc_fast_close(struct tc_fast *f);
/* Remove the filter a killed run left on `out_ifindex`'s ingress. */
void tc_fast_clear_stale(unsigned out_ifindex);
/* The binding the programs act on (active 0: none). */
int tc_fast_set(struct tc_fast *f, const struct tc_fast_binding *b);
/*
 * On a veth, transmit checksumming off (see tc_fast.c): 1 when it was
 * turned off, 0 when nothing needed doing, -errno.
 */
int tc_fast_veth_csum(const char *ifname);
/* Transmit checksumming on again, as tc_fast_veth_csum found it; -errno. */
int tc_fast_veth_csum_restore(const char *ifname);
/* The counters summed over the CPUs (zeros when `f` is NULL). */
void tc_fast_read(struct tc_fast *f, struct tc_fast_counters *sum);

/* ---- The TSP access module (access_tsp.c) ---- */

#define TSP_ACCESS_COUNTERS(X) \
	X(sessions)            \
	X(session_failures)    \
	X(auth_failures)       \
	X(redirects)           \
	X(unknown_commands)    \
	X(tls_refused)

struct tsp_access_counters {
#define TA_X(n) uint64_t n;
	TSP_ACCESS_COUNTERS(TA_X)
#undef TA_X
};

struct client_tsp {
	const struct client_config *cfg;
	struct event_base *base;
	struct nl *nl;
	struct client_lease *lease;
	struct event *ev_release; /* main's: the release is over */
	struct in6_addr v6, v6ll;
	bool has_v6ll;

	struct tsp_client *tsp;
	bool ready, create_pending, releasing;
	unsigned nservers, server_idx, redirects_in_row, attempt;
	struct sockaddr_storage servers[CLIENT_MAX_SERVERS];
	socklen_t serverlens[CLIENT_MAX_SERVERS];
	char server_names[CLIENT_MAX_SERVERS][TSP_DN_MAX];
	struct event *ev_retry;
	unsigned held; /* packets waiting for the lease (main keeps it current) */

	/* TSP over TLS: the context, and why the server's certificate was refused */
	SSL_CTX *tls;
	char tls_error[160];
	struct tsp_access_counters n;
	uint64_t releases; /* shown as one counter with the DHCPv6 module's */
};

int tsp_access_init(struct client_tsp *a);
void tsp_access_free(struct client_tsp *a);
/* What the lease machine asks for: a create (a renewal carries the address). */
void tsp_access_request(struct client_tsp *a, enum lease_ask ask);
/* SIGTERM: delete our address (the profile's release); ev_release fires when done. */
void tsp_access_release(struct client_tsp *a);
void tsp_access_end(struct client_tsp *a, const char *why);
/* The link-local address of the interface of our global one (seed 001 C §3.2). */
void tsp_access_find_linklocal(struct client_tsp *a);
const char *tsp_access_session(const struct client_tsp *a);

/* ---- The DHCPv6 access module (access_dhcp6.c) ---- */

#define D6_ACCESS_COUNTERS(X) \
	X(dhcp6_tx)           \
	X(dhcp6_rx)           \
	X(dhcp6_tx_errors)    \
	X(declines)

struct d6_access_counters {
#define D6A_X(n) uint64_t n;
	D6_ACCESS_COUNTERS(D6A_X)
#undef D6A_X
};

struct client_dhcp6_access {
	const struct client_config *cfg;
	struct event_base *base;
	struct nl *nl;
	struct client_lease *lease;
	struct event *ev_release;
	struct in6_addr v6;

	struct d6_client *d6;
	struct d6_key key;
	uint8_t duid[D6_DUID_MAX + 2];
	size_t duid_len;
	int fd;
	unsigned ifindex;
	struct event *ev_rx, *ev_timer;
	struct d6_access_counters n;
	struct log_rl rl;
	uint64_t releases;
};

int d6_access_open(struct client_dhcp6_access *a);
void d6_access_close(struct client_dhcp6_access *a);
void d6_access_request(struct client_dhcp6_access *a);
void d6_access_release(struct client_dhcp6_access *a);
const char *d6_access_session(const struct client_dhcp6_access *a);

#endif
