/*
 * Unit tests of src/dhcp6: the codec (placement, duplicates, lengths,
 * relays, names), authentication (MAC, replay, reconfigure key), the
 * server engine over an in-memory lease manager (every message type and
 * status code of RFC 8415 §18.3, both DSTM forms, limits) and the client
 * engine talking to the server engine through its bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/addr.h"
#include "dhcp6/d6.h"

/* ---- An in-memory lease manager: 192.0.2.10 .. 192.0.2.(10+NSLOTS-1) ---- */

#define NSLOTS 4

struct fake {
	char ids[NSLOTS][D6_IDENTITY_MAX];
	struct in6_addr v6[NSLOTS];
	int64_t expiry[NSLOTS];
	bool used[NSLOTS];
	bool offer[NSLOTS];
	bool lw[NSLOTS]; /* an lw4o6 lease (f_acquire_lw), as dstmd's find() says */
	int releases, declines, holds;
	struct in6_addr tep;
	uint16_t port_lo, port_hi;
	/* lw4o6: the sender keys acquire_lw saw, and a per-key quota (0: none) */
	uint8_t lw_key[NSLOTS][D6_LW_SRC_MAX];
	size_t lw_key_len[NSLOTS];
	unsigned lw_quota, lw_keys;
	unsigned lw_held[NSLOTS];
};

static void
fill(struct fake *f, int i, struct d6_grant *g, unsigned flags)
{
	memset(g, 0, sizeof(*g));
	g->v4 = 0xc0000200u + 10 + (uint32_t)i;
	g->v6 = f->v6[i];
	g->tep = f->tep;
	g->expiry = f->expiry[i];
	g->flags = flags;
	g->port_lo = f->port_lo;
	g->port_hi = f->port_hi;
	g->lw = f->lw[i];
}

static int
f_acquire(void *arg, const char *id, const struct in6_addr *v6, bool authed, uint32_t want,
          int64_t now, struct d6_grant *g)
{
	struct fake *f = arg;

	for (int i = 0; i < NSLOTS; i++)
		if (f->used[i] && !strcmp(f->ids[i], id)) {
			/* dstmd's rule (src/grant): another address, unsigned, changes nothing. */
			if (!authed && memcmp(&f->v6[i], v6, 16))
				return -EPERM;
			if (want && want != 0xc0000200u + 10 + (uint32_t)i)
				return -EADDRNOTAVAIL;
			unsigned fl = memcmp(&f->v6[i], v6, 16) ? D6_GRANT_MOVED : 0;
			f->offer[i] = false;
			f->v6[i] = *v6;
			f->expiry[i] = now + 100;
			fill(f, i, g, fl);
			return 0;
		}
	for (int i = 0; i < NSLOTS; i++) {
		if (f->used[i] || (want && want != 0xc0000200u + 10 + (uint32_t)i))
			continue;
		f->used[i] = true;
		f->offer[i] = false;
		f->lw[i] = false;
		snprintf(f->ids[i], sizeof(f->ids[i]), "%s", id);
		f->v6[i] = *v6;
		f->expiry[i] = now + 100;
		fill(f, i, g, D6_GRANT_NEW);
		return 0;
	}
	return want ? -EADDRNOTAVAIL : -ENOSPC;
}

static int
f_find(void *arg, const char *id, struct d6_grant *g)
{
	struct fake *f = arg;

	for (int i = 0; i < NSLOTS; i++)
		if (f->used[i] && !strcmp(f->ids[i], id)) {
			fill(f, i, g, f->offer[i] ? D6_GRANT_OFFER : 0);
			return 0;
		}
	return -ENOENT;
}

static int
f_release(void *arg, const char *id, const struct in6_addr *v6, bool authed, bool declined,
          int64_t now)
{
	struct fake *f = arg;

	for (int i = 0; i < NSLOTS; i++)
		if (f->used[i] && !strcmp(f->ids[i], id)) {
			if (!authed && memcmp(&f->v6[i], v6, 16))
				return -EPERM;
			f->used[i] = false;
			if (declined)
				f->declines++;
			else
				f->releases++;
			return 0;
		}
	return -ENOENT;
}

static bool
f_in_pool(void *arg, uint32_t v4)
{
	return v4 >= 0xc0000200u + 10 && v4 < 0xc0000200u + 10 + NSLOTS;
}

static unsigned
f_count_64(void *arg, const struct in6_addr *v6)
{
	struct fake *f = arg;
	unsigned n = 0;

	for (int i = 0; i < NSLOTS; i++)
		n += f->used[i] && !memcmp(&f->v6[i], v6, 8);
	return n;
}

static int
f_hold(void *arg, const char *id, uint32_t seconds, int64_t now)
{
	struct fake *f = arg;

	for (int i = 0; i < NSLOTS; i++)
		if (f->used[i] && !strcmp(f->ids[i], id)) {
			f->offer[i] = true;
			f->expiry[i] = now + seconds;
			f->holds++;
			return 0;
		}
	return -ENOENT;
}

static const struct d6_lease_ops fops = {f_acquire, f_find,     f_release, f_in_pool,
                                         NULL,      f_count_64, f_hold};

static const uint8_t SDUID[] = {0, 2, 0, 0, 0x7e, 0xd9, 1, 2, 3, 4};
static const uint8_t CDUID[] = {0, 3, 0, 1, 2, 0, 0, 0, 0, 0x11};
static const uint8_t SECRET[] = "lab-secret";
static const struct d6_key KEYS[] = {{"dstm.example", 7, SECRET, sizeof(SECRET) - 1}};

struct env {
	struct fake f;
	struct d6_server_config cfg;
	struct d6_server *s;
	struct d6_txn t;
	uint8_t dots_name[64];
	struct in6_addr dots_addr;
	uint8_t out[D6_MAX_MSG];
	size_t outlen;
	struct d6_msg rep;
};

static struct env *
env_new(void)
{
	struct env *e = calloc(1, sizeof(*e));

	addr_parse_v6("fd00:d57::2", &e->f.tep);
	d6_codes_default(&e->cfg.codes);
	e->cfg.duid = SDUID;
	e->cfg.duid_len = sizeof(SDUID);
	e->cfg.forms = D6_FORM_IA_DSTM | D6_FORM_GLOBAL_V4;
	e->cfg.rapid_commit = true;
	e->cfg.reconfigure = true;
	int n = d6_name_encode("dots.example", e->dots_name, sizeof(e->dots_name));
	assert_true(n > 0);
	e->cfg.dots_ri = e->dots_name;
	e->cfg.dots_ri_len = (size_t)n;
	addr_parse_v6("2001:db8::53", &e->dots_addr);
	e->cfg.dots_addr = &e->dots_addr;
	e->cfg.ndots_addr = 1;
	e->cfg.access_domain = e->dots_name;
	e->cfg.access_domain_len = (size_t)n;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	assert_non_null(e->s);
	return e;
}

static void
env_free(struct env *e)
{
	d6_server_free(e->s);
	free(e);
}

/* ---- A small message builder for the tests ---- */

struct mb {
	uint8_t b[D6_MAX_MSG];
	struct wcur w;
};

static void
mb_start(struct mb *m, uint8_t type, uint32_t xid)
{
	m->w = wcur_make(m->b, sizeof(m->b));
	w_u8(&m->w, type);
	w_u8(&m->w, (uint8_t)(xid >> 16));
	w_u16(&m->w, (uint16_t)xid);
}

static void
mb_opt(struct mb *m, uint16_t code, const void *p, size_t n)
{
	w_u16(&m->w, code);
	w_u16(&m->w, (uint16_t)n);
	w_bytes(&m->w, p, n);
}

static void
mb_ids(struct mb *m, bool server)
{
	mb_opt(m, D6_OPT_CLIENTID, CDUID, sizeof(CDUID));
	if (server)
		mb_opt(m, D6_OPT_SERVERID, SDUID, sizeof(SDUID));
}

/* An IA (code) with iaid and, when v4 != 0, an IA Address ::ffff:v4. */
static void
mb_ia(struct mb *m, uint16_t code, uint32_t iaid, uint32_t v4)
{
	uint8_t body[64];
	struct wcur w = wcur_make(body, sizeof(body));

	w_u32(&w, iaid);
	w_u32(&w, 0);
	w_u32(&w, 0);
	if (v4) {
		struct in6_addr a;
		addr_v4_mapped(&a, v4);
		w_u16(&w, D6_OPT_IAADDR);
		w_u16(&w, 24);
		w_bytes(&w, &a, 16);
		w_u32(&w, 0);
		w_u32(&w, 0);
	}
	mb_opt(m, code, body, w_len(&w));
}

