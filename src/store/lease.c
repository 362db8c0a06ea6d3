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

static int64_t
deadline(const struct lent *e)
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

		if (deadline(m->heap[parent]) <= deadline(e))
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
		if (c + 1 < m->nheap && deadline(m->heap[c + 1]) < deadline(m->heap[c]))
			c++;
		if (deadline(e) <= deadline(m->heap[c]))
			break;
		heap_set(m, i, m->heap[c]);
		i = c;
	}
	heap_set(m, i, e);
}

static int
heap_push(struct lease_mgr *m, struct lent *e)
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

static struct lent *
id_lookup(const struct lease_mgr *m, const char *identity)
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
static void
id_resize(struct lease_mgr *m, size_t n)
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

static void
id_insert(struct lease_mgr *m, struct lent *e)
{
	size_t b;

	if (m->nid >= m->nidtab)
		id_resize(m, m->nidtab * 2);
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
static const char *
intern(struct lease_mgr *m, const char *s)
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
static int
fail(struct lease_mgr *m, const char *what)
{
	if (!m->failed)
		log_warnx("lease store: %s: %s; refusing changes until the leases are reloaded",
		          what, store_errmsg(m->st));
	m->failed = true;
	if (store_in_transaction(m->st))
		store_rollback(m->st);
	return -EIO;
}

static int
stage(struct lease_mgr *m)
{
	if (m->failed)
		return -EIO;
	if (!store_in_transaction(m->st) && store_begin(m->st) < 0)
		return fail(m, "begin");
	return 0;
}

static int
stage_update(struct lease_mgr *m, const struct lent *e)
{
	struct lease_row r;

	if (stage(m) < 0)
		return -EIO;
	to_row(e, &r);
	if (store_update(m->st, &r) < 0)
		return fail(m, "update");
	return 0;
}

/* The history row of what just happened to `e`, in the same transaction. */
static int
stage_history(struct lease_mgr *m, enum lease_event ev, int64_t t, const struct lent *e)
{
	struct lease_row r;

	if (stage(m) < 0)
		return -EIO;
	to_row(e, &r);
	if (store_history_add(m->st, ev, t, &r) < 0)
		return fail(m, "history");
	return 0;
}

static void
orphan_remove(struct lease_mgr *m, struct lent *e)
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
	int rc = stage(m);

	if (rc == 0 && store_delete(m->st, STORE_ID(e->l.v4, e->l.port_lo)) < 0)
		rc = fail(m, "delete");
	heap_remove(m, e);
	q_remove(m, e);
	if (e->l.orphan)
		orphan_remove(m, e);
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
	if (stage_update(m, e) < 0)
		return -EIO;
	return stage_history(m, ev, now, e);
}

/* ---- loading ---- */

struct load {
	struct lease_mgr *m;
	struct lent **v;
	size_t n, cap;
	int err;
};

static struct lent *
lent_new(const char *identity)
{
	size_t len = strlen(identity) + 1;
	struct lent *e = calloc(1, sizeof(*e) + len);

	if (e == NULL)
		return NULL;
	memcpy(e->identity, identity, len);
	e->l.identity = e->identity;
	e->pool = NOPOOL;
	return e;
}

/* Pool and slot of a row; false when its address + ports are no slot of ours. */
static bool
row_slot(const struct lease_mgr *m, uint32_t v4, uint16_t lo, uint16_t hi, uint16_t *pool,
         uint32_t *slot)
{
	for (size_t i = 0; i < m->npools; i++) {
		uint32_t v;
		uint16_t slo, shi;

		if (!pool_contains(m->pools[i], v4))
			continue;
		if (!pool_find(m->pools[i], v4, lo, slot))
			return false;
		pool_slot(m->pools[i], *slot, &v, &slo, &shi);
		if (slo != lo || shi != hi)
			return false;
		*pool = (uint16_t)i;
		return true;
	}
	return false;
}

