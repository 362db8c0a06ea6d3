/*
 * dstm-tep, the DSTM border router (seed 001 §7, DESIGN §1-§2): the
 * program's shared state. The forwarding core (src/dataplane) does the
 * packet work; this program is its shell: configuration, the raw IPv6
 * socket and the TUN device (io.c), the TSP server that dstmd drives and
 * the control socket (control.c).
 */
#ifndef DSTM_TEP_H
#define DSTM_TEP_H

#include <event2/event.h>
#include <event2/listener.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cfg.h"
#include "dataplane/dp.h"
#include "tsp/tsp.h"

#define TEP_MAX_SERVERS 16
#define TEP_TXQUEUELEN  10000 /* DESIGN §7: a TUN queue longer than the default 500 */

enum tep_mode { TEP_SERVER, TEP_LEARN };
/* "dataplane": XDP in front of the TUN path, the TUN path alone, or XDP where it attaches. */
enum tep_dataplane { TEP_DP_AUTO, TEP_DP_XDP, TEP_DP_TUN, TEP_DP_TC };
/* Seed 000: the intranet and the VPN scenario (the latter forbids learn mode). */
enum tep_scenario { TEP_INTRANET, TEP_VPN };

struct tep_server_cfg {
	struct sockaddr_storage addr; /* the peer address (port unused) */
	char address[64];
	char user[128];
	char secret[256];
};

struct tep_config {
	struct in6_addr ipv6;
	uint32_t ipv4;
	enum tep_scenario scenario;
	enum tep_mode mode;
	unsigned npools;
	uint32_t pool_addr[DP_MAX_POOLS];
	unsigned pool_plen[DP_MAX_POOLS];
	char tun[IFNAMSIZ];
	unsigned mtu; /* of the TUN device: the inner IPv4 MTU (IPv6 path MTU - 40) */
	char control[256];
	char listen[128];
	struct sockaddr_storage listen_sa;
	socklen_t listen_salen;
	unsigned nservers;
	struct tep_server_cfg servers[TEP_MAX_SERVERS];
	unsigned learn_idle;
	unsigned icmp_rate;
	uint32_t keepalive; /* clients' echo requests to it are answered (default ipv4) */
	bool has_metrics;   /* "metrics": the Prometheus endpoint */
	char metrics[128];
	struct sockaddr_storage metrics_sa;
	socklen_t metrics_salen;
	int log_level; /* 0 info, 1 debug, 2 trace */
	enum tep_dataplane dataplane;
};

/* Fill `out` from a loaded document; returns the number of errors recorded in c. */
int tep_config_parse(struct cfg *c, struct tep_config *out);
/* The configuration, normalized, as JSON text (malloc'd). */
char *tep_config_dump(const struct tep_config *tc);

/* Counters of the shell and of the TSP side (the core has its own). */
#define TEP_COUNTERS(X)       \
	X(tsp_refused_peer)   \
	X(tsp_refused_user)   \
	X(tsp_create_ok)      \
	X(tsp_create_refused) \
	X(tsp_delete_ok)      \
	X(tsp_delete_unknown) \
	X(tsp_bad_command)    \
	X(rx_truncated)       \
	X(tun_write_errors)   \
	X(xdp_decap_pkts)     \
	X(xdp_encap_pkts)     \
	X(xdp_pass_v6)        \
	X(xdp_pass_v4)        \
	X(xdp_no_route)       \
	X(tun_rx_gso)         \
	X(tun_tx_coalesced)

struct tep_counters {
#define TEP_X(n) uint64_t n;
	TEP_COUNTERS(TEP_X)
#undef TEP_X
};

struct tep_io;
struct metrics;
struct tep_xdp;

struct tep {
	struct tep_config cfg;
	struct event_base *base;
	struct bt *bt;
	struct dp dp;
	struct tep_counters ctr;
	struct tep_io *io;
	struct tep_xdp *xdp; /* NULL: the TUN path alone */
	struct nl *nl;
	char ifname[IFNAMSIZ];
	struct ctl_server *ctl;
	struct evconnlistener *listener;
	struct tsp_server *tsp[TEP_MAX_SERVERS];
	unsigned sessions;
	struct event *ev_expire, *ev_sigterm, *ev_sigint, *ev_sighup, *ev_watchdog;
	const char *conffile; /* re-read on SIGHUP */
	int verbose_cli;
	uint64_t reloads, reload_failures;
	struct metrics *metrics;
};

/* io.c: open the sockets and the TUN device, route the pools, start reading. */
int tep_io_start(struct tep *t);
void tep_io_stop(struct tep *t);
/* Write VAL to the /proc/sys file PATH; 0 or -errno (xdp.c writes its sysctls with it too). */
int tep_sysctl_write(const char *path, const char *val);

/*
 * xdp.c: the kernel data plane (XDP, or tc) in front of io.c's path
 * ("dataplane" key): attach, keep the BPF binding maps in step with t->bt,
 * fold the programs' counters into t->dp.ctr and t->ctr. Every function
 * is a no-op on the TUN data plane.
 */
int tep_xdp_start(struct tep *t);
void tep_xdp_stop(struct tep *t);
/* A binding was added or changed (new client, path MTU) in t->bt. */
void tep_xdp_bind(struct tep *t, const struct bt_binding *b);
/* bt_del(t->bt, v4, lo, all) succeeded. */
void tep_xdp_unbind(struct tep *t, uint32_t v4, uint16_t lo, bool all);
/* Add the programs' counters since the last call into the TEP's. */
void tep_xdp_fold(struct tep *t);
/* b's counters including what XDP forwarded for it. */
void tep_xdp_binding_ctr(const struct tep *t, const struct bt_binding *b, uint64_t out[4]);
const char *tep_dataplane_name(const struct tep *t);

/* control.c: the TSP listener (server mode) and the control socket. */
int tep_tsp_start(struct tep *t);
/* A reloaded "servers" list (new users, secrets, servers); 0 or -ENOMEM. */
int tep_tsp_reload(struct tep *t, const struct tep_config *nc);
/* The "counters" object of the control socket. */
json_t *tep_counters_json(const struct tep *t);
void tep_tsp_stop(struct tep *t);
int tep_ctl_start(struct tep *t);
void tep_ctl_stop(struct tep *t);

/* stats.c: the Prometheus page, when "metrics" is configured. */
int tep_stats_start(struct tep *t);
void tep_stats_stop(struct tep *t);

#endif
