/*
 * Unit tests of dstm-client's lease state machine (src/client/lease.c)
 * and its on-demand part (src/client/ondemand.c), driven with fake
 * events: the access module's answers, the timers and packets from the
 * application are function calls, and a fake `struct lease_ops` records
 * every action the machine asks for (requests, installs, timers), in
 * order, so each case checks the exact sequence and the counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/client.h"

#define LEASED 0xc000020au /* 192.0.2.10 */
#define OTHER  0xc000020bu /* 192.0.2.11 */
#define PH     0xc0000008u /* 192.0.0.8 */
#define REMOTE 0xc6336402u /* 198.51.100.2 */

/* The fake shell: a log of the actions, one letter-coded line each. */
struct fake {
	char log[1024];
	int install_ret;
	struct client_ondemand *od;
};

static void
fake_add(struct fake *f, const char *s)
{
	size_t n = strlen(f->log);

	snprintf(f->log + n, sizeof(f->log) - n, "%s%s", n ? " " : "", s);
}

static void
f_request(void *arg, enum lease_ask ask)
{
	fake_add(arg, ask == LEASE_ASK_ACQUIRE ? "acquire" : "renew");
}

static int
f_install(void *arg)
{
	struct fake *f = arg;

	fake_add(f, "install");
	return f->install_ret;
}

static void
f_uninstall(void *arg)
{
	fake_add(arg, "uninstall");
}

static void
f_arm(void *arg, enum lease_timer t, int64_t ms)
{
	char s[64];

	if (ms < 0)
		snprintf(s, sizeof(s), "%s:off", t == LEASE_T_RENEW ? "renew" : "expire");
	else
		snprintf(s, sizeof(s), "%s:%lld", t == LEASE_T_RENEW ? "renew" : "expire",
		         (long long)ms);
	fake_add(arg, s);
}

static void
f_bound(void *arg)
{
	fake_add(arg, "bound");
}

static void
f_dropped(void *arg)
{
	struct fake *f = arg;

	fake_add(f, "dropped");
	if (f->od)
		ondemand_drop_all(f->od);
}

static const struct lease_ops fake_ops = {
    .request = f_request,
    .install = f_install,
    .uninstall = f_uninstall,
    .arm = f_arm,
    .bound = f_bound,
    .dropped = f_dropped,
};

static struct client_config
config(enum client_mode mode)
{
	struct client_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = mode;
	cfg.placeholder = PH;
	cfg.queue = 4;
	return cfg;
}

static struct lease_grant
tsp_grant(uint32_t v4, uint32_t lifetime)
{
	struct lease_grant g;

	memset(&g, 0, sizeof(g));
	g.v4 = v4;
	g.has_tep6 = true;
	g.tep6.s6_addr[0] = 0xfd;
	g.tep6.s6_addr[15] = 2;
	g.lifetime = lifetime;
	g.timers = true;
	return g;
}

static void
expect_log(struct fake *f, const char *want)
{
	assert_string_equal(f->log, want);
	f->log[0] = '\0';
}

/* Always-on: acquire at start, grant installs and arms renew at half. */
static void
test_acquire_grant_renew(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 3600);

	lease_init(&l, &cfg, &fake_ops, &f);
	assert_int_equal(l.state, LEASE_IDLE);
	lease_acquire(&l);
	assert_int_equal(l.state, LEASE_ACQUIRING);
	expect_log(&f, "acquire");

	assert_int_equal(lease_grant(&l, &g, 1000), LEASE_GRANTED);
	expect_log(&f, "install renew:off expire:off renew:1800000 expire:3600000 bound");
	assert_int_equal(l.state, LEASE_BOUND);
	assert_int_equal(l.v4, LEASED);
	assert_int_equal(l.expires_ms, 1000 + 3600000);
	assert_int_equal(l.n.acquisitions, 1);

	/* A second acquire while bound asks nothing. */
	lease_acquire(&l);
	expect_log(&f, "");

	/* The renewal timer asks; the same address comes back. */
	lease_timer_fired(&l, LEASE_T_RENEW, 1801000);
	expect_log(&f, "renew");
	assert_int_equal(lease_grant(&l, &g, 1802000), LEASE_RENEWED);
	expect_log(&f, "renew:off expire:off renew:1800000 expire:3600000 bound");
	assert_int_equal(l.n.renewals, 1);
	assert_int_equal(l.n.acquisitions, 1);
	assert_int_equal(l.expires_ms, 1802000 + 3600000);
}

/* The server moves us at renewal: the old address leaves, the new one comes. */
static void
test_address_change(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 100), g2 = tsp_grant(OTHER, 100);

	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	lease_grant(&l, &g, 0);
	f.log[0] = '\0';
	assert_int_equal(lease_grant(&l, &g2, 50000), LEASE_GRANTED);
	expect_log(&f, "uninstall install renew:off expire:off renew:50000 expire:100000 bound");
	assert_int_equal(l.v4, OTHER);
	assert_int_equal(l.n.address_changes, 1);
	assert_int_equal(l.n.acquisitions, 2);
	assert_int_equal(l.n.renewals, 0);
}

