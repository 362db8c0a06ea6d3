/*
 * The lease manager. Memory holds every live lease (active and
 * quarantined) once, in an entry that is indexed three ways: by pool slot
 * (one pointer array per pool: the slot's current or last holder), by
 * identity (a chained hash of active leases) and by deadline (a min-heap
 * keyed on expiry for active leases and on quarantine end for quarantined
 * ones, which also serves as the list of all leases). The pool's own
 * quarantine and the lease's quarantine end at the same second; a slot the
 * pool hands out again may still carry its old quarantined lease row,
 * which is deleted in the same transaction before the new row is written,
 * so the store's unique index never sees two holders.
 *
 * Lease continuity: a lease that ended by expiry or by its client's own
 * release waits in quarantine in a second identity index (`qtab`); the
 * same identity asking again before its slot goes to anyone else gets
 * that slot back (same address, same port range). Operator revocations,
 * Declines and leases reloaded in quarantine are not given back.
 *
 * Leases whose address (+ port range) matches no configured slot are
 * orphans (the operator changed the pools): kept until they end, listed,
 * never renewed; any slot they overlap is held in quarantine until the
 * orphan would have ended, so a changed port_range_size cannot hand out
 * ports that a reloaded lease still holds.
 *
 * This file keeps the indexes and decides; lease_load.c builds the
 * manager from the store, lease_query.c answers lookups and listings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/hash.h"
#include "common/keycount.h"
#include "store/lease.h"
#include "store/lease_int.h"

int64_t
lease_deadline(const struct lent *e)
{
	return e->l.state == LEASE_ACTIVE ? e->l.expiry : e->l.quarantine_until;
}

/* The min-heap on deadline. */
static void
heap_set(struct lease_mgr *m, size_t i, struct lent *e)
{
	m->heap[i] = e;
	e->hidx = (uint32_t)i;
}

static void
heap_up(struct lease_mgr *m, size_t i)
{
	struct lent *e = m->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (lease_deadline(m->heap[parent]) <= lease_deadline(e))
			break;
		heap_set(m, i, m->heap[parent]);
		i = parent;
	}
	heap_set(m, i, e);
}

static void
heap_down(struct lease_mgr *m, size_t i)
{
	struct lent *e = m->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= m->nheap)
			break;
		if (c + 1 < m->nheap && lease_deadline(m->heap[c + 1]) < lease_deadline(m->heap[c]))
			c++;
		if (lease_deadline(e) <= lease_deadline(m->heap[c]))
			break;
		heap_set(m, i, m->heap[c]);
		i = c;
	}
	heap_set(m, i, e);
}

int
lease_heap_push(struct lease_mgr *m, struct lent *e)
{
	if (m->nheap == m->capheap) {
		size_t cap = m->capheap ? m->capheap * 2 : 64;
		struct lent **h = realloc(m->heap, cap * sizeof(*h));

		if (h == NULL)
			return -ENOMEM;
		m->heap = h;
		m->capheap = cap;
	}
	m->heap[m->nheap++] = e;
	heap_up(m, m->nheap - 1);
	return 0;
}

static void
heap_fix(struct lease_mgr *m, struct lent *e)
{
	heap_up(m, e->hidx);
	heap_down(m, e->hidx);
}

static void
heap_remove(struct lease_mgr *m, struct lent *e)
{
	size_t i = e->hidx;
	struct lent *last = m->heap[--m->nheap];

	if (i == m->nheap)
		return;
	heap_set(m, i, last);
	heap_fix(m, last);
}

/* The identity hash of active leases (identities come from clients: keyed). */
static uint64_t
id_hash(const char *s)
{
	return hash_str(s);
}

struct lent *
lease_id_lookup(const struct lease_mgr *m, const char *identity)
{
	struct lent *e;

	for (e = m->idtab[id_hash(identity) & (m->nidtab - 1)]; e != NULL; e = e->id_next)
		if (strcmp(e->identity, identity) == 0)
			return e;
	return NULL;
}

