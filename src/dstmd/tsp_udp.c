/*
 * TSP over UDP (RFC 5572 §3), on the address and port of every plain TCP
 * listener: the transport that deployed TSP clients try first. Each
 * datagram carries one message behind an 8-byte header (0xF, a 28-bit
 * sequence number, the client's timestamp); the client retransmits a
 * request until a datagram with its sequence number comes back, and
 * treats that datagram's message as the answer. A source (address and
 * port) holds one session: the same TSP machine as over TCP (src/tsp,
 * tsp_server_accept_dgram) fed message by message, and the same access
 * session (access.c) with the datagram's source as its verified peer.
 *
 * How a client's "one request, one answer" maps onto the machine:
 *  - what the machine writes while it handles a request is the answer;
 *    a write it makes on its own afterwards (the status line after
 *    DIGEST-MD5's rspauth) waits in the session's queue for the next
 *    request, which tspc sends as a header without a message;
 *  - a command the application answers later (create: after the commit
 *    and the TEP) keeps the request open; its answer goes out when it
 *    comes, and a retransmission meanwhile is ignored;
 *  - a request that makes no output gets the header alone (tspc waits
 *    for a datagram even after "AUTHENTICATE PLAIN" and "accept");
 *  - the answer to the last sequence number is kept and sent again for a
 *    retransmission: a lost reply never runs a command twice, so never
 *    makes a second lease.
 *
 * State a stranger can create, and its bounds: a session is made only
 * by a datagram that holds a VERSION line, only when access.c admits it
 * (the TCP limits: limits.connections in all, limits.connections_per_64
 * per /64 or IPv4 address), and at most UDP_SESSIONS_MAX of them; when
 * that many exist, the least recently heard one is evicted. A session
 * unheard for UDP_LINGER_S seconds is freed (its lease stays, as when a
 * TCP client closes). Its queue holds UDP_QUEUE_MAX messages of at most
 * the TCP frame size. The hash of sources is seeded at random.
 *
 * On a wildcard address ([::] or 0.0.0.0) an answer leaves from the
 * address the client's datagram was sent to (IPV6_PKTINFO, IP_PKTINFO),
 * not from whatever the routing would choose: a client's connected UDP
 * socket takes datagrams from that address only.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "dstmd/dstmd.h"
#include "dstmd/tsp_udp.h"

#define UDP_BUCKETS      4096
#define UDP_SESSIONS_MAX 4096
#define UDP_QUEUE_MAX    4
#define UDP_LINGER_S     60
#define UDP_SWEEP_S      5
#define UDP_DGRAM_MAX    65535

struct udp_msg {
	char *data;
	size_t len;
};

/* Where a datagram arrived, for the answer's source (wildcard sockets only). */
struct udp_local {
	int family; /* 0: the socket's own address will do */
	union {
		struct in6_pktinfo v6;
		struct in_pktinfo v4;
	};
};

struct udp_sess {
	struct tsp_udp *u;
	struct udp_sock *sock;          /* replies leave from it */
	struct udp_sess *hnext;         /* source hash chain */
	struct udp_sess *older, *newer; /* recency list */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct udp_local local;  /* the address its last datagram went to */
	struct tsp_conn *conn;   /* NULL once the machine ended */
	bool have_seq, open;     /* open: the last request waits */
	struct tsp_udp_hdr last; /* the last request's header */
	uint8_t *answer;         /* header + message sent for it */
	size_t answer_len;
	struct udp_msg queue[UDP_QUEUE_MAX];
	unsigned nqueue;
	int64_t heard_ms;
};

struct udp_sock {
	struct tsp_udp *u;
	int fd;
	bool wildcard; /* bound to [::] or 0.0.0.0: answers name their source */
	struct event *ev;
};

struct tsp_udp {
	struct dstmd *d;
	struct udp_sock *socks;
	size_t nsocks;
	struct udp_sess **hash;
	struct udp_sess *oldest, *newest;
	unsigned nsess;
	uint32_t seed;
	struct event *sweep;
	struct tsp_udp_counters ctr;
	struct log_rl rl;
};

static const struct tsp_dgram_ops udp_ops;

/* ---- sources ---- */