static size_t
mb_len(struct mb *m)
{
	assert_false(m->w.err);
	return w_len(&m->w);
}

static struct d6_rx
rx_global(bool multicast)
{
	struct d6_rx rx = {.multicast = multicast};

	addr_parse_v6("fd00:d57::11", &rx.src);
	return rx;
}

/* Run one message through the server; the reply is parsed into e->rep. */
static enum d6_action
run(struct env *e, struct mb *m, const struct d6_rx *rx)
{
	enum d6_action a = d6_server_handle(e->s, &e->t, m->b, mb_len(m), rx, 1000);

	if (a != D6_ACT_REPLY)
		return a;
	assert_int_equal(d6_server_build(e->s, &e->t, e->out, sizeof(e->out), &e->outlen), 0);
	if (e->t.env.nrelays == 0)
		assert_int_equal(d6_parse(e->out, e->outlen, &e->cfg.codes, &e->rep), D6_OK);
	return a;
}

/* ---- Codec ---- */

static void
test_parse_misplaced(void **state)
{
	struct d6_codes c;
	struct d6_msg msg;
	struct mb m;
	uint8_t tep[16] = {0};

	d6_codes_default(&c);
	/* A TEP option at the top level: seed 001 A §5 "MUST NOT be used except ... IA_DSTM". */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_opt(&m, c.tep, tep, 16);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_MISPLACED);
	/* A Ports option inside an IA_NA: seed 001 B §5. */
	{
		uint8_t body[20] = {0};
		struct wcur w = wcur_make(body + 12, 8);
		w_u16(&w, c.ports);
		w_u16(&w, 4);
		w_u32(&w, 0x04000500);
		mb_start(&m, D6_SOLICIT, 1);
		mb_ids(&m, false);
		mb_opt(&m, D6_OPT_IA_NA, body, 20);
		assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_MISPLACED);
	}
	/* A Client Identifier inside an IA Address. */
	{
		uint8_t body[12 + 4 + 24 + 4 + sizeof(CDUID)] = {0};
		struct wcur w = wcur_make(body + 12, sizeof(body) - 12);
		w_u16(&w, D6_OPT_IAADDR);
		w_u16(&w, (uint16_t)(24 + 4 + sizeof(CDUID)));
		w_reserve(&w, 24);
		w_u16(&w, D6_OPT_CLIENTID);
		w_u16(&w, sizeof(CDUID));
		w_bytes(&w, CDUID, sizeof(CDUID));
		mb_start(&m, D6_SOLICIT, 1);
		mb_ids(&m, false);
		mb_opt(&m, c.ia_dstm, body, sizeof(body));
		assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_MISPLACED);
	}
	/* A Relay Message in a client message. */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_RELAY_MSG, "x", 1);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_MISPLACED);
}

static void
test_parse_lengths_and_dups(void **state)
{
	struct d6_codes c;
	struct d6_msg msg;
	struct mb m;

	d6_codes_default(&c);
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_CLIENTID, CDUID, sizeof(CDUID));
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_DUP_OPTION);
	/* An option that claims more than is there. */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	w_u16(&m.w, D6_OPT_ORO);
	w_u16(&m.w, 40);
	w_u16(&m.w, 141);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_OPT_LEN);
	/* Two IA_DSTM with one IAID. */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_ia(&m, c.ia_dstm, 5, 0);
	mb_ia(&m, c.ia_dstm, 5, 0);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_DUP_IAID);
	/* More IAs than served in one message. */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	for (uint32_t i = 0; i <= D6_MAX_IA; i++)
		mb_ia(&m, c.ia_dstm, i, 0);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_TOO_MANY_IA);
	/* Short and relay types. */
	assert_int_equal(d6_parse(m.b, 3, &c, &msg), D6_DROP_SHORT);
	m.b[0] = D6_RELAY_FORW;
	assert_int_equal(d6_parse(m.b, 10, &c, &msg), D6_DROP_BAD_TYPE);
	/* A Global IPv4 Address option of a wrong length. */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_opt(&m, c.global_v4, "abcd", 4);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_DROP_BAD_OPTION);
	/* Missing Client Identifier, foreign Server Identifier. */
	mb_start(&m, D6_SOLICIT, 1);
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_OK);
	assert_int_equal(d6_validate_server(&msg, SDUID, sizeof(SDUID)), D6_DROP_NO_CLIENTID);
	mb_start(&m, D6_REQUEST, 1);
	mb_opt(&m, D6_OPT_CLIENTID, CDUID, sizeof(CDUID));
	mb_opt(&m, D6_OPT_SERVERID, CDUID, sizeof(CDUID));
	assert_int_equal(d6_parse(m.b, mb_len(&m), &c, &msg), D6_OK);
	assert_int_equal(d6_validate_server(&msg, SDUID, sizeof(SDUID)), D6_DROP_SERVERID);
}

static void
test_relay_depth(void **state)
{
	uint8_t buf[2048], tmp[2048];
	size_t n;
	struct d6_envelope env;
	struct mb m;

	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	n = mb_len(&m);
	memcpy(buf, m.b, n);
	for (int depth = 1; depth <= D6_HOP_LIMIT + 1; depth++) {
		struct wcur w = wcur_make(tmp, sizeof(tmp));
		w_u8(&w, D6_RELAY_FORW);
		w_u8(&w, (uint8_t)(depth - 1));
		w_reserve(&w, 32);
		memset(tmp + 2, 0, 32);
		w_u16(&w, D6_OPT_RELAY_MSG);
		w_u16(&w, (uint16_t)n);
		w_bytes(&w, buf, n);
		n = w_len(&w);
		memcpy(buf, tmp, n);
		enum d6_drop r = d6_unwrap(buf, n, &env);
		/* RFC 8415 §7.6: HOP_COUNT_LIMIT relays at most. */
		if (depth <= D6_HOP_LIMIT)
			assert_int_equal(r, D6_OK);
		else
			assert_int_equal(r, D6_DROP_RELAY_DEPTH);
	}
	/* A Relay-forward without a Relay Message. */
	memset(buf, 0, 34);
	buf[0] = D6_RELAY_FORW;
	assert_int_equal(d6_unwrap(buf, 34, &env), D6_DROP_RELAY_NO_MSG);
}

static void
test_names(void **state)
{
	uint8_t w[300];
	char t[300];
	int n = d6_name_encode("dots.example.com.", w, sizeof(w));

	assert_int_equal(n, 18);
	assert_true(d6_name_decode(w, (size_t)n, t, sizeof(t)));
	assert_string_equal(t, "dots.example.com");
	assert_int_equal(d6_name_encode("a..b", w, sizeof(w)), -EINVAL);
	w[0] = 70;
	assert_false(d6_name_decode(w, 10, t, sizeof(t)));
}

static void
test_duid_file(void **state)
{
	char path[] = "/tmp/test_dhcp6_duid.XXXXXX";
	int fd = mkstemp(path);
	uint8_t a[D6_DUID_MAX + 2], b[D6_DUID_MAX + 2];
	size_t alen, blen;
	const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};

	close(fd);
	unlink(path);
	assert_int_equal(d6_duid_load_or_create(path, mac, 1700000000, a, &alen), 0);
	assert_int_equal(alen, 14);
	assert_int_equal(a[1], 1); /* DUID-LLT */
	/* Created once and kept: the second call reads the same one. */
	assert_int_equal(d6_duid_load_or_create(path, NULL, 1800000000, b, &blen), 0);
	assert_int_equal(blen, alen);
	assert_memory_equal(a, b, alen);
	unlink(path);
	assert_int_equal(d6_duid_load_or_create(path, NULL, 1800000000, b, &blen), 0);
	assert_int_equal(b[1], 2); /* DUID-EN */
	unlink(path);
}

/* ---- Server ---- */

