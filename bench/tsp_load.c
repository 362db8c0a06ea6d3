/*
 * tsp-load: a TSP load generator (and, with -c 1 -n 1 --print, a simple
 * test client). Each simulated client opens a session, authenticates,
 * sends a <tunnel action="create" type="v4v6"> carrying its own IPv6
 * address (prefix + index), waits for the reply and counts its status;
 * with --renew it then renews with the IPv4 it got. It prints allocations
 * per second, latency percentiles (connect to reply) and the count of each
 * status and of each way a session failed. Figures only, never pass/fail.
 *
 *   tsp-load -s [::1]:3653 -c 100 -n 10000 [-m MECH -u USER -p SECRET]
 *            [--identities N] [--prefix fd00:d57:ffff::] [--renew]
 *            [--keep] [--print] [-V VERSION] [-t TIMEOUT]
 *   tsp-load --serve [::1]:3653 [-m "MECHS"] [-u USER -p SECRET]
 *
 * --serve runs a stand-in server instead: it answers every create at once
 * with 192.0.2.0/16 + a counter, so the TSP layer (framing, XML, SASL,
 * sessions) can be measured without dstmd's pool and store behind it.
 */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "tsp/tsp.h"

#define MAX_CODE 2048

struct load {
	struct event_base *base;
	struct sockaddr_storage srv;
	socklen_t srvlen;
	struct tsp_client_config cfg;
	struct in6_addr prefix;
	unsigned concurrency, total, identities;
	bool renew, keep, print;
	unsigned started, finished, active;
	uint64_t status[MAX_CODE + 1];
	uint64_t ok, fail_auth, fail_version, fail_timeout, fail_transport, fail_other;
	uint64_t deletes;
	unsigned logged; /* failures printed (the first 10) */
	double *lat;     /* ms, one per completed first reply */
	unsigned nlat;
	int64_t t0, t1;
	struct event *sigint;
};

