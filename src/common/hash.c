/*
 * The key of hash.h's SipHash, drawn from the kernel before main() runs:
 * the daemons install their seccomp filter later, and a hash table may be
 * used from any thread, so the key is never drawn lazily. Without
 * getrandom() (a very old kernel) the key falls back to the clock and
 * the pid, which still differ from one start to the next.
 */
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"

uint64_t hash_k0, hash_k1;

__attribute__((constructor)) static void
hash_init(void)
{
	uint64_t k[2];
	struct timespec ts;

	if (getrandom(k, sizeof(k), 0) == (ssize_t)sizeof(k)) {
		hash_k0 = k[0];
		hash_k1 = k[1];
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	hash_k0 = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	hash_k1 = (uint64_t)ts.tv_sec ^ (uint64_t)time(NULL) << 20;
}

void
hash_set_key(uint64_t k0, uint64_t k1)
{
	hash_k0 = k0;
	hash_k1 = k1;
}
