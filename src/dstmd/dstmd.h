/*
 * The state of one dstmd process, shared by its parts:
 *   dstmd.c    start-up, the event loop, group commit, expiry, revocation
 *   access.c   client access over TSP (seed 001 appendix C)
 *   tsp_udp.c  the same over UDP (RFC 5572 §3)
 *   control.c  the control socket (doc/internals.md)
 *   tepctl.c   dstmd as a TSP client of its TEPs
 *   config.c   dstmd.json
 *   identity.c the network's own addresses, the check before any lease (src/grant)
 *
 * The rule that ties them (DESIGN §4): what one loop turn decided is
 * written in one transaction, and nothing that depends on it (a reply, a
 * TEP command, a delete) leaves before that transaction is committed.
 * Such actions wait on the `after_commit` list; a low-priority event hands
 * the turn's writes to the store's writer thread once every ready event
 * of the turn has been handled, and the loop goes on while it fsyncs; the
 * actions run when the store reports their batch durable. One batch at a
 * time is with the writer: the turns that pass while it fsyncs form the
 * next one (group commit, dstmd.c).
 */
#ifndef DSTMD_H
#define DSTMD_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdint.h>

#include "common/ctl.h"
#include "common/keycount.h"
#include "common/metrics.h"
#include "dstmd/config.h"
#include "dstmd/tepctl.h"
#include "grant/grant.h"
#include "store/lease.h"
#include "tsp/tsp.h"

struct session;
struct dstmd;

/* Something to do once the current transaction is durable. */
struct deferred {
	struct deferred *next;
	void (*run)(struct dstmd *d, struct deferred *df);
};

/* The deferred actions of one loop turn, waiting for their batch's ticket. */
struct dbatch {
	struct dbatch *next;
	uint64_t ticket;
	struct deferred *list;
	int64_t handed_ms; /* when the writer got it: the commit latency's start */
};

struct dstmd_counters {
	uint64_t creates, releases, revokes, deletes_sent, tep_refused;
	uint64_t status[8]; /* replies by class: see access.c status_slot() */
	uint64_t bad_address, bad_type, accept_paused, quota_64, conn_quota_64, rate_64;
	uint64_t foreign_client_v6; /* a <client> address not the session's own (TSP 309) */
	uint64_t not_owner;         /* a lease of another address, unauthenticated (TSP 308) */
	uint64_t long_identity;     /* a name too long to be a lease key (TSP 300) */
	uint64_t udp_anon_delete;   /* an unauthenticated delete over UDP, refused (TSP 500) */
	uint64_t commit_joined;     /* batches that waited for the one being made durable */
};

struct dstmd {
	struct event_base *base;
	struct dstmd_config *cfg;
	struct store *store;
	struct pool **pools;
	struct lease_mgr *leases;
	struct tsp_server *tsp;
	struct tsp_udp *udp; /* TSP over UDP (tsp_udp.c) */
	struct tepctl *tepctl;
	struct failover *failover; /* failover.c */
	struct ctl_server *ctl;
	struct evconnlistener **listeners;
	void *listener_ctx; /* access.c's, one per listener */
	size_t nlisteners;
	struct event *commit_ev, *durable_ev, *expiry_ev, *sigterm_ev, *sigint_ev;
	struct deferred *after_commit, **after_commit_tail;
	struct dbatch *batches, **batches_tail; /* waiting for the writer */
	uint64_t last_ticket, durable;
	bool commit_waiting;       /* writes wait for the batch in flight (commit_cb) */
	struct session **sessions; /* open-addressed by identity */
	size_t nsessions_slots, nsessions_bound;
	unsigned nconns;
	unsigned per_64;         /* the per-/64 quota in force */
	struct keycount conns64; /* open sessions per peer /64 */
	bool accept_paused;
	int64_t started;
	/*
	 * The store cannot commit (a full disk, a read-only file): every
	 * change is refused with an error reply, a probe commit is tried
	 * once a second, and the leases are reloaded from the disk when one
	 * goes through (dstmd.c, store_failed).
	 */
	bool store_failing;
	bool commit_failed; /* set while the deferred actions of failed batches run */
	int64_t store_failing_since;
	uint64_t store_failures, probe_ticket;
	/* PostgreSQL: another instance committed; reload when nothing is in flight. */
	bool store_sync_pending;
	struct event *store_sync_ev; /* tries the pending reload again while busy */
	uint64_t store_syncs;        /* reloads for the other instances' commits */
	uint32_t pool_spread; /* where this instance starts in each pool, a fraction of 2^32 */
	char store_error[256];
	struct event *store_retry_ev;
	struct dstmd_counters ctr;
	struct in6_addr *own; /* the network's own addresses (identity.c) */
	size_t nown;
	uint64_t refused_addr[GRANT_ADDR__COUNT];
	/* reload.c: SIGHUP re-reads conffile; replaced configs stay alive (see there) */
	const char *conffile;
	int verbose_cli; /* -v count of the command line */
	struct event *sighup_ev, *watchdog_ev;
	struct dstmd_config **retired;
	size_t nretired;
	uint64_t reloads, reload_failures;
	/* stats.c: the Prometheus page */
	struct metrics *metrics;
	struct metrics_hist commit_latency; /* seconds from hand-over to durable */
};