static void
test_solicit_request_ia_dstm(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;
	uint32_t v4;

	mb_start(&m, D6_SOLICIT, 0x123456);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.type, D6_ADVERTISE);
	assert_int_equal(e->rep.xid, 0x123456);
	assert_false(e->t.wait_commit); /* an Advertise grants nothing */
	assert_int_equal(e->rep.nia, 1);
	assert_true(addr_is_v4_mapped(&e->rep.ia[0].addr, &v4));
	assert_int_equal(v4, 0xc000020a);
	assert_true(e->rep.ia[0].has_tep);

	mb_start(&m, D6_REQUEST, 0x22);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, v4);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_true(e->t.wait_commit);
	assert_true(e->t.out[0].push); /* the Request's binding goes to the TEP first */
	assert_int_equal(e->rep.type, D6_REPLY);
	assert_int_equal(e->rep.ia[0].valid, 100);
	assert_int_equal(e->rep.ia[0].t1, 50);
	assert_int_equal(e->rep.ia[0].t2, 80);
	assert_false(e->rep.ia[0].has_ports);

	/* The TEP refused: the IA says UnspecFail and carries no address. */
	e->t.out[0].refused = true;
	assert_int_equal(d6_server_build(e->s, &e->t, e->out, sizeof(e->out), &e->outlen), 0);
	assert_int_equal(d6_parse(e->out, e->outlen, &e->cfg.codes, &e->rep), D6_OK);
	assert_int_equal(e->rep.ia[0].status, D6_ST_UNSPEC_FAIL);
	assert_int_equal(e->rep.ia[0].naddrs, 0);
	env_free(e);
}

static void
test_global_v4_form_and_ports(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;
	uint32_t v4;

	e->f.port_lo = 1024;
	e->f.port_hi = 2047;
	/* seed 002 §6.1.1: Global IPv4 Address (empty), then the IA_NA; rapid commit. */
	mb_start(&m, D6_SOLICIT, 9);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_opt(&m, e->cfg.codes.global_v4, NULL, 0);
	mb_ia(&m, D6_OPT_IA_NA, 3, 0);
	mb_ia(&m, e->cfg.codes.ia_dstm, 4, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.type, D6_REPLY);
	assert_true(e->rep.rapid_commit);
	assert_true(e->t.wait_commit);
	assert_int_equal(e->rep.nia, 2);
	assert_true(e->rep.ia[0].global_v4);
	assert_true(e->rep.global_v4_has_tep);
	assert_true(addr_is_v4_mapped(&e->rep.ia[0].addr, &v4));
	/* Several IAs in one message: two leases, the IA_DSTM one with its ports. */
	assert_true(e->rep.ia[1].has_ports);
	assert_int_equal(e->rep.ia[1].port_lo, 1024);
	assert_int_equal(e->rep.ia[1].port_hi, 2047);
	/* A plain IA_NA (no Global IPv4 option): we give no IPv6 addresses. */
	mb_start(&m, D6_SOLICIT, 10);
	mb_opt(&m, D6_OPT_CLIENTID, SDUID, sizeof(SDUID));
	mb_ia(&m, D6_OPT_IA_NA, 3, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_true(e->rep.has_status);
	assert_int_equal(e->rep.status, D6_ST_NO_ADDRS_AVAIL);
	assert_int_equal(e->rep.nia, 0);
	env_free(e);
}

static void
test_renew_rebind_release_decline(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;

	mb_start(&m, D6_RENEW, 1);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc000020a);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);

	/* Rebind for an address we do not hold: lifetimes 0 (RFC 8415 §18.3.5). */
	mb_start(&m, D6_REBIND, 2);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc0000263);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].naddrs, 1);
	assert_int_equal(e->rep.ia[0].valid, 0);

	mb_start(&m, D6_REQUEST, 3);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].valid, 100);

	mb_start(&m, D6_RENEW, 4);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc000020a);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_false(e->rep.ia[0].has_status);
	assert_false(e->t.out[0].push); /* same binding: nothing for the TEP */

	mb_start(&m, D6_REBIND, 5);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc000020a);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].valid, 100);

	/* Unicast Release without a Server Unicast option: UseMulticast. */
	struct d6_rx uni = rx_global(false);
	mb_start(&m, D6_RELEASE, 6);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc000020a);
	assert_int_equal(run(e, &m, &uni), D6_ACT_REPLY);
	assert_int_equal(e->rep.status, D6_ST_USE_MULTICAST);
	assert_int_equal(e->f.releases, 0);

	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.status, D6_ST_SUCCESS);
	assert_int_equal(e->f.releases, 1);
	assert_true(e->t.wait_commit);
	/* Released twice: NoBinding. */
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);

	mb_start(&m, D6_REQUEST, 7);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	mb_start(&m, D6_DECLINE, 8);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, e->t.out[0].g.v4);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->f.declines, 1);
	env_free(e);
}

static void
test_confirm_info_exhaustion(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;
	uint16_t oro[3] = {htons(141), htons(142), htons(57)};
	char name[300];

	mb_start(&m, D6_CONFIRM, 1);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc000020b);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.status, D6_ST_SUCCESS);
	mb_start(&m, D6_CONFIRM, 1);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc6336401);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.status, D6_ST_NOT_ON_LINK);
	/* No address in a Confirm: no reply. */
	mb_start(&m, D6_CONFIRM, 1);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_DROP);

	/* Information-request: the DOTS options and the access domain, as asked. */
	mb_start(&m, D6_INFORMATION_REQUEST, 2);
	mb_opt(&m, D6_OPT_ORO, oro, sizeof(oro));
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_non_null(e->rep.dots_ri);
	assert_true(d6_name_decode(e->rep.dots_ri, e->rep.dots_ri_len, name, sizeof(name)));
	assert_string_equal(name, "dots.example");
	assert_int_equal(e->rep.ndots_addr, 1);
	assert_non_null(e->rep.access_domain);
	/* Not asked: not sent. */
	mb_start(&m, D6_INFORMATION_REQUEST, 3);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_null(e->rep.dots_ri);

	/* Exhaustion: NSLOTS clients take everything; the next one gets NoAddrsAvail. */
	for (int i = 0; i <= NSLOTS; i++) {
		uint8_t duid[10] = {0, 3, 0, 1, 2, 0, 0, 0, 1, (uint8_t)i};
		mb_start(&m, D6_SOLICIT, 4);
		mb_opt(&m, D6_OPT_CLIENTID, duid, sizeof(duid));
		mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		if (i < NSLOTS)
			assert_int_equal(e->rep.nia, 1);
		else
			assert_int_equal(e->rep.status, D6_ST_NO_ADDRS_AVAIL);
	}
	env_free(e);
}

static void
test_limits(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;

	d6_server_free(e->s);
	e->cfg.max_per_duid = 2;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	/* One DUID, many IAIDs: two leases, then NoAddrsAvail. */
	for (uint32_t iaid = 0; iaid < 4; iaid++) {
		mb_start(&m, D6_REQUEST, 1);
		mb_ids(&m, true);
		mb_ia(&m, e->cfg.codes.ia_dstm, iaid, 0);
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		assert_int_equal(e->rep.ia[0].status,
		                 iaid < 2 ? D6_ST_SUCCESS : D6_ST_NO_ADDRS_AVAIL);
	}
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_RATE], 2);
	/* A renewal of a lease held is never limited. */
	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);

	/* Per /64: other DUIDs from the same /64. */
	d6_server_free(e->s);
	memset(&e->f.used, 0, sizeof(e->f.used));
	e->cfg.max_per_duid = 0;
	e->cfg.max_per_64 = 1;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	for (int i = 0; i < 2; i++) {
		uint8_t duid[10] = {0, 3, 0, 1, 2, 0, 0, 0, 2, (uint8_t)i};
		mb_start(&m, D6_SOLICIT, 4);
		mb_opt(&m, D6_OPT_CLIENTID, duid, sizeof(duid));
		mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
		mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		assert_int_equal(e->rep.ia[0].status,
		                 i == 0 ? D6_ST_SUCCESS : D6_ST_NO_ADDRS_AVAIL);
	}
	env_free(e);
}