static size_t
peer_key(const struct sockaddr *sa, const uint8_t **key)
{
	if (sa->sa_family == AF_INET6) {
		*key = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_port;
		/* port, flowinfo, address: port and address are what count */
		return 2;
	}
	*key = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_port;
	return 2;
}

static const uint8_t *
peer_addr(const struct sockaddr *sa, size_t *n)
{
	if (sa->sa_family == AF_INET6) {
		*n = 16;
		return (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	}
	*n = 4;
	return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
}

/* Port and address under the tree's keyed hash (common/hash.h): sources are chosen by strangers. */
static uint32_t
peer_hash(const struct tsp_udp *u, const struct sockaddr *sa)
{
	uint8_t key[2 + 16];
	const uint8_t *p;
	size_t n, k;

	(void)u;
	k = peer_key(sa, &p);
	if (k > 2)
		k = 2;
	memcpy(key, p, k);
	p = peer_addr(sa, &n);
	memcpy(key + k, p, n);
	return (uint32_t)(hash_bytes(key, k + n) & (UDP_BUCKETS - 1));
}

static bool
peer_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	const uint8_t *pa, *pb;
	size_t na, nb;

	if (a->sa_family != b->sa_family)
		return false;
	peer_key(a, &pa);
	peer_key(b, &pb);
	if (memcmp(pa, pb, 2) != 0)
		return false;
	pa = peer_addr(a, &na);
	pb = peer_addr(b, &nb);
	return na == nb && memcmp(pa, pb, na) == 0;
}

/* ---- sessions ---- */

static void
recency_unlink(struct udp_sess *s)
{
	struct tsp_udp *u = s->u;

	if (s->older)
		s->older->newer = s->newer;
	else
		u->oldest = s->newer;
	if (s->newer)
		s->newer->older = s->older;
	else
		u->newest = s->older;
	s->older = s->newer = NULL;
}

static void
recency_touch(struct udp_sess *s)
{
	struct tsp_udp *u = s->u;

	if (u->newest != s) {
		if (s->older || s->newer || u->oldest == s)
			recency_unlink(s);
		s->older = u->newest;
		if (u->newest)
			u->newest->newer = s;
		u->newest = s;
		if (!u->oldest)
			u->oldest = s;
	}
	s->heard_ms = (int64_t)clock_mono_ms();
}

static struct udp_sess *
sess_find(struct tsp_udp *u, const struct sockaddr *sa)
{
	for (struct udp_sess *s = u->hash[peer_hash(u, sa)]; s; s = s->hnext)
		if (peer_equal((const struct sockaddr *)&s->peer, sa))
			return s;
	return NULL;
}

static void
queue_clear(struct udp_sess *s)
{
	for (unsigned i = 0; i < s->nqueue; i++)
		free(s->queue[i].data);
	s->nqueue = 0;
}