/* Active leases per client /64 (one attacker's /64 must not take the pool). */
static void
p64_add(struct lease_mgr *m, const struct in6_addr *v6, int delta)
{
	/* Without memory the count of a new /64 is lost: its quota is then not enforced. */
	(void)keycount_add(&m->per64, keycount_prefix64(v6), delta);
}

unsigned
lease_count_64(const struct lease_mgr *m, const struct in6_addr *v6)
{
	return keycount_get(&m->per64, keycount_prefix64(v6));
}

/* Rehash into `n` buckets (a power of two); without memory the chains just grow longer. */
void
lease_id_resize(struct lease_mgr *m, size_t n)
{
	struct lent **t = calloc(n, sizeof(*t));

	if (t == NULL)
		return;
	for (size_t i = 0; i < m->nidtab; i++) {
		struct lent *x = m->idtab[i], *nx;

		for (; x != NULL; x = nx) {
			size_t b = id_hash(x->identity) & (n - 1);

			nx = x->id_next;
			x->id_next = t[b];
			t[b] = x;
		}
	}
	free(m->idtab);
	m->idtab = t;
	m->nidtab = n;
}

void
lease_id_insert(struct lease_mgr *m, struct lent *e)
{
	size_t b;

	if (m->nid >= m->nidtab)
		lease_id_resize(m, m->nidtab * 2);
	b = id_hash(e->identity) & (m->nidtab - 1);
	e->id_next = m->idtab[b];
	m->idtab[b] = e;
	m->nid++;
	p64_add(m, &e->l.v6, 1);
}

static void
id_remove(struct lease_mgr *m, struct lent *e)
{
	struct lent **pp = &m->idtab[id_hash(e->identity) & (m->nidtab - 1)];

	for (; *pp != NULL; pp = &(*pp)->id_next) {
		if (*pp == e) {
			*pp = e->id_next;
			e->id_next = NULL;
			m->nid--;
			p64_add(m, &e->l.v6, -1);
			return;
		}
	}
}

/* ---- the continuity index (quarantined leases by identity) ---- */

static void
q_insert(struct lease_mgr *m, struct lent *e)
{
	size_t b = id_hash(e->identity) & (m->nqtab - 1);

	e->q_next = m->qtab[b];
	m->qtab[b] = e;
	e->keep = true;
}

static void
q_remove(struct lease_mgr *m, struct lent *e)
{
	struct lent **pp;

	if (!e->keep)
		return;
	for (pp = &m->qtab[id_hash(e->identity) & (m->nqtab - 1)]; *pp; pp = &(*pp)->q_next)
		if (*pp == e) {
			*pp = e->q_next;
			break;
		}
	e->q_next = NULL;
	e->keep = false;
}

/* The identity's most recent lease in quarantine that may go back to it. */
static struct lent *
q_lookup(const struct lease_mgr *m, const char *identity)
{
	struct lent *e;

	for (e = m->qtab[id_hash(identity) & (m->nqtab - 1)]; e; e = e->q_next)
		if (strcmp(e->identity, identity) == 0)
			return e;
	return NULL;
}

/* TEP and pool names are few: intern them so a lease holds a pointer. */
const char *
lease_intern(struct lease_mgr *m, const char *s)
{
	char **n, *d;

	for (size_t i = 0; i < m->nnames; i++)
		if (strcmp(m->names[i], s) == 0)
			return m->names[i];
	if ((d = strdup(s)) == NULL)
		return NULL;
	if ((n = realloc(m->names, (m->nnames + 1) * sizeof(*n))) == NULL) {
		free(d);
		return NULL;
	}
	m->names = n;
	m->names[m->nnames++] = d;
	return d;
}

static void
to_row(const struct lent *e, struct lease_row *r)
{
	r->id = STORE_ID(e->l.v4, e->l.port_lo);
	r->identity = e->identity;
	r->v6 = e->l.v6;
	r->v4 = e->l.v4;
	r->port_lo = e->l.port_lo;
	r->port_hi = e->l.port_hi;
	r->pool = e->l.pool;
	r->tep = e->l.tep;
	r->start = e->l.start;
	r->expiry = e->l.expiry;
	r->state = e->l.state;
	r->quarantine_until = e->l.quarantine_until;
}