struct sim {
	struct load *L;
	struct tsp_client *c;
	unsigned index;
	int64_t start_ns;
	bool renewed, counted;
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void start_one(struct load *L);

static void
sim_end(struct sim *s)
{
	struct load *L = s->L;

	if (s->c)
		tsp_client_free(s->c);
	free(s);
	L->active--;
	L->finished++;
	if (L->started < L->total)
		start_one(L);
	else if (L->active == 0 && !L->keep)
		event_base_loopbreak(L->base);
	if (L->finished == L->total && L->t1 == 0)
		L->t1 = now_ns();
}

static void
client_addr(const struct load *L, unsigned index, struct in6_addr *a)
{
	uint32_t id = L->identities ? index % L->identities : index;

	*a = L->prefix;
	/* prefix + index, in the low 32 bits */
	for (int i = 0; i < 4; i++)
		a->s6_addr[15 - i] = (uint8_t)(a->s6_addr[15 - i] + ((id >> (8 * i)) & 0xff));
}

static void
on_ready(struct tsp_client *c, void *arg)
{
	struct sim *s = arg;
	struct tsp_tunnel t;

	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_CREATE;
	strcpy(t.type, "v4v6");
	t.client.present = true;
	t.client.has_v6 = true;
	client_addr(s->L, s->index, &t.client.v6);
	if (tsp_client_send(c, &t) < 0) {
		s->L->fail_other++;
		sim_end(s);
	}
}

static void
print_tunnel(const char *what, int status, const struct tsp_tunnel *t)
{
	char xml[8192];

	if (t == NULL || tsp_xml_format(t, xml, sizeof(xml)) < 0)
		xml[0] = '\0';
	printf("%s %d %s\n%s", what, status, tsp_status_text(status), xml);
	fflush(stdout);
}

static void
on_reply(struct tsp_client *c, int status, const struct tsp_tunnel *t, void *arg)
{
	struct sim *s = arg;
	struct load *L = s->L;

	L->status[status > MAX_CODE ? MAX_CODE : status]++;
	if (L->print)
		print_tunnel(s->renewed ? "renew" : "reply", status, t);
	if (!s->counted) {
		s->counted = true;
		if (status == TSP_OK)
			L->ok++;
		if (L->nlat < L->total)
			L->lat[L->nlat++] = (double)(now_ns() - s->start_ns) / 1e6;
		if (L->nlat == L->total && L->t1 == 0)
			L->t1 = now_ns();
	}
	if (L->renew && !s->renewed && status == TSP_OK && t && t->client.has_v4) {
		struct tsp_tunnel r;

		/* seed 001 C §2.2: a renewal carries the IPv4 address held. */
		memset(&r, 0, sizeof(r));
		r.action = TSP_ACTION_CREATE;
		strcpy(r.type, "v4v6");
		r.client.present = true;
		r.client.has_v6 = true;
		client_addr(L, s->index, &r.client.v6);
		r.client.has_v4 = true;
		r.client.v4 = t->client.v4;
		s->renewed = true;
		if (tsp_client_send(c, &r) == 0)
			return;
	}
	if (L->keep) {
		/* The session stays open; the next one starts in its stead. */
		if (L->started < L->total)
			start_one(L);
		return;
	}
	s->c = c;
	sim_end(s);
}

static void
on_command(struct tsp_client *c, const struct tsp_tunnel *t, void *arg)
{
	struct sim *s = arg;
	struct tsp_tunnel ack = *t;

	s->L->deletes++;
	if (s->L->print)
		print_tunnel("server-command", 200, t);
	/* seed 001 C §2.3: the node may acknowledge with "info". */
	ack.action = TSP_ACTION_INFO;
	(void)tsp_client_send(c, &ack);
}

static void
on_closed(struct tsp_client *c, int status, const char *why, void *arg)
{
	struct sim *s = arg;
	struct load *L = s->L;

	if (!s->counted) {
		if (status == TSP_AUTH_FAILED)
			L->fail_auth++;
		else if (status == TSP_UNSUPPORTED_VERSION)
			L->fail_version++;
		else if (why && strstr(why, "timed out"))
			L->fail_timeout++;
		else if (status == 0)
			L->fail_transport++;
		else
			L->fail_other++;
		if (L->print || L->logged++ < 10)
			fprintf(stderr, "tsp-load: session %u: %s (%d)\n", s->index, why, status);
	}
	s->c = c;
	sim_end(s);
}

static void
start_one(struct load *L)
{
	static const struct tsp_client_callbacks cb = {
	    .ready = on_ready, .reply = on_reply, .command = on_command, .closed = on_closed};
	struct sim *s = calloc(1, sizeof(*s));
	struct bufferevent *bev;
	int fd;

	if (s == NULL)
		fatal("calloc");
	s->L = L;
	s->index = L->started++;
	s->start_ns = now_ns();
	L->active++;
	fd = socket(L->srv.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket");
	if (!L->keep) {
		/* Thousands of short sessions: close with RST, no TIME_WAIT. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	bev = bufferevent_socket_new(L->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL ||
	    bufferevent_socket_connect(bev, (struct sockaddr *)&L->srv, (int)L->srvlen) < 0) {
		if (bev)
			bufferevent_free(bev);
		L->fail_transport++;
		s->c = NULL;
		sim_end(s);
		return;
	}
	s->c = tsp_client_new(L->base, bev, &L->cfg, &cb, s);
	if (s->c == NULL) {
		L->fail_other++;
		sim_end(s);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, unsigned n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)ceil(p / 100.0 * n);
	return v[i == 0 ? 0 : i - 1];
}

static void
report(struct load *L)
{
	double secs = (double)((L->t1 ? L->t1 : now_ns()) - L->t0) / 1e9;

	qsort(L->lat, L->nlat, sizeof(double), cmp_double);
	printf("sessions %u (concurrency %u), %u answered in %.3f s\n", L->total, L->concurrency,
	       L->nlat, secs);
	printf("allocations/s %.1f (status 200 per second)\n", secs > 0 ? L->ok / secs : 0.0);
	printf("latency ms (connect to reply): p50 %.3f p90 %.3f p99 %.3f max %.3f\n",
	       pct(L->lat, L->nlat, 50), pct(L->lat, L->nlat, 90), pct(L->lat, L->nlat, 99),
	       L->nlat ? L->lat[L->nlat - 1] : 0.0);
	for (int i = 0; i <= MAX_CODE; i++)
		if (L->status[i])
			printf("status %d %s: %llu\n", i, tsp_status_text(i),
			       (unsigned long long)L->status[i]);
	printf("failed sessions: auth %llu, version %llu, timeout %llu, transport %llu, other "
	       "%llu\n",
	       (unsigned long long)L->fail_auth, (unsigned long long)L->fail_version,
	       (unsigned long long)L->fail_timeout, (unsigned long long)L->fail_transport,
	       (unsigned long long)L->fail_other);
	if (L->deletes)
		printf("server commands (delete/create) received: %llu\n",
		       (unsigned long long)L->deletes);
	fflush(stdout);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct load *L = arg;

	(void)sig, (void)what;
	event_base_loopbreak(L->base);
}

static void
on_signal_base(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	event_base_loopbreak(arg);
}

/* ---- --serve: a stand-in server for measuring the TSP layer alone ---- */

struct serve {
	struct tsp_server *srv;
	const char *user, *secret;
	uint32_t next;
};

static const char *
serve_secret(void *arg, const char *user, const char *realm)
{
	struct serve *S = arg;

	(void)realm;
	return S->user && S->secret && strcmp(user, S->user) == 0 ? S->secret : NULL;
}

static void
serve_command(struct tsp_conn *c, const struct tsp_tunnel *t, void *arg)
{
	struct serve *S = arg;
	struct tsp_tunnel r;

	if (t->action != TSP_ACTION_CREATE) {
		if (t->action == TSP_ACTION_DELETE)
			(void)tsp_conn_reply(c, TSP_OK, NULL);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.action = TSP_ACTION_INFO;
	strcpy(r.type, "v4v6");
	r.lifetime = 3600;
	r.server.present = r.server.has_v4 = r.server.has_v6 = true;
	addr_parse_v4("198.51.100.1", &r.server.v4);
	addr_parse_v6("fd00:d57::2", &r.server.v6);
	r.client = t->client;
	r.client.has_v6ll = false;
	r.client.has_v4 = true;
	r.client.v4 = t->client.has_v4 ? t->client.v4 : (0xc0000000u | (S->next++ & 0xffff));
	(void)tsp_conn_reply(c, TSP_OK, &r);
}

static void
serve_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
             void *arg)
{
	struct serve *S = arg;
	struct bufferevent *bev =
	    bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);

	if (bev != NULL)
		(void)tsp_server_accept(S->srv, bev, sa, (socklen_t)salen, false);
}

static void
serve_stats(evutil_socket_t sig, short what, void *arg)
{
	struct serve *S = arg;
	const struct tsp_server_stats *st = tsp_server_stats(S->srv);

	(void)sig, (void)what;
	printf("sessions %llu open %llu auth_ok %llu auth_failed %llu bad_version %llu bad_line "
	       "%llu bad_frame %llu bad_xml %llu too_long %llu timeouts %llu commands %llu "
	       "replies %llu\n",
	       (unsigned long long)st->sessions, (unsigned long long)st->sessions_open,
	       (unsigned long long)st->auth_ok, (unsigned long long)st->auth_failed,
	       (unsigned long long)st->bad_version, (unsigned long long)st->bad_line,
	       (unsigned long long)st->bad_frame, (unsigned long long)st->bad_xml,
	       (unsigned long long)st->too_long, (unsigned long long)st->timeouts,
	       (unsigned long long)st->commands, (unsigned long long)st->replies);
	fflush(stdout);
}

static int
serve_main(const char *addr, const char *mechs, const char *user, const char *secret)
{
	struct serve S = {.user = user, .secret = secret};
	struct tsp_server_config sc = {0};
	struct tsp_server_callbacks cb = {.command = serve_command};
	struct sockaddr_storage ss;
	socklen_t sl;
	struct event_base *base = event_base_new();
	struct evconnlistener *l;
	struct event *ev_int, *ev_usr;

	if (!addr_parse_endpoint(addr, TSP_PORT, &ss, &sl))
		fatalx("--serve %s: not an address[:port]", addr);
	sc.mechanisms = mechs;
	sc.plain_without_tls = true;
	sc.realm = "dstm";
	sc.service = "tsp";
	sc.hostname = "localhost";
	sc.secret = serve_secret;
	sc.secret_arg = &S;
	S.srv = tsp_server_new(base, &sc, &cb, &S);
	if (S.srv == NULL)
		fatalx("tsp_server_new failed (mechanisms \"%s\")", mechs);
	l = evconnlistener_new_bind(base, serve_accept, &S,
	                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
	                            (struct sockaddr *)&ss, (int)sl);
	if (l == NULL)
		fatal("listen on %s", addr);
	ev_int = evsignal_new(base, SIGINT, on_signal_base, base);
	ev_usr = evsignal_new(base, SIGUSR1, serve_stats, &S);
	event_add(ev_int, NULL);
	event_add(ev_usr, NULL);
	event_base_dispatch(base);
	serve_stats(0, 0, &S);
	evconnlistener_free(l);
	event_free(ev_int);
	event_free(ev_usr);
	tsp_server_free(S.srv);
	event_base_free(base);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: tsp-load -s SERVER[:PORT] [-c CONCURRENCY] [-n TOTAL] [-m MECH] [-u USER]\n"
	        "                [-p SECRET] [-V VERSION] [-t TIMEOUT] [--identities N]\n"
	        "                [--prefix IPV6] [--renew] [--keep] [--print]\n"
	        "       tsp-load --serve ADDR[:PORT] [-m \"MECH ...\"] [-u USER -p SECRET]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"identities", required_argument, NULL, 'I'},
	    {"prefix", required_argument, NULL, 'P'},
	    {"renew", no_argument, NULL, 'R'},
	    {"keep", no_argument, NULL, 'K'},
	    {"print", no_argument, NULL, 'O'},
	    {"serve", required_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	struct load L;
	struct rlimit rl;
	const char *server = "[::1]:3653", *prefix = "fd00:d57:ffff::", *serve = NULL;
	bool mech_given = false;
	int ch;

	memset(&L, 0, sizeof(L));
	L.concurrency = 1;
	L.total = 1;
	L.cfg.mechanism = "ANONYMOUS";
	L.cfg.service = "tsp";
	L.cfg.timeout = 10;
	log_init(1, 0, "tsp-load");
	while ((ch = getopt_long(argc, argv, "s:c:n:m:u:p:V:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'c':
			L.concurrency = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			L.total = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			L.cfg.mechanism = optarg;
			mech_given = true;
			break;
		case 'u':
			L.cfg.user = optarg;
			break;
		case 'p':
			L.cfg.secret = optarg;
			break;
		case 'V':
			L.cfg.version = optarg;
			break;
		case 't':
			L.cfg.timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'I':
			L.identities = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			prefix = optarg;
			break;
		case 'R':
			L.renew = true;
			break;
		case 'K':
			L.keep = true;
			break;
		case 'O':
			L.print = true;
			break;
		case 'S':
			serve = optarg;
			break;
		default:
			usage();
		}
	}
	/* One descriptor per session: lift the soft limit to the hard one. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	if (serve != NULL)
		return serve_main(serve,
		                  mech_given ? L.cfg.mechanism
		                             : "SCRAM-SHA-256 DIGEST-MD5 PLAIN ANONYMOUS",
		                  L.cfg.user, L.cfg.secret);
	if (L.concurrency == 0 || L.total == 0)
		usage();
	if (L.concurrency > L.total)
		L.concurrency = L.total;
	if (!addr_parse_endpoint(server, TSP_PORT, &L.srv, &L.srvlen))
		fatalx("-s %s: not an address[:port] (use [v6]:port)", server);
	if (!addr_parse_v6(prefix, &L.prefix))
		fatalx("--prefix %s: not an IPv6 address", prefix);
	L.cfg.hostname = "localhost";
	/* Its own plain sockets (start_one): each message one sendmsg, no EPOLLOUT round. */
	L.cfg.plain_socket = true;
	signal(SIGPIPE, SIG_IGN);
	L.lat = calloc(L.total, sizeof(double));
	L.base = event_base_new();
	if (L.lat == NULL || L.base == NULL)
		fatalx("out of memory");
	L.sigint = evsignal_new(L.base, SIGINT, on_signal, &L);
	event_add(L.sigint, NULL);
	L.t0 = now_ns();
	for (unsigned i = 0; i < L.concurrency; i++)
		start_one(&L);
	if (L.keep) {
		/* report once every session answered, then hold them open */
		while (L.nlat + L.fail_auth + L.fail_version + L.fail_timeout + L.fail_transport +
		           L.fail_other <
		       L.total) {
			if (event_base_loop(L.base, EVLOOP_ONCE) != 0 ||
			    event_base_got_break(L.base))
				break;
		}
		report(&L);
		if (!event_base_got_break(L.base)) {
			fprintf(stderr, "tsp-load: sessions held open; interrupt to end\n");
			event_base_dispatch(L.base);
		}
	} else {
		event_base_dispatch(L.base);
		report(&L);
	}
	event_free(L.sigint);
	event_base_free(L.base);
	free(L.lat);
	return L.ok == L.total ? 0 : 1;
}
