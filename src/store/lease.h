/*
 * The lease manager, the core of dstmd: pure logic over the pools
 * (src/pool) and the store (src/store), driven by the caller's clock.
 * A lease binds a client identity ("tsp:alice", "anon:fd00:d57::11", a
 * DUID+IAID) and its IPv6 address to one pool slot (an IPv4 address, or
 * an address plus port range) and a TEP, for a lifetime (seed 001 appendix
 * C §2: allocation, renewal, end of allocation). An expired or released
 * lease stays in quarantine, on disk too, before its address is reused.
 *
 * Every grant, renewal, release, expiry and revocation also appends a
 * history row (store.h) in the same transaction; history older than
 * history_days is pruned a bounded batch at a time by lease_expire().
 *
 * Durability: every change is written into an open store transaction as
 * it happens (one is begun by the first change); lease_commit() commits
 * it, fsync included. The caller sends the replies of an event-loop turn
 * only after lease_commit() returned 0 (DESIGN §4: group commit). When a
 * commit (or a write) fails the transaction is rolled back, memory no
 * longer matches the disk, and the manager refuses every further change
 * with -EIO: the caller answers the requests of the failed batches with
 * errors and, once the store's writer has dropped them
 * (store_async_recover), rebuilds memory from the disk with
 * lease_mgr_reload(); nothing acknowledged is lost and nothing refused
 * stays.
 */
#ifndef DSTM_LEASE_H
#define DSTM_LEASE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/pool.h"
#include "store/store.h"

/* Read-only to callers; valid until the lease is freed (lease_expire() or lease_mgr_free()). */
struct lease {
	const char *identity;
	struct in6_addr v6;
	uint32_t v4;               /* host byte order */
	uint16_t port_lo, port_hi; /* 0, 0: the whole address */
	/* A slot of a PSID pool (RFC 7597 §5.1; port_lo/port_hi are then the
	 * first and last port of the set): psid_len > 0. Not stored: the
	 * pool says it, at grant and at reload. */
	uint8_t psid_offset, psid_len;
	uint16_t psid;
	const char *pool;      /* pool name */
	const char *tep;       /* TEP name */
	int64_t start, expiry; /* wall-clock seconds */
	enum lease_state state;
	int64_t quarantine_until; /* when state is LEASE_QUARANTINE */
	/*
	 * Reloaded from the store but its address (+ ports) is in no
	 * configured pool slot: kept until it expires, never renewed
	 * (lease_acquire() gives -EADDRNOTAVAIL), never handed out again.
	 */
	bool orphan;
	/*
	 * Offered (a DHCPv6 Advertise) and not yet confirmed by a request:
	 * it lasts the short offer hold, and at its end the address is free
	 * at once (it was never used: no quarantine). In memory only.
	 */
	bool offer;
};

struct lease_policy {
	uint32_t lifetime;     /* seconds a lease lasts from its last renewal */
	uint32_t quarantine;   /* seconds an address rests after expiry or release */
	uint32_t history_days; /* days the history of leases is kept; 0: for ever */
};

/* lease_acquire() flags */
#define LEASE_NEW     0x1u /* a slot was allocated */
#define LEASE_RENEWED 0x2u /* the identity's existing lease was extended */
#define LEASE_MOVED \
	0x4u /* renewed, and the client IPv6 or the TEP changed: push the binding again */

struct lease_counters {
	uint64_t allocations; /* LEASE_NEW */
	uint64_t reclaims;    /* LEASE_NEW of an identity's own lease back from quarantine */
	uint64_t renewals;    /* LEASE_RENEWED */
	uint64_t moves;       /* LEASE_MOVED */
	uint64_t releases;    /* lease_release() */
	uint64_t revocations; /* lease_revoke() */
	uint64_t expiries;    /* active -> quarantine by lease_expire() */
	uint64_t freed;       /* quarantine over, row deleted */
	uint64_t exhausted;   /* -ENOSPC (TSP 306) */
	uint64_t unavailable; /* -EADDRNOTAVAIL (TSP 308) */
	uint64_t orphans;     /* rows reloaded whose address is in no pool slot */
	uint64_t commits;     /* transactions committed */
	uint64_t commit_failures;
	uint64_t active, quarantined; /* leases now */
};

