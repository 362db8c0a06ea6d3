/*
 * Building the lease manager (lease.c has the whole picture): every row of
 * the store becomes an entry in its pool slot, the identity index and the
 * deadline heap; a row whose address matches no configured slot becomes
 * an orphan that holds what it overlaps until it would have ended. A
 * reload rebuilds all of it from the store, and new pools (reload of the
 * configuration) re-place every lease in them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "store/lease_int.h"

struct load {
	struct lease_mgr *m;
	struct lent **v;
	size_t n, cap;
	int err;
};

struct lent *
lease_entry_new(const char *identity)
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
bool
lease_psid_pool(const struct pool *p)
{
	unsigned off, len;

	pool_psid(p, &off, &len);
	return len > 0;
}

/* The port set of a PSID pool's slot, in the lease (lease.h). */
void
lease_entry_psid(struct lent *e, const struct pool *p)
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
	if ((e = lease_entry_new(r->identity)) == NULL)
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
	e->l.tep = lease_intern(m, r->tep);
	if (e->l.tep == NULL)
		return ld->err = -ENOMEM;
	if (row_slot(m, r->v4, r->port_lo, r->port_hi, &e->pool, &e->slot)) {
		e->l.pool = pool_name(m->pools[e->pool]);
		lease_entry_psid(e, m->pools[e->pool]);
	} else {
		e->l.orphan = true;
		if ((e->l.pool = lease_intern(m, r->pool)) == NULL)
			return ld->err = -ENOMEM;
	}
	return 0;
}

static int
cmp_deadline(const void *a, const void *b)
{
	int64_t x = lease_deadline(*(struct lent *const *)a),
	        y = lease_deadline(*(struct lent *const *)b);

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
			if (e->l.quarantine_until > now && (rc = lease_stage_update(m, e)) < 0)
				goto store_err;
			if ((rc = lease_stage_history(m, LEASE_EV_EXPIRE, e->l.expiry, e)) < 0)
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
			lease_id_resize(m, n);
	}
	for (size_t i = 0; i < ld.n; i++) {
		struct lent *e = ld.v[i];

		ld.v[i] = NULL;
		if (e->l.state == LEASE_QUARANTINE && e->l.quarantine_until <= now) {
			if ((rc = lease_stage(m)) < 0 ||
			    (rc = store_delete(m->st, STORE_ID(e->l.v4, e->l.port_lo))) < 0) {
				free(e);
				rc = lease_fail(m, "delete");
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
		if (lease_heap_push(m, e) < 0) {
			lease_orphan_remove(m, e);
			if (!e->l.orphan)
				m->slots[e->pool][e->slot] = NULL;
			free(e);
			rc = -ENOMEM;
			snprintf(err, errlen, "loading leases: out of memory");
			goto out;
		}
		if (e->l.state == LEASE_ACTIVE) {
			lease_id_insert(m, e);
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
