/*
 * dstmd, the DSTM server (seed 001 §6; DESIGN §1): start-up, the event
 * loop, group commit, lease expiry and revocation. Client access lives in
 * access.c, the TEP links in tepctl.c, the control socket in control.c.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/args.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/privdrop.h"
#include "common/service.h"
#include "dstmd/dstmd.h"
#include "dstmd/tsp_udp.h"

/* A "delete" to send, once the expiry or release that caused it is durable. */
struct notify {
	struct deferred df;
	bool to_client;
	const struct dstmd_tep *tep;
	struct tepctl_binding b;
	char identity[160];
};

const struct dstmd_tep *
dstmd_tep_named(const struct dstmd *d, const char *name)
{
	for (size_t i = 0; name && i < d->cfg->nteps; i++)
		if (!strcmp(d->cfg->teps[i].name, name))
			return &d->cfg->teps[i];
	return NULL;
}

void
dstmd_schedule_commit(struct dstmd *d)
{
	event_active(d->commit_ev, EV_TIMEOUT, 0);
}

void
dstmd_defer(struct dstmd *d, struct deferred *df)
{
	df->next = NULL;
	*d->after_commit_tail = df;
	d->after_commit_tail = &df->next;
	dstmd_schedule_commit(d);
}

static void
run_list(struct dstmd *d, struct deferred *list)
{
	struct deferred *next;

	for (; list; list = next) {
		next = list->next;
		list->run(d, list);
	}
}

static void store_failed(struct dstmd *d);
static void store_recovered(struct dstmd *d);
static void spread_pools(struct dstmd *d);
static struct log_rl store_rl = {.burst = 1};

bool
dstmd_commit_failed(const struct dstmd *d)
{
	return d->commit_failed;
}

/* Run deferred actions of writes that did not reach the disk: each answers with an error. */
static void
run_failed(struct dstmd *d, struct deferred *list)
{
	d->commit_failed = true;
	run_list(d, list);
	d->commit_failed = false;
}

/*
 * The end of a loop turn (lowest priority): hand what the turn decided to
 * the writer thread as one batch. What waited for it runs once the batch
 * is durable (durable_cb). While the store is failing the lease manager
 * refuses every change, so what waited here can only have failed.
 *
 * Group commit: while the writer makes one batch durable, every turn's
 * batch is handed over at the turn's end and joins the one queued behind
 * it (store_commit_async), which the writer begins as soon as the first
 * is durable, without waiting for this loop to come round. So a commit
 * costs one fdatasync whatever the number of requests (TSP, DHCPv6,
 * expiry, revocation) it carries, the disk's latency is paid once per
 * batch rather than once per request, and the writer never idles while
 * writes wait; a request that finds the writer idle is handed over at
 * once, with no timer. PostgreSQL keeps one batch with the writer: the
 * turns that follow leave their writes in the store's open batch and
 * their waiting actions on `after_commit`, and durable_cb hands all of
 * them over as the next batch.
 */
static void
commit_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	struct deferred *list = d->after_commit;
	struct dbatch *b;
	uint64_t ticket = d->last_ticket;
	int64_t t0 = clock_mono_ms();

	if (!d->store_failing && d->last_ticket > d->durable) {
		if (!d->commit_waiting)
			d->ctr.commit_joined++;
		if (store_shared(d->store)) {
			d->commit_waiting = true;
			return;
		}
	}
	d->commit_waiting = false;
	d->after_commit = NULL;
	d->after_commit_tail = &d->after_commit;
	if (lease_commit_async(d->leases, &ticket) != 0) {
		run_failed(d, list);
		if (!d->store_failing)
			store_failed(d);
		return;
	}
	d->last_ticket = ticket;
	/*
	 * A small batch that found the writer idle was committed right here,
	 * in this thread (store_commit_async): it is durable already, and
	 * nothing earlier waits (the writer was idle), so what waited on it
	 * goes out now.
	 */
	if (ticket > d->durable && store_async_durable(d->store) >= ticket) {
		metrics_hist_observe(&d->commit_latency, (double)(clock_mono_ms() - t0) / 1000.0);
		d->durable = ticket;
	}
	if (!list)
		return;
	if (ticket <= d->durable) {
		run_list(d, list);
		return;
	}
	if (!(b = calloc(1, sizeof(*b))))
		fatalx("out of memory");
	b->ticket = ticket;
	b->list = list;
	b->handed_ms = clock_mono_ms();
	*d->batches_tail = b;
	d->batches_tail = &b->next;
}

