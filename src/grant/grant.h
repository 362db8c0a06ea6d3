/*
 * The allocation engine's rules, shared by every access method (DESIGN
 * §4): the identity rule (who may act on a lease, which IPv6 addresses a
 * lease may ever be bound to), the admission policy, the choice of TEP and
 * pool around the slot allocator, and the push to the TEP after commit.
 * Functions of their arguments: no I/O and no clock of their own (the
 * store, the TEP channel and the clock are injected), so that the TSP and
 * DHCPv6 adapters (src/dstmd/access.c, src/dstmd/dhcp.c) and the unit
 * tests call the very same code.
 *
 * Threat model: a client writes anything it likes (a DUID, an IAID, a
 * `<client>` address, a relay's peer-address); only what the server
 * verified counts. The adapters fill `struct grant_client` from the
 * datagram or connection source (or the innermost peer-address of a
 * relay the configuration trusts) and from the authentication they
 * checked themselves; nothing here parses the client's words.
 */
#ifndef DSTM_GRANT_H
#define DSTM_GRANT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How the client proved who it is. */
enum grant_kind {
	GRANT_ANONYMOUS, /* TSP ANONYMOUS: known by its source address only */
	GRANT_USER,      /* TSP SASL user or TLS certificate */
	GRANT_DUID,      /* DHCPv6 DUID + IAID (authenticated only with delayed authentication) */
};

struct grant_client {
	enum grant_kind kind;
	bool authenticated; /* a secret was checked: SASL, TLS certificate, DHCPv6 delayed auth */
	struct in6_addr v6; /* the verified address (source, or a trusted relay's peer-address) */
};

/*
 * Whose lease it is: the key under which the store keeps it. One struct
 * for every access method, spelt as a string in one place (the store's
 * rows and the control socket show that string).
 */
enum grant_id_kind {
	GRANT_ID_ADDRESS, /* TSP ANONYMOUS: "anon:<IPv6 address>" */
	GRANT_ID_USER,    /* TSP SASL user: "tsp:<user>" */
	GRANT_ID_CERT,    /* TSP over TLS, a client certificate: "cert:<common name>" */
	GRANT_ID_DUID,    /* DHCPv6: "dhcp6:<DUID in hex>:<IAID in 8 hex digits>" */
};

#define GRANT_DUID_MAX 130 /* RFC 8415 §11.1: 128 octets and the type */

struct grant_identity {
	enum grant_id_kind kind;
	struct in6_addr v6; /* GRANT_ID_ADDRESS */
	const char *name;   /* GRANT_ID_USER, GRANT_ID_CERT */
	uint8_t duid[GRANT_DUID_MAX];
	size_t duid_len; /* GRANT_ID_DUID: 1 to GRANT_DUID_MAX */
	uint32_t iaid;
};

/* The lease's key for `id` into out: 0, or -ENAMETOOLONG (out is then empty), -EINVAL. */
int grant_identity_key(const struct grant_identity *id, char *out, size_t cap);
/*
 * The identity a key names (the inverse of grant_identity_key): true and
 * *id filled (a name points into `key`), or false for what no key spells.
 */
bool grant_identity_parse(const char *key, struct grant_identity *id);

/* What a message may do to the lease its identity already holds. */
enum grant_verdict {
	GRANT_OWNER,   /* from the lease's own address: renew, release, … */
	GRANT_MOVE,    /* authenticated, from another address: the binding may move there */
	GRANT_FOREIGN, /* unauthenticated, from another address: nothing changes */
};

/*
 * The identity rule: a message acts on a lease bound to `lease_v6` only
 * from that address, or, for an authenticated client, from anywhere (the
 * binding then moves to the client's verified address).
 */
enum grant_verdict grant_may_act(const struct grant_client *who, const struct in6_addr *lease_v6);

/* Why an IPv6 address cannot be a tunnel end point (a lease's address). */
enum grant_addr {
	GRANT_ADDR_OK,
	GRANT_ADDR_SPECIAL, /* unspecified, loopback, link-local, multicast, mapped, compatible */
	GRANT_ADDR_NETWORK, /* the server's or a TEP's own address */
	GRANT_ADDR__COUNT
};

