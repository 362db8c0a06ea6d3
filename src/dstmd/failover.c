/*
 * TEP failover: a TEP may name a backup (dstmd.json "teps[].backup").
 * Four times a second the control links are looked at (tepctl_down_ms);
 * a TEP whose link has been down for its "failover_after" seconds while
 * its backup's is up fails over:
 *
 *   - every active lease on it is moved to the backup (lease_acquire with
 *     the backup's name: the store's `tep` column changes in the turn's
 *     transaction, so the move survives a restart of dstmd);
 *   - once that is durable, each binding is pushed to the backup, a
 *     delete of it is queued for the primary (bulk: it reaches the TEP
 *     when it comes back, which then holds nothing stale), and the client
 *     is told: a TSP client with an open session gets a "delete" (it
 *     acquires again and is answered with the backup's address), a DHCPv6
 *     client a Reconfigure (it renews and gets the backup's address);
 *   - new grants for the primary's clients go to the backup: the views
 *     src/grant chooses among (failover_views) name the backup in the
 *     primary's place.
 *
 * When the primary's link is up again, new grants go to it again; leases
 * already moved stay on the backup until they end (no move back: a move
 * costs every client a reconnection, and the backup is serving them).
 * A lease the move cannot renew (the store failing) stays where it is and
 * is tried again at the next look.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "dstmd/dstmd.h"

#define FAILOVER_TICK_MS 250
#define IDENTITY_LEN     160

struct fo_tep {
	char *name; /* a TEP with a backup; by name: a reload replaces structures */
	bool failed;
	bool retry; /* some leases could not be moved: look again */
	/*
	 * The identities on this TEP when its link was first seen down: with
	 * several dstmd on one PostgreSQL database another instance may move
	 * a lease whose client has its session here, and this instance must
	 * still tell that client (watch_tell).
	 */
	char (*watch)[IDENTITY_LEN];
	size_t nwatch;
	bool watched; /* taken for this outage */
	uint64_t failovers, moved, returns;
};

struct failover {
	struct event *tick;
	struct fo_tep *teps;
	size_t nteps;
	const struct dstmd_config *views_cfg; /* the config `views` was built from */
	struct grant_tep *views;
};

/* A moved lease's binding to push and client to tell, once the move is durable. */
struct fo_push {
	struct deferred df;
	char primary[64], backup[64];
	struct tepctl_binding b;
	char identity[IDENTITY_LEN];
};

static struct fo_tep *
fo_find(struct failover *f, const char *name)
{
	for (size_t i = 0; i < f->nteps; i++)
		if (!strcmp(f->teps[i].name, name))
			return &f->teps[i];
	return NULL;
}

/* Rebuild the grant views: a failed TEP's clients go to its backup. */
static void
fo_views(struct dstmd *d)
{
	struct failover *f = d->failover;
	const struct dstmd_config *c = d->cfg;
	struct grant_tep *v = calloc(c->nteps ? c->nteps : 1, sizeof(*v));

	if (!v) {
		log_warnx("failover: out of memory: grants keep the previous TEP choice");
		return;
	}
	for (size_t i = 0; i < c->nteps; i++) {
		const struct dstmd_tep *t = &c->teps[i], *b;
		struct fo_tep *ft = fo_find(f, t->name);

		v[i] = c->tep_views[i];
		if (ft && ft->failed && (b = dstmd_tep_named(d, t->backup))) {
			v[i].ref = b;
			v[i].name = b->name;
			v[i].pool = b->pool ? b->pool : t->pool;
		}
	}
	free(f->views);
	f->views = v;
	f->views_cfg = c;
}

const struct grant_tep *
failover_views(struct dstmd *d)
{
	struct failover *f = d->failover;

	if (!f)
		return d->cfg->tep_views;
	if (f->views_cfg != d->cfg)
		fo_views(d);
	return f->views_cfg == d->cfg ? f->views : d->cfg->tep_views;
}

/* Tell the client of `l` (moved to another TEP, durably) to come again. */
static void
tell_client(struct dstmd *d, const struct lease *l)
{
	if (!strncmp(l->identity, "dhcp6:", 6))
		(void)dhcp_reconfigure(d, l->identity);
	else
		access_notify_delete(d, l);
}

static void watch_add(struct fo_tep *ft, const char *identity);

static void
push_run(struct dstmd *d, struct deferred *df)
{
	struct fo_push *p = (struct fo_push *)df;
	const struct dstmd_tep *primary = dstmd_tep_named(d, p->primary);
	const struct dstmd_tep *backup = dstmd_tep_named(d, p->backup);
	struct fo_tep *ft = d->failover ? fo_find(d->failover, p->primary) : NULL;
	const struct lease *l;

	if (dstmd_commit_failed(d)) {
		/*
		 * The move did not happen here. Either the lease is still on the
		 * primary and the next look moves it again, or another instance
		 * moved it first (its commit made ours conflict): the reload shows
		 * it on the backup, and this instance, which holds the client's
		 * session, must still tell the client. Watch it again for both.
		 */
		if (ft)
			watch_add(ft, p->identity);
		free(p);
		return;
	}
	if (backup)
		tepctl_create(d->tepctl, backup, &p->b, NULL, NULL);
	if (primary) {
		struct tepctl_binding del = p->b;

		del.lifetime = 0;
		tepctl_delete(d->tepctl, primary, &del);
	}
	if ((l = lease_find_v4(d->leases, p->b.v4, p->b.port_lo)) &&
	    !strcmp(l->identity, p->identity) && l->state == LEASE_ACTIVE)
		tell_client(d, l);
	free(p);
}

