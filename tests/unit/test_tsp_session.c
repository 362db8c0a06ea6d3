/*
 * Whole TSP sessions, server and client machines of src/tsp talking over a
 * socketpair inside one event_base: every mechanism with right and wrong
 * secrets, the versions DESIGN §3.1 accepts and one it refuses, replies in
 * command order, a server-initiated delete, errors answered with their
 * status, and time-outs with short values. A raw peer (bytes written and
 * read by the test) checks the exact wire where the client would hide it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/evp.h>

#include "common/addr.h"
#include "common/log.h"
#include "tsp/tsp.h"

struct world {
	struct event_base *base;
	struct tsp_server *srv;
	struct tsp_conn *conn;
	struct tsp_client *cli;
	int rawfd; /* the test's end when the peer is raw */
	/* server side */
	unsigned commands, infos, closed_srv;
	bool defer; /* hold replies until 3 commands came */
	struct tsp_conn *held;
	unsigned nheld;
	uint32_t lifetimes[8];
	bool send_delete; /* answer, then send a delete */
	bool no_reply;
	/* client side */
	bool ready;
	unsigned nreplies, ncommands;
	int statuses[8];
	uint32_t reply_lifetime[8];
	uint32_t reply_v4;
	int closed_status;
	char closed_why[200];
	bool closed_cli;
	bool done;
};

static const char *
secret(void *arg, const char *user, const char *realm)
{
	(void)arg;
	if (strcmp(user, "alice") == 0 && (realm == NULL || strcmp(realm, "dstm") == 0))
		return "wonderland";
	return NULL;
}

static void
fill_info(struct tsp_tunnel *r, uint32_t lifetime)
{
	memset(r, 0, sizeof(*r));
	r->action = TSP_ACTION_INFO;
	strcpy(r->type, "v4v6");
	r->lifetime = lifetime;
	r->server.present = true;
	r->server.has_v4 = true;
	addr_parse_v4("198.51.100.1", &r->server.v4);
	r->server.has_v6 = true;
	addr_parse_v6("fd00:d57::2", &r->server.v6);
	r->client.present = true;
	r->client.has_v4 = true;
	addr_parse_v4("192.0.2.10", &r->client.v4);
	r->client.has_v6 = true;
	addr_parse_v6("fd00:d57::11", &r->client.v6);
}

static void
srv_command(struct tsp_conn *c, const struct tsp_tunnel *t, void *arg)
{
	struct world *w = arg;
	struct tsp_tunnel r;

	if (t->action == TSP_ACTION_INFO) {
		w->infos++;
		assert_int_equal(tsp_conn_reply(c, 200, NULL), -ENOENT);
		w->done = true;
		return;
	}
	w->commands++;
	if (w->no_reply)
		return;
	if (w->defer) {
		w->held = c;
		if (++w->nheld < 3)
			return;
		/* answered together: each goes to the oldest command left */
		for (unsigned i = 0; i < 3; i++) {
			fill_info(&r, 100 + i);
			assert_int_equal(tsp_conn_reply(c, 200, &r), 0);
		}
		return;
	}
	fill_info(&r, 3600);
	assert_int_equal(tsp_conn_reply(c, 200, &r), 0);
	if (w->send_delete) {
		r.action = TSP_ACTION_DELETE;
		assert_int_equal(tsp_conn_send(c, &r), 0);
	}
}

static void
srv_closed(struct tsp_conn *c, void *arg)
{
	struct world *w = arg;

	(void)c;
	w->closed_srv++;
	if (w->conn == c)
		w->conn = NULL;
	if (w->rawfd >= 0)
		w->done = true;
}

static void
cli_ready(struct tsp_client *c, void *arg)
{
	struct world *w = arg;
	struct tsp_tunnel t;

	w->ready = true;
	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_CREATE;
	strcpy(t.type, "v4v6");
	t.client.present = true;
	t.client.has_v6 = true;
	addr_parse_v6("fd00:d57::11", &t.client.v6);
	t.client.has_v6ll = true;
	addr_parse_v6("fe80::11", &t.client.v6ll);
	for (int i = 0; i < (w->defer ? 3 : 1); i++)
		assert_int_equal(tsp_client_send(c, &t), 0);
}

static void
cli_reply(struct tsp_client *c, int status, const struct tsp_tunnel *t, void *arg)
{
	struct world *w = arg;

	(void)c;
	assert_true(w->nreplies < 8);
	w->statuses[w->nreplies] = status;
	if (t) {
		w->reply_lifetime[w->nreplies] = t->lifetime;
		w->reply_v4 = t->client.v4;
		assert_true(t->server.has_v4 && t->server.has_v6);
	}
	w->nreplies++;
	if (!w->send_delete && w->nreplies == (w->defer ? 3u : 1u))
		w->done = true;
}

static void
cli_command(struct tsp_client *c, const struct tsp_tunnel *t, void *arg)
{
	struct world *w = arg;
	struct tsp_tunnel ack = *t;

	w->ncommands++;
	assert_int_equal(t->action, TSP_ACTION_DELETE);
	ack.action = TSP_ACTION_INFO;
	assert_int_equal(tsp_client_send(c, &ack), 0);
}

