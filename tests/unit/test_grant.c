/*
 * Unit tests of the allocation engine (src/grant): who may act on a
 * lease, which addresses can never be leased, where an authenticated
 * client's tunnel may end, the per-/64 policy, the push to the TEP, and
 * the allocation decision (TEP, pool, policy, slot) over a fake store,
 * TEP channel and clock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "grant/grant.h"

static struct in6_addr
a6(const char *s)
{
	struct in6_addr a;

	assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
	return a;
}

static struct grant_client
who(enum grant_kind k, bool authed, const char *v6)
{
	struct grant_client c = {.kind = k, .authenticated = authed, .v6 = a6(v6)};

	return c;
}

static void
test_owner_acts_from_its_address(void **state)
{
	struct in6_addr lease = a6("fd00:d57::11");
	struct grant_client c1 = who(GRANT_DUID, false, "fd00:d57::11");
	struct grant_client anon = who(GRANT_ANONYMOUS, false, "fd00:d57::11");

	assert_int_equal(grant_may_act(&c1, &lease), GRANT_OWNER);
	assert_int_equal(grant_may_act(&anon, &lease), GRANT_OWNER);
}

static void
test_stranger_changes_nothing(void **state)
{
	struct in6_addr lease = a6("fd00:d57::11");
	/* The same DUID (or user name) written by another host is only a claim. */
	struct grant_client x = who(GRANT_DUID, false, "fd00:d57::66");
	struct grant_client user = who(GRANT_USER, false, "fd00:d57::66");
	/* One bit away, and in the same /64: still another host. */
	struct grant_client near = who(GRANT_DUID, false, "fd00:d57::10");

	assert_int_equal(grant_may_act(&x, &lease), GRANT_FOREIGN);
	assert_int_equal(grant_may_act(&user, &lease), GRANT_FOREIGN);
	assert_int_equal(grant_may_act(&near, &lease), GRANT_FOREIGN);
}

static void
test_authenticated_client_moves(void **state)
{
	struct in6_addr lease = a6("fd00:d57::11");
	struct grant_client alice = who(GRANT_USER, true, "fd00:d57::12");
	struct grant_client signed_duid = who(GRANT_DUID, true, "fd00:d57::66");

	assert_int_equal(grant_may_act(&alice, &lease), GRANT_MOVE);
	assert_int_equal(grant_may_act(&signed_duid, &lease), GRANT_MOVE);
}

static void
test_special_addresses_never_leased(void **state)
{
	static const char *const special[] = {
	    "::",          "::1",          "fe80::1", "ff02::1:2", "ff05::1", "::ffff:192.0.2.7",
	    "::192.0.2.7", "fe80::d57:11",
	};

	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		struct in6_addr a = a6(special[i]);

		assert_int_equal(grant_check_v6(NULL, &a), GRANT_ADDR_SPECIAL);
	}
	assert_string_equal(grant_addr_name(GRANT_ADDR_SPECIAL), "special_address");
}

static void
test_network_addresses_never_leased(void **state)
{
	struct in6_addr own[] = {a6("fd00:d57::1"), a6("fd00:d57::2")};
	struct grant_net net = {own, 2};
	struct in6_addr srv = a6("fd00:d57::1"), tep = a6("fd00:d57::2"), c1 = a6("fd00:d57::11"),
	                g = a6("2001:db8::5");

	assert_int_equal(grant_check_v6(&net, &srv), GRANT_ADDR_NETWORK);
	assert_int_equal(grant_check_v6(&net, &tep), GRANT_ADDR_NETWORK);
	assert_int_equal(grant_check_v6(&net, &c1), GRANT_ADDR_OK);
	assert_int_equal(grant_check_v6(&net, &g), GRANT_ADDR_OK);
	assert_string_equal(grant_addr_name(GRANT_ADDR_NETWORK), "network_address");
}