/* Expiry: always-on asks again at once, on-demand waits for a packet. */
static void
test_expiry(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 10);

	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	lease_grant(&l, &g, 0);
	f.log[0] = '\0';
	lease_timer_fired(&l, LEASE_T_EXPIRE, 10000);
	expect_log(&f, "renew:off expire:off uninstall dropped acquire");
	assert_int_equal(l.state, LEASE_ACQUIRING);
	assert_int_equal(l.v4, 0);
	assert_int_equal(l.n.expiries, 1);

	cfg = config(CLIENT_ON_DEMAND);
	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	lease_grant(&l, &g, 0);
	f.log[0] = '\0';
	lease_timer_fired(&l, LEASE_T_EXPIRE, 10000);
	expect_log(&f, "renew:off expire:off uninstall dropped");
	assert_int_equal(l.state, LEASE_EXPIRED);
}

/* Refusals: at acquisition only counted; at renewal the address may go. */
static void
test_refused(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 100);

	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	lease_refused(&l, true);
	assert_int_equal(l.n.acquire_failures, 1);
	assert_int_equal(l.state, LEASE_ACQUIRING);
	lease_grant(&l, &g, 0);
	f.log[0] = '\0';

	lease_refused(&l, false); /* busy: keep the address, try again */
	expect_log(&f, "");
	assert_int_equal(l.state, LEASE_BOUND);
	assert_int_equal(l.n.renewal_failures, 1);

	lease_refused(&l, true); /* address unavailable: it goes now */
	expect_log(&f, "renew:off expire:off uninstall dropped");
	assert_int_equal(l.state, LEASE_EXPIRED);
	assert_int_equal(l.n.renewal_failures, 2);
}

/* The server's delete acts only on our address, and only when bound. */
static void
test_deleted(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 100);

	lease_init(&l, &cfg, &fake_ops, &f);
	assert_false(lease_deleted(&l, 0));
	lease_acquire(&l);
	lease_grant(&l, &g, 0);
	f.log[0] = '\0';
	assert_false(lease_deleted(&l, OTHER));
	expect_log(&f, "");
	assert_int_equal(l.n.server_deletes, 0);
	assert_true(lease_deleted(&l, LEASED));
	expect_log(&f, "renew:off expire:off uninstall dropped");
	assert_int_equal(l.n.server_deletes, 1);
	assert_int_equal(l.state, LEASE_EXPIRED);
}

/* No TEP anywhere, or an interface that refuses: nothing stays bound. */
static void
test_no_tep_no_interface(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 100);

	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	f.log[0] = '\0';
	g.has_tep6 = false;
	assert_int_equal(lease_grant(&l, &g, 0), LEASE_NO_TEP);
	expect_log(&f, "");
	assert_int_equal(l.n.acquire_failures, 1);
	assert_int_not_equal(l.state, LEASE_BOUND);

	/* A TEP configured by hand is enough, and wins over the server's. */
	cfg.has_tep6 = true;
	cfg.tep6.s6_addr[0] = 0xfe;
	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	f.log[0] = '\0';
	f.install_ret = -1;
	assert_int_equal(lease_grant(&l, &g, 0), LEASE_NO_INTERFACE);
	expect_log(&f, "install renew:off expire:off dropped");
	assert_int_equal(l.state, LEASE_EXPIRED);
	assert_int_equal(l.n.acquire_failures, 1);

	f.install_ret = 0;
	assert_int_equal(lease_grant(&l, &g, 0), LEASE_GRANTED);
	assert_int_equal(l.tep6.s6_addr[0], 0xfe);
}

/* DHCPv6: the engine keeps the timers; a lost lease solicits again. */
static void
test_dhcpv6_lost(void **state)
{
	struct client_config cfg = config(CLIENT_ON_DEMAND);
	struct fake f = {0};
	struct client_lease l;
	struct lease_grant g = tsp_grant(LEASED, 100);

	g.timers = false;
	g.obtained_ms = 5000;
	lease_init(&l, &cfg, &fake_ops, &f);
	lease_acquire(&l);
	f.log[0] = '\0';
	assert_int_equal(lease_grant(&l, &g, 6000), LEASE_GRANTED);
	expect_log(&f, "install bound");
	assert_int_equal(l.expires_ms, 105000);
	lease_extend(&l, 200, 305000);
	assert_int_equal(l.n.renewals, 1);

	lease_lost(&l, 100000); /* before the expiry: refused at renewal */
	assert_int_equal(l.n.renewal_failures, 1);
	assert_int_equal(l.state, LEASE_ACQUIRING);
	lease_grant(&l, &g, 6000);
	lease_lost(&l, 200000); /* past it: expired */
	assert_int_equal(l.n.expiries, 1);
}

/* ---- On-demand: packets before and after the lease ---- */