struct lease_mgr;

/*
 * Load every row of `st`. Leases that expired while the daemon was down
 * enter quarantine counting from their expiry; finished quarantines are
 * deleted and their slots freed; these changes are committed before it
 * returns. The pools (names unique, no address in two pools) are borrowed
 * and must outlive the manager; they must be fresh (nothing allocated):
 * a reload builds new pools and a new manager. NULL with a message in err.
 */
struct lease_mgr *lease_mgr_new(struct store *st, struct pool **pools, size_t npools,
                                const struct lease_policy *policy, int64_t now, char *err,
                                size_t errlen);
/* Free memory; an uncommitted transaction is rolled back. */
void lease_mgr_free(struct lease_mgr *m);

/*
 * Give `identity` a lease, now. The identity's active lease is renewed
 * (expiry = now + lifetime, LEASE_RENEWED, plus LEASE_MOVED when `v6` or
 * `tep` changed) whatever `pool` says, provided `want_v4` is 0 or its
 * address. Otherwise the identity's own lease that expired or that it
 * released comes back while it is still in quarantine (same address and
 * port range, LEASE_NEW: continuity), when it is in `pool` and `want_v4`
 * is 0 or its address. Otherwise a new slot: `want_v4` (any free port
 * range of it in a port pool) or the head of the free queue of `pool`
 * (NULL: the configured pools in order, except PSID pools, which serve
 * only who names them). Who may act on the identity's lease is the
 * caller's to decide first (src/grant).
 *   -EADDRNOTAVAIL  want_v4 is in no pool, not free, or not the
 *                   identity's; the identity holds an orphan (TSP 308)
 *   -ENOSPC         no free slot (TSP 306)
 *   -ENOENT         no pool has that name
 *   -EIO            the store failed (see above)
 *   -ENOMEM         out of memory (nothing changed)
 * The lease is durable only after lease_commit().
 */
int lease_acquire(struct lease_mgr *m, const char *identity, const struct in6_addr *v6,
                  uint32_t want_v4, const char *pool, const char *tep, int64_t now,
                  const struct lease **out, unsigned *flags);

/*
 * Active -> quarantine until now + quarantine (the client's own release,
 * or a grant rolled back): the identity may have it back meanwhile.
 * 0, -EALREADY when already in quarantine, -EIO.
 */
int lease_release(struct lease_mgr *m, const struct lease *l, int64_t now);
/*
 * lease_release() by the operator or the server ("revoke" in the history),
 * or for a Decline: never given back to the identity.
 */
int lease_revoke(struct lease_mgr *m, const struct lease *l, int64_t now);

/*
 * Make `l`, an active lease that no request has confirmed (the caller
 * just granted it for an offer, or it is an offer already), an offer
 * that ends at now + hold. Any later lease_acquire() of its identity
 * confirms it (a full lifetime). 0, -EALREADY (not active), -EIO.
 */
int lease_offer(struct lease_mgr *m, const struct lease *l, int64_t now, uint32_t hold);

/* The active or quarantined lease holding (v4, port); port ignored for whole-address leases. */
const struct lease *lease_find_v4(const struct lease_mgr *m, uint32_t v4, uint16_t port);
/* The active lease of an identity. */
const struct lease *lease_find_identity(const struct lease_mgr *m, const char *identity);
/*
 * Every lease (active and quarantined), in no order; cb must not change
 * leases. A non-zero return of cb stops the walk and is returned.
 */
int lease_foreach(const struct lease_mgr *m, int (*cb)(void *arg, const struct lease *l),
                  void *arg);

/*
 * The earliest time lease_expire() has work: an active lease's expiry or
 * a quarantine's end. INT64_MAX when none, and while the manager is
 * failed (lease_expire() would do nothing).
 */
int64_t lease_next_expiry(const struct lease_mgr *m);

/* What lease_page() lists; zero fields match everything. */
struct lease_filter {
	const char *pool;
	enum lease_state state; /* 0: both */
	const char *identity;
};