/*
 * A PSID pool serves only who names it (lw4o6): a port set is no range,
 * and the DSTM Ports option can carry only a range.
 */
static bool
psid_pool(const struct pool *p)
{
	unsigned off, len;

	pool_psid(p, &off, &len);
	return len > 0;
}

/* The port set of a PSID pool's slot, in the lease (lease.h). */
static void
lent_psid(struct lent *e, const struct pool *p)
{
	unsigned off, len;

	pool_psid(p, &off, &len);
	e->l.psid_offset = (uint8_t)off;
	e->l.psid_len = (uint8_t)len;
	e->l.psid = len ? (uint16_t)(e->slot % pool_slots_per_addr(p)) : 0;
}

static int
load_row(void *arg, const struct lease_row *r)
{
	struct load *ld = arg;
	struct lease_mgr *m = ld->m;
	struct lent *e;

	if (ld->n == ld->cap) {
		size_t cap = ld->cap ? ld->cap * 2 : 1024;
		struct lent **v = realloc(ld->v, cap * sizeof(*v));

		if (v == NULL)
			return ld->err = -ENOMEM;
		ld->v = v;
		ld->cap = cap;
	}
	if ((e = lent_new(r->identity)) == NULL)
		return ld->err = -ENOMEM;
	ld->v[ld->n++] = e;
	e->l.v6 = r->v6;
	e->l.v4 = r->v4;
	e->l.port_lo = r->port_lo;
	e->l.port_hi = r->port_hi;
	e->l.start = r->start;
	e->l.expiry = r->expiry;
	e->l.state = r->state;
	e->l.quarantine_until = r->state == LEASE_QUARANTINE ? r->quarantine_until : 0;
	e->l.tep = intern(m, r->tep);
	if (e->l.tep == NULL)
		return ld->err = -ENOMEM;
	if (row_slot(m, r->v4, r->port_lo, r->port_hi, &e->pool, &e->slot)) {
		e->l.pool = pool_name(m->pools[e->pool]);
		lent_psid(e, m->pools[e->pool]);
	} else {
		e->l.orphan = true;
		if ((e->l.pool = intern(m, r->pool)) == NULL)
			return ld->err = -ENOMEM;
	}
	return 0;
}

static int
cmp_deadline(const void *a, const void *b)
{
	int64_t x = deadline(*(struct lent *const *)a), y = deadline(*(struct lent *const *)b);

	return x < y ? -1 : x > y;
}

/* Hold every slot an orphan overlaps until the orphan would have ended. */
static void
orphan_hold(struct lease_mgr *m, struct lent *e, int64_t now)
{
	int64_t end =
	    e->l.state == LEASE_ACTIVE ? e->l.expiry + m->pol.quarantine : e->l.quarantine_until;

	for (size_t i = 0; i < m->npools; i++) {
		struct pool *p = m->pools[i];
		unsigned n = pool_port_range_size(p);
		uint32_t first, last;

		if (!pool_contains(p, e->l.v4))
			continue;
		if (n == 0 || (e->l.port_lo == 0 && e->l.port_hi == 0)) {
			pool_find(p, e->l.v4, POOL_PORT_FIRST, &first);
			last = first + pool_slots_per_addr(p) - 1;
		} else {
			uint16_t lo =
			    e->l.port_lo < POOL_PORT_FIRST ? POOL_PORT_FIRST : e->l.port_lo;
			uint32_t base;

			if (e->l.port_hi < POOL_PORT_FIRST)
				continue;
			pool_find(p, e->l.v4, POOL_PORT_FIRST, &base);
			first = base + (uint32_t)(lo - POOL_PORT_FIRST) / n;
			last = base + (uint32_t)(e->l.port_hi - POOL_PORT_FIRST) / n;
			if (first >= base + pool_slots_per_addr(p))
				continue;
			if (last >= base + pool_slots_per_addr(p))
				last = base + pool_slots_per_addr(p) - 1;
		}
		for (uint32_t s = first; s <= last; s++) {
			if (pool_take(p, s, now) == 0)
				pool_release(p, s, end);
		}
	}
}