static void
test_relayed(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = {.multicast = false};
	struct mb inner, m;
	struct d6_envelope env;
	struct d6_msg rep;
	struct in6_addr link, peer;
	size_t n;

	addr_parse_v6("fe80::1", &rx.src);
	addr_parse_v6("fd00:d57:1::1", &link);
	addr_parse_v6("fd00:d57:1::20", &peer);
	/* Only a relay the configuration names is heard. */
	e->cfg.relays = &rx.src;
	e->cfg.nrelays = 1;
	d6_server_free(e->s);
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	mb_start(&inner, D6_REQUEST, 77);
	mb_ids(&inner, true);
	mb_ia(&inner, e->cfg.codes.ia_dstm, 1, 0);
	n = mb_len(&inner);
	m.w = wcur_make(m.b, sizeof(m.b));
	w_u8(&m.w, D6_RELAY_FORW);
	w_u8(&m.w, 0);
	w_bytes(&m.w, &link, 16);
	w_bytes(&m.w, &peer, 16);
	mb_opt(&m, D6_OPT_INTERFACE_ID, "eth7", 4);
	mb_opt(&m, D6_OPT_RELAY_MSG, inner.b, n);
	/* Relayed unicast is fine (the relay got it by multicast). */
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	/* The client's address is the relay's peer-address. */
	assert_memory_equal(&e->f.v6[0], &peer, 16);
	assert_int_equal(d6_unwrap(e->out, e->outlen, &env), D6_OK);
	assert_int_equal(e->out[0], D6_RELAY_REPL);
	assert_int_equal(env.nrelays, 1);
	assert_memory_equal(&env.relay[0].peer, &peer, 16);
	assert_int_equal(env.relay[0].ifid_len, 4);
	assert_memory_equal(env.relay[0].ifid, "eth7", 4);
	assert_int_equal(d6_parse(env.inner, env.inner_len, &e->cfg.codes, &rep), D6_OK);
	assert_int_equal(rep.type, D6_REPLY);
	assert_int_equal(rep.xid, 77);
	env_free(e);
}

static void
test_no_client_address(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = {.multicast = true};
	struct mb m;

	/* A direct client from its link-local address only: no tunnel can be built to it. */
	addr_parse_v6("fe80::11", &rx.src);
	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_NO_ADDRS_AVAIL);
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_NO_ADDRESS], 1);
	env_free(e);
}

/* ---- Bounded state and fairness ---- */

static void
test_offer_hold(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;

	d6_server_free(e->s);
	e->cfg.offer_hold = 5;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	/* An Advertise holds its address for the offer hold only, again at each Solicit. */
	for (int k = 0; k < 2; k++) {
		mb_start(&m, D6_SOLICIT, 1 + k);
		mb_ids(&m, false);
		mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		assert_int_equal(e->rep.type, D6_ADVERTISE);
		assert_int_equal(e->f.holds, k + 1);
		assert_true(e->f.offer[0]);
		assert_int_equal(e->f.expiry[0], 1000 + 5);
	}
	/* The Request confirms it: a whole lifetime; a Solicit then leaves it alone. */
	mb_start(&m, D6_REQUEST, 3);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_false(e->f.offer[0]);
	assert_int_equal(e->f.expiry[0], 1000 + 100);
	mb_start(&m, D6_SOLICIT, 4);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->f.holds, 2);
	assert_int_equal(e->f.expiry[0], 1000 + 100);
	env_free(e);
}

static void
test_identity_duid(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	uint8_t duid[D6_DUID_MAX + 2];
	size_t n = 0;
	struct mb m;

	/* The identity a served IA gets gives its DUID back. */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 0x1234, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_true(d6_identity_duid(e->t.out[0].identity, duid, sizeof(duid), &n));
	assert_int_equal(n, sizeof(CDUID));
	assert_memory_equal(duid, CDUID, sizeof(CDUID));
	/* What is not one. */
	assert_false(d6_identity_duid("anon:fd00:d57::11", duid, sizeof(duid), &n));
	assert_false(d6_identity_duid("dhcp6:0a0:00000001", duid, sizeof(duid), &n));
	assert_false(d6_identity_duid("dhcp6:0a0g:00000001", duid, sizeof(duid), &n));
	assert_false(d6_identity_duid("dhcp6::00000001", duid, sizeof(duid), &n));
	assert_false(d6_identity_duid("dhcp6:0a0b", duid, sizeof(duid), &n));
	assert_false(d6_identity_duid("dhcp6:0a0b0c:00000001", duid, 2, &n));
	env_free(e);
}

static void
test_clients_bounded(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	const struct d6_server_counters *c;
	struct mb m;

	d6_server_free(e->s);
	e->cfg.max_clients = 16;
	e->cfg.max_per_duid = 4;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	/* 1,000 DUIDs: 16 remembered, the others evicted least recently heard first. */
	for (int i = 0; i < 1000; i++) {
		uint8_t duid[10] = {0, 3, 0, 1, 2, 0, 0, 9, (uint8_t)(i >> 8), (uint8_t)i};

		mb_start(&m, D6_SOLICIT, 10 + i);
		mb_opt(&m, D6_OPT_CLIENTID, duid, sizeof(duid));
		mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	}
	c = d6_server_counters(e->s);
	assert_int_equal(c->clients_now, 16);
	assert_int_equal(c->evicted_clients, 1000 - 16);
	env_free(e);
}

/* ---- Identity (DESIGN §4): a DUID is a claim, the address is verified ---- */

static void
test_foreign_sender_changes_nothing(void **state)
{
	struct env *e = env_new();
	struct d6_rx c1 = rx_global(true), x = rx_global(true);
	static const uint8_t types[] = {D6_REQUEST, D6_RENEW, D6_REBIND, D6_SOLICIT};
	struct mb m;

	addr_parse_v6("fd00:d57::66", &x.src);
	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);

	/* x writes c1's DUID and IAID: every kind of message gets no lease. */
	for (unsigned k = 0; k < sizeof(types); k++) {
		bool server = types[k] == D6_REQUEST || types[k] == D6_RENEW;

		mb_start(&m, types[k], 10 + k);
		mb_ids(&m, server);
		mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc0000200u + 10);
		assert_int_equal(run(e, &m, &x), D6_ACT_REPLY);
		if (types[k] == D6_SOLICIT)
			assert_int_equal(e->rep.nia, 0);
		else
			assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);
		assert_false(e->t.out[0].granted);
		assert_false(e->t.verified);
		assert_false(e->t.give_reconf_key);
	}
	/* Release and Decline from x: NoBinding, and the lease stays c1's. */
	mb_start(&m, D6_RELEASE, 20);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc0000200u + 10);
	assert_int_equal(run(e, &m, &x), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);
	m.b[0] = D6_DECLINE;
	assert_int_equal(run(e, &m, &x), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);
	assert_true(e->f.used[0]);
	assert_memory_equal(&e->f.v6[0], &c1.src, 16);
	assert_int_equal(e->f.releases + e->f.declines, 0);
	assert_int_equal(d6_server_counters(e->s)->refused_foreign, 6);

	/* c1 itself still renews and releases. */
	mb_start(&m, D6_RENEW, 30);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc0000200u + 10);
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	m.b[0] = D6_RELEASE;
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	assert_false(e->f.used[0]);
	env_free(e);
}

static void
test_signed_client_moves(void **state)
{
	struct env *e = env_new();
	struct d6_rx c1 = rx_global(true), moved = rx_global(true);
	struct mb m;
	uint8_t *mac;

	d6_server_free(e->s);
	e->cfg.keys = KEYS;
	e->cfg.nkeys = 1;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	addr_parse_v6("fd00:d57::77", &moved.src);
	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	/* From another address, signed with the key: the binding moves and is pushed. */
	mb_start(&m, D6_REBIND, 2);
	mb_ids(&m, false);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0xc0000200u + 10);
	d6_auth_put_delayed(&m.w, &KEYS[0], 100, &mac);
	d6_auth_sign(m.b, mb_len(&m), SECRET, sizeof(SECRET) - 1, mac);
	assert_int_equal(run(e, &m, &moved), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	assert_true(e->t.out[0].push);
	assert_memory_equal(&e->f.v6[0], &moved.src, 16);
	env_free(e);
}

static void
test_untrusted_relay_dropped(void **state)
{
	struct env *e = env_new();
	struct d6_rx x = rx_global(false);
	struct mb inner, m;
	struct in6_addr peer;

	addr_parse_v6("fd00:d57::66", &x.src);
	addr_parse_v6("fd00:d57::12", &peer);
	mb_start(&inner, D6_SOLICIT, 5);
	mb_ids(&inner, false);
	mb_opt(&inner, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_ia(&inner, e->cfg.codes.ia_dstm, 1, 0);
	m.w = wcur_make(m.b, sizeof(m.b));
	w_u8(&m.w, D6_RELAY_FORW);
	w_u8(&m.w, 0);
	w_bytes(&m.w, &peer, 16);
	w_bytes(&m.w, &peer, 16);
	mb_opt(&m, D6_OPT_RELAY_MSG, inner.b, mb_len(&inner));
	assert_int_equal(run(e, &m, &x), D6_ACT_DROP);
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_RELAY_UNTRUSTED], 1);
	assert_false(e->f.used[0]);
	env_free(e);
}