/*
 * Every store failure lands here: the open transaction is rolled back and
 * memory is ahead of the disk, so nothing more may be decided until
 * lease_mgr_reload() (lease.h).
 */
int
lease_fail(struct lease_mgr *m, const char *what)
{
	if (!m->failed)
		log_warnx("lease store: %s: %s; refusing changes until the leases are reloaded",
		          what, store_errmsg(m->st));
	m->failed = true;
	if (store_in_transaction(m->st))
		store_rollback(m->st);
	return -EIO;
}

int
lease_stage(struct lease_mgr *m)
{
	if (m->failed)
		return -EIO;
	if (!store_in_transaction(m->st) && store_begin(m->st) < 0)
		return lease_fail(m, "begin");
	return 0;
}

int
lease_stage_update(struct lease_mgr *m, const struct lent *e)
{
	struct lease_row r;

	if (lease_stage(m) < 0)
		return -EIO;
	to_row(e, &r);
	if (store_update(m->st, &r) < 0)
		return lease_fail(m, "update");
	return 0;
}

/* The history row of what just happened to `e`, in the same transaction. */
int
lease_stage_history(struct lease_mgr *m, enum lease_event ev, int64_t t, const struct lent *e)
{
	struct lease_row r;

	if (lease_stage(m) < 0)
		return -EIO;
	to_row(e, &r);
	if (store_history_add(m->st, ev, t, &r) < 0)
		return lease_fail(m, "history");
	return 0;
}

void
lease_orphan_remove(struct lease_mgr *m, struct lent *e)
{
	for (size_t i = 0; i < m->norphans; i++) {
		if (m->orphans[i] == e) {
			m->orphans[i] = m->orphans[--m->norphans];
			return;
		}
	}
}

/* A quarantine is over: the row goes, and the entry. */
static int
lease_drop(struct lease_mgr *m, struct lent *e)
{
	int rc = lease_stage(m);

	if (rc == 0 && store_delete(m->st, STORE_ID(e->l.v4, e->l.port_lo)) < 0)
		rc = lease_fail(m, "delete");
	heap_remove(m, e);
	q_remove(m, e);
	if (e->l.orphan)
		lease_orphan_remove(m, e);
	else if (m->slots[e->pool][e->slot] == e)
		m->slots[e->pool][e->slot] = NULL;
	if (e->l.state == LEASE_ACTIVE) {
		id_remove(m, e);
		m->c.active--;
	} else
		m->c.quarantined--;
	m->c.freed++;
	free(e);
	return rc;
}

static int
to_quarantine(struct lease_mgr *m, struct lent *e, int64_t now, enum lease_event ev)
{
	/* An offer nobody took was never used: its address is free at once. */
	int64_t until = now + (e->l.offer ? 0 : m->pol.quarantine);

	id_remove(m, e);
	/* Continuity for an expiry or the client's own release, never for a revoke. */
	if (ev != LEASE_EV_REVOKE && !e->l.orphan)
		q_insert(m, e);
	e->l.state = LEASE_QUARANTINE;
	e->l.quarantine_until = until;
	if (!e->l.orphan)
		pool_release(m->pools[e->pool], e->slot, until);
	heap_fix(m, e);
	m->c.active--;
	m->c.quarantined++;
	if (lease_stage_update(m, e) < 0)
		return -EIO;
	return lease_stage_history(m, ev, now, e);
}

/* ---- decisions ---- */