static int
mgr_load(struct lease_mgr *m, int64_t now, bool commit, char *err, size_t errlen)
{
	struct load ld = {.m = m};
	char b[ADDR_STRLEN];
	int rc;

	if ((rc = store_load(m->st, load_row, &ld)) != 0) {
		if (ld.err == -ENOMEM)
			snprintf(err, errlen, "loading leases: out of memory");
		else
			snprintf(err, errlen, "loading leases: %s", store_errmsg(m->st));
		goto out;
	}
	/* What happened while the daemon was down: quarantine counts from expiry. */
	for (size_t i = 0; i < ld.n; i++) {
		struct lent *e = ld.v[i];

		if (e->l.state == LEASE_ACTIVE && e->l.expiry <= now) {
			e->l.state = LEASE_QUARANTINE;
			e->l.quarantine_until = e->l.expiry + m->pol.quarantine;
			/* A quarantine already over is deleted below instead. */
			if (e->l.quarantine_until > now && (rc = stage_update(m, e)) < 0)
				goto store_err;
			if ((rc = stage_history(m, LEASE_EV_EXPIRE, e->l.expiry, e)) < 0)
				goto store_err;
			m->c.expiries++;
		}
	}
	/* Claim slots in deadline order, so quarantines join the pool's list at its tail. */
	if (ld.n > 0)
		qsort(ld.v, ld.n, sizeof(*ld.v), cmp_deadline);
	/* The identity map at its final size at once: no rehash after rehash at start. */
	{
		size_t n = m->nidtab;

		while (n < ld.n)
			n *= 2;
		if (n > m->nidtab)
			id_resize(m, n);
	}
	for (size_t i = 0; i < ld.n; i++) {
		struct lent *e = ld.v[i];

		ld.v[i] = NULL;
		if (e->l.state == LEASE_QUARANTINE && e->l.quarantine_until <= now) {
			if ((rc = stage(m)) < 0 ||
			    (rc = store_delete(m->st, STORE_ID(e->l.v4, e->l.port_lo))) < 0) {
				free(e);
				rc = fail(m, "delete");
				goto store_err;
			}
			m->c.freed++;
			free(e);
			continue;
		}
		if (!e->l.orphan && pool_take(m->pools[e->pool], e->slot, now) != 0)
			e->l.orphan = true; /* two rows on one slot: only a damaged file does it */
		if (e->l.orphan) {
			log_warnx(
			    "lease %lld of %s holds %s ports %u-%u, which is in no configured "
			    "pool slot: kept until it ends, not renewed",
			    (long long)STORE_ID(e->l.v4, e->l.port_lo), e->identity,
			    addr_fmt_v4(e->l.v4, b), e->l.port_lo, e->l.port_hi);
			m->c.orphans++;
			if (m->norphans == m->caporphans) {
				size_t cap = m->caporphans ? m->caporphans * 2 : 16;
				struct lent **o = realloc(m->orphans, cap * sizeof(*o));

				if (o == NULL) {
					free(e);
					rc = -ENOMEM;
					snprintf(err, errlen, "loading leases: out of memory");
					goto out;
				}
				m->orphans = o;
				m->caporphans = cap;
			}
			m->orphans[m->norphans++] = e;
			e->pool = NOPOOL;
		} else {
			m->slots[e->pool][e->slot] = e;
			if (e->l.state == LEASE_QUARANTINE)
				pool_release(m->pools[e->pool], e->slot, e->l.quarantine_until);
		}
		if (heap_push(m, e) < 0) {
			orphan_remove(m, e);
			if (!e->l.orphan)
				m->slots[e->pool][e->slot] = NULL;
			free(e);
			rc = -ENOMEM;
			snprintf(err, errlen, "loading leases: out of memory");
			goto out;
		}
		if (e->l.state == LEASE_ACTIVE) {
			id_insert(m, e);
			m->c.active++;
		} else
			m->c.quarantined++;
	}
	for (size_t i = 0; i < m->norphans; i++)
		orphan_hold(m, m->orphans[i], now);
	if (commit && (rc = lease_commit(m)) < 0)
		goto store_err;
	rc = 0;
	goto out;
store_err:
	snprintf(err, errlen, "updating leases at start: %s", store_errmsg(m->st));
	rc = -EIO;
out:
	for (size_t i = 0; i < ld.n; i++)
		free(ld.v[i]);
	free(ld.v);
	return rc;
}