static void
sess_free(struct udp_sess *s)
{
	struct tsp_udp *u = s->u;
	struct udp_sess **pp;

	for (pp = &u->hash[peer_hash(u, (const struct sockaddr *)&s->peer)]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	recency_unlink(s);
	u->nsess--;
	if (s->conn) {
		/* The machine ends later (its closed callback); it must not find us. */
		tsp_conn_set_dgram_arg(s->conn, NULL);
		tsp_conn_close(s->conn);
	}
	queue_clear(s);
	free(s->answer);
	free(s);
}

static struct udp_sess *
sess_new(struct tsp_udp *u, struct udp_sock *sock, const struct sockaddr *sa, socklen_t salen)
{
	struct dstmd *d = u->d;
	struct udp_sess *s;
	uint32_t b;

	if (u->nsess >= UDP_SESSIONS_MAX && u->oldest) {
		u->ctr.evicted++;
		sess_free(u->oldest);
	}
	/* The limits of a TCP connection: in all, and per /64 (or IPv4 address). */
	if (access_admit(d, sa) != 0) {
		u->ctr.refused++;
		return NULL;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
	s->u = u;
	s->sock = sock;
	memcpy(&s->peer, sa, salen);
	s->peerlen = salen;
	s->conn = tsp_server_accept_dgram(d->tsp, sa, salen, &udp_ops, s);
	if (!s->conn) {
		free(s);
		return NULL;
	}
	if (access_attach(d, s->conn, sa) != 0) {
		/* access closed the machine; its gone callback finds no session */
		tsp_conn_set_dgram_arg(s->conn, NULL);
		free(s);
		return NULL;
	}
	b = peer_hash(u, sa);
	s->hnext = u->hash[b];
	u->hash[b] = s;
	u->nsess++;
	u->ctr.sessions++;
	recency_touch(s);
	return s;
}

/* ---- answers ---- */

/* One datagram to `peer`, from `local`'s address when it has one. */
static ssize_t
udp_send(const struct udp_sock *sock, const void *buf, size_t len, const struct sockaddr *peer,
         socklen_t peerlen, const struct udp_local *local)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {
	    .msg_name = (void *)peer, .msg_namelen = peerlen, .msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (!local->family)
		return sendto(sock->fd, buf, len, 0, peer, peerlen);
	memset(&cm, 0, sizeof(cm));
	mh.msg_control = cm.buf;
	c = (struct cmsghdr *)cm.buf;
	if (local->family == AF_INET6) {
		mh.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
		memcpy(CMSG_DATA(c), &local->v6, sizeof(local->v6));
	} else {
		mh.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
		memcpy(CMSG_DATA(c), &local->v4, sizeof(local->v4));
	}
	return sendmsg(sock->fd, &mh, 0);
}

static void
send_answer(struct udp_sess *s, const char *msg, size_t len)
{
	uint8_t *a = malloc(TSP_UDP_HDR_LEN + len);

	if (!a)
		return;
	tsp_udp_header(&s->last, a);
	if (len)
		memcpy(a + TSP_UDP_HDR_LEN, msg, len);
	free(s->answer);
	s->answer = a;
	s->answer_len = TSP_UDP_HDR_LEN + len;
	s->open = false;
	if (udp_send(s->sock, a, s->answer_len, (const struct sockaddr *)&s->peer, s->peerlen,
	             &s->local) < 0) {
		s->u->ctr.send_errors++;
		if (log_rl_allow(&s->u->rl))
			log_warn("tsp/udp: sendto");
		return;
	}
	s->u->ctr.answers++;
}

/* Take what the machine wrote, one message per write it made on its own. */
static void
collect(struct udp_sess *s)
{
	for (unsigned n = 0; n < UDP_QUEUE_MAX + 2 && s->conn; n++) {
		struct evbuffer *out = tsp_conn_output(s->conn);
		size_t len = evbuffer_get_length(out);
		struct udp_msg *m;

		if (len == 0)
			return;
		if (s->nqueue == UDP_QUEUE_MAX || len > UDP_DGRAM_MAX - TSP_UDP_HDR_LEN - 40) {
			/* Nobody asks for them: the client is gone or misbehaves. */
			s->u->ctr.queue_drops++;
			evbuffer_drain(out, len);
		} else {
			m = &s->queue[s->nqueue];
			if (!(m->data = malloc(len))) {
				evbuffer_drain(out, len);
				return;
			}
			evbuffer_remove(out, m->data, len);
			m->len = len;
			s->nqueue++;
		}
		tsp_conn_output_taken(s->conn);
	}
}

/* Answer the open request, if there is something to answer it with. */
static void
answer(struct udp_sess *s)
{
	struct udp_msg m;

	if (!s->open)
		return;
	if (s->nqueue > 0) {
		m = s->queue[0];
		memmove(&s->queue[0], &s->queue[1], --s->nqueue * sizeof(s->queue[0]));
		send_answer(s, m.data, m.len);
		free(m.data);
		return;
	}
	if (!s->conn || tsp_conn_closing(s->conn)) {
		/* Ended without a word (over a limit, a bad line): a drop, no answer. */
		s->open = false;
		return;
	}
	if (tsp_conn_awaiting(s->conn))
		return; /* the application answers later: on_output */
	send_answer(s, NULL, 0);
}

static void
on_output(struct tsp_conn *c, void *arg)
{
	struct udp_sess *s = arg;

	if (!s)
		return;
	collect(s);
	answer(s);
}

static void
on_gone(struct tsp_conn *c, void *arg)
{
	struct udp_sess *s = arg;

	if (s && s->conn == c) {
		/* What it wrote last (a 300 before it closed) is still owed. */
		collect(s);
		answer(s);
		s->conn = NULL;
	}
}

static const struct tsp_dgram_ops udp_ops = {.output = on_output, .gone = on_gone};

/* ---- datagrams ---- */

/* 28-bit serial arithmetic: is `a` before `b`? */
static bool
seq_before(uint32_t a, uint32_t b)
{
	return a != b && ((b - a) & 0x0fffffffu) < 0x08000000u;
}

static bool
is_version(const char *msg, size_t len)
{
	return len >= 8 && strncasecmp(msg, "VERSION=", 8) == 0;
}

static void
on_datagram(struct udp_sock *sock, const uint8_t *buf, size_t n, const struct sockaddr *sa,
            socklen_t salen, const struct udp_local *local)
{
	struct tsp_udp *u = sock->u;
	struct tsp_udp_hdr h;
	const char *msg;
	size_t len;
	struct udp_sess *s;

	u->ctr.datagrams++;
	if (tsp_udp_parse(buf, n, &h, &msg, &len) != 0) {
		u->ctr.drop_header++;
		return;
	}
	s = sess_find(u, sa);
	if (s && s->have_seq && h.seq == s->last.seq) {
		/* A retransmission: the same answer, never the command again. */
		if (s->open || !s->answer) {
			u->ctr.retransmits_open++;
			return;
		}
		u->ctr.retransmits++;
		recency_touch(s);
		/* The same message; the timestamp is this copy's, for the client's RTT. */
		s->last.timestamp = h.timestamp;
		tsp_udp_header(&s->last, s->answer);
		s->local = *local;
		if (udp_send(sock, s->answer, s->answer_len, sa, salen, local) < 0)
			u->ctr.send_errors++;
		return;
	}
	if (s && s->have_seq && seq_before(h.seq, s->last.seq) && !is_version(msg, len)) {
		u->ctr.drop_stale++;
		return;
	}
	if (s && !s->conn && !is_version(msg, len)) {
		/* Its session ended (300, a time-out): only a new VERSION starts another. */
		u->ctr.drop_no_session++;
		return;
	}
	if (s && is_version(msg, len) && s->have_seq) {
		/* The client started over (tspc begins every session at 0xF0). */
		sess_free(s);
		s = NULL;
	}
	if (!s) {
		if (!is_version(msg, len)) {
			u->ctr.drop_no_session++;
			return;
		}
		if (!(s = sess_new(u, sock, sa, salen)))
			return;
	}
	recency_touch(s);
	s->local = *local;
	s->have_seq = true;
	s->last = h;
	s->open = true;
	/* Over the TCP limits (line, Content-length): the machine closes it. */
	if (s->conn && tsp_conn_input(s->conn, msg, len) == -EMSGSIZE)
		u->ctr.drop_too_long++;
	collect(s);
	answer(s);
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct udp_sock *sock = arg;
	static uint8_t buf[UDP_DGRAM_MAX];

	(void)what;
	/* A bounded batch per wake-up; the loop comes back for the rest. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
			struct cmsghdr align;
		} cm;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_name = &ss,
		                    .msg_namelen = sizeof(ss),
		                    .msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = cm.buf,
		                    .msg_controllen = sizeof(cm.buf)};
		struct udp_local local = {0};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (n < 0)
			return;
		if (ss.ss_family != AF_INET6 && ss.ss_family != AF_INET)
			continue;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); sock->wildcard && c;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				local.family = AF_INET6;
				memcpy(&local.v6, CMSG_DATA(c), sizeof(local.v6));
				/* The interface matters for a link-local source only. */
				if (!IN6_IS_ADDR_LINKLOCAL(&local.v6.ipi6_addr))
					local.v6.ipi6_ifindex = 0;
			} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				local.family = AF_INET;
				memcpy(&local.v4, CMSG_DATA(c), sizeof(local.v4));
				/* From the local address it arrived at (ipi_spec_dst), any interface. */
				local.v4.ipi_ifindex = 0;
				local.v4.ipi_addr.s_addr = 0;
			}
		}
		on_datagram(sock, buf, (size_t)n, (const struct sockaddr *)&ss, mh.msg_namelen,
		            &local);
	}
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct tsp_udp *u = arg;
	int64_t now = (int64_t)clock_mono_ms();

	(void)fd, (void)what;
	while (u->oldest && now - u->oldest->heard_ms > UDP_LINGER_S * 1000) {
		u->ctr.expired++;
		sess_free(u->oldest);
	}
}