int
lease_pool_index(const struct lease_mgr *m, const char *name, size_t *first, size_t *end)
{
	if (name == NULL) {
		*first = 0;
		*end = m->npools;
		return 0;
	}
	for (size_t i = 0; i < m->npools; i++) {
		if (strcmp(pool_name(m->pools[i]), name) == 0) {
			*first = i;
			*end = i + 1;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * An orphan may overlap a slot the pool considers free: the pool's hold
 * on it (orphan_hold) ends when the orphan would have ended, but the
 * orphan's row goes only when lease_expire() reaches it, or later if it
 * expired late. An orphan whose quarantine is over is dropped here; a
 * live one sends the slot back to quarantine until the orphan's end.
 * Returns 0 (slot usable), 1 (blocked, slot given back) or -EIO.
 */
static int
orphan_block(struct lease_mgr *m, size_t pi, uint32_t slot, int64_t now)
{
	uint32_t a;
	uint16_t lo, hi;

	if (m->norphans == 0)
		return 0;
	pool_slot(m->pools[pi], slot, &a, &lo, &hi);
	if (lo == 0 && hi == 0)
		hi = UINT16_MAX;
	for (size_t i = 0; i < m->norphans; i++) {
		struct lent *o = m->orphans[i];
		uint16_t olo = o->l.port_lo, ohi = o->l.port_hi;
		int64_t end;

		if (olo == 0 && ohi == 0)
			ohi = UINT16_MAX;
		if (o->l.v4 != a || ohi < lo || olo > hi)
			continue;
		if (o->l.state == LEASE_QUARANTINE && o->l.quarantine_until <= now) {
			if (lease_drop(m, o) < 0)
				return -EIO;
			i--; /* lease_drop moved the last orphan here */
			continue;
		}
		end = o->l.state == LEASE_ACTIVE ? o->l.expiry + m->pol.quarantine
		                                 : o->l.quarantine_until;
		pool_release(m->pools[pi], slot, end > now ? end : now + 1);
		return 1;
	}
	return 0;
}

/* A specific address: any free slot (port range) of it. */
static int
take_v4(struct lease_mgr *m, size_t first, size_t end, uint32_t v4, int64_t now, size_t *pi,
        uint32_t *slot)
{
	for (size_t i = first; i < end; i++) {
		struct pool *p = m->pools[i];
		uint32_t base;

		if (!pool_find(p, v4, POOL_PORT_FIRST, &base))
			continue;
		for (uint32_t s = base; s < base + pool_slots_per_addr(p); s++) {
			int rc;

			if (pool_take(p, s, now) != 0)
				continue;
			if ((rc = orphan_block(m, i, s, now)) < 0)
				return rc;
			if (rc == 0) {
				*pi = i;
				*slot = s;
				return 0;
			}
		}
		return -EADDRNOTAVAIL;
	}
	return -EADDRNOTAVAIL;
}

int
lease_acquire(struct lease_mgr *m, const char *identity, const struct in6_addr *v6,
              uint32_t want_v4, const char *pool, const char *tep, int64_t now,
              const struct lease **out, unsigned *flags)
{
	struct lent *e, *old;
	struct lease_row r;
	size_t first, end, pi = 0;
	uint32_t slot = 0;
	const char *itep;
	int rc = -ENOSPC;

	*flags = 0;
	*out = NULL;
	if (m->failed)
		return -EIO;
	if ((itep = lease_intern(m, tep)) == NULL)
		return -ENOMEM;
	if ((e = lease_id_lookup(m, identity)) != NULL) {
		/* seed 001 C §2.2: renewal; an orphan cannot be extended (308). */
		if (e->l.orphan || (want_v4 != 0 && want_v4 != e->l.v4)) {
			m->c.unavailable++;
			return -EADDRNOTAVAIL;
		}
		*flags = LEASE_RENEWED;
		if (memcmp(&e->l.v6, v6, sizeof(*v6)) != 0 || e->l.tep != itep) {
			*flags |= LEASE_MOVED;
			m->c.moves++;
		}
		if (keycount_prefix64(&e->l.v6) != keycount_prefix64(v6)) {
			p64_add(m, &e->l.v6, -1);
			p64_add(m, v6, 1);
		}
		e->l.v6 = *v6;
		e->l.tep = itep;
		e->l.offer = false; /* a request confirms an offer */
		e->l.expiry = now + m->pol.lifetime;
		heap_fix(m, e);
		m->c.renewals++;
		*out = &e->l;
		if (lease_stage_update(m, e) < 0)
			return -EIO;
		return lease_stage_history(m, LEASE_EV_RENEW, now, e);
	}
	if (lease_pool_index(m, pool, &first, &end) < 0)
		return -ENOENT;
	if ((e = q_lookup(m, identity)) != NULL && e->pool >= first && e->pool < end &&
	    (want_v4 == 0 || want_v4 == e->l.v4) && lease_stage(m) == 0 &&
	    pool_reclaim(m->pools[e->pool], e->slot, now) == 0) {
		/* Continuity: its own address (and ports) again, while nobody else has it. */
		q_remove(m, e);
		e->l.state = LEASE_ACTIVE;
		e->l.quarantine_until = 0;
		e->l.v6 = *v6;
		e->l.tep = itep;
		e->l.start = now;
		e->l.expiry = now + m->pol.lifetime;
		heap_fix(m, e);
		lease_id_insert(m, e);
		m->c.quarantined--;
		m->c.active++;
		m->c.allocations++;
		m->c.reclaims++;
		*flags = LEASE_NEW;
		*out = &e->l;
		if (lease_stage_update(m, e) < 0)
			return -EIO;
		return lease_stage_history(m, LEASE_EV_GRANT, now, e);
	}
	if (want_v4 != 0) {
		if ((rc = take_v4(m, first, end, want_v4, now, &pi, &slot)) < 0) {
			m->c.unavailable++;
			return rc;
		}
		if (!pool && lease_psid_pool(m->pools[pi])) {
			pool_release(m->pools[pi], slot, now);
			m->c.unavailable++;
			return -EADDRNOTAVAIL;
		}
	} else {
		for (pi = first; pi < end; pi++) {
			if (!pool && lease_psid_pool(m->pools[pi]))
				continue;
			/* Bounded: a blocked slot leaves the free queue until after now. */
			while ((rc = pool_alloc(m->pools[pi], now, &slot)) == 0) {
				if ((rc = orphan_block(m, pi, slot, now)) <= 0)
					break;
				rc = -ENOSPC;
			}
			if (rc == 0)
				break;
			if (rc == -EIO)
				return rc;
		}
		if (rc < 0) {
			m->c.exhausted++;
			return -ENOSPC;
		}
	}
	if ((rc = lease_stage(m)) < 0) {
		pool_release(m->pools[pi], slot, now);
		return rc;
	}
	/* The slot's last holder may still sit in quarantine on disk. */
	if ((old = m->slots[pi][slot]) != NULL && (rc = lease_drop(m, old)) < 0)
		return rc;
	if ((e = lease_entry_new(identity)) == NULL) {
		pool_release(m->pools[pi], slot, now);
		return -ENOMEM;
	}
	e->pool = (uint16_t)pi;
	e->slot = slot;
	e->l.v6 = *v6;
	pool_slot(m->pools[pi], slot, &e->l.v4, &e->l.port_lo, &e->l.port_hi);
	lease_entry_psid(e, m->pools[pi]);
	e->l.pool = pool_name(m->pools[pi]);
	e->l.tep = itep;
	e->l.start = now;
	e->l.expiry = now + m->pol.lifetime;
	e->l.state = LEASE_ACTIVE;
	if (lease_heap_push(m, e) < 0) {
		pool_release(m->pools[pi], slot, now);
		free(e);
		return -ENOMEM;
	}
	m->slots[pi][slot] = e;
	lease_id_insert(m, e);
	m->c.active++;
	m->c.allocations++;
	to_row(e, &r);
	if (store_insert(m->st, &r) < 0)
		return lease_fail(m, "insert");
	*flags = LEASE_NEW;
	*out = &e->l;
	return lease_stage_history(m, LEASE_EV_GRANT, now, e);
}

int
lease_release(struct lease_mgr *m, const struct lease *l, int64_t now)
{
	struct lent *e = (struct lent *)l;

	if (m->failed)
		return -EIO;
	if (e->l.state != LEASE_ACTIVE)
		return -EALREADY;
	m->c.releases++;
	return to_quarantine(m, e, now, LEASE_EV_RELEASE);
}

int
lease_revoke(struct lease_mgr *m, const struct lease *l, int64_t now)
{
	struct lent *e = (struct lent *)l;

	if (m->failed)
		return -EIO;
	if (e->l.state != LEASE_ACTIVE)
		return -EALREADY;
	m->c.revocations++;
	return to_quarantine(m, e, now, LEASE_EV_REVOKE);
}

int
lease_offer(struct lease_mgr *m, const struct lease *l, int64_t now, uint32_t hold)
{
	struct lent *e = (struct lent *)l;

	if (m->failed)
		return -EIO;
	if (e->l.state != LEASE_ACTIVE)
		return -EALREADY;
	e->l.offer = true;
	e->l.expiry = now + hold;
	heap_fix(m, e);
	return lease_stage_update(m, e);
}

/*
 * History older than history_days goes, a bounded batch at a time (at
 * most LEASE_PRUNE_ROWS every LEASE_PRUNE_EVERY seconds, about 2.6
 * million rows a day), in whatever commit comes next, so that no commit
 * carries a large delete and its fsync does not stretch.
 */
#define LEASE_PRUNE_ROWS  3000
#define LEASE_PRUNE_EVERY 10
static void
history_prune(struct lease_mgr *m, int64_t now)
{
	if (m->failed || !m->pol.history_days || now < m->next_prune || lease_stage(m) < 0)
		return;
	m->next_prune = now + LEASE_PRUNE_EVERY;
	if (store_history_prune(m->st, now - (int64_t)m->pol.history_days * 86400,
	                        LEASE_PRUNE_ROWS) < 0)
		(void)lease_fail(m, "pruning history");
}

unsigned
lease_expire(struct lease_mgr *m, int64_t now, void (*cb)(void *arg, const struct lease *l),
             void *arg)
{
	unsigned n = 0;
	/* Each lease is handled at most twice: expiry, then end of quarantine. */
	size_t bound = 2 * m->nheap + 1;

	while (m->nheap > 0 && lease_deadline(m->heap[0]) <= now && bound-- > 0 && !m->failed) {
		struct lent *e = m->heap[0];

		if (e->l.state == LEASE_ACTIVE) {
			/* seed 001 C §2.3: the address rests from the moment it is taken back. */
			if (to_quarantine(m, e, now, LEASE_EV_EXPIRE) < 0)
				break;
			m->c.expiries++;
			n++;
			if (cb != NULL)
				cb(arg, &e->l);
		} else if (lease_drop(m, e) < 0)
			break;
	}
	/* Pools end their quarantines lazily; bring their counts up to date. */
	for (size_t i = 0; i < m->npools; i++)
		pool_tick(m->pools[i], now);
	history_prune(m, now);
	return n;
}

int
lease_commit(struct lease_mgr *m)
{
	if (m->failed)
		return -EIO;
	if (!store_in_transaction(m->st))
		return 0;
	if (store_commit(m->st) < 0) {
		m->c.commit_failures++;
		return lease_fail(m, "commit");
	}
	m->c.commits++;
	return 0;
}

int
lease_commit_async(struct lease_mgr *m, uint64_t *ticket)
{
	uint64_t before = *ticket;

	if (m->failed)
		return -EIO;
	if (store_commit_async(m->st, ticket) < 0) {
		m->c.commit_failures++;
		return lease_fail(m, "commit");
	}
	if (*ticket != before)
		m->c.commits++;
	return 0;
}

bool
lease_mgr_failed(const struct lease_mgr *m)
{
	return m->failed;
}

void
lease_mgr_store_failed(struct lease_mgr *m)
{
	if (!m->failed)
		m->c.commit_failures++;
	m->failed = true;
	if (store_in_transaction(m->st))
		store_rollback(m->st);
}

int
lease_mgr_probe(struct lease_mgr *m)
{
	if (!store_in_transaction(m->st) && store_begin(m->st) < 0)
		return -EIO;
	return store_probe(m->st) < 0 ? -EIO : 0;
}

void
lease_counters(const struct lease_mgr *m, struct lease_counters *c)
{
	*c = m->c;
}

void
lease_set_policy(struct lease_mgr *m, const struct lease_policy *policy)
{
	m->pol = *policy;
}