static size_t
udp_packet(uint8_t *b, uint32_t src, uint32_t dst, uint16_t sport)
{
	memset(b, 0, 28);
	b[0] = 0x45;
	b[3] = 28;
	b[6] = 0x40; /* DF */
	b[8] = 64;
	b[9] = 17;
	for (int i = 0; i < 4; i++) {
		b[12 + i] = (uint8_t)(src >> (24 - 8 * i));
		b[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	b[20] = (uint8_t)(sport >> 8);
	b[21] = (uint8_t)sport;
	b[23] = 53;
	b[25] = 8;
	b[10] = 0;
	b[11] = 0;
	{
		uint16_t c = (uint16_t)~pkt_csum(b, 20, 0);

		b[10] = (uint8_t)(c >> 8);
		b[11] = (uint8_t)c;
	}
	return 28;
}

static void
test_ondemand_hold_then_send(void **state)
{
	struct client_config cfg = config(CLIENT_ON_DEMAND);
	struct fake f = {0};
	struct client_lease l;
	struct client_ondemand od;
	struct lease_grant g = tsp_grant(LEASED, 100);
	struct ondemand_pkt q;
	uint8_t b[64];
	struct pkt4 h;
	size_t n;

	assert_int_equal(ondemand_init(&od, &cfg), 0);
	f.od = &od;
	lease_init(&l, &cfg, &fake_ops, &f);

	/* Before the lease: the placeholder's packets wait (4 fit), others are refused. */
	for (int i = 0; i < 5; i++) {
		n = udp_packet(b, PH, REMOTE, (uint16_t)(1000 + i));
		assert_true(pkt_ip4_parse(b, n, &h));
		assert_int_equal(ondemand_out(&od, &l, b, n, &h, 0), OD_HOLD);
	}
	assert_int_equal(od.len, 4);
	assert_int_equal(od.n.queued, 4);
	assert_int_equal(od.n.drop_queue_full, 1);
	n = udp_packet(b, LEASED, REMOTE, 2000);
	assert_true(pkt_ip4_parse(b, n, &h));
	assert_int_equal(ondemand_out(&od, &l, b, n, &h, 0), OD_BAD_SOURCE);

	/* Bound: the oldest comes out first; its source is rewritten on the way. */
	lease_acquire(&l);
	lease_grant(&l, &g, 0);
	assert_true(ondemand_pop(&od, &q));
	assert_true(pkt_ip4_parse(q.data, q.len, &h));
	assert_int_equal(h.src, PH);
	assert_int_equal(ondemand_out(&od, &l, q.data, q.len, &h, 0), OD_SEND);
	assert_true(pkt_ip4_parse(q.data, q.len, &h));
	assert_int_equal(h.src, LEASED);
	assert_int_equal(q.data[21], (1000 & 0xff));
	assert_int_equal(pkt_csum(q.data, 20, 0), 0xffff);
	assert_int_equal(od.n.early_translated_out, 1);
	free(q.data);

	/* The leased address goes as it is; a stranger's source does not go. */
	n = udp_packet(b, LEASED, REMOTE, 2000);
	assert_true(pkt_ip4_parse(b, n, &h));
	assert_int_equal(ondemand_out(&od, &l, b, n, &h, 0), OD_SEND);
	n = udp_packet(b, OTHER, REMOTE, 2000);
	assert_true(pkt_ip4_parse(b, n, &h));
	assert_int_equal(ondemand_out(&od, &l, b, n, &h, 0), OD_BAD_SOURCE);

	/* The reply to the early flow goes back to the placeholder. */
	n = udp_packet(b, REMOTE, LEASED, 53);
	b[20] = 0;
	b[21] = 53;
	b[22] = (uint8_t)(1000 >> 8);
	b[23] = (uint8_t)1000;
	ondemand_in(&od, &l, b, n, 0);
	assert_true(pkt_ip4_parse(b, n, &h));
	assert_int_equal(h.dst, PH);
	assert_int_equal(od.n.early_translated_in, 1);

	/* The lease ends: what still waits is flushed and counted. */
	assert_int_equal(od.len, 3);
	lease_drop(&l, "test");
	assert_int_equal(od.len, 0);
	assert_int_equal(od.n.drop_queue_flushed, 3);
	ondemand_free(&od);
}

/* Always-on mode holds nothing: before the lease every packet is refused. */
static void
test_always_on_no_hold(void **state)
{
	struct client_config cfg = config(CLIENT_ALWAYS_ON);
	struct client_lease l;
	struct client_ondemand od;
	struct fake f = {0};
	uint8_t b[64];
	struct pkt4 h;
	size_t n = udp_packet(b, PH, REMOTE, 1000);

	assert_int_equal(ondemand_init(&od, &cfg), 0);
	lease_init(&l, &cfg, &fake_ops, &f);
	assert_true(pkt_ip4_parse(b, n, &h));
	assert_int_equal(ondemand_out(&od, &l, b, n, &h, 0), OD_BAD_SOURCE);
	assert_int_equal(od.len, 0);
	ondemand_free(&od);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acquire_grant_renew),
	    cmocka_unit_test(test_address_change),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_deleted),
	    cmocka_unit_test(test_no_tep_no_interface),
	    cmocka_unit_test(test_dhcpv6_lost),
	    cmocka_unit_test(test_ondemand_hold_then_send),
	    cmocka_unit_test(test_always_on_no_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