/* One active lease of the failed TEP, copied: moving changes the lease table. */
struct fo_item {
	char identity[IDENTITY_LEN];
	struct in6_addr v6;
	uint32_t v4;
	char pool[64];
};

struct fo_collect {
	const char *tep;
	struct fo_item *items;
	size_t n, cap;
	bool oom;
};

static int
collect_one(void *arg, const struct lease *l)
{
	struct fo_collect *c = arg;

	if (l->state != LEASE_ACTIVE || l->offer || l->orphan || !l->tep || strcmp(l->tep, c->tep))
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct fo_item *it = realloc(c->items, cap * sizeof(*it));

		if (!it) {
			c->oom = true;
			return 1;
		}
		c->items = it;
		c->cap = cap;
	}
	snprintf(c->items[c->n].identity, sizeof(c->items[c->n].identity), "%s", l->identity);
	c->items[c->n].v6 = l->v6;
	c->items[c->n].v4 = l->v4;
	snprintf(c->items[c->n].pool, sizeof(c->items[c->n].pool), "%s", l->pool ? l->pool : "");
	c->n++;
	return 0;
}

/* Move every active lease of `t` to `b`; the number moved, *left those that stay. */
static unsigned
fo_move(struct dstmd *d, const struct dstmd_tep *t, const struct dstmd_tep *b, bool *left,
        struct fo_tep *ft)
{
	struct fo_collect c = {.tep = t->name};
	int64_t now = clock_wall_s();
	unsigned moved = 0;

	lease_foreach(d->leases, collect_one, &c);
	*left = c.oom || moved < c.n;
	if (c.oom)
		log_warnx("failover: out of memory: some leases of %s stay until the next look",
		          t->name);
	for (size_t i = 0; i < c.n; i++) {
		const struct fo_item *it = &c.items[i];
		const struct lease *l = NULL;
		unsigned flags = 0;
		struct fo_push *p;
		int rc = lease_acquire(d->leases, it->identity, &it->v6, it->v4,
		                       it->pool[0] ? it->pool : NULL, b->name, now, &l, &flags);

		if (rc != 0 || !l) {
			log_warnx("failover: lease of %s stays on %s: %s", it->identity, t->name,
			          strerror(-rc));
			continue;
		}
		if (!(p = calloc(1, sizeof(*p)))) {
			log_warnx("failover: out of memory: %s is moved but not pushed yet",
			          it->identity);
			continue;
		}
		p->df.run = push_run;
		snprintf(p->primary, sizeof(p->primary), "%s", t->name);
		snprintf(p->backup, sizeof(p->backup), "%s", b->name);
		snprintf(p->identity, sizeof(p->identity), "%s", l->identity);
		TEPCTL_BINDING_LIVE(&p->b, l, now);
		dstmd_defer(d, &p->df);
		moved++;
		/* push_run tells this one, once the move is durable. */
		for (size_t j = 0; j < ft->nwatch; j++)
			if (!strcmp(ft->watch[j], it->identity))
				ft->watch[j][0] = '\0';
	}
	*left = c.oom || moved < c.n;
	free(c.items);
	if (moved) {
		dstmd_rearm_expiry(d);
		dstmd_schedule_commit(d);
	}
	return moved;
}

static void
watch_drop(struct fo_tep *ft)
{
	free(ft->watch);
	ft->watch = NULL;
	ft->nwatch = 0;
}

/* Watch `identity` (again): a move of it failed to commit. */
static void
watch_add(struct fo_tep *ft, const char *identity)
{
	char(*w)[IDENTITY_LEN] = realloc(ft->watch, (ft->nwatch + 1) * sizeof(*w));

	if (!w) {
		log_warnx("failover: out of memory: %s is not watched; its client learns of a "
		          "move at its next renewal",
		          identity);
		return;
	}
	ft->watch = w;
	snprintf(ft->watch[ft->nwatch++], IDENTITY_LEN, "%s", identity);
}

/* Remember who is on `t` now (its link was just seen down). */
static void
watch_take(struct dstmd *d, struct fo_tep *ft, const struct dstmd_tep *t)
{
	struct fo_collect c = {.tep = t->name};

	watch_drop(ft);
	ft->watched = true;
	lease_foreach(d->leases, collect_one, &c);
	if (!c.n) {
		free(c.items);
		return;
	}
	if (!(ft->watch = calloc(c.n, sizeof(*ft->watch)))) {
		free(c.items);
		return;
	}
	for (size_t i = 0; i < c.n; i++)
		memcpy(ft->watch[i], c.items[i].identity, IDENTITY_LEN);
	ft->nwatch = c.n;
	free(c.items);
}