/*
 * A commit failed (a full disk, a read-only file, a vanished database):
 * the writer drops it and every batch after it, which were decided on
 * top of it. Nothing that waited for them goes out as if it had
 * succeeded: TSP requests get 530, DHCPv6 exchanges NoAddrsAvail, the
 * deletes of ends that did not happen are not sent. The lease manager
 * refuses every change (immediate error replies) until a probe commit
 * goes through, tried once a second; then it reloads the leases from the
 * disk, which holds exactly what was acknowledged. dstmd stays up, logs
 * at most once a second and shows it in status and counters.
 */
static void
store_failed(struct dstmd *d)
{
	struct dbatch *b;
	struct deferred *list;
	struct timeval second = {1, 0};
	uint64_t durable = d->durable;

	lease_mgr_store_failed(d->leases);
	(void)store_async_recover(d->store);
	/* Batches before the failed one went through: theirs run as usual. */
	if (store_async_poll(d->store, &durable) == 0 && durable > d->durable)
		d->durable = durable;
	snprintf(d->store_error, sizeof(d->store_error), "%s", store_errmsg(d->store));
	if (!d->store_failing) {
		d->store_failing = true;
		d->store_failing_since = clock_wall_s();
		d->store_failures++;
	}
	log_warnx_rl(&store_rl,
	             "cannot commit leases to %s: %s; refusing changes, trying again every "
	             "second",
	             d->cfg->database, d->store_error);
	while ((b = d->batches)) {
		d->batches = b->next;
		if (b->ticket <= d->durable)
			run_list(d, b->list);
		else
			run_failed(d, b->list);
		free(b);
	}
	d->batches_tail = &d->batches;
	list = d->after_commit;
	d->after_commit = NULL;
	d->after_commit_tail = &d->after_commit;
	d->commit_waiting = false;
	run_failed(d, list);
	d->probe_ticket = 0;
	/*
	 * Another instance on the same PostgreSQL database got there first:
	 * the database works, our memory is behind. Probe (and reload) at
	 * once rather than in a second: the clients refused meanwhile ask again.
	 */
	if (store_conflicted(d->store))
		second.tv_sec = 0;
	evtimer_add(d->store_retry_ev, &second);
}

/* Once a second while failing: does a commit go through again? */
static void
store_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	uint64_t ticket = d->last_ticket;

	if (!d->store_failing || d->probe_ticket)
		return;
	if (lease_mgr_probe(d->leases) != 0 || store_commit_async(d->store, &ticket) != 0) {
		struct timeval second = {1, 0};

		evtimer_add(d->store_retry_ev, &second);
		return;
	}
	d->last_ticket = d->probe_ticket = ticket;
	/* Committed in this thread (store_commit_async): durable_cb will not hear of it. */
	if (store_async_durable(d->store) >= ticket) {
		d->durable = ticket;
		store_recovered(d);
	}
}

/* The probe is durable: memory again from the disk, and serve. */
static void
store_recovered(struct dstmd *d)
{
	char err[256];
	struct timeval second = {1, 0};

	d->probe_ticket = 0;
	if (lease_mgr_reload(d->leases, clock_wall_s(), err, sizeof(err)) != 0) {
		snprintf(d->store_error, sizeof(d->store_error), "%s", err);
		log_warnx_rl(&store_rl, "reloading the leases from %s: %s; trying again",
		             d->cfg->database, err);
		evtimer_add(d->store_retry_ev, &second);
		return;
	}
	spread_pools(d);
	log_info("the lease store %s commits again after %llds; leases reloaded, serving",
	         d->cfg->database, (long long)(clock_wall_s() - d->store_failing_since));
	d->store_failing = false;
	d->store_error[0] = '\0';
	dstmd_schedule_commit(d); /* what the reload changed */
	dstmd_rearm_expiry(d);
}