static void
test_reconfigure_key_once(void **state)
{
	struct env *e = env_new();
	struct d6_rx c1 = rx_global(true);
	struct mb m;

	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_opt(&m, D6_OPT_RECONF_ACCEPT, NULL, 0);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	assert_true(e->t.give_reconf_key);
	/* The same client asking again (a Renew, a Request) never gets it a second time. */
	m.b[0] = D6_RENEW;
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	assert_false(e->t.give_reconf_key);
	assert_false(e->rep.has_auth);
	env_free(e);
}

/* ---- Authentication ---- */

static void
test_auth_required(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;
	uint8_t *mac;
	size_t n;

	d6_server_free(e->s);
	e->cfg.keys = KEYS;
	e->cfg.nkeys = 1;
	e->cfg.require_auth = true;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);

	/* No Authentication option: refused and counted. */
	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_DROP);
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_AUTH_MISSING], 1);

	/* Signed with the key: served, and the reply is signed too. */
	d6_auth_put_delayed(&m.w, &KEYS[0], 100, &mac);
	n = mb_len(&m);
	d6_auth_sign(m.b, n, SECRET, sizeof(SECRET) - 1, mac);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	assert_true(e->rep.has_auth);
	assert_true(d6_auth_verify(&e->rep, SECRET, sizeof(SECRET) - 1));

	/* The same message again: replay. */
	assert_int_equal(run(e, &m, &rx), D6_ACT_DROP);
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_AUTH_REPLAY], 1);

	/* A bad MAC. */
	mb_start(&m, D6_REQUEST, 2);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	d6_auth_put_delayed(&m.w, &KEYS[0], 200, &mac);
	n = mb_len(&m);
	d6_auth_sign(m.b, n, (const uint8_t *)"wrong", 5, mac);
	assert_int_equal(run(e, &m, &rx), D6_ACT_DROP);
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_AUTH_BAD], 1);

	/* Information-request without DSTM options needs no authentication. */
	mb_start(&m, D6_INFORMATION_REQUEST, 3);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	env_free(e);
}

/* The address a client sent from, fe80::`last` port 546 on interface 2. */
static struct sockaddr_in6
peer_addr(uint8_t last)
{
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6, .sin6_port = htons(546), .sin6_scope_id = 2};

	addr_parse_v6("fe80::", &sa.sin6_addr);
	sa.sin6_addr.s6_addr[15] = last;
	return sa;
}

static void
test_reconfigure_key(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = rx_global(true);
	struct mb m;
	uint8_t rc[512], key[16];
	size_t n;
	struct d6_msg r;
	struct sockaddr_in6 from, to;

	mb_start(&m, D6_REQUEST, 1);
	mb_ids(&m, true);
	mb_opt(&m, D6_OPT_RECONF_ACCEPT, NULL, 0);
	mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_true(e->rep.reconf_accept);
	assert_true(e->rep.has_auth);
	assert_int_equal(e->rep.auth.protocol, D6_AUTH_PROTO_RECONF);
	assert_int_equal(e->rep.auth.info[0], 1);
	memcpy(key, e->rep.auth.info + 1, 16);
	/* Not yet heard directly: nowhere to send it. */
	assert_int_equal(
	    d6_server_reconfigure(e->s, CDUID, sizeof(CDUID), D6_RENEW, rc, sizeof(rc), &n, &to),
	    -EHOSTUNREACH);
	from = peer_addr(0x11);
	d6_server_note_peer(e->s, &e->t, &from);
	assert_int_equal(
	    d6_server_reconfigure(e->s, CDUID, sizeof(CDUID), D6_RENEW, rc, sizeof(rc), &n, &to),
	    0);
	assert_memory_equal(&to, &from, sizeof(to));
	assert_int_equal(d6_parse(rc, n, &e->cfg.codes, &r), D6_OK);
	assert_int_equal(r.type, D6_RECONFIGURE);
	assert_int_equal(r.reconf_msg, D6_RENEW);
	assert_true(d6_auth_verify(&r, key, 16));
	assert_int_equal(
	    d6_server_reconfigure(e->s, SDUID, sizeof(SDUID), D6_RENEW, rc, sizeof(rc), &n, &to),
	    -ENOKEY);
	env_free(e);
}

/*
 * Where a client is reached lives with its DUID's key and is forgotten
 * with it, least recently heard first (max_clients).
 */
static void
test_reconfigure_peer_forgotten_with_its_duid(void **state)
{
	struct env *e = env_new();
	uint8_t rc[512];
	size_t n;
	struct sockaddr_in6 from, to;
	struct mb m;

	d6_server_free(e->s);
	e->cfg.max_clients = 2;
	e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	for (uint8_t i = 1; i <= 3; i++) {
		uint8_t duid[10] = {0, 3, 0, 1, 2, 0, 0, 9, 0, i};
		struct d6_rx rx = rx_global(true);

		rx.src.s6_addr[15] = (uint8_t)(0x20 + i);
		mb_start(&m, D6_SOLICIT, i);
		mb_opt(&m, D6_OPT_CLIENTID, duid, sizeof(duid));
		mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
		mb_opt(&m, D6_OPT_RECONF_ACCEPT, NULL, 0);
		mb_ia(&m, e->cfg.codes.ia_dstm, 1, 0);
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		assert_true(e->t.verified);
		from = peer_addr(i);
		d6_server_note_peer(e->s, &e->t, &from);
		/* The client heard first has made room for the third. */
		if (i == 3) {
			duid[9] = 1;
			assert_int_equal(d6_server_reconfigure(e->s, duid, sizeof(duid), D6_RENEW,
			                                       rc, sizeof(rc), &n, &to),
			                 -ENOKEY);
		}
	}
	for (uint8_t i = 2; i <= 3; i++) {
		uint8_t duid[10] = {0, 3, 0, 1, 2, 0, 0, 9, 0, i};

		assert_int_equal(d6_server_reconfigure(e->s, duid, sizeof(duid), D6_RENEW, rc,
		                                       sizeof(rc), &n, &to),
		                 0);
		from = peer_addr(i);
		assert_memory_equal(&to, &from, sizeof(to));
	}
	assert_int_equal(d6_server_counters(e->s)->evicted_clients, 1);

	env_free(e);
}

/* ---- Client engine against the server engine ---- */

static uint32_t
fixed_random(void *arg)
{
	return 12345;
}

/* Carry the client's pending packet to the server and the answer back. */
static enum d6_client_event
exchange(struct env *e, struct d6_client *c, int64_t now)
{
	uint8_t pkt[D6_MAX_MSG];
	size_t n;
	struct d6_rx rx = rx_global(true);

	if (!d6_client_output(c, pkt, sizeof(pkt), &n))
		return D6C_EV_NONE;
	if (d6_server_handle(e->s, &e->t, pkt, n, &rx, now / 1000) != D6_ACT_REPLY)
		return D6C_EV_NONE;
	assert_int_equal(d6_server_build(e->s, &e->t, e->out, sizeof(e->out), &e->outlen), 0);
	return d6_client_input(c, e->out, e->outlen, now);
}

/* The same exchange, the client speaking from `src` (an lwB4: link-local). */
static enum d6_client_event
exchange_from(struct env *e, struct d6_client *c, int64_t now, const char *src)
{
	uint8_t pkt[D6_MAX_MSG];
	size_t n;
	struct d6_rx rx = {.multicast = true};

	addr_parse_v6(src, &rx.src);
	if (!d6_client_output(c, pkt, sizeof(pkt), &n))
		return D6C_EV_NONE;
	if (d6_server_handle(e->s, &e->t, pkt, n, &rx, now / 1000) != D6_ACT_REPLY)
		return D6C_EV_NONE;
	assert_int_equal(d6_server_build(e->s, &e->t, e->out, sizeof(e->out), &e->outlen), 0);
	return d6_client_input(c, e->out, e->outlen, now);
}

