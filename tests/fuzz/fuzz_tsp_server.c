/*
 * libFuzzer harness for a whole TSP server session (src/tsp/tsp_server.c
 * with its framer, SASL steps and XML): the server of dstmd and dstm-tep as
 * an attacker meets it. The input is the byte stream a peer sends over an
 * in-memory bufferevent pair. Its first byte picks a preamble, so that the
 * fuzzed bytes land after "VERSION=…" and "AUTHENTICATE <mech>" (one per
 * mechanism: the SASL steps of ANONYMOUS, PLAIN, DIGEST-MD5 and
 * SCRAM-SHA-256) or start from nothing; its second byte splits the rest
 * into two writes, so that partial lines and frames are met too. Commands
 * that get through are answered with an info, as dstmd would. Every session
 * must end (closed by the server, or by us at the end of the input) with
 * nothing left allocated. With the first byte's high bit set, the session
 * is a datagram one (TSP over UDP): the rest is fed as two messages, and
 * the output is taken after each as dstmd's UDP transport takes it.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "tsp/tsp.h"
#include "tsp_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const preambles[] = {
    "",
    "VERSION=2.0.0\r\nAUTHENTICATE ANONYMOUS\r\n",
    "VERSION=2.0.0\r\nAUTHENTICATE PLAIN\r\n",
    "VERSION=2.0.0\r\nAUTHENTICATE DIGEST-MD5\r\n",
    "VERSION=2.0.0\r\nAUTHENTICATE SCRAM-SHA-256\r\n",
    "VERSION=1.0\r\n",
};

static struct event_base *base;
static struct tsp_server *srv;
static struct tsp_conn *conn;

static const char *
secret(void *arg, const char *user, const char *realm)
{
	(void)arg;
	(void)realm;
	return strcmp(user, "alice") == 0 ? "wonderland" : NULL;
}

static void
on_command(struct tsp_conn *c, const struct tsp_tunnel *t, void *arg)
{
	struct tsp_tunnel r;

	(void)arg;
	if (t->action == TSP_ACTION_INFO)
		return; /* an acknowledgement needs no reply */
	memset(&r, 0, sizeof(r));
	r.action = TSP_ACTION_INFO;
	strcpy(r.type, "v4v6");
	r.lifetime = 600;
	r.client = t->client;
	r.client.present = true;
	r.client.has_v4 = true;
	r.client.v4 = 0xc000020a; /* 192.0.2.10 */
	r.server.present = true;
	r.server.has_v4 = true;
	r.server.v4 = 0xc6336401; /* 198.51.100.1 */
	(void)tsp_conn_reply(c, t->action == TSP_ACTION_CREATE ? TSP_OK : TSP_INVALID_REQUEST, &r);
}

static void
on_closed(struct tsp_conn *c, void *arg)
{
	(void)arg;
	if (c == conn)
		conn = NULL;
}

static void
setup(void)
{
	static const struct tsp_server_callbacks cb = {.command = on_command, .closed = on_closed};
	struct tsp_server_config cfg;

	log_init(1, 0, "fuzz_tsp_server");
	/* Quiet: bad input is logged (rate-limited) and would flood the output. */
	log_setverbose(0);
	tsp_fuzz_config(&cfg, "SCRAM-SHA-256 DIGEST-MD5 PLAIN ANONYMOUS", secret);
	base = event_base_new();
	srv = base ? tsp_server_new(base, &cfg, &cb, NULL) : NULL;
	if (srv == NULL)
		abort();
}

/* Run the loop until nothing is pending; drop what the server wrote. */
static void
pump(struct bufferevent *peer)
{
	for (unsigned i = 0; i < 64; i++) {
		struct evbuffer *in = bufferevent_get_input(peer);

		evbuffer_drain(in, evbuffer_get_length(in));
		if (event_base_loop(base, EVLOOP_NONBLOCK) != 0)
			break;
		if (evbuffer_get_length(bufferevent_get_input(peer)) == 0 &&
		    evbuffer_get_length(bufferevent_get_output(peer)) == 0 && i > 2)
			break;
	}
}

static unsigned gone;

static void
dg_output(struct tsp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static void
dg_gone(struct tsp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	gone++;
}

/* What the UDP transport does after each message: take all, say so. */
static void
dg_take(void)
{
	for (unsigned i = 0; i < 8 && conn != NULL; i++) {
		struct evbuffer *o = tsp_conn_output(conn);

		if (evbuffer_get_length(o) == 0)
			return;
		evbuffer_drain(o, evbuffer_get_length(o));
		tsp_conn_output_taken(conn);
	}
}

static void
run_dgram(const char *pre, const uint8_t *data, size_t size, size_t split)
{
	static const struct tsp_dgram_ops ops = {.output = dg_output, .gone = dg_gone};

	gone = 0;
	conn = tsp_server_accept_dgram(srv, NULL, 0, &ops, NULL);
	if (conn == NULL)
		abort();
	(void)tsp_conn_input(conn, pre, strlen(pre));
	dg_take();
	if (conn != NULL && !tsp_conn_closing(conn))
		(void)tsp_conn_input(conn, data, split);
	dg_take();
	for (unsigned i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (conn != NULL && !tsp_conn_closing(conn))
		(void)tsp_conn_input(conn, data + split, size - split);
	dg_take();
	if (conn != NULL)
		tsp_conn_close(conn);
	for (unsigned i = 0; i < 64 && conn != NULL; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (conn != NULL || gone != 1 || tsp_server_stats(srv)->sessions_open != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bufferevent *pair[2];
	const char *pre;
	size_t split;

	if (base == NULL)
		setup();
	if (size < 2)
		return 0;
	pre = preambles[data[0] % (sizeof(preambles) / sizeof(preambles[0]))];
	split = data[1];
	data += 2;
	size -= 2;
	if (split > size)
		split = size;
	if (data[-2] & 0x80) {
		run_dgram(pre, data, size, split);
		return 0;
	}

	if (bufferevent_pair_new(base, BEV_OPT_DEFER_CALLBACKS, pair) != 0)
		abort();
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	conn = tsp_server_accept(srv, pair[0], NULL, 0, false);
	if (conn == NULL)
		abort();
	bufferevent_write(pair[1], pre, strlen(pre));
	bufferevent_write(pair[1], data, split);
	pump(pair[1]);
	if (conn != NULL) {
		bufferevent_write(pair[1], data + split, size - split);
		pump(pair[1]);
	}
	/* The peer hangs up (EOF on the server's side); the session must end. */
	bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);
	pump(pair[1]);
	bufferevent_free(pair[1]);
	for (unsigned i = 0; i < 64 && conn != NULL; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (conn != NULL) {
		tsp_conn_close(conn);
		for (unsigned i = 0; i < 64 && conn != NULL; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	if (conn != NULL)
		abort(); /* a session that outlives its peer and tsp_conn_close */
	if (tsp_server_stats(srv)->sessions_open != 0)
		abort();
	return 0;
}