static void
test_endpoint(void **state)
{
	struct grant_prefix allowed[] = {{a6("fd00:d57:1::"), 48}, {a6("fd00:d57::80"), 121}};
	struct grant_client anon = who(GRANT_ANONYMOUS, false, "fd00:d57::66");
	struct grant_client alice = who(GRANT_USER, true, "fd00:d57::66");
	struct in6_addr own = a6("fd00:d57::66"), c1 = a6("fd00:d57::11"),
	                inside = a6("fd00:d57:1:2::5"), edge = a6("fd00:d57::ff"),
	                below = a6("fd00:d57::7f");

	/* Its own address: anyone. */
	assert_true(grant_endpoint_ok(&anon, &own, allowed, 2));
	assert_true(grant_endpoint_ok(&alice, &own, NULL, 0));
	/* Another: never for an anonymous client, whatever is configured. */
	assert_false(grant_endpoint_ok(&anon, &c1, allowed, 2));
	assert_false(grant_endpoint_ok(&anon, &inside, allowed, 2));
	/* An authenticated one: inside its allowed prefixes only. */
	assert_false(grant_endpoint_ok(&alice, &c1, NULL, 0));
	assert_false(grant_endpoint_ok(&alice, &c1, allowed, 2));
	assert_true(grant_endpoint_ok(&alice, &inside, allowed, 2));
	assert_true(grant_endpoint_ok(&alice, &edge, allowed, 2));
	assert_false(grant_endpoint_ok(&alice, &below, allowed, 2));
}

/* ---- The admission policy, with a fake clock ---- */

static void
test_admit_quota(void **state)
{
	static struct grant_rate r;
	struct grant_policy p = {.per_64 = 3};
	struct in6_addr a = a6("fd00:d57::11"), b = a6("fd00:d57:1::11");

	assert_int_equal(grant_admit(&r, &p, &a, 0, 1000), GRANT_ADMIT_OK);
	assert_int_equal(grant_admit(&r, &p, &a, 2, 1000), GRANT_ADMIT_OK);
	assert_int_equal(grant_admit(&r, &p, &a, 3, 1000), GRANT_ADMIT_QUOTA_64);
	assert_int_equal(grant_admit(&r, &p, &b, 0, 1000), GRANT_ADMIT_OK);
	p.per_64 = 0; /* no limit */
	assert_int_equal(grant_admit(&r, &p, &a, 1000000, 1000), GRANT_ADMIT_OK);
}

/* The per-key variant (lw4o6: one sender on the link): its quota, then its rate. */
static void
test_admit_key(void **state)
{
	static struct grant_rate r;
	uint64_t a = 0x1234567890abcdefull, b = a + 1;
	int64_t now = 5000;
	unsigned ok = 0;

	(void)state;
	assert_int_equal(grant_admit_key(&r, 4, 0, a, 3, now), GRANT_ADMIT_OK);
	assert_int_equal(grant_admit_key(&r, 4, 0, a, 4, now), GRANT_ADMIT_QUOTA_64);
	assert_int_equal(grant_admit_key(&r, 0, 0, a, 1000, now), GRANT_ADMIT_OK);
	/* Rate 2: a burst of 4, then none until tokens come back; b has its own bucket. */
	for (int i = 0; i < 10; i++)
		ok += grant_admit_key(&r, 0, 2, a, 0, now) == GRANT_ADMIT_OK;
	assert_int_equal(ok, 4);
	assert_int_equal(grant_admit_key(&r, 0, 2, b, 0, now), GRANT_ADMIT_OK);
	/* A refusal by quota takes no token. */
	assert_int_equal(grant_admit_key(&r, 1, 2, b, 1, now), GRANT_ADMIT_QUOTA_64);
	now += 500;
	assert_int_equal(grant_admit_key(&r, 0, 2, a, 0, now), GRANT_ADMIT_OK);
	assert_int_equal(grant_admit_key(&r, 0, 2, a, 0, now), GRANT_ADMIT_RATE_64);
}