/*
 * Tell the clients of watched leases that are on the backup now and that
 * this instance did not move (those are told by push_run, after their
 * commit): another instance moved them, and what it committed is what we
 * read. Leases still on the primary stay watched; ended ones are dropped.
 */
static void
watch_tell(struct dstmd *d, struct fo_tep *ft, const struct dstmd_tep *t, const struct dstmd_tep *b)
{
	size_t keep = 0;

	for (size_t i = 0; i < ft->nwatch; i++) {
		const struct lease *l = lease_find_identity(d->leases, ft->watch[i]);

		if (l && l->state == LEASE_ACTIVE && l->tep && !strcmp(l->tep, t->name)) {
			memmove(ft->watch[keep++], ft->watch[i], IDENTITY_LEN);
			continue;
		}
		if (l && l->state == LEASE_ACTIVE && l->tep && !strcmp(l->tep, b->name)) {
			log_debug("failover: %s was moved to %s by another instance; its client "
			          "is told if its session is here",
			          l->identity, b->name);
			tell_client(d, l);
		}
	}
	ft->nwatch = keep;
	if (!keep)
		watch_drop(ft);
}

static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	struct failover *f = d->failover;
	struct timeval tv = {0, FAILOVER_TICK_MS * 1000};
	bool changed = false;

	for (size_t i = 0; i < d->cfg->nteps; i++) {
		const struct dstmd_tep *t = &d->cfg->teps[i], *b;
		struct fo_tep *ft;
		int64_t down;

		if (!t->backup || !(b = dstmd_tep_named(d, t->backup)))
			continue;
		if (!(ft = fo_find(f, t->name))) {
			struct fo_tep *n = realloc(f->teps, (f->nteps + 1) * sizeof(*n));

			if (!n || !(n[f->nteps].name = strdup(t->name))) {
				if (n)
					f->teps = n;
				continue;
			}
			f->teps = n;
			ft = &f->teps[f->nteps++];
			*ft = (struct fo_tep){.name = ft->name};
		}
		down = tepctl_down_ms(d->tepctl, t);
		if (down == 0) {
			watch_drop(ft);
			ft->watched = false;
		} else if (!ft->failed && !ft->watched) {
			watch_take(d, ft, t);
		}
		if (ft->failed && down == 0) {
			ft->failed = false;
			ft->returns++;
			changed = true;
			log_info("tep %s: back: new grants go to it again; moved leases stay on %s",
			         t->name, b->name);
			continue;
		}
		if (down < (int64_t)t->failover_after * 1000 || !tepctl_up(d->tepctl, b))
			continue;
		if (d->store_failing)
			continue; /* a move is a lease change: wait for the store */
		if (!ft->failed) {
			ft->failed = true;
			ft->failovers++;
			changed = true;
			log_warnx("tep %s: down for %lld ms: failing over to %s", t->name,
			          (long long)down, b->name);
		} else if (!ft->retry && !ft->watch) {
			continue;
		}
		ft->moved += fo_move(d, t, b, &ft->retry, ft);
		watch_tell(d, ft, t, b);
	}
	if (changed)
		fo_views(d);
	evtimer_add(f->tick, &tv);
}

int
failover_init(struct dstmd *d)
{
	struct failover *f = calloc(1, sizeof(*f));
	struct timeval tv = {0, FAILOVER_TICK_MS * 1000};

	if (!f || !(f->tick = evtimer_new(d->base, tick_cb, d))) {
		free(f);
		return -ENOMEM;
	}
	d->failover = f;
	fo_views(d);
	evtimer_add(f->tick, &tv);
	return 0;
}

void
failover_fini(struct dstmd *d)
{
	struct failover *f = d->failover;

	if (!f)
		return;
	event_free(f->tick);
	for (size_t i = 0; i < f->nteps; i++) {
		free(f->teps[i].name);
		free(f->teps[i].watch);
	}
	free(f->teps);
	free(f->views);
	free(f);
	d->failover = NULL;
}

json_t *
failover_status(struct dstmd *d)
{
	json_t *a = tepctl_status(d->tepctl), *v;
	size_t i;

	json_array_foreach(a, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const struct dstmd_tep *t = dstmd_tep_named(d, name);
		struct fo_tep *ft = d->failover ? fo_find(d->failover, name) : NULL;

		if (!t || !t->backup)
			continue;
		json_object_set_new(v, "backup", json_string(t->backup));
		json_object_set_new(v, "failed_over", json_boolean(ft && ft->failed));
		json_object_set_new(v, "failovers",
		                    json_integer(ft ? (json_int_t)ft->failovers : 0));
		json_object_set_new(v, "moved", json_integer(ft ? (json_int_t)ft->moved : 0));
	}
	return a;
}
