/*
 * libFuzzer harness of dstmd's TSP-over-UDP transport (src/dstmd/tsp_udp.c)
 * as strangers on the link meet it: its table of sources, the sequence
 * numbers (retransmission, stale, restart with VERSION), the queue of
 * unasked messages, and above all the lifetimes across the asynchronous
 * answer (a create answered after the commit, by then perhaps to a
 * session that was evicted, expired or ended). tsp_udp.c is compiled in
 * here whole, so that its datagram handler is reached without a socket;
 * the TSP machine is the real one (src/tsp), and access.c is replaced by
 * stubs that admit a bounded number of sessions and answer commands
 * either at once or later, on a later record's say.
 *
 * Input: records of a control byte, a 16-bit length and that many bytes
 * of datagram. Control bits 0-1 pick one of four sources (two ports of
 * one address, two addresses); bit 2 answers the pending commands now;
 * bit 3 frees the least recently heard session (its expiry); bit 4 drops
 * the pending answers instead (the application's session ended); bit 5
 * says which local address the datagram arrived at (the listener's own, or
 * one a wildcard listener learns from IPV6_PKTINFO and answers from); bits
 * 6-7 are unused. After the input, every
 * session is freed and the event loop run: nothing may remain open.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dstmd/tsp_udp.c"
#include "tsp_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PENDING_MAX 8
#define ADMIT_MAX   6 /* sessions the access stub lets in at once */

static struct event_base *base;
static struct dstmd dd;
static struct udp_sock usock;
static unsigned open_conns;
static struct tsp_conn *pending[PENDING_MAX];
static struct tsp_tunnel pending_t[PENDING_MAX];
static unsigned npending;

/* ---- access.c, as far as tsp_udp.c calls it ---- */

int
access_admit(struct dstmd *d, const struct sockaddr *sa)
{
	(void)d;
	(void)sa;
	return open_conns >= ADMIT_MAX ? -EBUSY : 0;
}

int
access_attach(struct dstmd *d, struct tsp_conn *c, const struct sockaddr *sa)
{
	(void)d;
	(void)sa;
	(void)c;
	open_conns++; /* on_closed gives it back */
	return 0;
}

static void
reply_to(struct tsp_conn *c, const struct tsp_tunnel *t)
{
	struct tsp_tunnel r;

	memset(&r, 0, sizeof(r));
	r.action = TSP_ACTION_INFO;
	strcpy(r.type, "v4v6");
	r.lifetime = 600;
	r.client = t->client;
	r.client.present = true;
	r.client.has_v4 = true;
	r.client.v4 = 0xc000020a;
	r.server.present = true;
	r.server.has_v4 = true;
	r.server.v4 = 0xc6336401;
	(void)tsp_conn_reply(c, t->action == TSP_ACTION_CREATE ? TSP_OK : TSP_INVALID_REQUEST, &r);
}

static void
on_command(struct tsp_conn *c, const struct tsp_tunnel *t, void *arg)
{
	(void)arg;
	if (t->action == TSP_ACTION_INFO)
		return;
	/* Later, as a create's commit would; or now when the list is full. */
	if (npending < PENDING_MAX) {
		pending[npending] = c;
		pending_t[npending++] = *t;
		return;
	}
	reply_to(c, t);
}

static void
on_closed(struct tsp_conn *c, void *arg)
{
	(void)arg;
	/* access.c forgets a session's requests when it ends. */
	for (unsigned i = 0; i < npending;)
		if (pending[i] == c) {
			pending[i] = pending[--npending];
			pending_t[i] = pending_t[npending];
		} else {
			i++;
		}
	open_conns--;
}

static void
answer_pending(void)
{
	while (npending > 0) {
		struct tsp_conn *c = pending[--npending];

		reply_to(c, &pending_t[npending]);
	}
}

static const char *
secret(void *arg, const char *user, const char *realm)
{
	(void)arg;
	(void)realm;
	return strcmp(user, "alice") == 0 ? "wonderland" : NULL;
}

static void
setup(void)
{
	static const struct tsp_server_callbacks cb = {.command = on_command, .closed = on_closed};
	struct tsp_server_config cfg;
	struct tsp_udp *u;

	log_init(1, 0, "fuzz_tsp_udp");
	log_setverbose(0);
	tsp_fuzz_config(&cfg, "DIGEST-MD5 PLAIN ANONYMOUS", secret);
	base = event_base_new();
	dd.base = base;
	dd.tsp = base ? tsp_server_new(base, &cfg, &cb, NULL) : NULL;
	u = calloc(1, sizeof(*u));
	if (!dd.tsp || !u || !(u->hash = calloc(UDP_BUCKETS, sizeof(*u->hash))))
		abort();
	u->d = &dd;
	u->rl.burst = 1;
	dd.udp = u;
	usock.u = u;
	usock.fd = -1; /* answers fail to leave (EBADF), as on a full socket */
}

static void
source(unsigned k, struct sockaddr_in6 *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons((uint16_t)(3653 + (k & 1)));
	sa->sin6_addr.s6_addr[0] = 0xfd;
	sa->sin6_addr.s6_addr[15] = (uint8_t)(1 + (k >> 1));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsp_udp *u;

	if (!base)
		setup();
	u = dd.udp;
	while (size >= 3) {
		uint8_t ctl = data[0];
		size_t len = (size_t)(data[1] << 8 | data[2]);
		struct sockaddr_in6 sa;
		struct udp_local local = {0};

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		source(ctl & 3, &sa);
		if (ctl & 0x20) {
			local.family = AF_INET6;
			local.v6.ipi6_addr.s6_addr[0] = 0xfd;
			local.v6.ipi6_addr.s6_addr[15] = 0xfe;
		}
		on_datagram(&usock, data, len, (const struct sockaddr *)&sa, sizeof(sa), &local);
		data += len;
		size -= len;
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (ctl & 0x10)
			npending = 0; /* dropped: those sessions wait for ever (until freed) */
		if (ctl & 0x04)
			answer_pending();
		if ((ctl & 0x08) && u->oldest)
			sess_free(u->oldest);
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (u->nsess > UDP_SESSIONS_MAX)
			abort();
	}
	/* Every session ends; their machines close from their deferred events. */
	while (u->oldest)
		sess_free(u->oldest);
	for (unsigned i = 0; i < 64 && open_conns > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (u->nsess != 0 || open_conns != 0 || npending != 0 ||
	    tsp_server_stats(dd.tsp)->sessions_open != 0)
		abort();
	return 0;
}