static void
cli_closed(struct tsp_client *c, int status, const char *why, void *arg)
{
	struct world *w = arg;

	(void)c;
	w->closed_cli = true;
	w->closed_status = status;
	snprintf(w->closed_why, sizeof(w->closed_why), "%s", why ? why : "");
	w->done = true;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct world *w = arg;

	(void)fd, (void)what;
	if (w->done)
		event_base_loopbreak(w->base);
}

/* Run until done (plus a short grace for the other side) or `secs`. */
static void
run(struct world *w, double secs)
{
	struct timeval tick = {0, 2000},
	               limit = {(time_t)secs, (suseconds_t)((secs - (int)secs) * 1e6)};
	struct event *ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);

	event_add(ev, &tick);
	event_base_loopexit(w->base, &limit);
	event_base_dispatch(w->base);
	event_free(ev);
	/* let deferred closes and writes settle */
	for (int i = 0; i < 20; i++)
		event_base_loop(w->base, EVLOOP_NONBLOCK);
}

static unsigned idle_timeout;       /* for the next world_new */
static int sock_type = SOCK_STREAM; /* SOCK_SEQPACKET keeps each write apart */
static bool plain_client;           /* the client writes to its socket itself (plain_socket) */

static struct world *
world_new(const char *mechs, bool plain_ok, unsigned handshake, bool raw, const char *ver,
          const char *mech, const char *user, const char *pw, unsigned cli_timeout)
{
	struct world *w = calloc(1, sizeof(*w));
	struct tsp_server_config sc = {0};
	struct tsp_server_callbacks scb = {.command = srv_command, .closed = srv_closed};
	struct tsp_client_config cc = {0};
	struct tsp_client_callbacks ccb = {
	    .ready = cli_ready, .reply = cli_reply, .command = cli_command, .closed = cli_closed};
	int sv[2];

	assert_non_null(w);
	w->rawfd = -1;
	w->base = event_base_new();
	sc.mechanisms = mechs;
	sc.plain_without_tls = plain_ok;
	sc.realm = "dstm";
	sc.service = "tsp";
	sc.hostname = "srv.example";
	sc.secret = secret;
	sc.handshake_timeout = handshake;
	sc.idle_timeout = idle_timeout;
	w->srv = tsp_server_new(w->base, &sc, &scb, w);
	assert_non_null(w->srv);
	assert_int_equal(socketpair(AF_UNIX, sock_type, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	w->conn = tsp_server_accept(
	    w->srv, bufferevent_socket_new(w->base, sv[0], BEV_OPT_CLOSE_ON_FREE), NULL, 0, false);
	assert_non_null(w->conn);
	if (raw) {
		w->rawfd = sv[1];
		return w;
	}
	cc.version = ver;
	cc.mechanism = mech;
	cc.user = user;
	cc.secret = pw;
	cc.service = "tsp";
	cc.hostname = "other-name.example"; /* DIGEST-MD5: the server takes our digest-uri */
	cc.timeout = cli_timeout;
	cc.plain_socket = plain_client;
	w->cli = tsp_client_new(
	    w->base, bufferevent_socket_new(w->base, sv[1], BEV_OPT_CLOSE_ON_FREE), &cc, &ccb, w);
	assert_non_null(w->cli);
	return w;
}

static void
world_free(struct world *w)
{
	if (w->cli)
		tsp_client_free(w->cli);
	tsp_server_free(w->srv);
	if (w->rawfd >= 0)
		close(w->rawfd);
	event_base_free(w->base);
	free(w);
}

static void
check_ok_session(const char *mech, const char *user, const char *ver)
{
	struct world *w = world_new("SCRAM-SHA-256 DIGEST-MD5 PLAIN ANONYMOUS", true, 5, false, ver,
	                            mech, user, "wonderland", 5);
	const struct tsp_server_stats *st = tsp_server_stats(w->srv);
	char a[ADDR_STRLEN];

	run(w, 5);
	assert_true(w->ready);
	assert_false(w->closed_cli);
	assert_int_equal(w->nreplies, 1);
	assert_int_equal(w->statuses[0], 200);
	assert_int_equal(w->reply_lifetime[0], 3600);
	assert_string_equal(addr_fmt_v4(w->reply_v4, a), "192.0.2.10");
	assert_int_equal(st->auth_ok, 1);
	assert_int_equal(st->auth_failed, 0);
	assert_int_equal(st->commands, 1);
	assert_int_equal(st->replies, 1);
	assert_non_null(w->conn);
	assert_string_equal(tsp_conn_mechanism(w->conn), mech);
	if (user)
		assert_string_equal(tsp_conn_user(w->conn), user);
	else
		assert_null(tsp_conn_user(w->conn));
	world_free(w);
}

static void
test_anonymous(void **state)
{
	(void)state;
	check_ok_session("ANONYMOUS", NULL, "1.0");
}

static void
test_plain(void **state)
{
	(void)state;
	check_ok_session("PLAIN", "alice", "2.0.0");
}

static void
test_digest_md5(void **state)
{
	(void)state;
	check_ok_session("DIGEST-MD5", "alice", "2.0.1");
}

static void
test_scram(void **state)
{
	(void)state;
	check_ok_session("SCRAM-SHA-256", "alice", "2.0.2");
	/* again: the second login of alice uses the cached keys */
	check_ok_session("SCRAM-SHA-256", "alice", "2.0.2");
}

static void test_pipelined_in_order(void **state);

/*
 * The client writing straight to its socket (tsp-load's plain_socket): every
 * mechanism's exchange, and pipelined commands answered in order, as
 * through the bufferevent.
 */
static void
test_plain_socket_client(void **state)
{
	(void)state;
	plain_client = true;
	check_ok_session("ANONYMOUS", NULL, "2.0.0");
	check_ok_session("PLAIN", "alice", "2.0.0");
	check_ok_session("DIGEST-MD5", "alice", "2.0.1");
	check_ok_session("SCRAM-SHA-256", "alice", "2.0.2");
	test_pipelined_in_order(state);
	plain_client = false;
}

static void
check_bad_password(const char *mech)
{
	struct world *w = world_new("SCRAM-SHA-256 DIGEST-MD5 PLAIN", true, 5, false, "2.0.0", mech,
	                            "alice", "looking-glass", 5);

	run(w, 5);
	assert_false(w->ready);
	assert_true(w->closed_cli);
	assert_int_equal(w->closed_status, 300);
	assert_int_equal(tsp_server_stats(w->srv)->auth_failed, 1);
	assert_int_equal(tsp_server_stats(w->srv)->auth_ok, 0);
	world_free(w);
}

static void
test_bad_passwords(void **state)
{
	(void)state;
	check_bad_password("PLAIN");
	check_bad_password("DIGEST-MD5");
	check_bad_password("SCRAM-SHA-256");
}

static void
test_unknown_user(void **state)
{
	struct world *w = world_new("SCRAM-SHA-256", false, 5, false, "2.0.0", "SCRAM-SHA-256",
	                            "mallory", "x", 5);

	(void)state;
	run(w, 5);
	assert_int_equal(w->closed_status, 300);
	world_free(w);
}

static void
test_plain_needs_tls(void **state)
{
	struct world *w = world_new("PLAIN ANONYMOUS", false, 5, false, "2.0.0", "PLAIN", "alice",
	                            "wonderland", 5);

	(void)state;
	run(w, 5);
	assert_true(w->closed_cli);
	assert_int_equal(w->closed_status, 0);
	assert_non_null(strstr(w->closed_why, "does not offer PLAIN"));
	world_free(w);
}

static void
test_version_refused(void **state)
{
	struct world *w =
	    world_new("ANONYMOUS", false, 5, false, "3.0", "ANONYMOUS", NULL, NULL, 5);

	(void)state;
	run(w, 5);
	assert_true(w->closed_cli);
	assert_int_equal(w->closed_status, 302);
	assert_int_equal(tsp_server_stats(w->srv)->bad_version, 1);
	world_free(w);
}

static void
test_pipelined_in_order(void **state)
{
	struct world *w =
	    world_new("ANONYMOUS", false, 5, false, "2.0.0", "ANONYMOUS", NULL, NULL, 5);

	(void)state;
	w->defer = true;
	run(w, 5);
	assert_int_equal(w->commands, 3);
	assert_int_equal(w->nreplies, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w->statuses[i], 200);
		assert_int_equal(w->reply_lifetime[i], 100 + i);
	}
	world_free(w);
}

static void
test_delete_from_server(void **state)
{
	struct world *w =
	    world_new("ANONYMOUS", false, 5, false, "2.0.0", "ANONYMOUS", NULL, NULL, 5);

	(void)state;
	w->send_delete = true;
	run(w, 5);
	assert_int_equal(w->nreplies, 1);
	assert_int_equal(w->ncommands, 1);
	assert_int_equal(w->infos, 1);
	assert_false(w->closed_cli);
	world_free(w);
}

static void
test_client_reply_timeout(void **state)
{
	struct world *w =
	    world_new("ANONYMOUS", false, 5, false, "2.0.0", "ANONYMOUS", NULL, NULL, 1);

	(void)state;
	w->no_reply = true;
	run(w, 4);
	assert_true(w->closed_cli);
	assert_int_equal(w->closed_status, 0);
	assert_non_null(strstr(w->closed_why, "timed out waiting for a reply"));
	world_free(w);
}

/* ---- raw peer ---- */

static void
raw_write(struct world *w, const void *p, size_t n)
{
	assert_int_equal(write(w->rawfd, p, n), (ssize_t)n);
}

/* Read what the server wrote so far (the loop runs `secs` first). */
static size_t
raw_read(struct world *w, double secs, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	w->done = false;
	run(w, secs);
	while (n + 1 < cap && (r = read(w->rawfd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return n;
}

static const char create_xml[] =
    "<tunnel action=\"create\" type=\"v4v6\"><client>"
    "<address type=\"ipv6\">fd00:d57::11</address></client></tunnel>\r\n";

static void
raw_frame(struct world *w, const char *xml)
{
	char hdr[64];

	snprintf(hdr, sizeof(hdr), "Content-length: %zu\r\n", strlen(xml));
	raw_write(w, hdr, strlen(hdr));
	raw_write(w, xml, strlen(xml));
}

static void
test_raw_anonymous_nuls_and_order(void **state)
{
	struct world *w =
	    world_new("DIGEST-MD5 ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	char buf[8192], *p;
	static const char hello[] = "VERSION=1.0\r\nAUTHENTICATE ANONYMOUS\r\n\0\0\0\0";

	(void)state;
	w->defer = true;
	raw_write(w, hello, sizeof(hello) - 1);
	raw_read(w, 0.2, buf, sizeof(buf));
	assert_string_equal(buf, "CAPABILITY TUNNEL=V4V6 AUTH=DIGEST-MD5 AUTH=ANONYMOUS\r\n"
	                         "OK Authentication successful\r\n");
	/* create, garbage, create, create: the 500 waits for the first 200 */
	raw_frame(w, create_xml);
	raw_frame(w, "<tunnel action=");
	raw_frame(w, create_xml);
	raw_frame(w, "<tunnel action=\"create\" type=\"v6v4\"/>");
	raw_frame(w, create_xml);
	raw_read(w, 0.3, buf, sizeof(buf));
	p = strstr(buf, "200 Success");
	assert_non_null(p);
	assert_true(p < strstr(buf, "500 Invalid request"));
	/* 200 (100), 500, 200 (101), 303, 200 (102): the order of the commands */
	assert_non_null(strstr(buf, "lifetime=\"100\""));
	assert_true(strstr(buf, "lifetime=\"100\"") < strstr(buf, "500 Invalid request"));
	assert_true(strstr(buf, "500 Invalid request") < strstr(buf, "lifetime=\"101\""));
	assert_true(strstr(buf, "lifetime=\"101\"") < strstr(buf, "303 Unsupported tunnel"));
	assert_true(strstr(buf, "303 Unsupported tunnel") < strstr(buf, "lifetime=\"102\""));
	assert_int_equal(tsp_server_stats(w->srv)->bad_xml, 1);
	assert_int_equal(tsp_server_stats(w->srv)->commands, 5);
	world_free(w);
}

static void
test_raw_errors(void **state)
{
	struct world *w;
	char buf[4096];
	static const char bad6[] = "<tunnel action=\"create\" type=\"v4v6\"><client>"
	                           "<address type=\"ipv6\">fd00::zz</address></client></tunnel>";

	(void)state;
	/* invalid IPv6 → 309; bad frame header → close */
	w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	raw_write(w, "VERSION=2.0.0\nAUTHENTICATE ANONYMOUS\n", 37);
	raw_read(w, 0.2, buf, sizeof(buf));
	raw_frame(w, bad6);
	raw_read(w, 0.2, buf, sizeof(buf));
	assert_non_null(strstr(buf, "309 Invalid IPv6 address"));
	raw_write(w, "Content-size: 12\r\n", 18);
	raw_read(w, 0.3, buf, sizeof(buf));
	assert_int_equal(w->closed_srv, 1);
	assert_int_equal(tsp_server_stats(w->srv)->bad_frame, 1);
	world_free(w);

	/* mechanism not offered → 300 and close */
	w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	raw_write(w, "VERSION=2.0.0\r\nAUTHENTICATE PLAIN\r\n", 35);
	raw_read(w, 0.3, buf, sizeof(buf));
	assert_non_null(strstr(buf, "300 Authentication failed\r\n"));
	assert_int_equal(w->closed_srv, 1);
	world_free(w);

	/* version 3.0 → 302 line and close */
	w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	raw_write(w, "VERSION=3.0\r\n", 13);
	raw_read(w, 0.3, buf, sizeof(buf));
	assert_string_equal(buf, "302 Unsupported client version\r\n");
	assert_int_equal(w->closed_srv, 1);
	world_free(w);

	/* a line over line_max → close, counted as too_long */
	w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	{
		char big[1100];

		memset(big, 'A', sizeof(big));
		raw_write(w, big, sizeof(big));
	}
	raw_read(w, 0.3, buf, sizeof(buf));
	assert_int_equal(w->closed_srv, 1);
	assert_int_equal(tsp_server_stats(w->srv)->too_long, 1);
	world_free(w);

	/* garbage instead of VERSION → bad_line */
	w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	raw_write(w, "HELLO\r\n", 7);
	raw_read(w, 0.3, buf, sizeof(buf));
	assert_int_equal(tsp_server_stats(w->srv)->bad_line, 1);
	assert_int_equal(w->closed_srv, 1);
	world_free(w);
}

static void
test_raw_handshake_timeout(void **state)
{
	struct world *w = world_new("ANONYMOUS", false, 1, true, NULL, NULL, NULL, NULL, 0);
	char buf[256];

	(void)state;
	raw_write(w, "VERSION=2.0.0\r\n", 15);
	raw_read(w, 2.5, buf, sizeof(buf));
	assert_int_equal(w->closed_srv, 1);
	assert_int_equal(tsp_server_stats(w->srv)->timeouts, 1);
	assert_int_equal(tsp_server_stats(w->srv)->sessions_open, 0);
	world_free(w);
}

static void
test_raw_idle_timeout(void **state)
{
	struct world *w;
	char buf[256];

	(void)state;
	idle_timeout = 1;
	w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	idle_timeout = 0;
	raw_write(w, "VERSION=2.0.0\r\nAUTHENTICATE ANONYMOUS\r\n", 39);
	raw_read(w, 0.2, buf, sizeof(buf));
	assert_non_null(strstr(buf, "200 Success"));
	assert_int_equal(w->closed_srv, 0);
	raw_read(w, 2.5, buf, sizeof(buf));
	assert_int_equal(w->closed_srv, 1);
	assert_int_equal(tsp_server_stats(w->srv)->timeouts, 1);
	world_free(w);
}

/* ---- the deployed clients' framing, byte for byte ---- */

/* One packet of a SOCK_SEQPACKET world: one write of the server. */
static size_t
raw_packet(struct world *w, double secs, char *buf, size_t cap)
{
	ssize_t r;

	w->done = false;
	run(w, secs);
	r = read(w->rawfd, buf, cap - 1);
	buf[r > 0 ? r : 0] = '\0';
	return r > 0 ? (size_t)r : 0;
}

static void
test_field_anonymous_v2(void **state)
{
	struct world *w = world_new("ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	/* tspc's sizeof(string) sends the terminating NUL too */
	static const char hello[] = "VERSION=2.0.0\r\n";
	static const char auth[] = "AUTHENTICATE ANONYMOUS\r\n";
	char buf[512];

	(void)state;
	raw_write(w, hello, sizeof(hello) - 1);
	raw_read(w, 0.1, buf, sizeof(buf));
	assert_string_equal(buf, "CAPABILITY TUNNEL=V4V6 AUTH=ANONYMOUS\r\n");
	raw_write(w, auth, sizeof(auth));
	raw_read(w, 0.1, buf, sizeof(buf));
	assert_string_equal(buf, "200 Success\r\n");
	raw_frame(w, create_xml);
	raw_read(w, 0.2, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "Content-length: ", 16), 0);
	assert_non_null(strstr(buf, "\r\n200 Success\r\n<tunnel action=\"info\""));
	world_free(w);
}

static void
plain_case(const char *mechs, const void *resp, size_t n, const char *want, bool closed)
{
	struct world *w = world_new(mechs, true, 5, true, NULL, NULL, NULL, NULL, 0);
	static const char start[] = "VERSION=2.0.1\r\nAUTHENTICATE PLAIN\r\n";
	char buf[512];

	raw_write(w, start, sizeof(start)); /* with the NUL after the line */
	raw_write(w, resp, n);
	raw_read(w, 0.2, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(w->closed_srv, closed ? 1 : 0);
	if (!closed)
		assert_string_equal(tsp_conn_user(w->conn), "alice");
	world_free(w);
}

static void
test_field_plain(void **state)
{
	static const char raw[] = "\0alice\0wonderland\r\n";
	static const char authz[] = "alice\0alice\0wonderland\r\n";
	static const char bad[] = "\0alice\0looking-glass\r\n";
	static const char b64[] = "AGFsaWNlAHdvbmRlcmxhbmQ=\r\n"; /* \0alice\0wonderland */

	(void)state;
	plain_case("PLAIN", raw, sizeof(raw) - 1,
	           "CAPABILITY TUNNEL=V4V6 AUTH=PLAIN\r\n200 Success\r\n", false);
	plain_case("PLAIN", authz, sizeof(authz) - 1,
	           "CAPABILITY TUNNEL=V4V6 AUTH=PLAIN\r\n200 Success\r\n", false);
	plain_case("PLAIN", b64, sizeof(b64) - 1,
	           "CAPABILITY TUNNEL=V4V6 AUTH=PLAIN\r\n200 Success\r\n", false);
	plain_case("PLAIN", bad, sizeof(bad) - 1,
	           "CAPABILITY TUNNEL=V4V6 AUTH=PLAIN\r\n300 Authentication failed\r\n", true);
	plain_case("PLAIN", "!!!\r\n", 5,
	           "CAPABILITY TUNNEL=V4V6 AUTH=PLAIN\r\n300 Authentication failed\r\n", true);
}

static void
test_field_plain_needs_tls(void **state)
{
	struct world *w = world_new("PLAIN ANONYMOUS", false, 5, true, NULL, NULL, NULL, NULL, 0);
	static const char msg[] =
	    "VERSION=2.0.0\r\nAUTHENTICATE PLAIN\r\n\0\0alice\0wonderland\r\n";
	char buf[512];

	(void)state;
	raw_write(w, msg, sizeof(msg) - 1);
	raw_read(w, 0.2, buf, sizeof(buf));
	assert_string_equal(
	    buf, "CAPABILITY TUNNEL=V4V6 AUTH=ANONYMOUS\r\n300 Authentication failed\r\n");
	assert_int_equal(w->closed_srv, 1);
	world_free(w);
}

static void
md5hex(const char *s, size_t n, char out[33])
{
	unsigned char d[16];
	unsigned int dl = 16;

	EVP_Digest(s, n, d, &dl, EVP_md5(), NULL);
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* The value of directive `name` in a challenge split as tspc splits it. */
static void
directive(const char *ch, const char *name, char *out, size_t cap)
{
	char copy[512], *tok, *save = NULL;

	snprintf(copy, sizeof(copy), "%s", ch);
	out[0] = '\0';
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		size_t vl;

		if (!eq || (size_t)(eq - tok) != strlen(name) || strncmp(tok, name, strlen(name)))
			continue;
		eq++;
		if (*eq == '"')
			eq++;
		vl = strlen(eq);
		if (vl && eq[vl - 1] == '"')
			vl--;
		snprintf(out, cap, "%.*s", (int)vl, eq);
	}
}

/*
 * What tspc's AuthDIGEST_MD5() answers to the challenge line `line`: the
 * challenge checked as it reads it (split on "," alone), an md5-sess
 * response with nc 1, a decimal cnonce and digest-uri tsp/<server>, as a
 * base64 line with its CRLF into out (its length returned); want_rspauth
 * gets the "rspauth=…" the server must answer with.
 */
static size_t
tspc_digest(const char *line, size_t n, char *out, char want_rspauth[64])
{
	char ch[512], realm[64], nonce[128], qop[32], charset[32], resp[600];
	char a1[33], a2[33], ca2[33], hresp[33], hcresp[33], s1[600];
	unsigned char hu[16];
	unsigned int hl = 16;
	int len;

	assert_true(n > 2 && line[n - 2] == '\r');
	len = EVP_DecodeBlock((unsigned char *)ch, (const unsigned char *)line, (int)n - 2);
	assert_true(len > 0);
	ch[len] = '\0';
	/* RFC 2831 directives, joined by "," alone */
	assert_null(strstr(ch, ", "));
	assert_int_equal(strncmp(ch, "realm=\"dstm\",nonce=\"", 20), 0);
	assert_non_null(strstr(ch, "\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"));
	directive(ch, "realm", realm, sizeof(realm));
	directive(ch, "nonce", nonce, sizeof(nonce));
	directive(ch, "qop", qop, sizeof(qop));
	directive(ch, "charset", charset, sizeof(charset));
	assert_string_equal(realm, "dstm");
	assert_string_equal(qop, "auth");
	assert_true(strlen(nonce) > 8);
	snprintf(s1, sizeof(s1), "alice:%s:wonderland", realm);
	EVP_Digest(s1, strlen(s1), hu, &hl, EVP_md5(), NULL);
	memcpy(s1, hu, 16);
	n = 16 + (size_t)snprintf(s1 + 16, sizeof(s1) - 16, ":%s:%lu", nonce, 1733540000ul);
	md5hex(s1, n, a1);
	snprintf(s1, sizeof(s1), "AUTHENTICATE:tsp/%s", "fd00:d57::1");
	md5hex(s1, strlen(s1), a2);
	snprintf(s1, sizeof(s1), ":tsp/%s", "fd00:d57::1");
	md5hex(s1, strlen(s1), ca2);
	snprintf(s1, sizeof(s1), "%s:%s:00000001:%lu:%s:%s", a1, nonce, 1733540000ul, qop, a2);
	md5hex(s1, strlen(s1), hresp);
	snprintf(s1, sizeof(s1), "%s:%s:00000001:%lu:%s:%s", a1, nonce, 1733540000ul, qop, ca2);
	md5hex(s1, strlen(s1), hcresp);
	snprintf(want_rspauth, 64, "rspauth=%s", hcresp);
	snprintf(resp, sizeof(resp),
	         "charset=%s,username=\"alice\",realm=\"%s\",nonce=\"%s\",nc=00000001,"
	         "cnonce=\"%lu\",digest-uri=\"tsp/%s\",response=%s,qop=auth",
	         charset, realm, nonce, 1733540000ul, "fd00:d57::1", hresp);
	len = EVP_EncodeBlock((unsigned char *)out, (unsigned char *)resp, (int)strlen(resp));
	memcpy(out + len, "\r\n", 3);
	return (size_t)len + 2;
}

/* The server's line `buf` (n bytes with its CRLF), base64-decoded. */
static void
decoded(const char *buf, size_t n, char *out)
{
	int len;

	assert_true(n > 2);
	len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)buf, (int)n - 2);
	out[len > 0 ? len : 0] = '\0';
}

static void
test_field_digest_md5(void **state)
{
	struct world *w;
	static const char start[] = "VERSION=2.0.0\r\nAUTHENTICATE DIGEST-MD5\r\n";
	char buf[1024], ch[512], b64[900], want[64];
	size_t n;

	(void)state;
	sock_type = SOCK_SEQPACKET;
	w = world_new("DIGEST-MD5", false, 5, true, NULL, NULL, NULL, NULL, 0);
	sock_type = SOCK_STREAM;
	raw_write(w, start, 15);
	assert_string_equal((raw_packet(w, 0.1, buf, sizeof(buf)), buf),
	                    "CAPABILITY TUNNEL=V4V6 AUTH=DIGEST-MD5\r\n");
	raw_write(w, start + 15, sizeof(start) - 15);
	n = raw_packet(w, 0.1, buf, sizeof(buf));
	raw_write(w, b64, tspc_digest(buf, n, b64, want));
	/* rspauth alone in one write, the status line in the next */
	n = raw_packet(w, 0.05, buf, sizeof(buf));
	decoded(buf, n, ch);
	assert_string_equal(ch, want);
	assert_string_equal((raw_packet(w, 0.3, buf, sizeof(buf)), buf), "200 Success\r\n");
	assert_string_equal(tsp_conn_user(w->conn), "alice");
	/* an empty line after rspauth, as RFC 2831 clients send, is ignored */
	raw_write(w, "\r\n", 2);
	raw_frame(w, create_xml);
	n = raw_packet(w, 0.2, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\r\n200 Success\r\n<tunnel action=\"info\""));
	assert_int_equal(w->closed_srv, 0);
	world_free(w);
}

/* ---- datagram sessions (TSP over UDP), driven message by message ---- */

struct dg {
	unsigned outputs, gone;
};

static void
dg_output(struct tsp_conn *c, void *arg)
{
	(void)c;
	((struct dg *)arg)->outputs++;
}

static void
dg_gone(struct tsp_conn *c, void *arg)
{
	(void)c;
	((struct dg *)arg)->gone++;
}

static const struct tsp_dgram_ops dg_ops = {.output = dg_output, .gone = dg_gone};

/* One message's worth of output, as the UDP transport takes it. */
static const char *
dg_take(struct tsp_conn *c, char *buf, size_t cap)
{
	struct evbuffer *o = tsp_conn_output(c);
	size_t n = evbuffer_get_length(o);

	assert_true(n < cap);
	evbuffer_remove(o, buf, n);
	buf[n] = '\0';
	tsp_conn_output_taken(c);
	return buf;
}

static struct tsp_conn *
dg_new(struct world *w, struct dg *dg)
{
	struct sockaddr_in6 peer = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
	struct tsp_conn *c;

	inet_pton(AF_INET6, "fd00:d57::11", &peer.sin6_addr);
	c = tsp_server_accept_dgram(w->srv, (struct sockaddr *)&peer, sizeof(peer), &dg_ops, dg);
	assert_non_null(c);
	return c;
}

static void
test_dgram_plain_and_create(void **state)
{
	struct world *w = world_new("PLAIN ANONYMOUS", true, 5, true, NULL, NULL, NULL, NULL, 0);
	struct dg dg = {0};
	struct tsp_conn *c = dg_new(w, &dg);
	char buf[2048], frame[512];
	struct tsp_tunnel r;
	int n;

	(void)state;
	assert_int_equal(tsp_conn_input(c, "VERSION=2.0.0\r\n", 15), 0);
	assert_string_equal(dg_take(c, buf, sizeof(buf)),
	                    "CAPABILITY TUNNEL=V4V6 AUTH=PLAIN AUTH=ANONYMOUS\r\n");
	/* tspc waits for an answer even here: the transport sends a bare header */
	assert_int_equal(tsp_conn_input(c, "AUTHENTICATE PLAIN\r\n", 21), 0);
	assert_string_equal(dg_take(c, buf, sizeof(buf)), "");
	assert_int_equal(tsp_conn_input(c, "\0alice\0wonderland\r\n", 20), 0);
	assert_string_equal(dg_take(c, buf, sizeof(buf)), "200 Success\r\n");
	assert_string_equal(tsp_conn_user(c), "alice");
	n = snprintf(frame, sizeof(frame), "Content-length: %zu\r\n%s", strlen(create_xml),
	             create_xml);
	w->defer = true; /* the answer comes later, as after a commit */
	assert_int_equal(tsp_conn_input(c, frame, (size_t)n), 0);
	assert_true(tsp_conn_awaiting(c));
	assert_int_equal(dg.outputs, 0);
	assert_string_equal(dg_take(c, buf, sizeof(buf)), "");
	/* the application answers: the transport hears of it */
	fill_info(&r, 3600);
	assert_int_equal(tsp_conn_reply(c, 200, &r), 0);
	assert_false(tsp_conn_awaiting(c));
	assert_int_equal(dg.outputs, 1);
	dg_take(c, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "Content-length: ", 16), 0);
	assert_non_null(strstr(buf, "\r\n200 Success\r\n<tunnel action=\"info\""));
	/* a datagram over the TCP limits: the session ends, counted */
	{
		static char big[20000];
		uint64_t before = tsp_server_stats(w->srv)->too_long;

		memset(big, 'A', sizeof(big));
		assert_int_equal(tsp_conn_input(c, big, sizeof(big)), -EMSGSIZE);
		assert_int_equal(tsp_server_stats(w->srv)->too_long, before + 1);
		assert_true(tsp_conn_closing(c));
	}
	run(w, 0.1);
	assert_int_equal(dg.gone, 1);
	world_free(w);
}

static void
test_dgram_digest_md5(void **state)
{
	struct world *w = world_new("DIGEST-MD5", false, 5, true, NULL, NULL, NULL, NULL, 0);
	struct dg dg = {0};
	struct tsp_conn *c = dg_new(w, &dg);
	char buf[1024], ch[512], b64[900], want[64];
	size_t n;

	(void)state;
	tsp_conn_input(c, "VERSION=2.0.0\r\n", 15);
	dg_take(c, buf, sizeof(buf));
	tsp_conn_input(c, "AUTHENTICATE DIGEST-MD5\r\n", 26); /* with its NUL */
	dg_take(c, buf, sizeof(buf));
	n = tspc_digest(buf, strlen(buf), b64, want);
	tsp_conn_input(c, b64, n);
	/* the answer to the response is rspauth alone ... */
	dg_take(c, buf, sizeof(buf));
	decoded(buf, strlen(buf), ch);
	assert_string_equal(ch, want);
	/* ... and the status waits for tspc's next (empty) request */
	assert_string_equal(dg_take(c, buf, sizeof(buf)), "200 Success\r\n");
	assert_string_equal(tsp_conn_user(c), "alice");
	tsp_conn_input(c, "AUTHENTICATE", 12); /* no line end: nothing to say */
	assert_string_equal(dg_take(c, buf, sizeof(buf)), "");
	tsp_conn_close(c);
	run(w, 0.1);
	assert_int_equal(dg.gone, 1);
	world_free(w);
}

static void
test_field_digest_wrong(void **state)
{
	struct world *w = world_new("DIGEST-MD5", false, 5, true, NULL, NULL, NULL, NULL, 0);
	static const char start[] = "VERSION=2.0.0\r\nAUTHENTICATE DIGEST-MD5\r\n";
	static const char junk[] = "Y2hhcnNldD11dGYtOCx1c2VybmFtZT0iYWxpY2Ui\r\n";
	char buf[1024], *p;

	(void)state;
	raw_write(w, start, sizeof(start));
	raw_read(w, 0.1, buf, sizeof(buf));
	raw_write(w, junk, sizeof(junk) - 1);
	raw_read(w, 0.2, buf, sizeof(buf));
	p = buf;
	assert_string_equal(p, "300 Authentication failed\r\n");
	assert_int_equal(w->closed_srv, 1);
	world_free(w);
}

/* Over real TCP on ::1 through tsp_client_connect(). */
static void
on_listen(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct world *w = arg;

	w->conn = tsp_server_accept(
	    w->srv, bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE),
	    sa, (socklen_t)salen, false);
	assert_non_null(w->conn);
}

static void
test_tcp_connect(void **state)
{
	struct world *w = world_new("SCRAM-SHA-256", false, 5, true, NULL, NULL, NULL, NULL, 0);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_storage local;
	socklen_t len = sizeof(sin6);
	struct evconnlistener *l;
	struct tsp_client_config cc = {
	    .mechanism = "SCRAM-SHA-256", .user = "alice", .secret = "wonderland", .timeout = 5};
	struct tsp_client_callbacks ccb = {
	    .ready = cli_ready, .reply = cli_reply, .command = cli_command, .closed = cli_closed};

	(void)state;
	/* the socketpair peer of world_new is not used here */
	close(w->rawfd);
	w->rawfd = -1;
	l = evconnlistener_new_bind(w->base, on_listen, w, LEV_OPT_CLOSE_ON_FREE, 16,
	                            (struct sockaddr *)&sin6, sizeof(sin6));
	assert_non_null(l);
	assert_int_equal(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin6, &len), 0);
	w->cli = tsp_client_connect(w->base, (struct sockaddr *)&sin6, len, NULL, 0, &cc, &ccb, w);
	assert_non_null(w->cli);
	run(w, 5);
	assert_int_equal(w->nreplies, 1);
	assert_int_equal(w->statuses[0], 200);
	assert_int_equal(tsp_client_local(w->cli, &local), 0);
	assert_int_equal(local.ss_family, AF_INET6);
	assert_non_null(tsp_conn_peer(w->conn));
	assert_string_equal(tsp_conn_user(w->conn), "alice");
	evconnlistener_free(l);
	world_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_anonymous),
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_digest_md5),
	    cmocka_unit_test(test_scram),
	    cmocka_unit_test(test_bad_passwords),
	    cmocka_unit_test(test_unknown_user),
	    cmocka_unit_test(test_plain_needs_tls),
	    cmocka_unit_test(test_version_refused),
	    cmocka_unit_test(test_pipelined_in_order),
	    cmocka_unit_test(test_plain_socket_client),
	    cmocka_unit_test(test_delete_from_server),
	    cmocka_unit_test(test_client_reply_timeout),
	    cmocka_unit_test(test_raw_anonymous_nuls_and_order),
	    cmocka_unit_test(test_raw_errors),
	    cmocka_unit_test(test_raw_handshake_timeout),
	    cmocka_unit_test(test_raw_idle_timeout),
	    cmocka_unit_test(test_tcp_connect),
	    cmocka_unit_test(test_field_anonymous_v2),
	    cmocka_unit_test(test_field_plain),
	    cmocka_unit_test(test_field_plain_needs_tls),
	    cmocka_unit_test(test_field_digest_md5),
	    cmocka_unit_test(test_field_digest_wrong),
	    cmocka_unit_test(test_dgram_plain_and_create),
	    cmocka_unit_test(test_dgram_digest_md5),
	};

	log_init(1, 0, "test_tsp_session");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
