/*
 * lease-bench: what durability costs dstmd. Allocations per second
 * through lease_acquire() + lease_commit() on a real SQLite file (WAL,
 * synchronous=FULL: every commit is fsync'd) with group commits of 1, 100
 * and 1000 allocations, then the memory a lease costs with 1,000,000 of
 * them (malloc'd bytes and resident set deltas) and the time a restart
 * takes to reload them. Prints figures only.
 *   lease-bench [directory]     (default /tmp)
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "store/lease.h"

static const struct lease_policy pol = {.lifetime = 3600, .quarantine = 300};

static long
rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
rm_db(const char *path)
{
	char p[512];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s.lock", path);
	unlink(p);
}

static struct pool *
big_pool(void)
{
	struct pool_range r;
	struct pool_config cfg = {"bench", &r, 1, NULL, 0, 0, 0, 0};
	char err[256];
	struct pool *p;

	if (!pool_range_parse("10.0.0.0/12", &r, err, sizeof(err)) ||
	    (p = pool_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "lease-bench: %s\n", err);
		exit(1);
	}
	return p;
}

static struct lease_mgr *
mgr_open(const char *path, struct store **st, struct pool **p)
{
	char err[256];
	struct lease_mgr *m;

	if ((*st = store_open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "lease-bench: %s\n", err);
		exit(1);
	}
	*p = big_pool();
	if ((m = lease_mgr_new(*st, p, 1, &pol, clock_wall_s(), err, sizeof(err))) == NULL) {
		fprintf(stderr, "lease-bench: %s\n", err);
		exit(1);
	}
	return m;
}

/* Allocate `n` leases, committing every `batch`; stop early after `max_ms`. */
static unsigned
run(struct lease_mgr *m, unsigned first, unsigned n, unsigned batch, int64_t max_ms)
{
	struct in6_addr v6 = {{{0xfd, 0, 0x0d, 0x57}}};
	int64_t t0 = clock_mono_ms(), now = clock_wall_s();
	const struct lease *l;
	unsigned i, flags;
	char id[32];

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "tsp:user%u", first + i);
		v6.s6_addr32[3] = htonl(first + i);
		if (lease_acquire(m, id, &v6, 0, NULL, "tep1", now, &l, &flags) != 0) {
			fprintf(stderr, "lease-bench: acquire failed at %u\n", i);
			exit(1);
		}
		if ((i + 1) % batch == 0) {
			if (lease_commit(m) != 0) {
				fprintf(stderr, "lease-bench: commit failed\n");
				exit(1);
			}
			if (max_ms > 0 && clock_mono_ms() - t0 > max_ms) {
				i++;
				break;
			}
		}
	}
	if (lease_commit(m) != 0)
		exit(1);
	return i;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	static const unsigned batches[] = {1, 100, 1000};
	char path[400];
	struct store *st;
	struct pool *p;
	struct lease_mgr *m;

	snprintf(path, sizeof(path), "%s/lease-bench.%d.db", dir, (int)getpid());
	printf("lease-bench: %s (WAL, synchronous=FULL)\n", path);
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		int64_t t0, ms;
		unsigned n;

		rm_db(path);
		m = mgr_open(path, &st, &p);
		t0 = clock_mono_ms();
		n = run(m, 0, 400000, batches[b], 3000);
		ms = clock_mono_ms() - t0;
		printf("group commit %4u: %8u allocations in %6lld ms = %9.0f allocations/s, "
		       "%7.0f commits/s\n",
		       batches[b], n, (long long)ms, n * 1000.0 / (double)(ms ? ms : 1),
		       n * 1000.0 / batches[b] / (double)(ms ? ms : 1));
		lease_mgr_free(m);
		pool_free(p);
		store_close(st);
	}

	/* Memory: 1,000,000 leases. */
	{
		struct mallinfo2 a, b2, c;
		long r0, r1, r2;
		int64_t t0, ms;
		struct pool_stats ps;

		rm_db(path);
		if ((st = store_open(path, (char[256]){0}, 256)) == NULL)
			return 1;
		malloc_trim(0);
		a = mallinfo2();
		r0 = rss_kb();
		p = big_pool();
		b2 = mallinfo2();
		r1 = rss_kb();
		m = lease_mgr_new(st, &p, 1, &pol, clock_wall_s(), (char[256]){0}, 256);
		if (m == NULL)
			return 1;
		t0 = clock_mono_ms();
		run(m, 0, 1000000, 10000, 0);
		ms = clock_mono_ms() - t0;
		c = mallinfo2();
		r2 = rss_kb();
		pool_stats(p, &ps);
		printf("1,000,000 leases (commits of 10000) in %lld ms = %.0f allocations/s\n",
		       (long long)ms, 1e6 * 1000.0 / (double)(ms ? ms : 1));
		printf("pool of %llu slots: %.1f bytes/slot malloc'd, %.1f bytes/slot RSS\n",
		       (unsigned long long)ps.size, (double)(b2.uordblks - a.uordblks) / ps.size,
		       (r1 - r0) * 1024.0 / ps.size);
		printf("lease manager: %.1f bytes/lease malloc'd (incl. per-slot index and SQLite "
		       "cache), %.1f bytes/lease RSS\n",
		       (double)(c.uordblks - b2.uordblks) / 1e6, (r2 - r1) * 1024.0 / 1e6);
		lease_mgr_free(m);
		pool_free(p);
		store_close(st);

		/* Restart: reload 1,000,000 rows. */
		t0 = clock_mono_ms();
		m = mgr_open(path, &st, &p);
		ms = clock_mono_ms() - t0;
		printf("reload of 1,000,000 leases at start: %lld ms\n", (long long)ms);
		lease_mgr_free(m);
		pool_free(p);
		store_close(st);
	}
	rm_db(path);
	return 0;
}
