/*
 * What the lease manager's files share and its users never see: the
 * entry of one live lease, the manager with its indexes, and the helpers
 * that keep them and the store's staged rows in step. lease.c decides
 * (acquire, renew, release, expiry), lease_load.c builds the manager from
 * the store and rebuilds it on reload or new pools, lease_query.c answers
 * lookups and listings.
 */
#ifndef DSTM_LEASE_INT_H
#define DSTM_LEASE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/keycount.h"
#include "store/lease.h"

#define NOPOOL UINT16_MAX

/* 120 bytes and the identity: the row's id is not kept, it is STORE_ID(v4, port_lo). */
struct lent {
	struct lease l; /* first: a const struct lease * converts back */
	uint32_t slot;
	uint16_t pool; /* index in m->pools, NOPOOL for an orphan */
	uint32_t hidx; /* position in the heap */
	struct lent *id_next;
	struct lent *q_next; /* qtab chain, while `keep` */
	bool keep;           /* in quarantine, may go back to its identity */
	char identity[];
};

struct lease_mgr {
	struct store *st;
	struct pool **pools;
	size_t npools;
	struct lent ***slots; /* per pool, per slot */
	uint64_t *psize;      /* per pool, its number of slots */
	struct lease_policy pol;

	struct lent **heap;
	size_t nheap, capheap;

	struct lent **idtab; /* buckets, power of two */
	size_t nidtab, nid;

	struct lent **qtab; /* quarantined leases that may go back, by identity; fixed size */
	size_t nqtab;

	struct lent **orphans;
	size_t norphans, caporphans;

	struct keycount per64; /* active leases per client /64 */

	char **names; /* interned TEP and pool names */
	size_t nnames;

	bool failed;
	int64_t next_prune;
	struct lease_counters c;
};

/* The entry's deadline: its expiry, or its quarantine's end. */
int64_t lease_deadline(const struct lent *e);
int lease_heap_push(struct lease_mgr *m, struct lent *e);
struct lent *lease_id_lookup(const struct lease_mgr *m, const char *identity);
void lease_id_resize(struct lease_mgr *m, size_t n);
void lease_id_insert(struct lease_mgr *m, struct lent *e);
/* One copy of each TEP and pool name, owned by the manager. */
const char *lease_intern(struct lease_mgr *m, const char *s);
/* The store failed: the manager refuses to decide until a reload. */
int lease_fail(struct lease_mgr *m, const char *what);
/* Rows for the store's next transaction. */
int lease_stage(struct lease_mgr *m);
int lease_stage_update(struct lease_mgr *m, const struct lent *e);
int lease_stage_history(struct lease_mgr *m, enum lease_event ev, int64_t t, const struct lent *e);
void lease_orphan_remove(struct lease_mgr *m, struct lent *e);
/* The pools a TEP's pool name selects: [first, end) of m->pools. */
int lease_pool_index(const struct lease_mgr *m, const char *name, size_t *first, size_t *end);
/* lease_load.c: a new entry, not yet indexed; its pool is NOPOOL. */
struct lent *lease_entry_new(const char *identity);
/* A PSID pool (lw4o6) serves only who names it. */
bool lease_psid_pool(const struct pool *p);
/* The port set of a PSID pool's slot, in the entry's lease. */
void lease_entry_psid(struct lent *e, const struct pool *p);

#endif
