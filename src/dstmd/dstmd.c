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
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/args.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/privdrop.h"
#include "dstmd/dstmd.h"

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

/*
 * The end of a loop turn (lowest priority): hand what the turn decided to
 * the writer thread as one batch. What waited for it runs once the batch
 * is durable (durable_cb). A failed batch leaves the disk as it was and
 * memory ahead of it: the only safe answer is to stop and reload
 * (lease.h).
 *
 * Group commit: at most one batch is with the writer. While it is being
 * made durable, the turns that follow leave their writes in the store's
 * open batch and their waiting actions on `after_commit`, and durable_cb
 * hands all of them over as the next batch. So a commit costs one
 * fdatasync whatever the number of requests (TSP, DHCPv6, expiry,
 * revocation) it carries, and the disk's latency is paid once per batch
 * rather than once per request; a request that finds the writer idle is
 * handed over at once, with no timer.
 */
static void
commit_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	struct deferred *list = d->after_commit;
	struct dbatch *b;
	uint64_t ticket = d->last_ticket;

	if (d->last_ticket > d->durable) {
		if (!d->commit_waiting)
			d->ctr.commit_joined++;
		d->commit_waiting = true;
		return;
	}
	d->commit_waiting = false;

	if (lease_commit_async(d->leases, &ticket) != 0)
		fatalx("cannot commit leases to %s; exiting without answering (a restart "
		       "reloads the committed state)",
		       d->cfg->database);
	d->last_ticket = ticket;
	d->after_commit = NULL;
	d->after_commit_tail = &d->after_commit;
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
	*d->batches_tail = b;
	d->batches_tail = &b->next;
}

/* The writer thread made batches durable: release what waited for them. */
static void
durable_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dstmd *d = arg;
	struct dbatch *b;
	uint64_t durable;

	if (store_async_poll(d->store, &durable) != 0)
		fatalx("cannot commit leases to %s: %s; exiting without answering (a restart "
		       "reloads the committed state)",
		       d->cfg->database, store_errmsg(d->store));
	d->durable = durable;
	while ((b = d->batches) && b->ticket <= durable) {
		d->batches = b->next;
		if (!d->batches)
			d->batches_tail = &d->batches;
		run_list(d, b->list);
		free(b);
	}
	/* The writer is idle again: what waited for it is the next batch. */
	if (d->commit_waiting && d->last_ticket <= durable)
		dstmd_schedule_commit(d);
}