struct lease_mgr *
lease_mgr_new(struct store *st, struct pool **pools, size_t npools,
              const struct lease_policy *policy, int64_t now, char *err, size_t errlen)
{
	struct lease_mgr *m;
	struct pool_stats ps;

	if (npools >= NOPOOL) {
		snprintf(err, errlen, "too many pools (%zu)", npools);
		return NULL;
	}
	for (size_t i = 0; i < npools; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(pool_name(pools[i]), pool_name(pools[j])) == 0) {
				snprintf(err, errlen, "two pools are named \"%s\"",
				         pool_name(pools[i]));
				return NULL;
			}
			if (pool_overlaps(pools[i], pools[j])) {
				snprintf(err, errlen,
				         "pools \"%s\" and \"%s\" share addresses; an address "
				         "belongs to one pool",
				         pool_name(pools[j]), pool_name(pools[i]));
				return NULL;
			}
		}
		pool_stats(pools[i], &ps);
		if (ps.used != 0 || ps.quarantined != 0) {
			snprintf(err, errlen, "pool \"%s\" is not fresh", pool_name(pools[i]));
			return NULL;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto nomem;
	m->st = st;
	m->pol = *policy;
	m->npools = npools;
	m->nidtab = 1024;
	m->pools = calloc(npools + 1, sizeof(*m->pools));
	m->slots = calloc(npools + 1, sizeof(*m->slots));
	m->psize = calloc(npools + 1, sizeof(*m->psize));
	m->idtab = calloc(m->nidtab, sizeof(*m->idtab));
	/* At most every slot in quarantine: one bucket per slot, up to 2^20. */
	m->nqtab = 1024;
	for (size_t i = 0; i < npools; i++) {
		pool_stats(pools[i], &ps);
		while (m->nqtab < ps.size && m->nqtab < (1u << 20))
			m->nqtab *= 2;
	}
	m->qtab = calloc(m->nqtab, sizeof(*m->qtab));
	if (m->pools == NULL || m->slots == NULL || m->psize == NULL || m->idtab == NULL ||
	    m->qtab == NULL)
		goto nomem;
	for (size_t i = 0; i < npools; i++) {
		m->pools[i] = pools[i];
		pool_stats(pools[i], &ps);
		m->psize[i] = ps.size;
		if ((m->slots[i] = calloc(ps.size, sizeof(**m->slots))) == NULL)
			goto nomem;
	}
	if (mgr_load(m, now, true, err, errlen) < 0) {
		lease_mgr_free(m);
		return NULL;
	}
	return m;
nomem:
	snprintf(err, errlen, "lease manager: out of memory");
	lease_mgr_free(m);
	return NULL;
}

void
lease_mgr_free(struct lease_mgr *m)
{
	if (m == NULL)
		return;
	if (store_in_transaction(m->st))
		store_rollback(m->st);
	for (size_t i = 0; i < m->nheap; i++)
		free(m->heap[i]);
	free(m->heap);
	for (size_t i = 0; m->slots != NULL && i < m->npools; i++)
		free(m->slots[i]);
	free(m->slots);
	free(m->psize);
	free(m->pools);
	free(m->idtab);
	free(m->qtab);
	keycount_free(&m->per64);
	free(m->orphans);
	for (size_t i = 0; i < m->nnames; i++)
		free(m->names[i]);
	free(m->names);
	free(m);
}