static void
test_admit_rate(void **state)
{
	static struct grant_rate r;
	struct grant_policy p = {.rate_64 = 5};
	struct in6_addr a = a6("fd00:d57::11"), a2 = a6("fd00:d57::99"), b = a6("fd00:d57:1::11");
	int64_t now = 0; /* the clock may start at 0 */
	unsigned ok = 0;

	/* A burst of twice the rate, then nothing until tokens come back. */
	for (int i = 0; i < 12; i++)
		ok += grant_admit(&r, &p, i % 2 ? &a : &a2, 0, now) == GRANT_ADMIT_OK;
	assert_int_equal(ok, 10);
	assert_int_equal(grant_admit(&r, &p, &a, 0, now), GRANT_ADMIT_RATE_64);
	/* Another /64 has its own bucket. */
	assert_int_equal(grant_admit(&r, &p, &b, 0, now), GRANT_ADMIT_OK);
	/* 200 ms at 5 a second: one more. */
	now += 200;
	assert_int_equal(grant_admit(&r, &p, &a, 0, now), GRANT_ADMIT_OK);
	assert_int_equal(grant_admit(&r, &p, &a, 0, now), GRANT_ADMIT_RATE_64);
	/* A long pause fills the bucket to the burst, not beyond. */
	now += 60000;
	ok = 0;
	for (int i = 0; i < 20; i++)
		ok += grant_admit(&r, &p, &a, 0, now) == GRANT_ADMIT_OK;
	assert_int_equal(ok, 10);
	/* The quota comes first. */
	p.per_64 = 1;
	assert_int_equal(grant_admit(&r, &p, &b, 1, now), GRANT_ADMIT_QUOTA_64);
}

/* ---- grant_push with a fake TEP (answers now or later) and a fake store ---- */

struct fake_env {
	bool later;     /* keep the answers for fake_answer_all() */
	int refuse_tep; /* the TEP numbered so refuses (0: none) */
	unsigned npushed, nrolled, ndone;
	void (*done[8])(void *cookie, bool ok);
	void *cookie[8];
	bool ok[8];
	unsigned nheld;
	char rolled[8][32];
};

static void
fake_push(void *env, const void *tep, const void *binding, void (*done)(void *cookie, bool ok),
          void *cookie)
{
	struct fake_env *f = env;
	bool ok = *(const int *)tep != f->refuse_tep;

	f->npushed++;
	if (!f->later) {
		done(cookie, ok);
		return;
	}
	f->done[f->nheld] = done;
	f->cookie[f->nheld] = cookie;
	f->ok[f->nheld++] = ok;
}

static void
fake_rollback(void *env, const char *identity, uint32_t v4, uint16_t port_lo)
{
	struct fake_env *f = env;

	snprintf(f->rolled[f->nrolled++], sizeof(f->rolled[0]), "%s", identity);
}

static void
fake_done(void *arg)
{
	((struct fake_env *)arg)->ndone++;
}

static const struct grant_push_ops fake_ops = {fake_push, fake_rollback};

static void
test_push(void **state)
{
	static const int tep1 = 1, tep2 = 2;
	struct fake_env f = {0};
	struct grant_push_item it[4];

	/* Nothing to push: done at once. */
	memset(it, 0, sizeof(it));
	grant_push(&fake_ops, &f, it, 2, fake_done, &f);
	assert_int_equal(f.ndone, 1);
	assert_int_equal(f.npushed, 0);

	/* Three pushes answered at once; tep2 refuses a new and a moved lease. */
	memset(&f, 0, sizeof(f));
	f.refuse_tep = 2;
	it[0] = (struct grant_push_item){.tep = &tep1, .identity = "a", .is_new = true};
	it[1] = (struct grant_push_item){.tep = &tep2, .identity = "b", .is_new = true};
	it[2] = (struct grant_push_item){.tep = NULL, .identity = "c", .is_new = true};
	it[3] = (struct grant_push_item){.tep = &tep2, .identity = "d", .is_new = false};
	grant_push(&fake_ops, &f, it, 4, fake_done, &f);
	assert_int_equal(f.ndone, 1);
	assert_int_equal(f.npushed, 3);
	assert_false(it[0].refused);
	assert_true(it[1].refused);
	assert_false(it[2].refused);
	assert_true(it[3].refused);
	/* Only the new lease is rolled back; a moved one keeps its old binding's lease. */
	assert_int_equal(f.nrolled, 1);
	assert_string_equal(f.rolled[0], "b");

	/* Answers that come later, in another order: done once, after the last. */
	memset(&f, 0, sizeof(f));
	f.later = true;
	f.refuse_tep = 1;
	it[0] = (struct grant_push_item){.tep = &tep1, .identity = "a", .is_new = true};
	it[1] = (struct grant_push_item){.tep = &tep2, .identity = "b", .is_new = true};
	grant_push(&fake_ops, &f, it, 2, fake_done, &f);
	assert_int_equal(f.ndone, 0);
	f.done[1](f.cookie[1], f.ok[1]);
	assert_int_equal(f.ndone, 0);
	f.done[0](f.cookie[0], f.ok[0]);
	assert_int_equal(f.ndone, 1);
	assert_true(it[0].refused);
	assert_false(it[1].refused);
	assert_int_equal(f.nrolled, 1);
	assert_string_equal(f.rolled[0], "a");
}