/* Stage: run `df` after the next commit (which this schedules). */
void dstmd_defer(struct dstmd *d, struct deferred *df);
/* Ask for a commit at the end of this loop turn. */
void dstmd_schedule_commit(struct dstmd *d);
/* Re-arm the expiry timer after a change of the earliest expiry. */
void dstmd_rearm_expiry(struct dstmd *d);
/* True while the deferred actions of a batch that did not commit run: answer with an error. */
bool dstmd_commit_failed(const struct dstmd *d);
/*
 * End a lease now (operator revoke or client release): quarantine, delete
 * to client and TEP. `give_back`: the identity may have it back while it
 * is in quarantine (a client's own release; not a revoke or a Decline).
 */
int dstmd_end_lease(struct dstmd *d, const struct lease *l, bool notify_client, bool give_back);
/* The configured TEP named `name`, or NULL. */
const struct dstmd_tep *dstmd_tep_named(const struct dstmd *d, const char *name);

/* failover.c: moving a failed TEP's bindings to its backup */
int failover_init(struct dstmd *d);
void failover_fini(struct dstmd *d);
/* The TEPs grants choose among: a failed-over TEP's clients go to its backup. */
const struct grant_tep *failover_views(struct dstmd *d);
/* tepctl_status() plus each TEP's backup, failover state and counters. */
json_t *failover_status(struct dstmd *d);

/* access.c */
int access_init(struct dstmd *d);
void access_fini(struct dstmd *d);
/* Send "delete" on the session of `identity`, if it is open. */
void access_notify_delete(struct dstmd *d, const struct lease *l);
void access_conn_closed(struct dstmd *d);
/* Would a session from `sa` fit the TCP limits (in all, per /64)? 0 or -EBUSY. */
int access_admit(struct dstmd *d, const struct sockaddr *sa);
/* Serve a session another transport (TSP over UDP) opened; 0 or -ENOMEM (closed). */
int access_attach(struct dstmd *d, struct tsp_conn *c, const struct sockaddr *sa);
json_t *access_counters(const struct dstmd *d);

/* dhcp.c: the DHCPv6 server (the "dhcpv6" section; nothing when it is absent) */
int dhcp_init(struct dstmd *d);
void dhcp_fini(struct dstmd *d);
/* Ask the DHCPv6 client of `identity` to Renew (its lease was revoked); 0 or -errno. */
int dhcp_reconfigure(struct dstmd *d, const char *identity);
/* Add the dhcp6_* counters to `o`. */
void dhcp_counters(const struct dstmd *d, json_t *o);

/* identity.c */
int identity_init(struct dstmd *d);
void identity_fini(struct dstmd *d);
/* Whether a lease may be bound to v6 (GRANT_ADDR_OK); counts and logs a refusal. */
enum grant_addr dstmd_check_v6(struct dstmd *d, const struct in6_addr *v6);
void identity_counters(const struct dstmd *d, json_t *o);
/* The per-/64 quota `per_64` and limits.allocations_per_64. */
struct grant_policy dstmd_policy(const struct dstmd *d, unsigned per_64);
/*
 * The allocation decision for every access method (src/grant, grant_acquire)
 * over dstmd's lease manager, TEP channel and clocks: the TEP and its pool,
 * `policy` for a new lease, then the slot. res->lease is a const struct lease *.
 */
enum grant_outcome dstmd_grant(struct dstmd *d, const struct grant_req *req,
                               const struct grant_policy *policy, struct grant_result *res);
/*
 * TSP (access.c): the verified client of a command on `conn` (TLS
 * session `ssl`, or NULL) and where its tunnel ends (DESIGN §4: the
 * source address; a <client> address only from an auth.relays peer, or
 * inside an authenticated user's auth.endpoints): 0, or the TSP status
 * that refuses it (309), counted. Its identity ("anon:…", "tsp:…",
 * "cert:…") is written to `identity`.
 */
struct ssl_st;
int tsp_identity_verify(struct dstmd *d, struct tsp_conn *conn, struct ssl_st *ssl,
                        const struct tsp_tunnel *t, struct grant_client *who, struct in6_addr *v6,
                        char *identity, size_t idlen);
/* The rule on the identity's lease: 0, or 308 (counted) when it is another address's. */
int tsp_identity_owner(struct dstmd *d, const struct grant_client *who, const char *identity);
/* The TEP channel (tepctl) and the lease store as grant_push() needs them; env: the dstmd. */
extern const struct grant_push_ops dstmd_push_ops;

/* control.c */
json_t *control_handle(void *arg, const char *command, json_t *args, char *err, size_t errlen);
/* The "counters" object of the control socket. */
json_t *control_counters(struct dstmd *d);

/* The pools of `cfg` (fresh), or NULL with "file:line: why" in err. */
struct pool **dstmd_pools_new(const struct dstmd_config *cfg, char *err, size_t errlen);
void dstmd_pools_free(struct pool **pools, size_t n);
/*
 * Replace the pools by `pools` (dstmd_pools_new of the new configuration):
 * everything decided is made durable, the leases are reloaded onto the new
 * pools (those outside them become orphans: their renewal is refused, they
 * end at their expiry), and the old pools are freed. 0, or -errno with a
 * message and the old pools in force (`pools` is then the caller's).
 */
int dstmd_repool(struct dstmd *d, struct pool **pools, size_t npools, char *err, size_t errlen);

/* reload.c: SIGHUP. 0 when the new configuration is in force, else -errno
 * with the old one kept and the reasons logged (file:line). */
int dstmd_reload(struct dstmd *d);
/* The active-lease quota per /64 of `cfg` over `pools` (limits.per_64, 0: half). */
unsigned dstmd_quota_64(const struct dstmd_config *cfg, struct pool **pools);

/* stats.c: serve the metrics of `d` when the configuration has "metrics". */
int stats_start(struct dstmd *d);
void stats_stop(struct dstmd *d);

#endif