static void
client_run(bool global_form, bool with_key, bool server_key)
{
	struct env *e = env_new();
	struct d6_client_config cc = {0};
	struct d6_client *c;
	const struct d6_lease_info *l;
	uint8_t pkt[D6_MAX_MSG];
	size_t n;
	int64_t now = 1000000;

	if (server_key) {
		d6_server_free(e->s);
		e->cfg.keys = KEYS;
		e->cfg.nkeys = 1;
		e->cfg.require_auth = true;
		e->s = d6_server_new(&e->cfg, &fops, &e->f, 1000);
	}
	cc.codes = e->cfg.codes;
	cc.duid = CDUID;
	cc.duid_len = sizeof(CDUID);
	cc.iaid = 9;
	cc.global_v4_form = global_form;
	cc.key = with_key ? &KEYS[0] : NULL;
	cc.random = fixed_random;
	c = d6_client_new(&cc);
	assert_non_null(c);
	d6_client_start(c, now);
	assert_int_equal(exchange(e, c, now), D6C_EV_NONE); /* Advertise -> Request */
	if (with_key && !server_key) {
		/* The server does not sign: the client drops the Advertise. */
		assert_int_equal(d6_client_state(c), D6C_SOLICIT);
		assert_true(d6_client_drops(c, D6_DROP_AUTH_BAD) > 0);
		d6_client_free(c);
		env_free(e);
		return;
	}
	assert_int_equal(d6_client_state(c), D6C_REQUEST);
	assert_int_equal(exchange(e, c, now), D6C_EV_BOUND);
	l = d6_client_lease(c);
	assert_non_null(l);
	assert_int_equal(l->v4, 0xc000020a);
	assert_true(l->has_tep);
	assert_memory_equal(&l->tep, &e->f.tep, 16);
	assert_int_equal(l->t1, 50);
	/* T1: Renew. */
	assert_int_equal(d6_client_next(c), now + 50000);
	now += 50000;
	d6_client_tick(c, now);
	assert_int_equal(d6_client_state(c), D6C_RENEW);
	assert_int_equal(exchange(e, c, now), D6C_EV_RENEWED);
	/* No answer to the Renew: Rebind at T2. */
	now += 50000;
	d6_client_tick(c, now);
	assert_int_equal(d6_client_state(c), D6C_RENEW);
	assert_true(d6_client_output(c, pkt, sizeof(pkt), &n));
	now += 30000;
	d6_client_tick(c, now);
	assert_int_equal(d6_client_state(c), D6C_REBIND);
	assert_int_equal(exchange(e, c, now), D6C_EV_RENEWED);
	/* Release on shutdown. */
	d6_client_release(c, now);
	assert_int_equal(exchange(e, c, now), D6C_EV_RELEASED);
	assert_int_equal(e->f.releases, 1);
	assert_int_equal(d6_client_state(c), D6C_STOPPED);
	d6_client_free(c);
	env_free(e);
}

static void
test_client_ia_dstm(void **state)
{
	client_run(false, false, false);
}

static void
test_client_global_v4(void **state)
{
	client_run(true, false, false);
}

static void
test_client_auth(void **state)
{
	client_run(false, true, true);
	client_run(false, true, false);
}

static void
test_client_expiry_decline(void **state)
{
	struct env *e = env_new();
	struct d6_client_config cc = {0};
	struct d6_client *c;
	int64_t now = 5000;

	cc.codes = e->cfg.codes;
	cc.duid = CDUID;
	cc.duid_len = sizeof(CDUID);
	cc.iaid = 1;
	cc.rapid_commit = true;
	cc.random = fixed_random;
	c = d6_client_new(&cc);
	d6_client_start(c, now);
	assert_int_equal(exchange(e, c, now), D6C_EV_BOUND);
	/* Decline: the server quarantines it; the client solicits anew. */
	d6_client_decline(c, now);
	assert_int_equal(exchange(e, c, now), D6C_EV_LOST);
	assert_int_equal(e->f.declines, 1);
	assert_int_equal(d6_client_state(c), D6C_SOLICIT);
	assert_int_equal(exchange(e, c, now), D6C_EV_BOUND);
	/* Nobody answers any more: the lease is lost at the end of its valid lifetime. */
	for (int i = 0; i < 1000 && d6_client_state(c) != D6C_SOLICIT; i++) {
		uint8_t pkt[D6_MAX_MSG];
		size_t n;
		now = d6_client_next(c);
		if (d6_client_tick(c, now) == D6C_EV_LOST)
			break;
		d6_client_output(c, pkt, sizeof(pkt), &n);
	}
	assert_int_equal(d6_client_state(c), D6C_SOLICIT);
	assert_null(d6_client_lease(c));
	d6_client_free(c);
	env_free(e);
}

/* ---- lw4o6: RFC 7598 options for an lwB4 ---- */

static int
f_acquire_lw(void *arg, const char *id, const uint8_t *src, size_t src_len, uint32_t want,
             int64_t now, struct d6_grant *g)
{
	struct fake *f = arg;
	struct in6_addr v6;
	unsigned key = f->lw_keys;
	bool held = false;
	int rc;

	/* As dstmd's lw4o6.c: a new lease counts against the sender's key. */
	for (unsigned i = 0; i < f->lw_keys; i++)
		if (f->lw_key_len[i] == src_len && !memcmp(f->lw_key[i], src, src_len))
			key = i;
	for (int i = 0; i < NSLOTS; i++)
		held |= f->used[i] && !strcmp(f->ids[i], id);
	if (key == f->lw_keys && key < NSLOTS && src_len <= D6_LW_SRC_MAX) {
		memcpy(f->lw_key[key], src, src_len);
		f->lw_key_len[key] = src_len;
		f->lw_keys++;
	}
	if (!held && f->lw_quota && key < NSLOTS && f->lw_held[key] >= f->lw_quota)
		return -EDQUOT;
	if (!held && key < NSLOTS)
		f->lw_held[key]++;

	/* The server assigns fd00:d57::1000 + slot; the slot holds PSID 5. */
	addr_parse_v6("fd00:d57::1000", &v6);
	for (int i = 0; i < NSLOTS; i++)
		if (!f->used[i] || !strcmp(f->ids[i], id)) {
			/* As dstmd: a DSTM lease of that identity is not moved here. */
			if (f->used[i] && !f->lw[i])
				return -EPERM;
			v6.s6_addr[15] = (uint8_t)i;
			break;
		}
	if ((rc = f_acquire(arg, id, &v6, true, want, now, g)) != 0)
		return rc;
	for (int i = 0; i < NSLOTS; i++)
		if (f->used[i] && !strcmp(f->ids[i], id))
			f->lw[i] = true;
	g->lw = true;
	g->psid_offset = 6;
	g->psid_len = 6;
	g->psid = 5;
	return 0;
}

static const struct d6_lease_ops fops_lw = {f_acquire,    f_find,     f_release, f_in_pool,
                                            f_acquire_lw, f_count_64, f_hold};