/* ---- The allocation decision (grant_acquire) with a fake store, TEP channel and clock ---- */

struct fake_alloc {
	bool holds;       /* the identity holds a lease */
	unsigned held_64; /* active leases of the /64 */
	bool tep_up;
	int64_t now_ms;
	int acquire_rc; /* what the slot allocator answers */
	unsigned nacquire;
	const char *pool, *tep; /* what it was asked for */
	int64_t now;
	int lease; /* the fake lease handed back */
};

static bool
fa_holds(void *env, const char *identity)
{
	return ((struct fake_alloc *)env)->holds;
}

static unsigned
fa_held_64(void *env, const struct in6_addr *v6)
{
	return ((struct fake_alloc *)env)->held_64;
}

static bool
fa_tep_up(void *env, const void *tep)
{
	return ((struct fake_alloc *)env)->tep_up;
}

static int64_t
fa_now_ms(void *env)
{
	return ((struct fake_alloc *)env)->now_ms;
}

static int
fa_acquire(void *env, const struct grant_req *req, const char *pool, const char *tep,
           const void **lease, unsigned *flags)
{
	struct fake_alloc *f = env;

	f->nacquire++;
	f->pool = pool;
	f->tep = tep;
	f->now = req->now;
	if (f->acquire_rc)
		return f->acquire_rc;
	*lease = &f->lease;
	*flags = 1;
	return 0;
}

static const struct grant_alloc_ops fa_ops = {fa_holds, fa_held_64, fa_tep_up, fa_now_ms,
                                              fa_acquire};

/* Two TEPs for 2001:db8:1::/48 and 2001:db8:2::/48, and a default one after them. */
static struct grant_prefix p1, p2;
static struct grant_tep teps[3];

static void
setup_teps(void)
{
	p1 = (struct grant_prefix){a6("2001:db8:1::"), 48};
	p2 = (struct grant_prefix){a6("2001:db8:2::"), 48};
	teps[0] = (struct grant_tep){
	    .ref = &teps[0], .name = "t1", .pool = "a", .clients = &p1, .nclients = 1};
	teps[1] = (struct grant_tep){
	    .ref = &teps[1], .name = "t2", .pool = "b", .clients = &p2, .nclients = 1};
	teps[2] = (struct grant_tep){.ref = &teps[2], .name = "any", .pool = NULL};
}

static void
test_tep_choose(void **state)
{
	struct in6_addr in1 = a6("2001:db8:1::5"), in2 = a6("2001:db8:2:3::5"),
	                out = a6("2001:db8:9::1");

	setup_teps();
	assert_ptr_equal(grant_tep_choose(teps, 3, &in1), &teps[0]);
	assert_ptr_equal(grant_tep_choose(teps, 3, &in2), &teps[1]);
	/* No prefix holds it: the first TEP that names no clients. */
	assert_ptr_equal(grant_tep_choose(teps, 3, &out), &teps[2]);
	/* Without a default TEP, none. */
	assert_null(grant_tep_choose(teps, 2, &out));
	assert_null(grant_tep_choose(teps, 0, &in1));
}

