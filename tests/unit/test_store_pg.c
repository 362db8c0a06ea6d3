/*
 * Unit tests of the PostgreSQL lease store (src/store/store_pg.c) on a
 * private cluster started in a temporary directory (scripts/pg-cluster):
 * schema created once and found again, a round trip of every field, two
 * instances refused the same address or the same active identity by the
 * database, a write decided on a stale memory refused, notifications of
 * the other instance's commits, one expiry owner at a time, the history,
 * and PostgreSQL restarted under an open store (refused, then commits
 * again; an idle one reconnects by itself). Skipped, with the reason, when the PostgreSQL binaries are
 * missing.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <poll.h>

#include "store/store.h"

static char dir[64];
static char conninfo[256];
static char script[512];

static int
cluster(const char *cmd)
{
	char line[1024];
	int rc;

	snprintf(line, sizeof(line), "%s %s %s", script, cmd, dir);
	rc = system(line);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int
group_setup(void **state)
{
	const char *src = getenv("DSTM_SOURCE_ROOT");

	snprintf(script, sizeof(script), "%s/scripts/pg-cluster", src ? src : ".");
	snprintf(dir, sizeof(dir), "/tmp/test_store_pg.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(conninfo, sizeof(conninfo),
	         "host=%s port=5432 user=postgres dbname=postgres connect_timeout=3", dir);
	return cluster("start") == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char line[256];

	cluster("stop");
	snprintf(line, sizeof(line), "rm -rf %s", dir);
	return system(line) == 0 ? 0 : -1;
}

/* Every test starts from an empty schema. */
static int
setup(void **state)
{
	char line[1024];

	snprintf(line, sizeof(line),
	         "psql -q '%s' -c 'SET client_min_messages = warning; DROP TABLE IF EXISTS lease, "
	         "history, dstm_meta' >/dev/null",
	         conninfo);
	return system(line) == 0 ? 0 : -1;
}

static struct store *
open_pg(void)
{
	char err[256] = "";
	struct store *st = store_open_pg(conninfo, err, sizeof(err));

	if (!st)
		fail_msg("store_open_pg: %s", err);
	return st;
}

static void
row_of(struct lease_row *r, const char *identity, uint32_t v4, int64_t expiry)
{
	memset(r, 0, sizeof(*r));
	r->identity = identity;
	inet_pton(AF_INET6, "fd00:d57::100", &r->v6);
	r->v4 = v4;
	r->pool = "main";
	r->tep = "tep";
	r->start = 1000;
	r->expiry = expiry;
	r->state = LEASE_ACTIVE;
}

struct rows {
	int n;
	struct lease_row last;
	char identity[64];
};

static int
count_row(void *arg, const struct lease_row *r)
{
	struct rows *c = arg;

	c->n++;
	c->last = *r;
	snprintf(c->identity, sizeof(c->identity), "%s", r->identity);
	c->last.identity = c->identity;
	return 0;
}

static int
load(struct store *st, struct rows *c)
{
	memset(c, 0, sizeof(*c));
	return store_load(st, count_row, c);
}

static void
test_round_trip(void **state)
{
	struct store *st = open_pg();
	struct lease_row r;
	struct rows c;

	assert_int_equal(load(st, &c), 0);
	assert_int_equal(c.n, 0);
	row_of(&r, "alice", 0xc6336401, 5000);
	r.port_lo = 1024;
	r.port_hi = 2047;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_insert(st, &r), 0);
	assert_int_equal(r.id, STORE_ID(0xc6336401, 1024));
	assert_int_equal(store_history_add(st, LEASE_EV_GRANT, 1000, &r), 0);
	assert_int_equal(store_commit(st), 0);
	store_close(st);

	/* Reopened: the schema is found, not created again, and the row is there. */
	st = open_pg();
	assert_int_equal(load(st, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.identity, "alice");
	assert_int_equal(c.last.v4, 0xc6336401);
	assert_int_equal(c.last.port_lo, 1024);
	assert_int_equal(c.last.port_hi, 2047);
	assert_int_equal(c.last.expiry, 5000);
	assert_int_equal(c.last.start, 1000);
	assert_int_equal(c.last.state, LEASE_ACTIVE);
	r.expiry = 9000;
	r.state = LEASE_QUARANTINE;
	r.quarantine_until = 9999;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_update(st, &r), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(load(st, &c), 0);
	assert_int_equal(c.last.expiry, 9000);
	assert_int_equal(c.last.state, LEASE_QUARANTINE);
	assert_int_equal(c.last.quarantine_until, 9999);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_delete(st, r.id), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(load(st, &c), 0);
	assert_int_equal(c.n, 0);
	store_close(st);
}