/* Leases that ended this recently are left to the expiry owner by a reload elsewhere. */
#define STORE_SYNC_GRACE_S 5

/*
 * Instances sharing a pool through PostgreSQL would all hand out the head
 * of the free queue and collide on every grant (the database refuses the
 * second, dstmd reloads): each starts at its own random place instead,
 * after every load of the leases.
 */
static void
spread_pools(struct dstmd *d)
{
	if (!store_shared(d->store))
		return;
	for (size_t i = 0; i < d->cfg->npools; i++) {
		struct pool_stats ps;

		pool_stats(d->pools[i], &ps);
		pool_rotate(d->pools[i], (uint32_t)((ps.size * d->pool_spread) >> 32));
	}
}

/*
 * Another dstmd on the same PostgreSQL database committed: memory again
 * from the database, at a moment nothing of ours is in flight (every
 * decision made is durable, none is open), so a reload loses nothing.
 * Until such a moment the flag stays; a decision taken meanwhile on the
 * old memory is refused by the database if it conflicts (store_pg.c).
 */
static void
store_sync(struct dstmd *d)
{
	char err[256];

	if (!d->store_sync_pending && !store_foreign_changes(d->store))
		return;
	d->store_sync_pending = true;
	if (d->store_failing || d->last_ticket > d->durable || d->after_commit ||
	    store_in_transaction(d->store)) {
		/* Busy: again soon, also if no commit of ours comes to call us. */
		struct timeval soon = {0, 20 * 1000};

		/*
		 * Writes nobody waits for (a DHCPv6 Advertise's offer) stay in the
		 * open batch until the next commit: make it now, or we never idle.
		 */
		if (!d->store_failing && store_in_transaction(d->store))
			dstmd_schedule_commit(d);
		evtimer_add(d->store_sync_ev, &soon);
		return;
	}
	d->store_sync_pending = false;
	/*
	 * Leases that ended a moment ago are the expiry owner's to end (its
	 * timer runs within a second): a reload that ended them here too would
	 * only collide with its commit. Older ones (no owner for a while) are
	 * ended by whoever reloads, as at start.
	 */
	if (lease_mgr_reload(
	        d->leases, clock_wall_s() - (store_expiry_owner(d->store) ? 0 : STORE_SYNC_GRACE_S),
	        err, sizeof(err)) != 0) {
		log_warnx("reloading the leases another instance changed: %s", err);
		store_failed(d);
		return;
	}
	d->store_syncs++;
	spread_pools(d);
	dstmd_schedule_commit(d); /* what the reload changed */
	dstmd_rearm_expiry(d);
}

static void
store_sync_cb(evutil_socket_t fd, short ev, void *arg)
{
	store_sync(arg);
}

/* The writer thread made batches durable: release what waited for them. */
static void
durable_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	struct dbatch *b;
	uint64_t durable;

	int rc = store_async_poll(d->store, &durable);

	if (durable > d->durable)
		d->durable = durable;
	while ((b = d->batches) && b->ticket <= d->durable) {
		metrics_hist_observe(&d->commit_latency,
		                     (double)(clock_mono_ms() - b->handed_ms) / 1000.0);
		d->batches = b->next;
		if (!d->batches)
			d->batches_tail = &d->batches;
		run_list(d, b->list);
		free(b);
	}
	if (rc != 0) {
		store_failed(d);
		return;
	}
	if (d->store_failing && d->probe_ticket && durable >= d->probe_ticket)
		store_recovered(d);
	store_sync(d);
	/* The writer is idle again: what waited for it is the next batch. */
	if (d->commit_waiting && d->last_ticket <= d->durable)
		dstmd_schedule_commit(d);
}