static struct grant_req
req_at(const char *v6)
{
	struct grant_req r = {.who = who(GRANT_ANONYMOUS, false, v6), .identity = "x", .now = 1000};

	r.v6 = r.who.v6;
	return r;
}

static void
test_acquire_tep_and_pool(void **state)
{
	static struct grant_rate rate;
	struct fake_alloc f = {.tep_up = true};
	struct grant_engine e = {&fa_ops, &f, teps, 3, &rate};
	struct grant_policy pol = {0};
	struct grant_req r = req_at("2001:db8:2::7");
	struct grant_result res;

	setup_teps();
	memset(&rate, 0, sizeof(rate));
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	assert_ptr_equal(res.tep, &teps[1]);
	assert_string_equal(f.tep, "t2");
	assert_string_equal(f.pool, "b"); /* the pool is the TEP's */
	assert_int_equal(f.now, 1000);
	assert_ptr_equal(res.lease, &f.lease);
	assert_int_equal(res.flags, 1);
	/* The default TEP lends from any pool. */
	r = req_at("2001:db8:77::1");
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	assert_string_equal(f.tep, "any");
	assert_null(f.pool);
	/* An access method with its own pool (lw4o6) lends from it, through the TEP chosen. */
	r.pool = "lw";
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	assert_string_equal(f.tep, "any");
	assert_string_equal(f.pool, "lw");
	/* No TEP: the allocator is not asked. */
	e.nteps = 2;
	f.nacquire = 0;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_NO_TEP);
	assert_null(res.tep);
	assert_int_equal(f.nacquire, 0);
}

static void
test_acquire_policy(void **state)
{
	static struct grant_rate rate;
	struct fake_alloc f = {.tep_up = true, .held_64 = 4, .now_ms = 5000};
	struct grant_engine e = {&fa_ops, &f, teps, 3, &rate};
	struct grant_policy pol = {.per_64 = 4, .rate_64 = 1};
	struct grant_req r = req_at("2001:db8:1::9");
	struct grant_result res;

	setup_teps();
	memset(&rate, 0, sizeof(rate));
	/* The /64 holds its share: a new lease is refused, nothing allocated. */
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_QUOTA);
	assert_int_equal(f.nacquire, 0);
	/* A lease held is renewed whatever the quota. */
	f.holds = true;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	assert_int_equal(f.nacquire, 1);
	/* Rate: one a second, bursts of two; the refused quota took no token. */
	f.holds = false;
	f.held_64 = 0;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_RATE);
	assert_int_equal(f.nacquire, 3);
	/* The injected clock refills the bucket. */
	f.now_ms += 1000;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	/* Another /64 has its own bucket. */
	r = req_at("2001:db8:1:1::9");
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
}

static void
test_acquire_tep_down_and_refusal(void **state)
{
	static struct grant_rate rate;
	struct fake_alloc f = {.tep_up = false};
	struct grant_engine e = {&fa_ops, &f, teps, 3, &rate};
	struct grant_policy pol = {0};
	struct grant_req r = req_at("2001:db8:1::9");
	struct grant_result res;

	setup_teps();
	memset(&rate, 0, sizeof(rate));
	/* TEP down: no new address for a binding nobody can push. */
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_TEP_DOWN);
	assert_ptr_equal(res.tep, &teps[0]);
	assert_int_equal(f.nacquire, 0);
	/* A lease held is renewed: its binding is at the TEP already. */
	f.holds = true;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_GRANTED);
	/* The allocator's refusal comes back as it is, with no lease. */
	f.tep_up = true;
	f.holds = false;
	f.acquire_rc = -ENOSPC;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_FAILED);
	assert_int_equal(res.err, -ENOSPC);
	assert_null(res.lease);
	f.acquire_rc = -EIO;
	assert_int_equal(grant_acquire(&e, &pol, &r, &res), GRANT_FAILED);
	assert_int_equal(res.err, -EIO);
}

/* ---- The lease's identity and its key ---- */