static bool
listen_is_wildcard(const struct dstmd_listen *ln)
{
	if (ln->addr.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)&ln->addr)->sin6_addr);
	return ((const struct sockaddr_in *)&ln->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
}

int
tsp_udp_init(struct dstmd *d)
{
	struct tsp_udp *u = calloc(1, sizeof(*u));
	struct timeval tv = {.tv_sec = UDP_SWEEP_S, .tv_usec = 0};
	char a[ADDR_STRLEN];

	if (!u)
		return -ENOMEM;
	d->udp = u;
	u->d = d;
	u->rl.burst = 10;
	if (getrandom(&u->seed, sizeof(u->seed), 0) != sizeof(u->seed))
		u->seed = (uint32_t)clock_mono_ms();
	u->hash = calloc(UDP_BUCKETS, sizeof(*u->hash));
	u->socks = calloc(d->cfg->nlistens, sizeof(*u->socks));
	u->sweep = event_new(d->base, -1, EV_PERSIST, on_sweep, u);
	if (!u->hash || !u->socks || !u->sweep)
		return -ENOMEM;
	event_add(u->sweep, &tv);
	for (size_t i = 0; i < d->cfg->nlistens; i++) {
		const struct dstmd_listen *ln = &d->cfg->listens[i];
		struct udp_sock *us = &u->socks[u->nsocks];
		int one = 1, fd;

		if (ln->tls)
			continue; /* RFC 5572 has no TSP over DTLS; TLS stays on TCP */
		fd = socket(ln->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ln->addr.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&ln->addr, ln->len) < 0) {
			int e = errno;

			log_warn("cannot listen on UDP %s",
			         addr_fmt_sockaddr((const struct sockaddr *)&ln->addr, a));
			close(fd);
			return -e;
		}
		us->u = u;
		us->fd = fd;
		us->wildcard = listen_is_wildcard(ln);
		if (us->wildcard) {
			/* Answers leave from the address each datagram was sent to. */
			if (ln->addr.ss_family == AF_INET6)
				(void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one,
				                 sizeof(one));
			else
				(void)setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
		}
		us->ev = event_new(d->base, fd, EV_READ | EV_PERSIST, on_read, us);
		if (!us->ev) {
			close(fd);
			return -ENOMEM;
		}
		event_add(us->ev, NULL);
		u->nsocks++;
		log_info("TSP over UDP on %s",
		         addr_fmt_sockaddr((const struct sockaddr *)&ln->addr, a));
	}
	return 0;
}

void
tsp_udp_fini(struct dstmd *d)
{
	struct tsp_udp *u = d->udp;

	if (!u)
		return;
	while (u->oldest)
		sess_free(u->oldest);
	for (size_t i = 0; i < u->nsocks; i++) {
		event_free(u->socks[i].ev);
		close(u->socks[i].fd);
	}
	if (u->sweep)
		event_free(u->sweep);
	free(u->socks);
	free(u->hash);
	free(u);
	d->udp = NULL;
}

void
tsp_udp_counters(const struct dstmd *d, json_t *o)
{
	const struct tsp_udp *u = d->udp;

	if (!u)
		return;
#define C(f) json_object_set_new(o, "udp_" #f, json_integer((json_int_t)u->ctr.f))
	C(datagrams);
	C(sessions);
	C(answers);
	C(retransmits);
	C(retransmits_open);
	C(drop_header);
	C(drop_too_long);
	C(drop_no_session);
	C(drop_stale);
	C(refused);
	C(evicted);
	C(expired);
	C(queue_drops);
	C(send_errors);
#undef C
	json_object_set_new(o, "udp_sessions_now", json_integer(u->nsess));
}