static void
notify_run(struct dstmd *d, struct deferred *df)
{
	struct notify *n = (struct notify *)df;
	const struct lease *l;

	if (dstmd_commit_failed(d)) {
		free(n); /* the end did not happen */
		return;
	}
	if (n->to_client && (l = lease_find_v4(d->leases, n->b.v4, n->b.port_lo)) &&
	    !strcmp(l->identity, n->identity)) {
		struct grant_identity id;

		if (grant_identity_parse(l->identity, &id) && id.kind == GRANT_ID_DUID)
			(void)dhcp_reconfigure(d, l->identity);
		else
			access_notify_delete(d, l);
	}
	if (n->tep)
		tepctl_delete(d->tepctl, n->tep, &n->b);
	free(n);
}

/* Queue the deletes that follow the end of `l`, for after the commit. */
static void
notify_end(struct dstmd *d, const struct lease *l, bool to_client)
{
	struct notify *n = calloc(1, sizeof(*n));

	if (!n) {
		log_warnx("out of memory: the end of a lease is not sent");
		return;
	}
	n->df.run = notify_run;
	n->to_client = to_client;
	n->tep = dstmd_tep_named(d, l->tep);
	TEPCTL_BINDING_OF(&n->b, l);
	snprintf(n->identity, sizeof(n->identity), "%s", l->identity);
	dstmd_defer(d, &n->df);
}

int
dstmd_end_lease(struct dstmd *d, const struct lease *l, bool notify_client, bool give_back)
{
	int rc;

	notify_end(d, l, notify_client);
	rc = give_back ? lease_release(d->leases, l, clock_wall_s())
	               : lease_revoke(d->leases, l, clock_wall_s());
	dstmd_rearm_expiry(d);
	return rc == -EALREADY ? 0 : rc;
}

static void
expired_one(void *arg, const struct lease *l)
{
	struct dstmd *d = arg;
	char a[ADDR_STRLEN];

	log_info("lease of %s on %s expired", l->identity, addr_fmt_v4(l->v4, a));
	notify_end(d, l, true);
}

static void
expiry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	struct timeval second = {1, 0};

	if (!store_expiry_owner(d->store)) {
		/* Another instance on the same PostgreSQL database runs expiry. */
		evtimer_add(d->expiry_ev, &second);
		return;
	}
	if (lease_expire(d->leases, clock_wall_s(), expired_one, d) > 0)
		dstmd_schedule_commit(d);
	dstmd_rearm_expiry(d);
}

void
dstmd_rearm_expiry(struct dstmd *d)
{
	int64_t next = lease_next_expiry(d->leases), now = clock_wall_s();
	struct timeval tv = {.tv_sec = 60};

	if (next != INT64_MAX)
		tv.tv_sec = next <= now ? 0 : (next - now < 60 ? next - now : 60);
	evtimer_add(d->expiry_ev, &tv);
}

/* Re-push every live binding of `tep` (it (re)connected). */
struct repush_ctx {
	struct dstmd *d;
	struct tepctl *tc;
	const struct dstmd_tep *tep;
	int64_t now;
	unsigned n;
};

static int
repush_one(void *arg, const struct lease *l)
{
	struct repush_ctx *rc = arg;
	struct tepctl_binding b = {0};

	if (l->state != LEASE_ACTIVE || !l->tep || strcmp(l->tep, rc->tep->name) != 0)
		return 0;
	TEPCTL_BINDING_LIVE(&b, l, rc->now);
	tepctl_create(rc->tc, rc->tep, &b, NULL, NULL);
	rc->n++;
	return 0;
}

static void
repush(void *arg, struct tepctl *tc, const struct dstmd_tep *tep)
{
	struct repush_ctx rc = {.d = arg, .tc = tc, .tep = tep, .now = clock_wall_s()};

	lease_foreach(rc.d->leases, repush_one, &rc);
	log_info("tep %s: %u live bindings queued", tep->name, rc.n);
}