static void
notify_run(struct dstmd *d, struct deferred *df)
{
	struct notify *n = (struct notify *)df;
	const struct lease *l;

	if (n->to_client && (l = lease_find_v4(d->leases, n->b.v4, n->b.port_lo)) &&
	    !strcmp(l->identity, n->identity)) {
		if (!strncmp(l->identity, "dhcp6:", 6))
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
	n->b.v4 = l->v4;
	n->b.port_lo = l->port_lo;
	n->b.port_hi = l->port_hi;
	n->b.v6 = l->v6;
	snprintf(n->identity, sizeof(n->identity), "%s", l->identity);
	dstmd_defer(d, &n->df);
}

int
dstmd_end_lease(struct dstmd *d, const struct lease *l, bool notify_client)
{
	int rc;

	notify_end(d, l, notify_client);
	rc = lease_release(d->leases, l, clock_wall_s());
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
	b.v4 = l->v4;
	b.port_lo = l->port_lo;
	b.port_hi = l->port_hi;
	b.v6 = l->v6;
	b.lifetime = l->expiry > rc->now ? (uint32_t)(l->expiry - rc->now) : 0;
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
	b.v4 = l->v4;
	b.port_lo = l->port_lo;
	b.port_hi = l->port_hi;
	b.v6 = l->v6;
	tepctl_delete(d->tepctl, tep, &b);
	return 0;
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct dstmd *d = arg;

	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(d->base, NULL);
}

static int
open_pools(struct dstmd *d)
{
	char err[256];

	d->pools = calloc(d->cfg->npools, sizeof(*d->pools));
	if (!d->pools)
		return -ENOMEM;
	for (size_t i = 0; i < d->cfg->npools; i++) {
		if (!(d->pools[i] = pool_new(&d->cfg->pools[i].pc, err, sizeof(err)))) {
			fprintf(stderr, "%s:%d: /pools/%zu: %s\n", cfg_path(d->cfg->doc),
			        cfg_line(d->cfg->doc, "/pools"), i, err);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (pool_overlaps(d->pools[i], d->pools[j])) {
				fprintf(stderr,
				        "%s: pools \"%s\" and \"%s\" overlap; an address may "
				        "belong to one pool only\n",
				        cfg_path(d->cfg->doc), pool_name(d->pools[j]),
				        pool_name(d->pools[i]));
				return -EINVAL;
			}
	}
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
		mkdir(dir, 0755);
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
	log_init(args.foreground, args.verbose, "dstmd");
	if (!args.foreground && daemon(0, 0) != 0)
		fatal("daemon");
	signal(SIGPIPE, SIG_IGN);

	make_parent(d.cfg->database);
	if (!(d.store = store_open(d.cfg->database, err, sizeof(err))))
		fatalx("%s", err);
	pol.lifetime = d.cfg->lifetime;
	pol.quarantine = d.cfg->quarantine;
	d.started = clock_wall_s();
	d.leases =
	    lease_mgr_new(d.store, d.pools, d.cfg->npools, &pol, d.started, err, sizeof(err));
	if (!d.leases)
		fatalx("%s: %s", d.cfg->database, err);
	d.per_64 = d.cfg->per_64;
	if (!d.per_64) {
		uint64_t total = 0;

		for (size_t i = 0; i < d.cfg->npools; i++) {
			struct pool_stats st;

			pool_stats(d.pools[i], &st);
			total += st.size;
		}
		d.per_64 = total / 2 > 0 ? (unsigned)(total / 2) : 1;
	}

	if (!(d.base = event_base_new()))
		fatalx("event_base_new failed");
	/* Priority 0: I/O and timers; priority 1: the commit at the end of a turn. */
	event_base_priority_init(d.base, 2);
	d.after_commit_tail = &d.after_commit;
	d.batches_tail = &d.batches;
	d.commit_ev = event_new(d.base, -1, 0, commit_cb, &d);
	event_priority_set(d.commit_ev, 1);
	d.expiry_ev = evtimer_new(d.base, expiry_cb, &d);
	d.sigterm_ev = evsignal_new(d.base, SIGTERM, signal_cb, &d);
	d.sigint_ev = evsignal_new(d.base, SIGINT, signal_cb, &d);
	evsignal_add(d.sigterm_ev, NULL);
	evsignal_add(d.sigint_ev, NULL);

	if (!(d.tepctl = tepctl_new(d.base, d.cfg, repush, &d)))
		fatalx("out of memory");
	lease_foreach(d.leases, stale_one, &d);
	if (access_init(&d) != 0)
		fatalx("cannot start client access (see above)");
	if (dhcp_init(&d) != 0)
		fatalx("cannot start the DHCPv6 server (see above)");
	make_parent(d.cfg->control);
	if (!(d.ctl = ctl_server_new(d.base, d.cfg->control, control_handle, &d)))
		fatal("control socket %s", d.cfg->control);
	/*
	 * What needs root is done (listeners, the DHCPv6 port, the database
	 * and the control socket are open): no capability is kept, and the
	 * rest of the process's life is confined (issue 7). This precedes the
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
	}

	event_base_dispatch(d.base);

	/* Make what was decided durable before going. */
	{
		uint64_t ticket = d.last_ticket;

		if (lease_commit_async(d.leases, &ticket) != 0 || store_async_stop(d.store) != 0)
			log_warnx("the last commit failed; the leases of the last moments "
			          "are lost");
	}
	ctl_server_free(d.ctl);
	access_fini(&d);
	tepctl_free(d.tepctl);
	dhcp_fini(&d); /* after tepctl_free: pushes it fails find no server */
	event_free(d.commit_ev);
	event_free(d.durable_ev);
	event_free(d.expiry_ev);
	event_free(d.sigterm_ev);
	event_free(d.sigint_ev);
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
	return 0;
}
