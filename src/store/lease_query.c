/*
 * Lookups and listings over the lease manager's indexes (lease.c has the
 * picture): by address and port, by identity, every lease in turn, pages
 * for the control socket that stay stable while leases come and go, and
 * the next deadline for the caller's timer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "store/lease_int.h"

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
	const struct lent *e = lease_id_lookup(m, identity);

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
	return m->nheap > 0 && !m->failed ? lease_deadline(m->heap[0]) : INT64_MAX;
}