/* At start, a TEP may still hold bindings that ended while dstmd was down. */
static int
stale_one(void *arg, const struct lease *l)
{
	struct dstmd *d = arg;
	const struct dstmd_tep *tep;
	struct tepctl_binding b = {0};

	if (l->state != LEASE_QUARANTINE || !(tep = dstmd_tep_named(d, l->tep)))
		return 0;
	TEPCTL_BINDING_OF(&b, l);
	tepctl_delete(d->tepctl, tep, &b);
	return 0;
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct dstmd *d = arg;

	log_info("signal %d: stopping", (int)sig);
	svc_stopping();
	event_base_loopexit(d->base, NULL);
}

static void
sighup_cb(evutil_socket_t sig, short ev, void *arg)
{
	(void)dstmd_reload(arg);
}

struct pool **
dstmd_pools_new(const struct dstmd_config *cfg, char *err, size_t errlen)
{
	struct pool **pools = calloc(cfg->npools + 1, sizeof(*pools));
	char e[256];

	if (!pools) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->npools; i++) {
		if (!(pools[i] = pool_new(&cfg->pools[i].pc, e, sizeof(e)))) {
			snprintf(err, errlen, "%s:%d: /pools/%zu: %s", cfg_path(cfg->doc),
			         cfg_line(cfg->doc, "/pools"), i, e);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (pool_overlaps(pools[i], pools[j])) {
				snprintf(err, errlen,
				         "%s:%d: pools \"%s\" and \"%s\" overlap; an address may "
				         "belong to one pool only",
				         cfg_path(cfg->doc), cfg_line(cfg->doc, "/pools"),
				         pool_name(pools[j]), pool_name(pools[i]));
				goto fail;
			}
	}
	return pools;
fail:
	dstmd_pools_free(pools, cfg->npools);
	return NULL;
}

void
dstmd_pools_free(struct pool **pools, size_t n)
{
	for (size_t i = 0; pools && i < n; i++)
		pool_free(pools[i]);
	free(pools);
}

static int
open_pools(struct dstmd *d)
{
	char err[512];

	if (!(d->pools = dstmd_pools_new(d->cfg, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return -EINVAL;
	}
	return 0;
}

static int
orphan_one(void *arg, const struct lease *l)
{
	char a[ADDR_STRLEN];
	int64_t now = *(const int64_t *)arg;

	if (l->orphan && l->state == LEASE_ACTIVE)
		log_warnx("lease of %s on %s is outside the pools now: it is revoked at its "
		          "renewal, or ends at its expiry in %llds (the client and the TEP are "
		          "told either way)",
		          l->identity, addr_fmt_v4(l->v4, a), (long long)(l->expiry - now));
	return 0;
}

int
dstmd_repool(struct dstmd *d, struct pool **pools, size_t npools, char *err, size_t errlen)
{
	uint64_t durable = 0;
	int64_t now = clock_wall_s();
	struct lease_counters lc;
	int rc;

	if (d->store_failing) {
		snprintf(err, errlen,
		         "the lease store is failing: reload the pools once it commits");
		return -EIO;
	}
	/*
	 * The manager reloads every lease from the store: what memory decided
	 * must be durable first. Hand the open batch over, wait until the
	 * writer is idle, and release what waited for it, as durable_cb does.
	 */
	commit_cb(-1, 0, d);
	if (d->store_failing) {
		snprintf(err, errlen, "the lease store failed: %s", d->store_error);
		return -EIO;
	}
	(void)store_async_recover(d->store);
	(void)store_async_poll(d->store, &durable);
	if (durable < d->last_ticket) {
		/* A batch failed meanwhile: the store's own path handles it. */
		store_failed(d);
		snprintf(err, errlen, "the lease store failed: %s", d->store_error);
		return -EIO;
	}
	durable_cb(-1, 0, d);
	if ((rc = lease_mgr_repool(d->leases, pools, npools, now, err, errlen)) != 0) {
		dstmd_schedule_commit(d);
		dstmd_rearm_expiry(d);
		return rc;
	}
	dstmd_pools_free(d->pools, d->cfg->npools);
	d->pools = pools;
	dstmd_schedule_commit(d); /* what loading changed */
	dstmd_rearm_expiry(d);
	lease_counters(d->leases, &lc);
	log_info("pools reloaded: %zu pool(s); %llu active leases, %llu outside the pools", npools,
	         (unsigned long long)lc.active, (unsigned long long)lc.orphans);
	lease_foreach(d->leases, orphan_one, &now);
	return 0;
}

/* mkdir -p of the directory holding `path`. */
static void
make_parent(const char *path)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		/* 0755 whatever the umask (077, see main): the files inside are what is private. */
		if (mkdir(dir, 0755) == 0)
			chmod(dir, 0755);
		*p = '/';
	}
}