/* Two instances, each with a memory that says the address is free. */
static void
test_two_instances_unique(void **state)
{
	struct store *a = open_pg(), *b = open_pg();
	struct lease_row r;
	struct rows c;

	assert_int_equal(load(a, &c), 0);
	assert_int_equal(load(b, &c), 0);
	row_of(&r, "alice", 0xc6336401, 5000);
	assert_int_equal(store_begin(a), 0);
	assert_int_equal(store_insert(a, &r), 0);
	assert_int_equal(store_commit(a), 0);
	/* The same address for another client at b: refused by the key, the batch whole. */
	row_of(&r, "bob", 0xc6336401, 5000);
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_insert(b, &r), 0);
	assert_int_equal(store_commit(b), -EIO);
	assert_non_null(strstr(store_errmsg(b), "taken"));
	/* The same client active at a second address: refused by the identity index. */
	row_of(&r, "alice", 0xc6336402, 5000);
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_insert(b, &r), 0);
	assert_int_equal(store_commit(b), -EIO);
	/* After loading what a committed, b goes on. */
	assert_int_equal(load(b, &c), 0);
	assert_int_equal(c.n, 1);
	row_of(&r, "bob", 0xc6336402, 5000);
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_insert(b, &r), 0);
	assert_int_equal(store_commit(b), 0);
	assert_int_equal(load(a, &c), 0);
	assert_int_equal(c.n, 2);
	store_close(a);
	store_close(b);
}

/* a renews; b, which has not seen it, expires the lease: refused. */
static void
test_stale_write_refused(void **state)
{
	struct store *a = open_pg(), *b = open_pg();
	struct lease_row r;
	struct rows c;

	row_of(&r, "alice", 0xc6336401, 5000);
	assert_int_equal(store_begin(a), 0);
	assert_int_equal(store_insert(a, &r), 0);
	assert_int_equal(store_commit(a), 0);
	assert_int_equal(load(b, &c), 0);
	r.expiry = 8000;
	assert_int_equal(store_begin(a), 0);
	assert_int_equal(store_update(a, &r), 0);
	assert_int_equal(store_commit(a), 0);
	r.expiry = 5000;
	r.state = LEASE_QUARANTINE;
	r.quarantine_until = 6000;
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_update(b, &r), 0);
	assert_int_equal(store_commit(b), -EIO);
	assert_non_null(strstr(store_errmsg(b), "another instance"));
	/* A delete on the stale memory too; after a failure, even of a known row, until reloaded. */
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_delete(b, r.id), 0);
	assert_int_equal(store_commit(b), -EIO);
	assert_int_equal(load(a, &c), 0);
	assert_int_equal(c.last.expiry, 8000);
	assert_int_equal(c.last.state, LEASE_ACTIVE);
	/* Reloaded, b sees the renewal and may write again. */
	assert_int_equal(load(b, &c), 0);
	r.expiry = 8000;
	r.state = LEASE_ACTIVE;
	r.quarantine_until = 0;
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_update(b, &r), 0);
	assert_int_equal(store_commit(b), 0);
	store_close(a);
	store_close(b);
}