/* The addresses the network uses itself: never a client's. */
struct grant_net {
	const struct in6_addr *own; /* the server's addresses and every TEP's */
	size_t nown;
};

enum grant_addr grant_check_v6(const struct grant_net *net, const struct in6_addr *a);
/* "special_address", "network_address": the counter suffix of a verdict. */
const char *grant_addr_name(enum grant_addr r);

struct grant_prefix {
	struct in6_addr prefix;
	unsigned plen;
};

/* Whether `a` is inside `p`. */
bool grant_in_prefix(const struct in6_addr *a, const struct grant_prefix *p);

/*
 * Whether `who` may have its tunnel end at `wanted` rather than at its
 * verified address: only an authenticated client, and only inside one of
 * the prefixes its configuration entry allows (none: only its own).
 */
bool grant_endpoint_ok(const struct grant_client *who, const struct in6_addr *wanted,
                       const struct grant_prefix *allowed, size_t nallowed);

/* ---- The admission policy: one per-/64 quota and one rate, for every access method ---- */

/* What a /64's clients may take, configured once (limits.per_64, limits.allocations_per_64). */
struct grant_policy {
	unsigned per_64;  /* active leases the clients of one /64 may hold; 0: no limit */
	unsigned rate_64; /* new leases per /64 and second (bursts of twice that); 0: no limit */
};

/*
 * The rate buckets: a token bucket per /64 in a direct-mapped table of
 * fixed size, so that no flood of prefixes can grow it; a /64 landing on
 * a slot held by another takes it over with a full bucket (collisions only
 * ever loosen the limit). Zeroed memory is an empty table.
 */
#define GRANT_RATE_SLOTS 4096
struct grant_rate {
	struct {
		uint64_t key;
		double tokens;
		int64_t last_ms;
		bool used;
	} slot[GRANT_RATE_SLOTS];
};

enum grant_admit {
	GRANT_ADMIT_OK,
	GRANT_ADMIT_QUOTA_64, /* the /64 holds its share (TSP 301, DHCPv6 NoAddrsAvail) */
	GRANT_ADMIT_RATE_64,  /* the /64 asks too fast (TSP 530, DHCPv6 NoAddrsAvail) */
};

/*
 * May a client at `v6` get a new lease, its /64 holding `held` active
 * leases, at `now_ms` (a monotonic clock the caller injects)? A renewal
 * of a lease held is never a new lease: do not ask. Takes a token when
 * admitted.
 */
enum grant_admit grant_admit(struct grant_rate *r, const struct grant_policy *p,
                             const struct in6_addr *v6, unsigned held, int64_t now_ms);
/*
 * The same quota and rate for any 64-bit key, in a table of its own: the
 * lw4o6 path keys it on one sender on the link (a link-local address, a
 * relay's peer), whose /64 is everyone's. QUOTA_64 and RATE_64 then name
 * the key's quota (`held` >= per_key) and rate (new leases per second).
 */
enum grant_admit grant_admit_key(struct grant_rate *r, unsigned per_key, unsigned rate,
                                 uint64_t key, unsigned held, int64_t now_ms);

/* ---- After the commit: push to the TEP, roll back what it refused, then answer ---- */

/*
 * One grant waiting for its TEP (seed 001 C §2.1: no lease without its
 * binding at the TEP). The caller owns the items until done() runs.
 */
struct grant_push_item {
	const void *tep;      /* the TEP to push to (the adapter's) */
	const void *binding;  /* what to push (the adapter's binding) */
	const char *identity; /* whose lease */
	uint32_t v4;          /* the lease's address and first port: the rollback checks */
	uint16_t port_lo;     /* that the identity still holds this very lease */
	bool is_new;          /* a new lease: rolled back when the TEP refuses */
	bool refused;         /* out: the TEP refused it, or could not be asked */
};

/* The TEP channel and the store, injected. */
struct grant_push_ops {
	/* Push `binding` to `tep`; done(cookie, ok) runs later, or at once. */
	void (*push)(void *env, const void *tep, const void *binding,
	             void (*done)(void *cookie, bool ok), void *cookie);
	/* End the new lease of `identity` at (v4, port_lo) the TEP refused, if it still holds it. */
	void (*rollback)(void *env, const char *identity, uint32_t v4, uint16_t port_lo);
};

