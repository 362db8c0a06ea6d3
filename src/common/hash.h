/*
 * The one hash function of the tree's hash tables: SipHash-1-3, keyed
 * with 128 random bits drawn when the process starts, so that nobody
 * outside can choose identities, DUIDs or client /64s that collide
 * (issue: the /64s of one site all landed in a few buckets of a
 * multiplicative hash, and start-up went quadratic). SipHash-1-3 is the
 * variant Rust's and Python's hash tables use: one compression round per
 * 8 bytes and three to finish, about 15 ns for a short key here.
 *
 * siphash() below follows the reference implementation of Jean-Philippe
 * Aumasson and Daniel J. Bernstein (https://github.com/veorq/SipHash,
 * released under CC0 1.0 Universal: "To the extent possible under law,
 * the author(s) have dedicated all copyright and related and neighboring
 * rights to this software to the public domain worldwide"), with the
 * number of compression and finalization rounds as parameters so that
 * the unit test can check it against the published SipHash-2-4 vectors.
 */
#ifndef DSTM_HASH_H
#define DSTM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HASH_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define HASH_SIPROUND                   \
	do {                            \
		v0 += v1;               \
		v1 = HASH_ROTL(v1, 13); \
		v1 ^= v0;               \
		v0 = HASH_ROTL(v0, 32); \
		v2 += v3;               \
		v3 = HASH_ROTL(v3, 16); \
		v3 ^= v2;               \
		v0 += v3;               \
		v3 = HASH_ROTL(v3, 21); \
		v3 ^= v0;               \
		v2 += v1;               \
		v1 = HASH_ROTL(v1, 17); \
		v1 ^= v2;               \
		v2 = HASH_ROTL(v2, 32); \
	} while (0)

static inline uint64_t
hash_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

/* SipHash-c-d of `len` bytes under the key (k0, k1) (the key's two little-endian halves). */
static inline uint64_t
siphash(uint64_t k0, uint64_t k1, const void *data, size_t len, int c, int d)
{
	const uint8_t *in = data, *end = in + len - (len % 8);
	uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1,
	         v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
	uint64_t m, b = (uint64_t)len << 56;
	uint8_t last[8] = {0};

	for (; in != end; in += 8) {
		m = hash_le64(in);
		v3 ^= m;
		for (int i = 0; i < c; i++)
			HASH_SIPROUND;
		v0 ^= m;
	}
	memcpy(last, in, len % 8);
	b |= hash_le64(last);
	v3 ^= b;
	for (int i = 0; i < c; i++)
		HASH_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < d; i++)
		HASH_SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

#undef HASH_SIPROUND
#undef HASH_ROTL

/* The process's key: random, drawn before main() runs (hash.c). */
extern uint64_t hash_k0, hash_k1;

/* SipHash-1-3 under the process's key. */
static inline uint64_t
hash_bytes(const void *p, size_t n)
{
	return siphash(hash_k0, hash_k1, p, n, 1, 3);
}

static inline uint64_t
hash_str(const char *s)
{
	return hash_bytes(s, strlen(s));
}

/* A 64-bit key, hashed as its 8 little-endian bytes. */
static inline uint64_t
hash_u64(uint64_t k)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(k >> (8 * i));
	return hash_bytes(b, sizeof(b));
}

/* Tests only: a fixed key, so that figures repeat. */
void hash_set_key(uint64_t k0, uint64_t k1);

#endif