int
main(int argc, char **argv)
{
	struct dstmd d = {0};
	struct daemon_args args;
	int status;
	bool pools_ok;
	struct lease_policy pol;
	char err[512];

	if (!daemon_args_parse(argc, argv, "dstmd", &args, &status))
		return status;
	if (!(d.cfg = dstmd_config_load(args.conffile, stderr)))
		return 1;
	pools_ok = open_pools(&d) == 0;
	if (!pools_ok || args.check) {
		int rc = pools_ok ? 0 : 1;

		if (rc == 0)
			dstmd_config_dump(d.cfg, stdout);
		for (size_t i = 0; d.pools && i < d.cfg->npools; i++)
			pool_free(d.pools[i]);
		free(d.pools);
		dstmd_config_free(d.cfg);
		return rc;
	}
	d.conffile = args.conffile;
	d.verbose_cli = args.verbose;
	log_init(args.foreground, args.verbose > d.cfg->log_level ? args.verbose : d.cfg->log_level,
	         "dstmd");
	if (!args.foreground && daemon(0, 0) != 0)
		fatal("daemon");
	signal(SIGPIPE, SIG_IGN);

	/* The lease database names every client: 0600, whoever starts us. */
	umask(077);
	make_parent(d.cfg->database);
	if (d.cfg->store_pg)
		d.store = store_open_pg(d.cfg->store_pg, err, sizeof(err));
	else
		d.store = store_open(d.cfg->database, err, sizeof(err));
	if (!d.store)
		fatalx("%s", err);
	pol.lifetime = d.cfg->lifetime;
	pol.quarantine = d.cfg->quarantine;
	pol.history_days = d.cfg->history_days;
	d.started = clock_wall_s();
	d.leases =
	    lease_mgr_new(d.store, d.pools, d.cfg->npools, &pol, d.started, err, sizeof(err));
	if (!d.leases)
		fatalx("%s: %s", d.cfg->database, err);
	if (getrandom(&d.pool_spread, sizeof(d.pool_spread), 0) != sizeof(d.pool_spread))
		d.pool_spread = (uint32_t)getpid() * 2654435761u;
	spread_pools(&d);
	d.per_64 = dstmd_quota_64(d.cfg, d.pools);

	if (!(d.base = event_base_new()))
		fatalx("event_base_new failed");
	/* Priority 0: I/O and timers; priority 1: the commit at the end of a turn. */
	event_base_priority_init(d.base, 2);
	d.after_commit_tail = &d.after_commit;
	d.batches_tail = &d.batches;
	d.commit_ev = event_new(d.base, -1, 0, commit_cb, &d);
	event_priority_set(d.commit_ev, 1);
	d.expiry_ev = evtimer_new(d.base, expiry_cb, &d);
	d.store_retry_ev = evtimer_new(d.base, store_retry_cb, &d);
	d.store_sync_ev = evtimer_new(d.base, store_sync_cb, &d);
	d.sigterm_ev = evsignal_new(d.base, SIGTERM, signal_cb, &d);
	d.sigint_ev = evsignal_new(d.base, SIGINT, signal_cb, &d);
	d.sighup_ev = evsignal_new(d.base, SIGHUP, sighup_cb, &d);
	evsignal_add(d.sigterm_ev, NULL);
	evsignal_add(d.sigint_ev, NULL);
	evsignal_add(d.sighup_ev, NULL);

	if (!(d.tepctl = tepctl_new(d.base, d.cfg, repush, &d)))
		fatalx("out of memory");
	lease_foreach(d.leases, stale_one, &d);
	if (failover_init(&d) != 0)
		fatalx("out of memory");
	if (identity_init(&d) != 0)
		fatalx("out of memory");
	if (access_init(&d) != 0 || tsp_udp_init(&d) != 0)
		fatalx("cannot start client access (see above)");
	if (dhcp_init(&d) != 0)
		fatalx("cannot start the DHCPv6 server (see above)");
	make_parent(d.cfg->control);
	if (!(d.ctl = ctl_server_new(d.base, d.cfg->control, control_handle, &d)))
		fatal("control socket %s", d.cfg->control);
	/* Before the privilege drop and seccomp: it binds and starts a thread. */
	if (stats_start(&d) != 0)
		fatalx("cannot start the metrics server (see above)");
	/*
	 * What needs root is done (listeners, the DHCPv6 port, the database
	 * and the control socket are open): no capability is kept, and the
	 * rest of the process's life is confined. This precedes the
	 * writer thread, which inherits both, and the first byte of input.
	 */
	if (d.cfg->user[0] && priv_drop(d.cfg->user, 0) != 0)
		fatalx("cannot run as user \"%s\" (see above; \"user\": \"\" keeps root)",
		       d.cfg->user);
	if (d.cfg->seccomp && priv_seccomp(PRIV_PROFILE_DSTMD) != 0)
		fatalx("cannot install the seccomp filter (\"seccomp\": false turns it off)");
	if (store_async_start(d.store) != 0)
		fatalx("%s: cannot start the writer thread", d.cfg->database);
	d.durable_ev =
	    event_new(d.base, store_async_fd(d.store), EV_READ | EV_PERSIST, durable_cb, &d);
	event_add(d.durable_ev, NULL);
	dstmd_rearm_expiry(&d);
	{
		struct lease_counters lc;
		lease_counters(d.leases, &lc);
		log_info("dstmd started: %llu active leases, %llu in quarantine",
		         (unsigned long long)lc.active, (unsigned long long)lc.quarantined);
		d.watchdog_ev = svc_watchdog_start(d.base);
		svc_ready("serving: %llu active leases, %llu in quarantine",
		          (unsigned long long)lc.active, (unsigned long long)lc.quarantined);
	}

	event_base_dispatch(d.base);

	/* Make what was decided durable before going. */
	{
		uint64_t ticket = d.last_ticket;

		if (lease_commit_async(d.leases, &ticket) != 0 || store_async_stop(d.store) != 0)
			log_warnx("the last commit failed; the leases of the last moments "
			          "are lost");
	}
	stats_stop(&d);
	ctl_server_free(d.ctl);
	tsp_udp_fini(&d);
	access_fini(&d);
	failover_fini(&d);
	tepctl_free(d.tepctl);
	dhcp_fini(&d); /* after tepctl_free: pushes it fails find no server */
	identity_fini(&d);
	event_free(d.commit_ev);
	event_free(d.durable_ev);
	event_free(d.expiry_ev);
	event_free(d.store_retry_ev);
	event_free(d.store_sync_ev);
	event_free(d.sigterm_ev);
	event_free(d.sigint_ev);
	event_free(d.sighup_ev);
	if (d.watchdog_ev)
		event_free(d.watchdog_ev);
	while (d.batches) {
		struct dbatch *n = d.batches->next;
		free(d.batches);
		d.batches = n;
	}
	lease_mgr_free(d.leases);
	store_close(d.store);
	for (size_t i = 0; i < d.cfg->npools; i++)
		pool_free(d.pools[i]);
	free(d.pools);
	event_base_free(d.base);
	dstmd_config_free(d.cfg);
	for (size_t i = 0; i < d.nretired; i++)
		dstmd_config_free(d.retired[i]);
	free(d.retired);
	return 0;
}