static void
test_identity_key(void **state)
{
	struct grant_identity id = {
	    .kind = GRANT_ID_DUID, .duid = {0x00, 0x03, 0xab}, .duid_len = 3, .iaid = 0x1f};
	struct grant_identity back;
	char key[300], small[8];

	assert_int_equal(grant_identity_key(&id, key, sizeof(key)), 0);
	assert_string_equal(key, "dhcp6:0003ab:0000001f");
	assert_true(grant_identity_parse(key, &back));
	assert_int_equal(back.kind, GRANT_ID_DUID);
	assert_int_equal(back.duid_len, 3);
	assert_memory_equal(back.duid, id.duid, 3);
	assert_int_equal(back.iaid, 0x1f);
	/* Never a truncated key. */
	assert_int_equal(grant_identity_key(&id, small, sizeof(small)), -ENAMETOOLONG);
	assert_string_equal(small, "");
	/* Exactly the room it needs, with its terminating NUL; one less is refused. */
	assert_int_equal(grant_identity_key(&id, key, 22), 0);
	assert_string_equal(key, "dhcp6:0003ab:0000001f");
	assert_int_equal(grant_identity_key(&id, key, 21), -ENAMETOOLONG);
	id.iaid = 0xdeadbeef;
	id.duid[2] = 0xf0;
	assert_int_equal(grant_identity_key(&id, key, sizeof(key)), 0);
	assert_string_equal(key, "dhcp6:0003f0:deadbeef");
	id.iaid = 0x1f;
	id.duid[2] = 0xab;

	id = (struct grant_identity){.kind = GRANT_ID_ADDRESS, .v6 = a6("2001:db8::1")};
	assert_int_equal(grant_identity_key(&id, key, sizeof(key)), 0);
	assert_string_equal(key, "anon:2001:db8::1");
	assert_true(grant_identity_parse(key, &back));
	assert_int_equal(back.kind, GRANT_ID_ADDRESS);
	assert_memory_equal(&back.v6, &id.v6, 16);

	id = (struct grant_identity){.kind = GRANT_ID_USER, .name = "alice"};
	assert_int_equal(grant_identity_key(&id, key, sizeof(key)), 0);
	assert_string_equal(key, "tsp:alice");
	assert_true(grant_identity_parse(key, &back));
	assert_int_equal(back.kind, GRANT_ID_USER);
	assert_string_equal(back.name, "alice");
	id = (struct grant_identity){.kind = GRANT_ID_CERT, .name = "host-7"};
	assert_int_equal(grant_identity_key(&id, key, sizeof(key)), 0);
	assert_string_equal(key, "cert:host-7");
	assert_int_equal(grant_identity_key(&id, small, sizeof(small)), -ENAMETOOLONG);
	id.name = "";
	assert_int_equal(grant_identity_key(&id, key, sizeof(key)), -EINVAL);

	/* What no key spells. */
	assert_false(grant_identity_parse("dhcp6:0a0:00000001", &back));
	assert_false(grant_identity_parse("dhcp6:0a0g:00000001", &back));
	assert_false(grant_identity_parse("dhcp6::00000001", &back));
	assert_false(grant_identity_parse("dhcp6:0a0b", &back));
	assert_false(grant_identity_parse("dhcp6:0a0b:0000000x", &back));
	assert_false(grant_identity_parse("anon:not-an-address", &back));
	assert_false(grant_identity_parse("tsp:", &back));
	assert_false(grant_identity_parse("lw:1", &back));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_owner_acts_from_its_address),
	    cmocka_unit_test(test_stranger_changes_nothing),
	    cmocka_unit_test(test_authenticated_client_moves),
	    cmocka_unit_test(test_special_addresses_never_leased),
	    cmocka_unit_test(test_network_addresses_never_leased),
	    cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_admit_quota),
	    cmocka_unit_test(test_admit_key),
	    cmocka_unit_test(test_admit_rate),
	    cmocka_unit_test(test_push),
	    cmocka_unit_test(test_identity_key),
	    cmocka_unit_test(test_tep_choose),
	    cmocka_unit_test(test_acquire_tep_and_pool),
	    cmocka_unit_test(test_acquire_policy),
	    cmocka_unit_test(test_acquire_tep_down_and_refusal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
