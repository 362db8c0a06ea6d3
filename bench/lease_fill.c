/*
 * lease-fill: writes a lease database for start-up benchmarks, through
 * the store itself (so the file has dstmd's schema), in one transaction:
 *   lease-fill PATH LEASES SLASH64S
 * LEASES active leases of 10.0.0.0/12 (at most 1,048,574), their clients
 * spread over SLASH64S /64s of a few sites (2001:db8:S:X::/64, the /64s
 * of one site differing in their last 16 bits: the keys that made the old
 * per-/64 hash quadratic), a day left on each, TEP "tep1", pool "bench".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "store/store.h"

int
main(int argc, char **argv)
{
	struct store *st;
	char err[512], id[32];
	unsigned long n, n64;
	int64_t now = clock_wall_s();

	if (argc != 4 || (n = strtoul(argv[2], NULL, 10)) == 0 || n > 1048574 ||
	    (n64 = strtoul(argv[3], NULL, 10)) == 0) {
		fprintf(stderr, "usage: lease-fill PATH LEASES SLASH64S\n");
		return 2;
	}
	if (!(st = store_open(argv[1], err, sizeof(err)))) {
		fprintf(stderr, "lease-fill: %s\n", err);
		return 1;
	}
	if (store_begin(st) != 0)
		goto fail;
	for (unsigned long i = 0; i < n; i++) {
		struct lease_row r = {0};
		unsigned long k = i % n64; /* which /64 */

		snprintf(id, sizeof(id), "tsp:user%lu", i);
		inet_pton(AF_INET6, "2001:db8::", &r.v6);
		r.v6.s6_addr[5] = (uint8_t)(k >> 16);
		r.v6.s6_addr[6] = (uint8_t)(k >> 8);
		r.v6.s6_addr[7] = (uint8_t)k;
		r.v6.s6_addr32[3] = htonl((uint32_t)(i / n64 + 1));
		r.identity = id;
		r.v4 = 0x0a000001u + (uint32_t)i; /* 10.0.0.1 on */
		r.pool = "bench";
		r.tep = "tep1";
		r.start = now;
		r.expiry = now + 86400;
		r.state = LEASE_ACTIVE;
		if (store_insert(st, &r) != 0)
			goto fail;
	}
	if (store_commit(st) != 0)
		goto fail;
	store_close(st);
	return 0;
fail:
	fprintf(stderr, "lease-fill: %s\n", store_errmsg(st));
	store_close(st);
	return 1;
}
