/*
 * dstmd's configuration: the JSON file of doc/internals.md, validated
 * completely at load (every error with file:line), and the structures
 * the rest of the daemon reads. Strings point into the loaded document,
 * which the config owns.
 */
#ifndef DSTMD_CONFIG_H
#define DSTMD_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "dhcp6/d6.h"
#include "grant/grant.h"
#include "pool/pool.h"
#include "tsp/tsp.h"

struct dstmd_tep {
	const char *name;
	struct in6_addr v6;
	uint32_t v4;
	uint32_t keepalive_v4; /* the keepalive destination in replies (default v4) */
	struct grant_prefix *clients;
	size_t nclients;
	const char *pool; /* NULL: any pool */
	bool has_control; /* false: the TEP learns its bindings */
	struct sockaddr_storage ctl_addr;
	socklen_t ctl_len;
	const char *ctl_mechanism, *ctl_user, *ctl_secret;
	const char *backup;      /* failover.c: the TEP taking over; NULL: none */
	unsigned failover_after; /* seconds the control link stays down before it does */
};

struct dstmd_pool {
	struct pool_config pc;
	struct pool_range *ranges, *excludes;
};

struct dstmd_listen {
	struct sockaddr_storage addr;
	socklen_t len;
	struct ssl_ctx_st *tls; /* TSP over TLS; NULL: plain TCP */
	bool verify_client;     /* client certificates are checked against client_ca */
};

enum dstmd_scenario { DSTMD_INTRANET, DSTMD_VPN };

/* The "dhcpv6" section: dstmd as a DHCPv6 server for DSTM (src/dstmd/dhcp.c). */
struct dstmd_dhcp6_key {
	const char *realm;
	uint32_t key_id;
	const char *secret;
};

struct dstmd_dhcp6 {
	bool enable;
	const char **interfaces; /* join ff02::1:2 on these */
	size_t ninterfaces;
	struct in6_addr address; /* bound address, :: by default */
	uint16_t port;           /* 547 */
	int form;                /* 0 both, 1 ia_dstm, 2 global_v4 */
	struct d6_codes codes;
	uint32_t preferred, valid, t1, t2; /* 0: derived (dstmd(8)) */
	bool rapid_commit, unicast, reconfigure, require_auth;
	const char *duid_file; /* NULL: next to the database */
	struct dstmd_dhcp6_key *keys;
	size_t nkeys;
	const char *dots_ri, *access_domain;
	struct in6_addr *dots_address;
	size_t ndots_address;
	unsigned per_duid, per_64;
	bool per_64_set;         /* else the TSP quota (limits.per_64) applies */
	unsigned clients;        /* DUIDs remembered at most (limits.clients) */
	uint32_t offer_hold;     /* seconds an Advertise holds its address */
	struct in6_addr *relays; /* Relay-forward accepted from these only (none by default) */
	size_t nrelays;
};

/* What an authenticated TSP user may name as its tunnel end point (auth.endpoints). */
struct dstmd_endpoints {
	const char *user;
	struct grant_prefix *prefixes;
	size_t nprefixes;
};

/*
 * The "lw4o6" section (src/dstmd/lw4o6.c): lwB4s (RFC 7596) asking for
 * OPTION_S46_CONT_LW get an IPv6 address from ipv6_pool and an IPv4
 * address + port set from `pool`.
 */
/* The most lw4o6 leases per sender the configuration may allow (lw4o6.c's table). */
#define LW4O6_PER_SOURCE_MAX 32

struct dstmd_lw4o6 {
	bool enable;
	struct in6_addr prefix; /* ipv6_pool */
	unsigned plen;
	const char *pool;    /* a PSID pool or a pool of whole addresses */
	unsigned per_source; /* leases one sender on the link may hold; 0: no limit */
	unsigned rate;       /* new leases per sender and second (bursts of twice); 0: none */
};

struct dstmd_config {
	struct cfg *doc;
	enum dstmd_scenario scenario;
	const char *database;
	const char *store_pg; /* libpq conninfo: the lease store on PostgreSQL; NULL: database */
	const char *user;     /* run as this user after start-up; "": stay root */
	bool seccomp;         /* confine system calls after start-up */
	const char *control;
	uint32_t lifetime, quarantine;
	uint32_t keepalive;    /* seconds between a client's keepalives; 0: no <keepalive> */
	uint32_t history_days; /* lease history kept; 0: for ever */
	struct dstmd_listen *listens;
	size_t nlistens;
	char mechanisms[128]; /* space-separated, in offer order */
	bool anonymous;
	const char *secrets_path;
	struct cfg *secrets; /* the loaded secrets file, or NULL */
	const char *realm;
	bool plain_without_tls;
	struct in6_addr *tsp_relays; /* TSP peers that may name the client (auth.relays) */
	size_t ntsp_relays;
	struct dstmd_endpoints *endpoints; /* auth.endpoints, per user */
	size_t nendpoints;
	struct dstmd_pool *pools;
	size_t npools;
	struct dstmd_tep *teps;
	size_t nteps;
	struct grant_tep *tep_views; /* the TEPs as src/grant chooses among them */
	const char **redirect;
	size_t nredirect;
	struct tsp_limits limits;
	unsigned max_connections, handshake_timeout, idle_timeout;
	unsigned unbound_timeout; /* seconds a TSP session may stay without a lease; 0: none */
	unsigned per_64;          /* active TSP leases per client /64; 0: an eighth of the pools */
	unsigned conns_per_64;    /* open TSP sessions per peer /64 (or IPv4 address) */
	unsigned alloc_rate_64;   /* new TSP leases per client /64 and second; 0: no limit */
	struct dstmd_dhcp6 dhcp6;
	const char *metrics; /* Prometheus endpoint as written, or NULL: none */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_len;
	int log_level; /* 0 info, 1 debug, 2 trace: the least -v count in force */
	struct dstmd_lw4o6 lw4o6;
};

/* NULL after printing every error (file:line: pointer: what) to `errf`. */
struct dstmd_config *dstmd_config_load(const char *path, FILE *errf);
void dstmd_config_free(struct dstmd_config *c);
/* The password of `user`, or NULL. */
const char *dstmd_config_secret(const struct dstmd_config *c, const char *user);
/* The TEP serving a client at `v6` (grant_tep_choose: src/grant's rule), or NULL. */
const struct dstmd_tep *dstmd_config_tep_for(const struct dstmd_config *c,
                                             const struct in6_addr *v6);
/* The prefixes `user` may end its tunnel in besides its source address (none: NULL, 0). */
const struct grant_prefix *dstmd_config_endpoints(const struct dstmd_config *c, const char *user,
                                                  size_t *n);
/* lw4o6.c: read the "lw4o6" section into c->lw4o6 (errors recorded in c->doc). */
void lw4o6_config_load(struct dstmd_config *c);
void dstmd_config_dump(const struct dstmd_config *c, FILE *f);

#endif
