/*
 * The TSP sessions' bookkeeping (session.h): the activity list that picks
 * the idle session to evict when a cap is reached and closes sessions idle
 * for longer than limits.unbound_timeout, and the identity → session map
 * that lets dstmd send "delete" on the connection of the lease's holder
 * (seed 001 appendix C §4). The protocol itself is access.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/keycount.h"
#include "dstmd/dstmd.h"
#include "dstmd/session.h"
#include "tsp/tsp.h"

struct session_activity session_act;

void
session_unlist(struct session *s)
{
	if (!s->listed)
		return;
	if (s->lprev)
		s->lprev->lnext = s->lnext;
	else
		session_act.head = s->lnext;
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	else
		session_act.tail = s->lprev;
	s->lprev = s->lnext = NULL;
	s->listed = false;
}

/* The session was just active: it goes to the end of the list. */
void
session_touch(struct session *s)
{
	session_unlist(s);
	s->last_ms = clock_mono_ms();
	s->lprev = session_act.tail;
	if (session_act.tail)
		session_act.tail->lnext = s;
	else
		session_act.head = s;
	session_act.tail = s;
	s->listed = true;
}

bool
session_idle(const struct session *s)
{
	return s->conn && !s->bound && !s->busy && s->nqueue == 0;
}

/* Close the least recently active idle session (of network `key` unless `any`). */
bool
session_evict_idle(struct dstmd *d, uint64_t key, bool any)
{
	for (struct session *s = session_act.head; s; s = s->lnext)
		if (session_idle(s) && (any || s->netkey == key)) {
			/* Its close comes in a moment; it stops counting now, and is never picked twice. */
			session_unlist(s);
			s->evicted = true;
			d->nconns--;
			(void)keycount_add(&d->conns64, s->netkey, -1);
			tsp_conn_close(s->conn);
			session_act.evicted++;
			return true;
		}
	return false;
}

/* Once a second: close the sessions idle for longer than limits.unbound_timeout. */
void
session_sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	int64_t limit = clock_mono_ms() - (int64_t)d->cfg->unbound_timeout * 1000;
	struct session *s = session_act.head, *next;

	if (!d->cfg->unbound_timeout)
		return;
	/* Oldest first: the walk ends at the first session active since the limit. */
	for (; s && s->last_ms <= limit; s = next) {
		next = s->lnext;
		if (session_idle(s)) {
			session_unlist(s);
			tsp_conn_close(s->conn);
			session_act.idle_closed++;
		}
	}
}

/* The most sessions at once: the configured cap, within the descriptors we may open. */
unsigned
session_cap(const struct dstmd *d)
{
	return session_act.nofile_cap && session_act.nofile_cap < d->cfg->max_connections
	           ? session_act.nofile_cap
	           : d->cfg->max_connections;
}

/* ---- The identity → open session map, for "delete" at expiry ---- */

static uint32_t
ident_hash(const char *s)
{
	return (uint32_t)(hash_str(s) & (SESSION_BUCKETS - 1));
}

struct session *
session_find(struct dstmd *d, const char *identity)
{
	for (struct session *s = d->sessions[ident_hash(identity)]; s; s = s->hnext)
		if (!strcmp(s->identity, identity))
			return s;
	return NULL;
}

void
session_unbind(struct session *s)
{
	struct session **pp;

	if (!s->bound)
		return;
	for (pp = &s->d->sessions[ident_hash(s->identity)]; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	s->bound = false;
	s->d->nsessions_bound--;
}

/* The session now speaks for `identity`; a previous session of it no longer does. */
void
session_bind(struct session *s, const char *identity)
{
	struct session *old;

	if (s->bound && !strcmp(s->identity, identity))
		return;
	session_unbind(s);
	if ((old = session_find(s->d, identity)))
		session_unbind(old);
	snprintf(s->identity, sizeof(s->identity), "%s", identity);
	s->hnext = s->d->sessions[ident_hash(identity)];
	s->d->sessions[ident_hash(identity)] = s;
	s->bound = true;
	s->d->nsessions_bound++;
}

void
session_unref(struct session *s)
{
	if (--s->refs > 0)
		return;
	for (unsigned i = 0; i < s->nqueue; i++)
		free(s->queue[i]);
	free(s);
}