/* ---- decisions ---- */

static int
pool_index(const struct lease_mgr *m, const char *name, size_t *first, size_t *end)
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
	if ((itep = intern(m, tep)) == NULL)
		return -ENOMEM;
	if ((e = id_lookup(m, identity)) != NULL) {
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
		if (stage_update(m, e) < 0)
			return -EIO;
		return stage_history(m, LEASE_EV_RENEW, now, e);
	}
	if (pool_index(m, pool, &first, &end) < 0)
		return -ENOENT;
	if ((e = q_lookup(m, identity)) != NULL && e->pool >= first && e->pool < end &&
	    (want_v4 == 0 || want_v4 == e->l.v4) && stage(m) == 0 &&
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
		id_insert(m, e);
		m->c.quarantined--;
		m->c.active++;
		m->c.allocations++;
		m->c.reclaims++;
		*flags = LEASE_NEW;
		*out = &e->l;
		if (stage_update(m, e) < 0)
			return -EIO;
		return stage_history(m, LEASE_EV_GRANT, now, e);
	}
	if (want_v4 != 0) {
		if ((rc = take_v4(m, first, end, want_v4, now, &pi, &slot)) < 0) {
			m->c.unavailable++;
			return rc;
		}
		if (!pool && psid_pool(m->pools[pi])) {
			pool_release(m->pools[pi], slot, now);
			m->c.unavailable++;
			return -EADDRNOTAVAIL;
		}
	} else {
		for (pi = first; pi < end; pi++) {
			if (!pool && psid_pool(m->pools[pi]))
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
	if ((rc = stage(m)) < 0) {
		pool_release(m->pools[pi], slot, now);
		return rc;
	}
	/* The slot's last holder may still sit in quarantine on disk. */
	if ((old = m->slots[pi][slot]) != NULL && (rc = lease_drop(m, old)) < 0)
		return rc;
	if ((e = lent_new(identity)) == NULL) {
		pool_release(m->pools[pi], slot, now);
		return -ENOMEM;
	}
	e->pool = (uint16_t)pi;
	e->slot = slot;
	e->l.v6 = *v6;
	pool_slot(m->pools[pi], slot, &e->l.v4, &e->l.port_lo, &e->l.port_hi);
	lent_psid(e, m->pools[pi]);
	e->l.pool = pool_name(m->pools[pi]);
	e->l.tep = itep;
	e->l.start = now;
	e->l.expiry = now + m->pol.lifetime;
	e->l.state = LEASE_ACTIVE;
	if (heap_push(m, e) < 0) {
		pool_release(m->pools[pi], slot, now);
		free(e);
		return -ENOMEM;
	}
	m->slots[pi][slot] = e;
	id_insert(m, e);
	m->c.active++;
	m->c.allocations++;
	to_row(e, &r);
	if (store_insert(m->st, &r) < 0)
		return fail(m, "insert");
	*flags = LEASE_NEW;
	*out = &e->l;
	return stage_history(m, LEASE_EV_GRANT, now, e);
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
	return stage_update(m, e);
}

const struct lease *
lease_find_v4(const struct lease_mgr *m, uint32_t v4, uint16_t port)
{
	uint32_t slot;

	for (size_t i = 0; i < m->npools; i++) {
		if (!pool_contains(m->pools[i], v4))
			continue;
		if (pool_find(m->pools[i], v4, port, &slot) && m->slots[i][slot] != NULL)
			return &m->slots[i][slot]->l;
		break;
	}
	for (size_t i = 0; i < m->norphans; i++) {
		const struct lent *e = m->orphans[i];

		if (e->l.v4 == v4 && ((e->l.port_lo == 0 && e->l.port_hi == 0) ||
		                      (port >= e->l.port_lo && port <= e->l.port_hi)))
			return &e->l;
	}
	return NULL;
}

const struct lease *
lease_find_identity(const struct lease_mgr *m, const char *identity)
{
	const struct lent *e = id_lookup(m, identity);

	return e != NULL ? &e->l : NULL;
}

int
lease_foreach(const struct lease_mgr *m, int (*cb)(void *arg, const struct lease *l), void *arg)
{
	int rc;

	for (size_t i = 0; i < m->nheap; i++)
		if ((rc = cb(arg, &m->heap[i]->l)) != 0)
			return rc;
	return 0;
}

static bool
page_match(const struct lent *e, const struct lease_filter *f)
{
	if (f->state && e->l.state != f->state)
		return false;
	if (f->pool && strcmp(e->l.pool, f->pool) != 0)
		return false;
	return !f->identity || strcmp(e->identity, f->identity) == 0;
}

int
lease_page(const struct lease_mgr *m, uint64_t cursor, const struct lease_filter *f, unsigned limit,
           unsigned budget, int (*cb)(void *arg, const struct lease *l), void *arg, uint64_t *next)
{
	uint64_t base = 0, pos = cursor;
	int rc;

	*next = 0;
	for (size_t i = 0; i < m->npools; base += m->psize[i++]) {
		if (pos >= base + m->psize[i])
			continue;
		if (f->pool && strcmp(pool_name(m->pools[i]), f->pool) != 0) {
			pos = base + m->psize[i];
			continue;
		}
		for (; pos < base + m->psize[i]; pos++) {
			const struct lent *e = m->slots[i][pos - base];

			if (limit == 0 || budget == 0) {
				*next = pos;
				return 0;
			}
			budget--;
			if (e == NULL || e->l.orphan || !page_match(e, f))
				continue;
			limit--;
			if ((rc = cb(arg, &e->l)) != 0)
				return rc;
		}
	}
	/* Orphans last, in the order of their array (they are few). */
	for (; pos < base + m->norphans; pos++) {
		const struct lent *e = m->orphans[pos - base];

		if (limit == 0 || budget == 0) {
			*next = pos;
			return 0;
		}
		budget--;
		if (!page_match(e, f))
			continue;
		limit--;
		if ((rc = cb(arg, &e->l)) != 0)
			return rc;
	}
	return 0;
}

int
lease_page_after(const struct lease_mgr *m, uint32_t v4, uint16_t port, uint64_t *cursor)
{
	uint64_t base = 0;
	uint32_t slot;

	for (size_t i = 0; i < m->npools; base += m->psize[i++]) {
		if (!pool_contains(m->pools[i], v4))
			continue;
		/* Port 0: after every port range of the address. */
		if (port == 0 && pool_find(m->pools[i], v4, POOL_PORT_FIRST, &slot)) {
			*cursor = base + slot + pool_slots_per_addr(m->pools[i]);
			return 0;
		}
		if (!pool_find(m->pools[i], v4, port, &slot))
			return -ENOENT;
		*cursor = base + slot + 1;
		return 0;
	}
	for (size_t i = 0; i < m->norphans; i++) {
		const struct lent *e = m->orphans[i];

		if (e->l.v4 == v4 && ((e->l.port_lo == 0 && e->l.port_hi == 0) ||
		                      (port >= e->l.port_lo && port <= e->l.port_hi))) {
			*cursor = base + i + 1;
			return 0;
		}
	}
	return -ENOENT;
}

int64_t
lease_next_expiry(const struct lease_mgr *m)
{
	/* While failed nothing expires (lease_expire refuses): no timer spinning on a past deadline. */
	return m->nheap > 0 && !m->failed ? deadline(m->heap[0]) : INT64_MAX;
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
	if (m->failed || !m->pol.history_days || now < m->next_prune || stage(m) < 0)
		return;
	m->next_prune = now + LEASE_PRUNE_EVERY;
	if (store_history_prune(m->st, now - (int64_t)m->pol.history_days * 86400,
	                        LEASE_PRUNE_ROWS) < 0)
		(void)fail(m, "pruning history");
}

unsigned
lease_expire(struct lease_mgr *m, int64_t now, void (*cb)(void *arg, const struct lease *l),
             void *arg)
{
	unsigned n = 0;
	/* Each lease is handled at most twice: expiry, then end of quarantine. */
	size_t bound = 2 * m->nheap + 1;

	while (m->nheap > 0 && deadline(m->heap[0]) <= now && bound-- > 0 && !m->failed) {
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
		return fail(m, "commit");
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
		return fail(m, "commit");
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

int
lease_mgr_reload(struct lease_mgr *m, int64_t now, char *err, size_t errlen)
{
	if (store_in_transaction(m->st))
		store_rollback(m->st);
	for (size_t i = 0; i < m->nheap; i++)
		free(m->heap[i]);
	m->nheap = 0;
	m->norphans = 0;
	memset(m->idtab, 0, m->nidtab * sizeof(*m->idtab));
	/* Its chains run through the entries just freed. */
	memset(m->qtab, 0, m->nqtab * sizeof(*m->qtab));
	m->nid = 0;
	keycount_free(&m->per64);
	for (size_t i = 0; i < m->npools; i++) {
		memset(m->slots[i], 0, m->psize[i] * sizeof(**m->slots));
		pool_reset(m->pools[i]);
	}
	m->c.active = m->c.quarantined = m->c.orphans = 0;
	m->failed = false;
	/* What changes at load (expiries while failing) goes with the next commit. */
	if (mgr_load(m, now, false, err, errlen) < 0) {
		m->failed = true;
		return -EIO;
	}
	return 0;
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

int
lease_mgr_repool(struct lease_mgr *m, struct pool **pools, size_t npools, int64_t now, char *err,
                 size_t errlen)
{
	struct pool **np = NULL, **op = m->pools;
	struct lent ***ns = NULL, ***os = m->slots;
	uint64_t *nz = NULL, *oz = m->psize;
	size_t on = m->npools;
	struct pool_stats ps;
	int rc = -ENOMEM;

	if (npools >= NOPOOL) {
		snprintf(err, errlen, "too many pools (%zu)", npools);
		return -EINVAL;
	}
	for (size_t i = 0; i < npools; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(pool_name(pools[i]), pool_name(pools[j])) ||
			    pool_overlaps(pools[i], pools[j])) {
				snprintf(err, errlen,
				         "pools \"%s\" and \"%s\" share a name or addresses",
				         pool_name(pools[j]), pool_name(pools[i]));
				return -EINVAL;
			}
	np = calloc(npools + 1, sizeof(*np));
	ns = calloc(npools + 1, sizeof(*ns));
	nz = calloc(npools + 1, sizeof(*nz));
	if (!np || !ns || !nz)
		goto nomem;
	for (size_t i = 0; i < npools; i++) {
		np[i] = pools[i];
		pool_stats(pools[i], &ps);
		nz[i] = ps.size;
		if (!(ns[i] = calloc(ps.size ? ps.size : 1, sizeof(**ns))))
			goto nomem;
	}
	m->pools = np;
	m->slots = ns;
	m->psize = nz;
	m->npools = npools;
	if (lease_mgr_reload(m, now, err, errlen) != 0) {
		/* Back to the pools that were: the store did not change. */
		char err2[128];

		m->pools = op;
		m->slots = os;
		m->psize = oz;
		m->npools = on;
		(void)lease_mgr_reload(m, now, err2, sizeof(err2));
		op = np, os = ns, oz = nz, on = npools;
		rc = -EIO;
	} else {
		rc = 0;
	}
	for (size_t i = 0; i < on; i++)
		free(os[i]);
	free(os);
	free(op);
	free(oz);
	return rc;
nomem:
	snprintf(err, errlen, "lease manager: out of memory");
	for (size_t i = 0; ns && i < npools; i++)
		free(ns[i]);
	free(ns);
	free(np);
	free(nz);
	return rc;
}