static bool
wait_for(bool (*cond)(struct store *), struct store *st, int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		if (cond(st))
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static bool
foreign(struct store *st)
{
	return store_foreign_changes(st);
}

static bool
owner(struct store *st)
{
	return store_expiry_owner(st);
}

static bool
not_owner(struct store *st)
{
	return !store_expiry_owner(st);
}

static void
test_async_notify_and_owner(void **state)
{
	struct store *a = open_pg(), *b = open_pg();
	struct lease_row r;
	struct rows c;
	uint64_t ticket, durable = 0;
	struct pollfd p;

	assert_int_equal(load(a, &c), 0);
	assert_int_equal(load(b, &c), 0);
	assert_int_equal(store_async_start(a), 0);
	assert_true(wait_for(owner, a, 10));
	assert_int_equal(store_async_start(b), 0);
	/* One owner: b stays without the lock while a holds it. */
	sleep(2);
	assert_false(store_expiry_owner(b));
	/* a's own commit is not news to a, but is to b. */
	row_of(&r, "alice", 0xc6336401, 5000);
	assert_int_equal(store_begin(a), 0);
	assert_int_equal(store_insert(a, &r), 0);
	assert_int_equal(store_commit_async(a, &ticket), 0);
	p.fd = store_async_fd(a);
	p.events = POLLIN;
	while (durable < ticket) {
		assert_int_equal(poll(&p, 1, 10000), 1);
		assert_int_equal(store_async_poll(a, &durable), 0);
	}
	assert_true(wait_for(foreign, b, 10));
	sleep(1);
	assert_false(store_foreign_changes(a));
	/* a goes away: b takes expiry over. */
	assert_int_equal(store_async_stop(a), 0);
	store_close(a);
	assert_true(wait_for(owner, b, 10));
	assert_false(not_owner(b));
	store_close(b);
}

struct hist {
	int n;
	int64_t last;
};

static int
hist_row(void *arg, const struct history_row *h)
{
	struct hist *x = arg;

	x->n++;
	x->last = h->t;
	return 0;
}

static void
test_history(void **state)
{
	struct store *st = open_pg();
	struct lease_row r;
	struct hist x = {0};
	int64_t next = 0;

	row_of(&r, "alice", 0xc6336401, 5000);
	assert_int_equal(store_begin(st), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(store_history_add(st, LEASE_EV_RENEW, 100 + i, &r), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_history_scan(st, 0, 3, hist_row, &x, &next), 0);
	assert_int_equal(x.n, 3);
	assert_int_not_equal(next, 0);
	assert_int_equal(store_history_scan(st, next, 3, hist_row, &x, &next), 0);
	assert_int_equal(x.n, 5);
	assert_int_equal(next, 0);
	assert_int_equal(x.last, 104);
	/* Pruning looks at the head only and deletes what is older than the cut. */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_history_prune(st, 102, 100), 0);
	assert_int_equal(store_commit(st), 0);
	x.n = 0;
	assert_int_equal(store_history_scan(st, 0, 100, hist_row, &x, &next), 0);
	assert_int_equal(x.n, 3);
	store_close(st);
}

/* PostgreSQL goes away under an open store: refused, never faked; back: commits again. */
static void
test_server_restart(void **state)
{
	struct store *st = open_pg();
	struct lease_row r;
	struct rows c;

	assert_int_equal(load(st, &c), 0);
	assert_int_equal(cluster("stop"), 0);
	row_of(&r, "alice", 0xc6336401, 5000);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_insert(st, &r), 0);
	assert_int_equal(store_commit(st), -EIO);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_probe(st), 0);
	assert_int_equal(store_commit(st), -EIO);
	assert_int_equal(cluster("start"), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_probe(st), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(load(st, &c), 0);
	assert_int_equal(c.n, 0); /* the refused grant is nowhere */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_insert(st, &r), 0);
	assert_int_equal(store_commit(st), 0);
	store_close(st);
}

/* An idle instance reconnects by itself and says it may have missed commits. */
static void
test_idle_reconnect(void **state)
{
	struct store *st = open_pg();
	struct rows c;

	assert_int_equal(load(st, &c), 0);
	assert_int_equal(store_async_start(st), 0);
	assert_true(wait_for(owner, st, 10));
	(void)store_foreign_changes(st);
	assert_int_equal(cluster("stop"), 0);
	assert_true(wait_for(not_owner, st, 10));
	assert_int_equal(cluster("start"), 0);
	assert_true(wait_for(foreign, st, 20));
	assert_true(wait_for(owner, st, 10));
	assert_int_equal(store_async_stop(st), 0);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_round_trip, setup),
	    cmocka_unit_test_setup(test_two_instances_unique, setup),
	    cmocka_unit_test_setup(test_stale_write_refused, setup),
	    cmocka_unit_test_setup(test_async_notify_and_owner, setup),
	    cmocka_unit_test_setup(test_history, setup),
	    cmocka_unit_test_setup(test_server_restart, setup),
	    cmocka_unit_test_setup(test_idle_reconnect, setup),
	};
	char line[600];
	const char *src = getenv("DSTM_SOURCE_ROOT");

	snprintf(line, sizeof(line),
	         "test -x /usr/lib/postgresql/*/bin/postgres 2>/dev/null || "
	         "ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1");
	if (system(line) != 0) {
		printf("SKIP: no PostgreSQL binaries under /usr/lib/postgresql (package "
		       "postgresql)\n");
		return 77;
	}
	if (geteuid() != 0) {
		printf(
		    "SKIP: starting a private PostgreSQL cluster needs root (runuser postgres)\n");
		return 77;
	}
	(void)src;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
