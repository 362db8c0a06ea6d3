/*
 * Unit tests of the lease manager (src/store/lease.c) over a real SQLite
 * file: one identity keeps one lease, specific addresses, the TSP 306 and
 * 308 cases, expiry order and quarantine, reload after a restart and
 * after a simulated crash (changes staged and never committed, in the
 * same process and in a child killed before its commit), orphans left by
 * a changed pool, a failed commit and the reload after it, the history
 * rows of every change, and paged listing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/addr.h"
#include "store/lease.h"

static char dir[64];
static char path[128];
static const struct lease_policy pol = {.lifetime = 100, .quarantine = 50};

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_lease.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/leases.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint32_t
v4(const char *s)
{
	uint32_t a;

	assert_true(addr_parse_v4(s, &a));
	return a;
}

static struct in6_addr
v6(const char *s)
{
	struct in6_addr a;

	assert_true(addr_parse_v6(s, &a));
	return a;
}

/* A world: a store, pools and a manager, rebuilt at every "restart". */
struct world {
	struct store *st;
	struct pool *pools[2];
	size_t npools;
	struct lease_mgr *m;
};

static struct pool *
mkpool(const char *name, const char *range, unsigned ports)
{
	struct pool_range r;
	struct pool_config cfg = {name, &r, 1, NULL, 0, ports, 0, 0};
	char err[256];
	struct pool *p;

	assert_true(pool_range_parse(range, &r, err, sizeof(err)));
	if ((p = pool_new(&cfg, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	return p;
}

static void
up(struct world *w, const char *range, unsigned ports, int64_t now)
{
	char err[256];

	memset(w, 0, sizeof(*w));
	if ((w->st = store_open(path, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	w->pools[0] = mkpool("lab", range, ports);
	w->npools = 1;
	w->m = lease_mgr_new(w->st, w->pools, w->npools, &pol, now, err, sizeof(err));
	if (w->m == NULL)
		fail_msg("%s", err);
}

static void
down(struct world *w)
{
	lease_mgr_free(w->m);
	for (size_t i = 0; i < w->npools; i++)
		pool_free(w->pools[i]);
	store_close(w->st);
}

static const struct lease *
acq(struct world *w, const char *id, const char *addr6, uint32_t want, int64_t now, unsigned *fl,
    int expect)
{
	const struct lease *l = NULL;
	struct in6_addr a = v6(addr6);
	unsigned flags;

	assert_int_equal(lease_acquire(w->m, id, &a, want, NULL, "tep1", now, &l, &flags), expect);
	if (fl != NULL)
		*fl = flags;
	return l;
}

static void
test_same_identity(void **state)
{
	struct world w;
	const struct lease *a, *b, *c;
	struct in6_addr other = v6("fd00:d57::99");
	struct lease_counters cnt;
	unsigned fl;

	up(&w, "192.0.2.0/29", 0, 1000);
	a = acq(&w, "tsp:alice", "fd00:d57::11", 0, 1000, &fl, 0);
	assert_int_equal(fl, LEASE_NEW);
	assert_int_equal(a->v4, v4("192.0.2.1"));
	assert_int_equal(a->expiry, 1100);
	assert_int_equal(a->state, LEASE_ACTIVE);
	assert_string_equal(a->pool, "lab");
	b = acq(&w, "tsp:bob", "fd00:d57::12", 0, 1000, &fl, 0);
	assert_int_equal(b->v4, v4("192.0.2.2"));
	assert_int_equal(lease_commit(w.m), 0);

	/* Renewal: same lease, new expiry, nothing moved. */
	c = acq(&w, "tsp:alice", "fd00:d57::11", 0, 1050, &fl, 0);
	assert_ptr_equal(c, a);
	assert_int_equal(fl, LEASE_RENEWED);
	assert_int_equal(c->expiry, 1150);
	assert_int_equal(c->start, 1000);
	/* Renewal carrying its address (seed 001 C §2.2). */
	c = acq(&w, "tsp:alice", "fd00:d57::11", v4("192.0.2.1"), 1060, &fl, 0);
	assert_ptr_equal(c, a);
	/* New IPv6 address or TEP: the binding must be pushed again. */
	assert_int_equal(lease_acquire(w.m, "tsp:alice", &other, 0, NULL, "tep1", 1070, &c, &fl),
	                 0);
	assert_int_equal(fl, LEASE_RENEWED | LEASE_MOVED);
	assert_int_equal(lease_acquire(w.m, "tsp:alice", &other, 0, NULL, "tep2", 1070, &c, &fl),
	                 0);
	assert_int_equal(fl, LEASE_RENEWED | LEASE_MOVED);
	assert_string_equal(c->tep, "tep2");
	assert_int_equal(lease_commit(w.m), 0);

	assert_ptr_equal(lease_find_identity(w.m, "tsp:alice"), a);
	assert_ptr_equal(lease_find_v4(w.m, v4("192.0.2.2"), 0), b);
	assert_null(lease_find_v4(w.m, v4("192.0.2.3"), 0));
	assert_null(lease_find_identity(w.m, "tsp:carol"));
	lease_counters(w.m, &cnt);
	assert_int_equal(cnt.allocations, 2);
	assert_int_equal(cnt.renewals, 4);
	assert_int_equal(cnt.moves, 2);
	assert_int_equal(cnt.active, 2);
	down(&w);

	/* After a restart: the same lease, with what was committed. */
	up(&w, "192.0.2.0/29", 0, 1080);
	a = lease_find_identity(w.m, "tsp:alice");
	assert_non_null(a);
	assert_int_equal(a->v4, v4("192.0.2.1"));
	assert_int_equal(a->expiry, 1170);
	assert_string_equal(a->tep, "tep2");
	c = acq(&w, "tsp:alice", "fd00:d57::99", 0, 1080, &fl, 0);
	assert_ptr_equal(c, a);
	assert_int_equal(fl, LEASE_RENEWED | LEASE_MOVED); /* tep1 now */
	c = acq(&w, "tsp:dave", "fd00:d57::14", 0, 1080, &fl, 0);
	assert_int_equal(c->v4, v4("192.0.2.3"));
	down(&w);
}

static void
test_specific_and_errors(void **state)
{
	struct world w;
	const struct lease *a, *l;
	struct in6_addr x = v6("fd00:d57::20");
	struct lease_counters cnt;
	unsigned fl;

	up(&w, "192.0.2.0/30", 0, 1000); /* .1 and .2 */
	a = acq(&w, "tsp:alice", "fd00:d57::11", v4("192.0.2.2"), 1000, &fl, 0);
	assert_int_equal(a->v4, v4("192.0.2.2"));
	/* 308: taken by another, outside every pool, or not the identity's. */
	acq(&w, "tsp:bob", "fd00:d57::12", v4("192.0.2.2"), 1000, NULL, -EADDRNOTAVAIL);
	acq(&w, "tsp:bob", "fd00:d57::12", v4("198.51.100.7"), 1000, NULL, -EADDRNOTAVAIL);
	acq(&w, "tsp:alice", "fd00:d57::11", v4("192.0.2.1"), 1000, NULL, -EADDRNOTAVAIL);
	assert_int_equal(lease_acquire(w.m, "tsp:bob", &x, 0, "nosuch", "tep1", 1000, &l, &fl),
	                 -ENOENT);
	acq(&w, "tsp:bob", "fd00:d57::12", 0, 1000, NULL, 0);
	/* 306 */
	acq(&w, "tsp:carol", "fd00:d57::13", 0, 1000, NULL, -ENOSPC);
	assert_int_equal(lease_commit(w.m), 0);

	/* Released: quarantined 50 s, not given to anyone, then reusable. */
	assert_int_equal(lease_release(w.m, a, 1010), 0);
	assert_int_equal(lease_release(w.m, a, 1010), -EALREADY);
	assert_int_equal(a->state, LEASE_QUARANTINE);
	assert_int_equal(a->quarantine_until, 1060);
	assert_null(lease_find_identity(w.m, "tsp:alice"));
	assert_ptr_equal(lease_find_v4(w.m, v4("192.0.2.2"), 0), a);
	acq(&w, "tsp:carol", "fd00:d57::13", 0, 1059, NULL, -ENOSPC);
	acq(&w, "tsp:carol", "fd00:d57::13", v4("192.0.2.2"), 1059, NULL, -EADDRNOTAVAIL);
	assert_int_equal(lease_commit(w.m), 0);
	/* The quarantine ended but lease_expire has not run: the old row goes in the same
	 * transaction as the new one, and the unique index is satisfied. */
	l = acq(&w, "tsp:carol", "fd00:d57::13", 0, 1060, &fl, 0);
	assert_int_equal(fl, LEASE_NEW);
	assert_int_equal(l->v4, v4("192.0.2.2"));
	assert_int_equal(lease_commit(w.m), 0);
	lease_counters(w.m, &cnt);
	assert_int_equal(cnt.exhausted, 2);
	assert_int_equal(cnt.unavailable, 4);
	assert_int_equal(cnt.releases, 1);
	assert_int_equal(cnt.freed, 1);
	assert_int_equal(cnt.active, 2);
	assert_int_equal(cnt.quarantined, 0);
	down(&w);
}

struct seen {
	uint32_t v4[16];
	int n;
};

static void
expired_cb(void *arg, const struct lease *l)
{
	struct seen *s = arg;

	assert_int_equal(l->state, LEASE_QUARANTINE);
	s->v4[s->n++] = l->v4;
}

static void
test_expiry_order(void **state)
{
	struct world w;
	struct seen s = {0};
	struct pool_stats ps;
	const struct lease *l;

	up(&w, "192.0.2.0/28", 0, 1000);
	acq(&w, "c", "fd00:d57::13", 0, 1030, NULL, 0); /* .1 until 1130 */
	acq(&w, "a", "fd00:d57::11", 0, 1010, NULL, 0); /* .2 until 1110 */
	acq(&w, "b", "fd00:d57::12", 0, 1020, NULL, 0); /* .3 until 1120 */
	acq(&w, "d", "fd00:d57::14", 0, 1000, NULL, 0); /* .4 until 1100 */
	acq(&w, "a", "fd00:d57::11", 0, 1040, NULL, 0); /* .2 renewed until 1140 */
	assert_int_equal(lease_commit(w.m), 0);
	assert_int_equal(lease_next_expiry(w.m), 1100);
	assert_int_equal(lease_expire(w.m, 1099, expired_cb, &s), 0);
	assert_int_equal(lease_expire(w.m, 1125, expired_cb, &s), 2);
	assert_int_equal(s.v4[0], v4("192.0.2.4"));
	assert_int_equal(s.v4[1], v4("192.0.2.3"));
	assert_int_equal(lease_next_expiry(w.m), 1130);
	assert_int_equal(lease_expire(w.m, 1200, expired_cb, &s), 2);
	assert_int_equal(s.v4[2], v4("192.0.2.1"));
	assert_int_equal(s.v4[3], v4("192.0.2.2"));
	/* Quarantine counts from when dstmd took the address back: 1125 + 50 = 1175 was over
	 * at 1200, so the first two are gone already; the last two end at 1250. */
	assert_int_equal(lease_next_expiry(w.m), 1250);
	assert_int_equal(lease_expire(w.m, 1249, NULL, NULL), 0);
	assert_null(lease_find_v4(w.m, v4("192.0.2.4"), 0));
	l = lease_find_v4(w.m, v4("192.0.2.2"), 0);
	assert_non_null(l);
	assert_int_equal(l->state, LEASE_QUARANTINE);
	assert_int_equal(lease_commit(w.m), 0);
	pool_stats(w.pools[0], &ps);
	assert_int_equal(ps.used, 0);
	assert_int_equal(ps.quarantined, 2);
	/* FIFO: the never-used addresses first, the released ones last. */
	l = acq(&w, "e", "fd00:d57::15", 0, 1210, NULL, 0);
	assert_int_equal(l->v4, v4("192.0.2.5"));
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);

	/* Nothing expired twice after a restart. */
	up(&w, "192.0.2.0/28", 0, 1300);
	assert_null(lease_find_v4(w.m, v4("192.0.2.2"), 0));
	l = lease_find_v4(w.m, v4("192.0.2.5"), 0);
	assert_non_null(l);
	assert_int_equal(l->state, LEASE_ACTIVE);
	down(&w);
}

static void
test_reload_down_time(void **state)
{
	struct world w;
	struct lease_counters cnt;
	struct pool_stats ps;
	const struct lease *l;

	up(&w, "192.0.2.0/29", 0, 1000);
	acq(&w, "a", "fd00:d57::11", 0, 1000, NULL, 0); /* .1 expires 1100, q until 1150 */
	acq(&w, "b", "fd00:d57::12", 0, 1080, NULL, 0); /* .2 expires 1180, q until 1230 */
	acq(&w, "c", "fd00:d57::13", 0, 1120, NULL, 0); /* .3 expires 1220 */
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);

	/* Down from 1120 to 1200. */
	up(&w, "192.0.2.0/29", 0, 1200);
	lease_counters(w.m, &cnt);
	assert_int_equal(cnt.freed, 1);    /* a: expired and its quarantine is over */
	assert_int_equal(cnt.expiries, 2); /* a and b */
	assert_int_equal(cnt.active, 1);
	assert_int_equal(cnt.quarantined, 1);
	assert_null(lease_find_v4(w.m, v4("192.0.2.1"), 0));
	l = lease_find_v4(w.m, v4("192.0.2.2"), 0);
	assert_int_equal(l->state, LEASE_QUARANTINE);
	assert_int_equal(l->quarantine_until, 1230);
	assert_null(lease_find_identity(w.m, "b"));
	assert_non_null(lease_find_identity(w.m, "c"));
	pool_stats(w.pools[0], &ps);
	assert_int_equal(ps.used, 1);
	assert_int_equal(ps.quarantined, 1);
	assert_int_equal(ps.free, 4);
	acq(&w, "x", "fd00:d57::20", v4("192.0.2.2"), 1229, NULL, -EADDRNOTAVAIL);
	acq(&w, "x", "fd00:d57::20", v4("192.0.2.1"), 1229, NULL, 0);
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
}

/* Stage without committing, then throw everything away. */
static void
test_crash_uncommitted(void **state)
{
	struct world w;
	struct lease_counters cnt;
	const struct lease *l;
	pid_t pid;
	int status;

	up(&w, "192.0.2.0/29", 0, 1000);
	acq(&w, "a", "fd00:d57::11", 0, 1000, NULL, 0); /* .1 */
	acq(&w, "b", "fd00:d57::12", 0, 1000, NULL, 0); /* .2 */
	assert_int_equal(lease_commit(w.m), 0);
	/* Staged, never committed: */
	acq(&w, "c", "fd00:d57::13", 0, 1001, NULL, 0); /* .3 */
	acq(&w, "a", "fd00:d57::99", 0, 1001, NULL, 0); /* renewal + move */
	assert_int_equal(lease_release(w.m, lease_find_identity(w.m, "b"), 1001), 0);
	down(&w);

	up(&w, "192.0.2.0/29", 0, 1002);
	assert_null(lease_find_identity(w.m, "c"));
	assert_null(lease_find_v4(w.m, v4("192.0.2.3"), 0));
	l = lease_find_identity(w.m, "a");
	assert_int_equal(l->expiry, 1100);
	{
		struct in6_addr was = v6("fd00:d57::11");

		assert_memory_equal(&l->v6, &was, sizeof(was));
	}
	l = lease_find_identity(w.m, "b");
	assert_non_null(l);
	assert_int_equal(l->state, LEASE_ACTIVE);
	down(&w);

	/* A child that stages and dies before its commit, with the file open. */
	fflush(NULL);
	if ((pid = fork()) == 0) {
		const struct lease *cl;
		struct in6_addr a6 = v6("fd00:d57::30");
		unsigned fl;

		up(&w, "192.0.2.0/29", 0, 1003);
		for (int i = 0; i < 3; i++) {
			char id[16];

			snprintf(id, sizeof(id), "child%d", i);
			if (lease_acquire(w.m, id, &a6, 0, NULL, "tep1", 1003, &cl, &fl) != 0)
				_exit(2);
		}
		if (lease_commit(w.m) != 0)
			_exit(3);
		if (lease_acquire(w.m, "lost", &a6, 0, NULL, "tep1", 1003, &cl, &fl) != 0)
			_exit(4);
		_exit(0); /* no commit, no close: a kill */
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	up(&w, "192.0.2.0/29", 0, 1004);
	assert_non_null(lease_find_identity(w.m, "child0"));
	assert_non_null(lease_find_identity(w.m, "child2"));
	assert_null(lease_find_identity(w.m, "lost"));
	lease_counters(w.m, &cnt);
	assert_int_equal(cnt.active, 5);
	assert_int_equal(cnt.orphans, 0);
	/* Nothing is double-allocated: 6 addresses, 5 held, one left. */
	l = acq(&w, "d", "fd00:d57::14", 0, 1004, NULL, 0);
	assert_int_equal(l->v4, v4("192.0.2.6"));
	acq(&w, "e", "fd00:d57::15", 0, 1004, NULL, -ENOSPC);
	for (uint32_t a = v4("192.0.2.1"); a <= v4("192.0.2.6"); a++) {
		l = lease_find_v4(w.m, a, 0);
		assert_non_null(l);
		assert_int_equal(l->state, LEASE_ACTIVE);
	}
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
}

static void
test_ports(void **state)
{
	struct world w;
	const struct lease *l, *k;
	unsigned fl;

	/* Two addresses of 4 port ranges of 16128 ports each. */
	up(&w, "192.0.2.10-192.0.2.11", 16128, 1000);
	l = acq(&w, "a", "fd00:d57::11", 0, 1000, &fl, 0);
	assert_int_equal(l->v4, v4("192.0.2.10"));
	assert_int_equal(l->port_lo, 1024);
	assert_int_equal(l->port_hi, 1024 + 16128 - 1);
	k = acq(&w, "b", "fd00:d57::12", v4("192.0.2.10"), 1000, &fl, 0);
	assert_int_equal(k->port_lo, 1024 + 16128);
	assert_ptr_equal(lease_find_v4(w.m, v4("192.0.2.10"), 20000), k);
	assert_ptr_equal(lease_find_v4(w.m, v4("192.0.2.10"), 1024), l);
	assert_null(lease_find_v4(w.m, v4("192.0.2.10"), 40000));
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);

	/* The operator halves the port ranges: the old leases are orphans and hold the
	 * ports they overlap until they would have ended. */
	up(&w, "192.0.2.10-192.0.2.11", 8064, 1010);
	{
		struct lease_counters cnt;
		struct pool_stats ps;

		lease_counters(w.m, &cnt);
		assert_int_equal(cnt.orphans, 2);
		pool_stats(w.pools[0], &ps);
		assert_int_equal(ps.size, 16);
		assert_int_equal(ps.quarantined, 4);
		l = lease_find_identity(w.m, "a");
		assert_true(l->orphan);
		assert_ptr_equal(lease_find_v4(w.m, v4("192.0.2.10"), 1024), l);
		acq(&w, "a", "fd00:d57::11", 0, 1010, NULL, -EADDRNOTAVAIL);
		l = acq(&w, "c", "fd00:d57::13", 0, 1010, NULL, 0);
		assert_int_equal(l->port_lo, 1024 + 4 * 8064); /* the first slot not held */
		assert_int_equal(lease_commit(w.m), 0);

		/* 1150: the pool's hold is over but the orphans are not expired yet. */
		for (int i = 0; i < 11; i++) {
			char id[16];

			snprintf(id, sizeof(id), "n%d", i);
			acq(&w, id, "fd00:d57::40", 0, 1150, NULL, 0);
		}
		acq(&w, "n11", "fd00:d57::40", 0, 1150, NULL, -ENOSPC);
		acq(&w, "n11", "fd00:d57::40", v4("192.0.2.10"), 1150, NULL, -EADDRNOTAVAIL);
		/* a, b and c (expired at 1110) go to quarantine until 1200. */
		assert_int_equal(lease_expire(w.m, 1150, NULL, NULL), 3);
		assert_int_equal(lease_commit(w.m), 0);
		/* 1200: the orphans' rows are still there until the slot is taken; taking it
		 * drops them in the same transaction, so the unique index holds. */
		l = acq(&w, "n11", "fd00:d57::40", v4("192.0.2.10"), 1200, NULL, 0);
		assert_int_equal(l->port_lo, 1024);
		acq(&w, "n12", "fd00:d57::40", 0, 1200, NULL, 0);
		acq(&w, "n13", "fd00:d57::40", 0, 1200, NULL, 0);
		acq(&w, "n14", "fd00:d57::40", 0, 1200, NULL, 0);
		acq(&w, "n15", "fd00:d57::40", 0, 1200, NULL, 0);
		acq(&w, "n16", "fd00:d57::40", 0, 1200, NULL, -ENOSPC);
		assert_int_equal(lease_commit(w.m), 0);
		lease_counters(w.m, &cnt);
		assert_int_equal(cnt.active, 16);
		assert_int_equal(cnt.quarantined, 0);
	}
	down(&w);
}

static void
test_config_checks(void **state)
{
	struct store *st;
	struct pool *p[2];
	char err[256];

	assert_non_null(st = store_open(path, err, sizeof(err)));
	p[0] = mkpool("a", "192.0.2.0/24", 0);
	p[1] = mkpool("b", "192.0.2.128/25", 0);
	assert_null(lease_mgr_new(st, p, 2, &pol, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "share addresses"));
	pool_free(p[1]);
	p[1] = mkpool("a", "198.51.100.0/24", 0);
	assert_null(lease_mgr_new(st, p, 2, &pol, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "two pools"));
	pool_free(p[0]);
	pool_free(p[1]);
	store_close(st);
}

static void
test_failed_commit(void **state)
{
	struct world w;
	char cmd[1024];

	up(&w, "192.0.2.0/29", 0, 1000);
	acq(&w, "a", "fd00:d57::11", 0, 1000, NULL, 0);
	assert_int_equal(lease_commit(w.m), 0);
	/* A second writer holds the database: our commit cannot happen. */
	snprintf(cmd, sizeof(cmd),
	         "exec python3 -c 'import sqlite3,time; c=sqlite3.connect(\"%s\", "
	         "isolation_level=None); c.execute(\"BEGIN IMMEDIATE\"); open(\"%s.locked\","
	         "\"w\").close(); time.sleep(8)' & echo $! > '%s.pid'",
	         path, path, path);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s.locked", path);
	for (int i = 0; i < 100 && access(cmd, F_OK) != 0; i++)
		usleep(50000);
	assert_int_equal(access(cmd, F_OK), 0);
	/* begin waits busy_timeout (5 s), then fails: nothing more is decided. */
	acq(&w, "b", "fd00:d57::12", 0, 1001, NULL, -EIO);
	assert_true(lease_mgr_failed(w.m));
	acq(&w, "c", "fd00:d57::13", 0, 1001, NULL, -EIO);
	assert_int_equal(lease_commit(w.m), -EIO);
	/* End the writer we started, by its pid: the file takes writes again. */
	snprintf(cmd, sizeof(cmd), "kill $(cat '%s.pid') 2>/dev/null; sleep 0.3; true", path);
	assert_int_equal(system(cmd), 0);
	/* Reloaded from the file: what was committed, nothing of what failed. */
	assert_int_equal(lease_mgr_reload(w.m, 1002, cmd, sizeof(cmd)), 0);
	assert_false(lease_mgr_failed(w.m));
	assert_non_null(lease_find_identity(w.m, "a"));
	assert_null(lease_find_identity(w.m, "b"));
	/* b gets the address it would have had; a keeps its own. */
	assert_int_equal(acq(&w, "b", "fd00:d57::12", 0, 1002, NULL, 0)->v4, v4("192.0.2.2"));
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
}

struct hist {
	int n;
	int ev[16];
	char who[16][32];
	int64_t t[16];
};

static int
hist_cb(void *arg, const struct history_row *h)
{
	struct hist *c = arg;

	assert_true(c->n < 16);
	c->ev[c->n] = h->event;
	c->t[c->n] = h->t;
	snprintf(c->who[c->n], sizeof(c->who[0]), "%s", h->identity);
	c->n++;
	return 0;
}

/* Every grant, renewal, release, revocation and expiry is one history row, committed with it. */
static void
test_history(void **state)
{
	struct world w;
	struct hist h = {0};
	const struct lease *a, *b;
	int64_t next;

	up(&w, "192.0.2.0/29", 0, 1000);
	a = acq(&w, "alice", "fd00:d57::11", 0, 1000, NULL, 0);
	acq(&w, "alice", "fd00:d57::11", 0, 1010, NULL, 0);
	assert_int_equal(lease_release(w.m, a, 1020), 0);
	b = acq(&w, "bob", "fd00:d57::12", 0, 1030, NULL, 0);
	assert_int_equal(lease_revoke(w.m, b, 1040), 0);
	acq(&w, "carol", "fd00:d57::13", 0, 1050, NULL, 0);
	lease_expire(w.m, 1050 + pol.lifetime, NULL, NULL);
	acq(&w, "dave", "fd00:d57::14", 0, 1200, NULL, 0);
	down(&w); /* not committed: none of it stays */
	up(&w, "192.0.2.0/29", 0, 1000);
	assert_int_equal(store_history_scan(w.st, 0, 100, hist_cb, &h, &next), 0);
	assert_int_equal(h.n, 0);

	a = acq(&w, "alice", "fd00:d57::11", 0, 1000, NULL, 0);
	acq(&w, "alice", "fd00:d57::11", 0, 1010, NULL, 0);
	assert_int_equal(lease_release(w.m, a, 1020), 0);
	b = acq(&w, "bob", "fd00:d57::12", 0, 1030, NULL, 0);
	assert_int_equal(lease_revoke(w.m, b, 1040), 0);
	acq(&w, "carol", "fd00:d57::13", 0, 1050, NULL, 0);
	lease_expire(w.m, 1050 + pol.lifetime, NULL, NULL);
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
	up(&w, "192.0.2.0/29", 0, 1200);
	assert_int_equal(store_history_scan(w.st, 0, 100, hist_cb, &h, &next), 0);
	assert_int_equal(h.n, 7);
	{
		static const int want[] = {LEASE_EV_GRANT, LEASE_EV_RENEW,  LEASE_EV_RELEASE,
		                           LEASE_EV_GRANT, LEASE_EV_REVOKE, LEASE_EV_GRANT,
		                           LEASE_EV_EXPIRE};
		static const char *const who[] = {"alice", "alice", "alice", "bob",
		                                  "bob",   "carol", "carol"};

		for (int i = 0; i < 7; i++) {
			assert_int_equal(h.ev[i], want[i]);
			assert_string_equal(h.who[i], who[i]);
		}
	}
	assert_int_equal(h.t[2], 1020);
	assert_int_equal(h.t[6], 1050 + pol.lifetime);
	down(&w);

	/* Kept for history_days: an expiry pass two days on prunes what is older than one. */
	{
		struct lease_policy p1 = pol;
		char err[256];

		p1.history_days = 1;
		up(&w, "192.0.2.0/29", 0, 1200);
		lease_mgr_free(w.m);
		w.m = lease_mgr_new(w.st, w.pools, w.npools, &p1, 1200, err, sizeof(err));
		assert_non_null(w.m);
		acq(&w, "erin", "fd00:d57::15", 0, 1000 + 2 * 86400, NULL, 0);
		lease_expire(w.m, 1000 + 2 * 86400, NULL, NULL);
		assert_int_equal(lease_commit(w.m), 0);
		memset(&h, 0, sizeof(h));
		assert_int_equal(store_history_scan(w.st, 0, 100, hist_cb, &h, &next), 0);
		assert_int_equal(h.n, 1);
		assert_string_equal(h.who[0], "erin");
		down(&w);
	}
}

struct page {
	int n;
	uint32_t v4[64];
};

static int
page_cb(void *arg, const struct lease *l)
{
	struct page *p = arg;

	assert_true(p->n < 64);
	p->v4[p->n++] = l->v4;
	return 0;
}

/* Pages: at most `limit` leases, at most `budget` slots looked at, the cursor goes on. */
static void
test_page(void **state)
{
	struct world w;
	struct lease_filter all = {0}, quar = {.state = LEASE_QUARANTINE},
	                    bob = {.identity = "bob"};
	struct page p = {0};
	uint64_t next, cur = 0;
	char id[16];
	const struct lease *l = NULL;

	up(&w, "192.0.2.0/27", 0, 1000); /* 30 slots */
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		l = acq(&w, id, "fd00:d57::20", 0, 1000, NULL, 0);
	}
	acq(&w, "bob", "fd00:d57::21", 0, 1000, NULL, 0);
	assert_int_equal(lease_release(w.m, l, 1001), 0); /* c9 */
	/* Three at a time through all eleven. */
	do {
		assert_int_equal(lease_page(w.m, cur, &all, 3, 1000, page_cb, &p, &next), 0);
		cur = next;
	} while (next);
	assert_int_equal(p.n, 11);
	for (int i = 1; i < 11; i++)
		assert_true(p.v4[i] > p.v4[i - 1]);
	/* A budget of 5 slots: a page of at most 5 positions, maybe empty, and a cursor. */
	memset(&p, 0, sizeof(p));
	assert_int_equal(lease_page(w.m, 20, &all, 100, 5, page_cb, &p, &next), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(next, 25);
	memset(&p, 0, sizeof(p));
	assert_int_equal(lease_page(w.m, 0, &quar, 100, 1000, page_cb, &p, &next), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.v4[0], l->v4);
	assert_int_equal(next, 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(lease_page(w.m, 0, &bob, 100, 1000, page_cb, &p, &next), 0);
	assert_int_equal(p.n, 1);
	/* After an address: from the next slot on. */
	assert_int_equal(lease_page_after(w.m, v4("192.0.2.5"), 0, &cur), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(lease_page(w.m, cur, &all, 100, 1000, page_cb, &p, &next), 0);
	assert_int_equal(p.v4[0], v4("192.0.2.6"));
	assert_int_equal(lease_page_after(w.m, v4("10.0.0.1"), 0, &cur), -ENOENT);
	down(&w);

	/* Port ranges: after an address (port 0) is after all its ranges; with a port, after one. */
	unlink(path);
	up(&w, "192.0.2.8/30", 16128, 1000); /* 2 addresses x 4 ranges */
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		acq(&w, id, "fd00:d57::30", 0, 1000, NULL, 0);
	}
	assert_int_equal(lease_page_after(w.m, v4("192.0.2.9"), 0, &cur), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(lease_page(w.m, cur, &all, 100, 1000, page_cb, &p, &next), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.v4[0], v4("192.0.2.10"));
	assert_int_equal(lease_page_after(w.m, v4("192.0.2.9"), 1024, &cur), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(lease_page(w.m, cur, &all, 100, 1000, page_cb, &p, &next), 0);
	assert_int_equal(p.n, 5);
	down(&w);
}

/*
 * Active leases per /64 follow every change: new leases, moves to another
 * /64, releases, expiries and a reload; thousands of /64s exercise the
 * table's growth and deletions.
 */
/* PSID pools (RFC 7597 §5.1): only who names them, and the set survives a restart. */
static void
test_psid_pool(void **state)
{
	struct world w;
	struct pool_range r;
	struct pool_config cfg = {"psid", &r, 1, NULL, 0, 0, 6, 6};
	struct in6_addr a = v6("fd00:d57::1000");
	const struct lease *l = NULL;
	unsigned flags;
	char err[256];

	(void)state;
	memset(&w, 0, sizeof(w));
	assert_true(pool_range_parse("192.0.2.10", &r, err, sizeof(err)));
	assert_non_null(w.st = store_open(path, err, sizeof(err)));
	assert_non_null(w.pools[0] = pool_new(&cfg, err, sizeof(err)));
	w.npools = 1;
	assert_non_null(w.m = lease_mgr_new(w.st, w.pools, 1, &pol, 100, err, sizeof(err)));
	/* A request that names no pool does not draw from a PSID pool. */
	assert_int_equal(lease_acquire(w.m, "dstm", &a, 0, NULL, "tep1", 100, &l, &flags), -ENOSPC);
	assert_int_equal(lease_acquire(w.m, "lw", &a, 0, "psid", "tep1", 100, &l, &flags), 0);
	assert_int_equal(l->psid_offset, 6);
	assert_int_equal(l->psid_len, 6);
	assert_int_equal(l->psid, 0);
	assert_int_equal(l->port_lo, 1024);
	assert_int_equal(l->port_hi, 64527);
	assert_int_equal(lease_acquire(w.m, "lw2", &a, 0, "psid", "tep1", 100, &l, &flags), 0);
	assert_int_equal(l->psid, 1);
	/* Any port of the set finds its lease. */
	assert_ptr_equal(lease_find_v4(w.m, v4("192.0.2.10"), 2064 + 3), l); /* i 2, PSID 1, j 3 */
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);

	assert_non_null(w.st = store_open(path, err, sizeof(err)));
	assert_non_null(w.pools[0] = pool_new(&cfg, err, sizeof(err)));
	assert_non_null(w.m = lease_mgr_new(w.st, w.pools, 1, &pol, 101, err, sizeof(err)));
	l = lease_find_identity(w.m, "lw2");
	assert_non_null(l);
	assert_false(l->orphan);
	assert_int_equal(l->psid_len, 6);
	assert_int_equal(l->psid, 1);
	down(&w);
}

static void
test_count_per_64(void **state)
{
	struct world w;
	char id[32], a6[64];
	const struct lease *l;
	unsigned expect[600] = {0};
	struct in6_addr p;

	up(&w, "10.0.0.0/16", 0, 1000);
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "id%u", i);
		snprintf(a6, sizeof(a6), "fd00:%x::%x", i % 600, i);
		acq(&w, id, a6, 0, 1000, NULL, 0);
		expect[i % 600]++;
	}
	/* Release every third; move every seventh of the rest to /64 599. */
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "id%u", i);
		if (i % 3 == 0) {
			assert_non_null(l = lease_find_identity(w.m, id));
			assert_int_equal(lease_release(w.m, l, 1010), 0);
			expect[i % 600]--;
		} else if (i % 7 == 0) {
			snprintf(a6, sizeof(a6), "fd00:257::%x", i);
			acq(&w, id, a6, 0, 1010, NULL, 0);
			expect[i % 600]--;
			expect[599]++;
		}
	}
	assert_int_equal(lease_commit(w.m), 0);
	for (unsigned k = 0; k < 600; k++) {
		snprintf(a6, sizeof(a6), "fd00:%x::1", k);
		p = v6(a6);
		assert_int_equal(lease_count_64(w.m, &p), expect[k]);
	}
	/* Everything expires: every count goes to zero. */
	lease_expire(w.m, 1000 + pol.lifetime + 20, NULL, NULL);
	for (unsigned k = 0; k < 600; k++) {
		snprintf(a6, sizeof(a6), "fd00:%x::1", k);
		p = v6(a6);
		assert_int_equal(lease_count_64(w.m, &p), 0);
	}
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
}

/* Continuity: an identity asking again within its quarantine gets its own slot back. */
static void
test_continuity(void **state)
{
	struct world w;
	const struct lease *a, *b, *l;
	struct lease_counters cnt;
	struct pool_stats ps;
	unsigned fl;
	uint32_t a4, b4;

	up(&w, "192.0.2.0/29", 0, 1000);
	a = acq(&w, "anon:fd00:d57::11", "fd00:d57::11", 0, 1000, &fl, 0);
	b = acq(&w, "tsp:bob", "fd00:d57::12", 0, 1000, &fl, 0);
	a4 = a->v4;
	b4 = b->v4;
	/* Released by its client: back to it, not to another, during the quarantine. */
	assert_int_equal(lease_release(w.m, a, 1010), 0);
	l = acq(&w, "tsp:carol", "fd00:d57::13", 0, 1011, &fl, 0);
	assert_int_not_equal(l->v4, a4);
	l = acq(&w, "anon:fd00:d57::11", "fd00:d57::11", 0, 1020, &fl, 0);
	assert_int_equal(fl, LEASE_NEW);
	assert_int_equal(l->v4, a4);
	assert_int_equal(l->state, LEASE_ACTIVE);
	assert_int_equal(l->expiry, 1120);
	pool_stats(w.pools[0], &ps);
	assert_int_equal(ps.quarantined, 0);
	/* Expired: the same, from another address of the same user (its binding moves). */
	assert_int_equal(lease_expire(w.m, 1112, NULL, NULL), 2); /* bob, carol */
	l = acq(&w, "tsp:bob", "fd00:d57::77", 0, 1113, &fl, 0);
	assert_int_equal(l->v4, b4);
	assert_int_equal(fl, LEASE_NEW);
	{
		struct in6_addr moved = v6("fd00:d57::77");

		assert_memory_equal(&l->v6, &moved, 16);
	}
	/* Asking for another address: that one, the old one stays in quarantine. */
	l = acq(&w, "tsp:carol", "fd00:d57::13", v4("192.0.2.6"), 1113, &fl, 0);
	assert_int_equal(l->v4, v4("192.0.2.6"));
	/* Revoked (or declined): never given back to the same identity. */
	a = lease_find_identity(w.m, "anon:fd00:d57::11");
	assert_int_equal(lease_revoke(w.m, a, 1115), 0);
	l = acq(&w, "anon:fd00:d57::11", "fd00:d57::11", 0, 1116, &fl, 0);
	assert_int_not_equal(l->v4, a4);
	assert_int_equal(lease_commit(w.m), 0);
	lease_counters(w.m, &cnt);
	assert_int_equal(cnt.reclaims, 2);
	down(&w);

	/* A port range comes back whole; once its quarantine is over and the slot is another's,
	 * the identity gets a new one. */
	up(&w, "192.0.2.10", 16128, 2000);
	a = acq(&w, "a", "fd00:d57::11", 0, 2000, &fl, 0);
	assert_int_equal(a->port_lo, 1024);
	assert_int_equal(lease_release(w.m, a, 2001), 0);
	l = acq(&w, "a", "fd00:d57::11", 0, 2002, &fl, 0);
	assert_int_equal(l->port_lo, 1024);
	assert_int_equal(lease_release(w.m, l, 2003), 0);
	acq(&w, "b", "fd00:d57::12", 0, 2004, &fl, 0);
	acq(&w, "c", "fd00:d57::13", 0, 2004, &fl, 0);
	acq(&w, "d", "fd00:d57::14", 0, 2004, &fl, 0);
	lease_expire(w.m, 2060, NULL, NULL);
	l = acq(&w, "e", "fd00:d57::15", 0, 2060, &fl, 0);
	assert_int_equal(l->port_lo, 1024); /* a's old range, quarantine over */
	acq(&w, "a", "fd00:d57::11", 0, 2061, &fl, -ENOSPC);
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
}

/* An offer lasts its hold; unconfirmed, its address is free at once (it was never used). */
static void
test_offer(void **state)
{
	struct world w;
	const struct lease *a, *l;
	struct pool_stats ps;
	unsigned fl;

	up(&w, "192.0.2.0/30", 0, 1000); /* .1 and .2 */
	a = acq(&w, "o1", "fd00:d57::11", 0, 1000, &fl, 0);
	assert_int_equal(lease_offer(w.m, a, 1000, 5), 0);
	assert_true(a->offer);
	assert_int_equal(a->expiry, 1005);
	assert_int_equal(lease_next_expiry(w.m), 1005);
	/* Confirmed by a request: a whole lifetime. */
	l = acq(&w, "o1", "fd00:d57::11", 0, 1003, &fl, 0);
	assert_false(l->offer);
	assert_int_equal(l->expiry, 1103);
	/* Another offer nobody takes: at its end the address is free, no quarantine. */
	a = acq(&w, "o2", "fd00:d57::12", 0, 1003, &fl, 0);
	assert_int_equal(lease_offer(w.m, a, 1003, 5), 0);
	assert_int_equal(lease_expire(w.m, 1008, NULL, NULL), 1);
	pool_stats(w.pools[0], &ps);
	assert_int_equal(ps.quarantined, 0);
	l = acq(&w, "o3", "fd00:d57::13", 0, 1009, &fl, 0);
	assert_int_equal(l->v4, v4("192.0.2.2"));
	assert_int_equal(lease_commit(w.m), 0);
	down(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_same_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_specific_and_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_down_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_uncommitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_count_per_64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_continuity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_offer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_psid_pool, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