/*
 * One page of the leases, for a listing that costs the daemon neither
 * memory nor a pause however many leases there are: in a fixed order
 * (each pool's slots in order, the pools in their order, then orphans),
 * from position `cursor` (0: the start), cb sees at most `limit` leases
 * that match `f`, and at most `budget` positions are looked at. *next is
 * the cursor of the next page, 0 when the walk reached the end. Leases
 * that come or go between pages are seen or not, never twice.
 */
int lease_page(const struct lease_mgr *m, uint64_t cursor, const struct lease_filter *f,
               unsigned limit, unsigned budget, int (*cb)(void *arg, const struct lease *l),
               void *arg, uint64_t *next);
/*
 * The cursor of the position after the slot of (v4, port), or after
 * every slot of v4 when port is 0: 0 or -ENOENT (in no pool or orphan).
 */
int lease_page_after(const struct lease_mgr *m, uint32_t v4, uint16_t port, uint64_t *cursor);
/*
 * Active leases whose expiry is <= now enter quarantine; cb (may be NULL)
 * sees each one after the change (dstmd sends "delete" to the client and
 * the TEP). Quarantines over by `now` are deleted. Returns how many
 * leases expired. Costs O(log n) per lease due (a min-heap).
 */
unsigned lease_expire(struct lease_mgr *m, int64_t now,
                      void (*cb)(void *arg, const struct lease *l), void *arg);

/* Commit what was staged: 0 (also when nothing was) or -EIO. */
int lease_commit(struct lease_mgr *m);
/*
 * With the store's writer thread running (store_async_start): queue what
 * was staged as one batch and return at once; *ticket (in: the last
 * ticket the caller saw) is the batch to wait for with store_async_poll().
 * The replies that depend on it leave only when it is durable.
 */
int lease_commit_async(struct lease_mgr *m, uint64_t *ticket);
/* True once a write or commit failed, until lease_mgr_reload(). */
bool lease_mgr_failed(const struct lease_mgr *m);
/* The store reported a failed commit: refuse changes (-EIO) until lease_mgr_reload(). */
void lease_mgr_store_failed(struct lease_mgr *m);
/*
 * While failed: stage a write that changes nothing (store_probe), to be
 * committed with lease_commit_async()'s store call by the caller
 * (store_commit_async): once it is durable the disk takes writes again.
 */
int lease_mgr_probe(struct lease_mgr *m);
/*
 * Forget memory and load every lease again from the store (whose writer
 * must be idle: store_async_recover), as lease_mgr_new() does; the pools
 * are reset. What loading changes (leases that expired meanwhile) is
 * staged, not committed: the caller commits it. 0, or -EIO with a message
 * (the manager stays failed; try again later).
 */
int lease_mgr_reload(struct lease_mgr *m, int64_t now, char *err, size_t errlen);

void lease_counters(const struct lease_mgr *m, struct lease_counters *c);
/* Active leases whose client address is in the /64 of `v6` (per-/64 quotas). */
unsigned lease_count_64(const struct lease_mgr *m, const struct in6_addr *v6);

/*
 * A reloaded configuration's lifetime and quarantine: they apply to the
 * next grant, renewal and release; leases already granted keep theirs.
 */
void lease_set_policy(struct lease_mgr *m, const struct lease_policy *policy);

/*
 * A reloaded configuration's pools: `pools` (fresh, names unique, no
 * address in two; borrowed like lease_mgr_new's) replace the manager's,
 * and every lease is loaded again from the store, whose writer must be
 * idle (stopped, or after store_async_recover) with everything durable.
 * A lease whose slot is in no new pool becomes an orphan (lease.c: its
 * renewal is refused, it ends at its expiry); a pool that grew lends its
 * new slots. What loading changes is staged for the caller's next commit.
 * 0; or -EINVAL/-ENOMEM/-EIO with a message and the old pools in force.
 */
int lease_mgr_repool(struct lease_mgr *m, struct pool **pools, size_t npools, int64_t now,
                     char *err, size_t errlen);

#endif