/*
 * Push every item, roll back each refused new lease, and call done(arg)
 * once every TEP answered (at once when there is nothing to push). Out
 * of memory: the items not pushed are refused (and rolled back).
 */
void grant_push(const struct grant_push_ops *ops, void *env, struct grant_push_item *items,
                size_t n, void (*done)(void *arg), void *arg);

/* ---- Choosing the TEP and its pool, then the slot: one decision for every access method ---- */

/* One configured TEP as the engine sees it. */
struct grant_tep {
	const void *ref; /* the adapter's TEP */
	const char *name;
	const char *pool;                   /* the pool it lends from; NULL: any */
	const struct grant_prefix *clients; /* the client prefixes it serves */
	size_t nclients;                    /* none: it serves whom no other TEP names */
};

/*
 * The TEP that serves `v6`: the first whose client prefixes hold it, else
 * the first that names no clients, else none (NULL).
 */
const struct grant_tep *grant_tep_choose(const struct grant_tep *teps, size_t n,
                                         const struct in6_addr *v6);

/* A request for a lease, as an adapter translated it from its protocol. */
struct grant_req {
	struct grant_client who; /* kind, authenticated, verified address */
	const char *identity;    /* the lease's key: user, address, or DUID and IAID */
	struct in6_addr v6;      /* where the tunnel ends (the adapter checked it) */
	uint32_t want_v4;        /* the address the client asked for; 0: any */
	const char *pool;        /* the access method's own pool (lw4o6); NULL: the TEP's */
	int64_t now;             /* wall clock, seconds: when the lease starts or is renewed */
};

/* The store, the TEP channel and the clock, injected. */
struct grant_alloc_ops {
	/* Whether `identity` holds a lease now (renewing it is never a new lease). */
	bool (*holds)(void *env, const char *identity);
	/* Active leases of the clients of v6's /64. */
	unsigned (*held_64)(void *env, const struct in6_addr *v6);
	/* Whether the TEP's control channel is up (or it learns its bindings). */
	bool (*tep_up)(void *env, const void *tep);
	/* A monotonic clock, in milliseconds (the rate buckets). */
	int64_t (*now_ms)(void *env);
	/*
	 * The slot allocator (src/store, lease_acquire): the identity's lease,
	 * renewed, or a new one from `pool` (NULL: any) bound to `tep`. 0, the
	 * adapter's lease and LEASE_* flags; or -ENOSPC, -EADDRNOTAVAIL, -EIO, …
	 */
	int (*acquire)(void *env, const struct grant_req *req, const char *pool, const char *tep,
	               const void **lease, unsigned *flags);
};

struct grant_engine {
	const struct grant_alloc_ops *ops;
	void *env;
	const struct grant_tep *teps; /* the configuration's, in its order */
	size_t nteps;
	struct grant_rate *rate; /* the rate buckets, shared by every access method */
};

enum grant_outcome {
	GRANT_GRANTED,
	GRANT_NO_TEP,   /* no TEP serves the client's address */
	GRANT_QUOTA,    /* a new lease, and the /64 holds its share (policy.per_64) */
	GRANT_RATE,     /* a new lease, and the /64 asks too fast (policy.rate_64) */
	GRANT_TEP_DOWN, /* a new lease, and its TEP cannot be told: no address for nothing */
	GRANT_FAILED,   /* the slot allocator refused: grant_result.err */
};

struct grant_result {
	const struct grant_tep *tep; /* chosen (every outcome but GRANT_NO_TEP) */
	const void *lease;           /* GRANT_GRANTED: the adapter's lease */
	unsigned flags;              /* GRANT_GRANTED: the allocator's flags */
	int err;                     /* GRANT_FAILED: its -errno */
};

/*
 * The allocation decision: choose the TEP that serves req->v6 (and with it
 * the pool), apply `policy` to a new lease (quota then rate: a refused
 * request takes no token), refuse a new lease whose TEP is down, and take
 * the slot. A lease the identity holds is renewed whatever the policy.
 */
enum grant_outcome grant_acquire(const struct grant_engine *e, const struct grant_policy *policy,
                                 const struct grant_req *req, struct grant_result *res);

#endif