static void
test_lw4o6_container(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = {.multicast = true};
	static const uint8_t oro[] = {0, 96, 0, 23};
	/* OPTION_S46_CONT_LW: BR fd00:d57::2; V4V6BIND 192.0.2.10, /128
	 * fd00:d57::1000, PORTPARAMS offset 6, length 6, PSID 5 << 10. */
	static const uint8_t cont[] = {0,    96, 0,  53, 0,   90, 0, 16,   0xfd, 0x00, 0x0d, 0x57,
	                               0,    0,  0,  0,  0,   0,  0, 0,    0,    0,    0,    2,
	                               0,    92, 0,  29, 192, 0,  2, 10,   128,  0xfd, 0x00, 0x0d,
	                               0x57, 0,  0,  0,  0,   0,  0, 0,    0,    0,    0,    0x10,
	                               0x00, 0,  93, 0,  4,   6,  6, 0x14, 0x00};
	struct d6_s46_lw lw;
	struct in6_addr want;
	struct mb m;
	bool seen = false;

	(void)state;
	d6_server_free(e->s);
	e->s = d6_server_new(&e->cfg, &fops_lw, &e->f, 1000);
	addr_parse_v6("fe80::99", &rx.src); /* an lwB4 solicits from its link-local address */

	mb_start(&m, D6_SOLICIT, 7);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_opt(&m, D6_OPT_ORO, oro, sizeof(oro));
	mb_ia(&m, D6_OPT_IA_NA, 1, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_int_equal(e->out[0], D6_REPLY);
	assert_true(e->t.out[0].granted);
	assert_int_equal(e->rep.nia, 1);
	addr_parse_v6("fd00:d57::1000", &want);
	assert_memory_equal(&e->rep.ia[0].addr, &want, 16);
	for (size_t i = 4; i + sizeof(cont) <= e->outlen; i++)
		if (!memcmp(e->out + i, cont, sizeof(cont)))
			seen = true;
	assert_true(seen);
	assert_true(d6_s46_parse_cont(cont + 4, sizeof(cont) - 4, &lw));
	assert_true(lw.has_br && lw.has_bind && lw.has_portparams);
	assert_int_equal(lw.v4, 0xc000020a);
	assert_int_equal(lw.prefix6_len, 128);
	assert_memory_equal(&lw.prefix6, &want, 16);
	assert_int_equal(lw.psid_offset, 6);
	assert_int_equal(lw.psid_len, 6);
	assert_int_equal(lw.psid, 5);
	/* A PSID with bits past its length is malformed. */
	{
		uint8_t bad[sizeof(cont)];
		memcpy(bad, cont, sizeof(cont));
		bad[sizeof(bad) - 1] = 1;
		assert_false(d6_s46_parse_cont(bad + 4, sizeof(bad) - 4, &lw));
	}

	/* Without OPTION_S46_CONT_LW in the ORO a plain IA_NA is not served. */
	mb_start(&m, D6_SOLICIT, 8);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_ia(&m, D6_OPT_IA_NA, 2, 0);
	assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
	assert_false(e->t.out[0].granted);
	assert_int_equal(e->t.out[0].status, D6_ST_NO_ADDRS_AVAIL);
	env_free(e);
}

/* One lw4o6 Solicit with Rapid Commit of DUID n from `rx`, through a relay when `relay`. */
static uint16_t
lw_solicit(struct env *e, const struct d6_rx *rx, uint8_t n, const struct in6_addr *peer)
{
	static const uint8_t oro[] = {0, 96};
	uint8_t duid[10] = {0, 3, 0, 1, 2, 0, 0, 0, 3, n};
	struct mb inner, m;
	struct d6_envelope env;
	struct d6_msg rep;

	mb_start(&inner, D6_SOLICIT, 40 + n);
	mb_opt(&inner, D6_OPT_CLIENTID, duid, sizeof(duid));
	mb_opt(&inner, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_opt(&inner, D6_OPT_ORO, oro, sizeof(oro));
	mb_ia(&inner, D6_OPT_IA_NA, 1, 0);
	if (!peer) {
		assert_int_equal(run(e, &inner, rx), D6_ACT_REPLY);
		return e->rep.ia[0].status;
	}
	m.w = wcur_make(m.b, sizeof(m.b));
	w_u8(&m.w, D6_RELAY_FORW);
	w_u8(&m.w, 0);
	w_bytes(&m.w, peer, 16); /* link-address: unused here */
	w_bytes(&m.w, peer, 16);
	mb_opt(&m, D6_OPT_INTERFACE_ID, "eth7", 4);
	mb_opt(&m, D6_OPT_RELAY_MSG, inner.b, mb_len(&inner));
	assert_int_equal(run(e, &m, rx), D6_ACT_REPLY);
	assert_int_equal(d6_unwrap(e->out, e->outlen, &env), D6_OK);
	assert_int_equal(d6_parse(env.inner, env.inner_len, &e->cfg.codes, &rep), D6_OK);
	return rep.ia[0].status;
}

/*
 * lwB4s solicit from link-local addresses, so fe80::/64 is everyone's: the
 * sender key acquire_lw gets is the whole source address (through a
 * trusted relay: the relay, the peer-address and the Interface-Id), and a
 * per-sender refusal is NoAddrsAvail in the IA, counted.
 */
static void
test_lw4o6_sender_key(void **state)
{
	struct env *e = env_new();
	struct d6_rx rx = {.multicast = true}, other = {.multicast = true}, relay = {0};
	struct in6_addr peer;
	uint64_t rate0;
	uint8_t want[16 + 16 + 4];

	(void)state;
	d6_server_free(e->s);
	e->cfg.max_per_duid = 0;
	e->f.lw_quota = 2;
	e->s = d6_server_new(&e->cfg, &fops_lw, &e->f, 1000);
	addr_parse_v6("fe80::66", &rx.src);
	addr_parse_v6("fe80::77", &other.src);
	rate0 = d6_server_counters(e->s)->drop[D6_DROP_RATE];
	/* One link-local address cycling DUIDs: two leases, then NoAddrsAvail. */
	assert_int_equal(lw_solicit(e, &rx, 1, NULL), D6_ST_SUCCESS);
	assert_int_equal(lw_solicit(e, &rx, 2, NULL), D6_ST_SUCCESS);
	assert_int_equal(lw_solicit(e, &rx, 3, NULL), D6_ST_NO_ADDRS_AVAIL);
	assert_int_equal(lw_solicit(e, &rx, 4, NULL), D6_ST_NO_ADDRS_AVAIL);
	assert_int_equal(d6_server_counters(e->s)->drop[D6_DROP_RATE], rate0 + 2);
	assert_int_equal(e->f.lw_key_len[0], 16);
	assert_memory_equal(e->f.lw_key[0], &rx.src, 16);
	/* A renewal of a lease held is no new lease: still served. */
	assert_int_equal(lw_solicit(e, &rx, 1, NULL), D6_ST_SUCCESS);
	/* Another link-local address is another sender: its lease. */
	assert_int_equal(lw_solicit(e, &other, 5, NULL), D6_ST_SUCCESS);
	assert_int_equal(e->f.lw_keys, 2);
	assert_memory_equal(e->f.lw_key[1], &other.src, 16);
	env_free(e);

	/* Through a trusted relay the key is the relay, the peer-address and the Interface-Id. */
	e = env_new();
	d6_server_free(e->s);
	addr_parse_v6("fe80::1", &relay.src);
	e->cfg.relays = &relay.src;
	e->cfg.nrelays = 1;
	e->cfg.max_per_duid = 0;
	e->s = d6_server_new(&e->cfg, &fops_lw, &e->f, 1000);
	addr_parse_v6("fe80::66", &peer);
	assert_int_equal(lw_solicit(e, &relay, 6, &peer), D6_ST_SUCCESS);
	memcpy(want, &relay.src, 16);
	memcpy(want + 16, &peer, 16);
	memcpy(want + 32, "eth7", 4);
	assert_int_equal(e->f.lw_key_len[0], sizeof(want));
	assert_memory_equal(e->f.lw_key[0], want, sizeof(want));
	env_free(e);
}

/* dstm-client as an lwB4: the engine asks with ORO 96 and takes the container. */
static void
test_client_lw4o6(void **state)
{
	struct env *e = env_new();
	struct d6_client_config cc = {0};
	struct d6_client *c;
	const struct d6_lease_info *l;
	struct in6_addr want, tep;
	int64_t now = 1000000;

	(void)state;
	d6_server_free(e->s);
	e->s = d6_server_new(&e->cfg, &fops_lw, &e->f, 1000);
	cc.codes = e->cfg.codes;
	cc.duid = CDUID;
	cc.duid_len = sizeof(CDUID);
	cc.iaid = 3;
	cc.lw4o6 = true;
	cc.random = fixed_random;
	c = d6_client_new(&cc);
	d6_client_start(c, now);
	assert_int_equal(exchange(e, c, now), D6C_EV_NONE); /* Solicit -> Advertise */
	assert_int_equal(d6_client_state(c), D6C_REQUEST);
	assert_int_equal(exchange(e, c, now), D6C_EV_BOUND); /* Request -> Reply */
	l = d6_client_lease(c);
	assert_non_null(l);
	assert_true(l->lw);
	addr_parse_v6("fd00:d57::1000", &want);
	addr_parse_v6("fd00:d57::2", &tep);
	assert_memory_equal(&l->v6, &want, 16);
	assert_memory_equal(&l->tep, &tep, 16);
	assert_int_equal(l->v4, 0xc000020a);
	assert_int_equal(l->psid_offset, 6);
	assert_int_equal(l->psid_len, 6);
	assert_int_equal(l->psid, 5);
	/* Renew at T1 carries the IA_NA address and keeps the lease. */
	now = d6_client_next(c);
	assert_int_equal(d6_client_tick(c, now), D6C_EV_NONE);
	assert_int_equal(d6_client_state(c), D6C_RENEW);
	assert_int_equal(exchange(e, c, now), D6C_EV_RENEWED);
	/* Confirm (RFC 8415 §18.3.3): the lw address this server gave is on-link. */
	{
		struct mb m;
		struct d6_rx rx = rx_global(true);
		uint8_t body[12 + 4 + 24] = {0};
		struct wcur w = wcur_make(body, sizeof(body));

		w_u32(&w, 3);
		w_u32(&w, 0);
		w_u32(&w, 0);
		w_u16(&w, D6_OPT_IAADDR);
		w_u16(&w, 24);
		w_bytes(&w, &want, 16);
		mb_start(&m, D6_CONFIRM, 9);
		mb_ids(&m, false);
		mb_opt(&m, D6_OPT_IA_NA, body, sizeof(body));
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		assert_int_equal(e->t.top_status, D6_ST_SUCCESS);
		body[12 + 4 + 15] ^= 1; /* another address */
		mb_start(&m, D6_CONFIRM, 10);
		mb_ids(&m, false);
		mb_opt(&m, D6_OPT_IA_NA, body, sizeof(body));
		assert_int_equal(run(e, &m, &rx), D6_ACT_REPLY);
		assert_int_equal(e->t.top_status, D6_ST_NOT_ON_LINK);
	}
	/* Release names the IA_NA address, which the lease is bound to; the
	 * lwB4 sends it from link-local (test_lw4o6_release_foreign). */
	d6_client_release(c, now);
	assert_int_equal(exchange_from(e, c, now, "fe80::99"), D6C_EV_RELEASED);
	assert_int_equal(e->f.releases, 1);
	d6_client_free(c);
	env_free(e);
}

/*
 * The lw4o6 exception of the identity rule (an lwB4 names its address in
 * its IA_NA) holds for a link-local sender and an lw4o6 lease only: a
 * host with a global address that names another lease's address in an
 * IA_NA releases nothing, neither an lw4o6 lease nor a DSTM one, and a
 * link-local sender cannot name a DSTM lease's address.
 */
static void
test_lw4o6_release_foreign(void **state)
{
	struct env *e = env_new();
	struct d6_rx ll = {.multicast = true}, x = rx_global(true), c1 = rx_global(true);
	static const uint8_t oro[] = {0, 96};
	uint8_t body[12 + 4 + 24] = {0};
	struct wcur w;
	struct in6_addr lwaddr;
	struct mb m;

	(void)state;
	d6_server_free(e->s);
	e->s = d6_server_new(&e->cfg, &fops_lw, &e->f, 1000);
	addr_parse_v6("fe80::99", &ll.src);
	addr_parse_v6("fd00:d57::66", &x.src);
	addr_parse_v6("fd00:d57::1000", &lwaddr);

	/* An lwB4 (IAID 1) and a DSTM client (same DUID, IAID 2, its own address). */
	mb_start(&m, D6_SOLICIT, 1);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_opt(&m, D6_OPT_ORO, oro, sizeof(oro));
	mb_ia(&m, D6_OPT_IA_NA, 1, 0);
	assert_int_equal(run(e, &m, &ll), D6_ACT_REPLY);
	assert_true(e->t.out[0].granted);
	assert_memory_equal(&e->f.v6[0], &lwaddr, 16);
	mb_start(&m, D6_REQUEST, 2);
	mb_ids(&m, true);
	mb_ia(&m, e->cfg.codes.ia_dstm, 2, 0);
	assert_int_equal(run(e, &m, &c1), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	assert_memory_equal(&e->f.v6[1], &c1.src, 16);

	/* x names each lease's address in an IA_NA Release: nothing ends. */
	for (uint32_t iaid = 1; iaid <= 2; iaid++) {
		w = wcur_make(body, sizeof(body));
		w_u32(&w, iaid);
		w_u32(&w, 0);
		w_u32(&w, 0);
		w_u16(&w, D6_OPT_IAADDR);
		w_u16(&w, 24);
		w_bytes(&w, iaid == 1 ? &lwaddr : &c1.src, 16);
		mb_start(&m, D6_RELEASE, 10 + iaid);
		mb_ids(&m, true);
		mb_opt(&m, D6_OPT_IA_NA, body, sizeof(body));
		assert_int_equal(run(e, &m, &x), D6_ACT_REPLY);
		assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);
	}
	assert_true(e->f.used[0] && e->f.used[1]);
	assert_int_equal(e->f.releases, 0);
	assert_int_equal(d6_server_counters(e->s)->refused_foreign, 2);

	/* From link-local, an IA_NA that names the DSTM lease's address: not an lw4o6 lease. */
	w = wcur_make(body, sizeof(body));
	w_u32(&w, 2);
	w_u32(&w, 0);
	w_u32(&w, 0);
	w_u16(&w, D6_OPT_IAADDR);
	w_u16(&w, 24);
	w_bytes(&w, &c1.src, 16);
	mb_start(&m, D6_RELEASE, 15);
	mb_ids(&m, true);
	mb_opt(&m, D6_OPT_IA_NA, body, sizeof(body));
	assert_int_equal(run(e, &m, &ll), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_NO_BINDING);
	assert_true(e->f.used[1]);
	assert_int_equal(d6_server_counters(e->s)->refused_foreign, 3);

	/* Nor does an lw4o6 Solicit for that DUID and IAID move the DSTM lease. */
	mb_start(&m, D6_SOLICIT, 16);
	mb_ids(&m, false);
	mb_opt(&m, D6_OPT_RAPID_COMMIT, NULL, 0);
	mb_opt(&m, D6_OPT_ORO, oro, sizeof(oro));
	mb_ia(&m, D6_OPT_IA_NA, 2, 0);
	run(e, &m, &ll);
	assert_false(e->t.out[0].granted);
	assert_memory_equal(&e->f.v6[1], &c1.src, 16);
	assert_int_equal(d6_server_counters(e->s)->refused_foreign, 4);

	/* The lwB4 itself, from link-local, still releases its lease. */
	w = wcur_make(body, sizeof(body));
	w_u32(&w, 1);
	w_u32(&w, 0);
	w_u32(&w, 0);
	w_u16(&w, D6_OPT_IAADDR);
	w_u16(&w, 24);
	w_bytes(&w, &lwaddr, 16);
	mb_start(&m, D6_RELEASE, 20);
	mb_ids(&m, true);
	mb_opt(&m, D6_OPT_IA_NA, body, sizeof(body));
	assert_int_equal(run(e, &m, &ll), D6_ACT_REPLY);
	assert_int_equal(e->rep.ia[0].status, D6_ST_SUCCESS);
	assert_false(e->f.used[0]);
	assert_true(e->f.used[1]);
	env_free(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_misplaced),
	    cmocka_unit_test(test_parse_lengths_and_dups),
	    cmocka_unit_test(test_relay_depth),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_duid_file),
	    cmocka_unit_test(test_solicit_request_ia_dstm),
	    cmocka_unit_test(test_global_v4_form_and_ports),
	    cmocka_unit_test(test_renew_rebind_release_decline),
	    cmocka_unit_test(test_confirm_info_exhaustion),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_relayed),
	    cmocka_unit_test(test_no_client_address),
	    cmocka_unit_test(test_auth_required),
	    cmocka_unit_test(test_reconfigure_key),
	    cmocka_unit_test(test_reconfigure_key_once),
	    cmocka_unit_test(test_offer_hold),
	    cmocka_unit_test(test_clients_bounded),
	    cmocka_unit_test(test_identity_duid),
	    cmocka_unit_test(test_foreign_sender_changes_nothing),
	    cmocka_unit_test(test_signed_client_moves),
	    cmocka_unit_test(test_untrusted_relay_dropped),
	    cmocka_unit_test(test_client_ia_dstm),
	    cmocka_unit_test(test_client_global_v4),
	    cmocka_unit_test(test_client_auth),
	    cmocka_unit_test(test_client_expiry_decline),
	    cmocka_unit_test(test_lw4o6_container),
	    cmocka_unit_test(test_lw4o6_sender_key),
	    cmocka_unit_test(test_client_lw4o6),
	    cmocka_unit_test(test_lw4o6_release_foreign),
	    cmocka_unit_test(test_reconfigure_peer_forgotten_with_its_duid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
