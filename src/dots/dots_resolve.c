/*
 * Service resolution through c-ares: S-NAPTR (seed 003 §6, RFC 3958),
 * SRV (RFC 2782), A/AAAA, and DNS-SD in a unicast domain (RFC 6763). Each
 * query waits at most the run's time-out; a failed query backs off before
 * it is retried (dots_backoff: seconds after a time-out, minutes after
 * NXDOMAIN), and a name that failed stays skipped for the rest of its
 * back-off, whichever interface asks again.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "dots/dots_int.h"

#define RES_MAX_FAILED   64 /* remembered (name, type) back-offs */
#define RES_MAX_RR       64
#define RES_MAX_DEPTH    4 /* non-terminal NAPTR hops (RFC 3958 §2.2.2 warns of loops) */
#define RES_MAX_ATTEMPTS 4 /* tries of one query inside one run */

struct res_failed {
	char name[DOTS_NAME_MAX];
	int type;
	struct dots_backoff b;
};

struct dots_resolver {
	ares_channel ch;
	int timeout_ms;
	struct res_failed failed[RES_MAX_FAILED];
	size_t nfailed;
};

struct res_answer {
	bool done;
	int status;
	unsigned char *buf;
	int len;
};

int
dots_dns_server_csv(const char *in, char *out, size_t cap)
{
	char host[128];
	const char *at = strrchr(in, '@');
	size_t hl = at ? (size_t)(at - in) : strlen(in);
	long port = 53;
	struct dots_addr a;

	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, in, hl);
	host[hl] = '\0';
	if (at) {
		char *end;

		port = strtol(at + 1, &end, 10);
		if (*end || end == at + 1 || port < 1 || port > 65535)
			return -EINVAL;
	}
	if (!dots_addr_parse(host, &a))
		return -EINVAL;
	if ((size_t)snprintf(out, cap, a.family == AF_INET6 ? "[%s]:%ld" : "%s:%ld", host, port) >=
	    cap)
		return -EINVAL;
	return 0;
}

int
dots_res_new(const struct dots_opts *o, struct dots_resolver **out)
{
	struct dots_resolver *res = calloc(1, sizeof(*res));
	struct ares_options ao = {0};
	char csv[160];
	int rc;

	if (!res)
		return -ENOMEM;
	res->timeout_ms = o->timeout_ms;
	/* c-ares retries inside one query; our back-off governs retries across queries. */
	ao.flags = ARES_FLAG_NOSEARCH;
	ao.timeout = o->timeout_ms / 2 > 200 ? o->timeout_ms / 2 : 200;
	ao.tries = 1;
	rc = ares_init_options(&res->ch, &ao, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		free(res);
		return -ENOMEM;
	}
	if (o->dns_server[0]) {
		if (dots_dns_server_csv(o->dns_server, csv, sizeof(csv)) < 0 ||
		    ares_set_servers_ports_csv(res->ch, csv) != ARES_SUCCESS) {
			ares_destroy(res->ch);
			free(res);
			return -EINVAL;
		}
	}
	*out = res;
	return 0;
}

void
dots_res_free(struct dots_resolver *res)
{
	if (!res)
		return;
	ares_destroy(res->ch);
	free(res);
}

static void
res_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct res_answer *a = arg;

	(void)timeouts;
	a->done = true;
	a->status = status;
	if (status == ARES_SUCCESS && abuf && alen > 0) {
		a->buf = malloc((size_t)alen);
		if (a->buf) {
			memcpy(a->buf, abuf, (size_t)alen);
			a->len = alen;
		} else {
			a->status = ARES_ENOMEM;
		}
	}
}

/* One query, waited for at most `deadline`; the loop ends at the deadline. */
static void
res_wait(struct dots_resolver *res, struct res_answer *a, int64_t deadline)
{
	while (!a->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(res->ch, socks, ARES_GETSOCK_MAXNUM), n = 0;
		int64_t left = deadline - clock_mono_ms();
		struct timeval tv, *tvp;
		int wait;

		if (left <= 0) {
			ares_cancel(res->ch); /* calls res_cb with ARES_ECANCELLED */
			if (!a->done) {
				a->done = true;
				a->status = ARES_ETIMEOUT;
			} else if (a->status == ARES_ECANCELLED) {
				a->status = ARES_ETIMEOUT;
			}
			return;
		}
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			if (!ARES_GETSOCK_READABLE(bits, i) && !ARES_GETSOCK_WRITABLE(bits, i))
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
			                        (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0));
			pfd[n].revents = 0;
			n++;
		}
		tvp = ares_timeout(res->ch, NULL, &tv);
		wait = (int)(left < 1000 ? left : 1000);
		if (tvp && tvp->tv_sec * 1000 + tvp->tv_usec / 1000 < wait)
			wait = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
		if (poll(pfd, (nfds_t)n, wait) < 0 && errno != EINTR)
			wait = 0;
		if (n == 0) {
			ares_process_fd(res->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++)
			ares_process_fd(res->ch,
			                pfd[i].revents & (POLLIN | POLLERR | POLLHUP)
			                    ? pfd[i].fd
			                    : ARES_SOCKET_BAD,
			                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		/* Time-outs are processed too when nothing was readable. */
		ares_process_fd(res->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
}

static enum dots_fail
res_fail_kind(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return DOTS_FAIL_NONE;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:
		return DOTS_FAIL_TIMEOUT;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
		return DOTS_FAIL_NXDOMAIN;
	case ARES_EBADRESP:
		return DOTS_FAIL_MALFORMED;
	default:
		return DOTS_FAIL_SERVFAIL;
	}
}

static struct res_failed *
res_failed_slot(struct dots_resolver *res, const char *name, int type, bool create)
{
	for (size_t i = 0; i < res->nfailed; i++)
		if (res->failed[i].type == type && dots_name_eq(res->failed[i].name, name))
			return &res->failed[i];
	if (!create)
		return NULL;
	if (res->nfailed == RES_MAX_FAILED)
		return NULL;
	struct res_failed *f = &res->failed[res->nfailed++];

	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	return f;
}

static const char *
type_name(int type)
{
	switch (type) {
	case DOTS_T_A:
		return "A";
	case DOTS_T_AAAA:
		return "AAAA";
	case DOTS_T_PTR:
		return "PTR";
	case DOTS_T_SRV:
		return "SRV";
	case 35:
		return "NAPTR";
	default:
		return "?";
	}
}

/*
 * Query `name`/`type`. Time-outs are retried after their back-off when the
 * run's time allows; any failure leaves the name backing off so that a
 * later pass skips it. 0 with the answer (caller frees), or -ENOENT.
 */
static int
res_query(struct dots_ctx *x, const char *name, int type, unsigned char **buf, int *len)
{
	struct dots_resolver *res = x->res;
	struct res_failed *f = res_failed_slot(res, name, type, false);
	int64_t deadline = clock_mono_ms() + res->timeout_ms * 3 + 1000;

	*buf = NULL;
	*len = 0;
	if (f && !dots_backoff_ready(&f->b, clock_mono_ms())) {
		x->r->c.dns_backoff_skipped++;
		dots_event(x, "%s %s: backing off for %lld ms more after an earlier failure", name,
		           type_name(type), (long long)(f->b.not_before_ms - clock_mono_ms()));
		return -ENOENT;
	}
	for (unsigned attempt = 0; attempt < RES_MAX_ATTEMPTS; attempt++) {
		struct res_answer a = {0};
		enum dots_fail kind;
		int64_t delay, now;

		x->r->c.dns_queries++;
		ares_query(res->ch, name, 1 /* IN */, type, res_cb, &a);
		res_wait(res, &a, clock_mono_ms() + res->timeout_ms);
		kind = res_fail_kind(a.status);
		if (kind == DOTS_FAIL_NONE) {
			if (f)
				dots_backoff_fail(&f->b, DOTS_FAIL_NONE, 0);
			*buf = a.buf;
			*len = a.len;
			return 0;
		}
		/* An unreachable server (ICMP port unreachable) did not answer either. */
		if (a.status == ARES_ETIMEOUT || a.status == ARES_ECONNREFUSED)
			x->r->c.dns_timeouts++;
		else if (a.status == ARES_ENOTFOUND)
			x->r->c.dns_nxdomain++;
		else if (a.status == ARES_ENODATA)
			x->r->c.dns_nodata++;
		else
			x->r->c.dns_servfail++;
		if (!f)
			f = res_failed_slot(res, name, type, true);
		now = clock_mono_ms();
		if (f)
			delay = dots_backoff_fail(&f->b, kind, now);
		else
			delay = 1000;
		dots_event(x, "%s %s: %s; next try not before %lld ms", name, type_name(type),
		           ares_strerror(a.status), (long long)delay);
		/* Only a time-out is worth another try inside this run. */
		if (kind != DOTS_FAIL_TIMEOUT || now + delay + res->timeout_ms > deadline)
			return -ENOENT;
		x->r->c.dns_retries++;
		poll(NULL, 0, (int)delay);
	}
	return -ENOENT;
}

static void
add_server(struct dots_ctx *x, enum dots_transport t, const struct dots_addr *a, uint16_t port,
           const char *ri, const char *via)
{
	struct dots_server s = {.method = x->method, .transport = t, .family = x->family};

	s.addr = *a;
	s.port = port;
	snprintf(s.ifname, sizeof(s.ifname), "%s", x->ifname);
	snprintf(s.ri, sizeof(s.ri), "%s", ri);
	snprintf(s.via, sizeof(s.via), "%s", via);
	if (dots_list_add(&x->r->list, &s) < 0)
		dots_event(x, "server list full: %s dropped", via);
}

/* Addresses of `name` for the pass's family, appended for each transport in `ts`. */
static int
res_addrs(struct dots_ctx *x, const char *name, const char *ri, const char *via, unsigned ts,
          uint16_t port)
{
	int type = x->family == AF_INET6 ? DOTS_T_AAAA : DOTS_T_A;
	unsigned char *buf;
	int len, n = RES_MAX_RR, rc, found = 0;

	if (res_query(x, name, type, &buf, &len) < 0)
		return -ENOENT;
	if (type == DOTS_T_AAAA) {
		struct ares_addr6ttl at[RES_MAX_RR];

		rc = ares_parse_aaaa_reply(buf, len, NULL, at, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
			struct dots_addr a = {.family = AF_INET6};

			memcpy(&a.v6, &at[i].ip6addr, 16);
			if (dots_addr_discard(&a)) {
				x->r->c.dhcp.discarded_address++;
				continue;
			}
			for (unsigned t = 0; t < DOTS_NTRANSPORT; t++)
				if (ts & (1u << t))
					add_server(x, (enum dots_transport)t, &a,
					           port ? port : dots_default_port(t), ri, via);
			found++;
		}
	} else {
		struct ares_addrttl at[RES_MAX_RR];

		rc = ares_parse_a_reply(buf, len, NULL, at, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
			struct dots_addr a = {.family = AF_INET};

			a.v4 = at[i].ipaddr;
			if (dots_addr_discard(&a)) {
				x->r->c.dhcp.discarded_address++;
				continue;
			}
			for (unsigned t = 0; t < DOTS_NTRANSPORT; t++)
				if (ts & (1u << t))
					add_server(x, (enum dots_transport)t, &a,
					           port ? port : dots_default_port(t), ri, via);
			found++;
		}
	}
	free(buf);
	if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
		x->r->c.dns_bad_answer++;
		dots_event(x, "%s %s: malformed answer skipped (%s)", name, type_name(type),
		           ares_strerror(rc));
		return -EBADMSG;
	}
	return found ? 0 : -ENOENT;
}

int
dots_res_name(struct dots_ctx *x, const char *name, const char *ri, const char *via,
              unsigned transports, uint16_t port)
{
	return res_addrs(x, name, ri, via, transports & x->o->transports, port);
}

/* SRV at `name`, ordered (RFC 2782), then the targets' addresses. */
static int
res_srv(struct dots_ctx *x, const char *name, enum dots_transport t, const char *ri)
{
	struct ares_srv_reply *srv = NULL, *p;
	struct dots_srv v[RES_MAX_RR];
	unsigned char *buf;
	size_t n = 0;
	int len, rc, found = 0;

	if (res_query(x, name, DOTS_T_SRV, &buf, &len) < 0)
		return -ENOENT;
	rc = ares_parse_srv_reply(buf, len, &srv);
	free(buf);
	if (rc != ARES_SUCCESS) {
		x->r->c.dns_bad_answer++;
		dots_event(x, "%s SRV: malformed answer skipped (%s)", name, ares_strerror(rc));
		return -EBADMSG;
	}
	for (p = srv; p && n < RES_MAX_RR; p = p->next) {
		v[n].prio = p->priority;
		v[n].weight = p->weight;
		v[n].port = p->port;
		snprintf(v[n].target, sizeof(v[n].target), "%s", p->host[0] ? p->host : ".");
		if (strcmp(v[n].target, ".") != 0 && !dots_name_valid(v[n].target)) {
			x->r->c.dns_bad_answer++;
			continue;
		}
		n++;
	}
	ares_free_data(srv);
	n = dots_srv_order(v, n, dots_rand, NULL);
	if (n == 0)
		dots_event(x, "%s SRV: service not offered", name);
	for (size_t i = 0; i < n; i++) {
		char via[DOTS_NAME_MAX];

		snprintf(via, sizeof(via), "%s", v[i].target);
		if (res_addrs(x, v[i].target, ri[0] ? ri : v[i].target, via, 1u << t, v[i].port) ==
		    0)
			found++;
	}
	return found ? 0 : -ENOENT;
}

static int
res_naptr(struct dots_ctx *x, const char *name, unsigned want, const char *domain, unsigned depth)
{
	struct ares_naptr_reply *nr = NULL, *p;
	struct dots_naptr in[RES_MAX_RR];
	struct dots_naptr_pick pick[RES_MAX_RR];
	unsigned char *buf;
	size_t n = 0, k;
	int len, rc, found = 0;

	if (depth > RES_MAX_DEPTH) {
		dots_event(x, "%s NAPTR: more than %d non-terminal hops, stopped", name,
		           RES_MAX_DEPTH);
		return -ELOOP;
	}
	if (res_query(x, name, 35, &buf, &len) < 0)
		return -ENOENT;
	rc = ares_parse_naptr_reply(buf, len, &nr);
	free(buf);
	if (rc != ARES_SUCCESS) {
		x->r->c.dns_bad_answer++;
		dots_event(x, "%s NAPTR: malformed answer skipped (%s)", name, ares_strerror(rc));
		return -EBADMSG;
	}
	for (p = nr; p && n < RES_MAX_RR; p = p->next) {
		memset(&in[n], 0, sizeof(in[n]));
		in[n].order = p->order;
		in[n].pref = p->preference;
		snprintf(in[n].flags, sizeof(in[n].flags), "%s", (const char *)p->flags);
		snprintf(in[n].service, sizeof(in[n].service), "%s", (const char *)p->service);
		snprintf(in[n].regexp, sizeof(in[n].regexp), "%s", (const char *)p->regexp);
		snprintf(in[n].replacement, sizeof(in[n].replacement), "%s", p->replacement);
		n++;
	}
	ares_free_data(nr);
	k = dots_naptr_select(in, n, want, pick, RES_MAX_RR, &x->r->c.naptr);
	if (k == 0)
		dots_event(x, "%s NAPTR: no DOTS record", name);
	for (size_t i = 0; i < k; i++) {
		if (!dots_name_valid(pick[i].target)) {
			x->r->c.naptr.bad_record++;
			continue;
		}
		switch (pick[i].flag) {
		case 'S':
			rc = res_srv(x, pick[i].target, pick[i].transport, domain);
			break;
		case 'A':
			rc = res_addrs(x, pick[i].target, domain, pick[i].target,
			               1u << pick[i].transport, 0);
			break;
		default:
			rc = res_naptr(x, pick[i].target, 1u << pick[i].transport, domain,
			               depth + 1);
			break;
		}
		if (rc == 0)
			found++;
	}
	return found ? 0 : -ENOENT;
}

int
dots_res_snaptr(struct dots_ctx *x, const char *domain)
{
	/*
	 * RFC 6125 §6.2.1 / RFC 3958 §6: the domain the look-up started from
	 * is the reference identifier, not a name learnt from (insecure) DNS.
	 */
	return res_naptr(x, domain, x->o->transports & 7u, domain, 0);
}

int
dots_res_dnssd(struct dots_ctx *x, const char *domain)
{
	int found = 0;

	for (unsigned t = 0; t < DOTS_NTRANSPORT; t++) {
		if (!(x->o->transports & (1u << t)))
			continue;
		for (unsigned sp = 0; dots_dnssd_service((enum dots_transport)t, sp); sp++) {
			char svc[DOTS_NAME_MAX];
			unsigned char *buf;
			struct dots_rr *rr;
			struct dots_dns_msg h;
			int len;

			snprintf(svc, sizeof(svc), "%s.%s",
			         dots_dnssd_service((enum dots_transport)t, sp), domain);
			if (!dots_name_valid(svc) || res_query(x, svc, DOTS_T_PTR, &buf, &len) < 0)
				continue;
			rr = calloc(RES_MAX_RR, sizeof(*rr));
			if (!rr) {
				free(buf);
				return -ENOMEM;
			}
			if (dots_dns_parse(buf, (size_t)len, &h, rr, RES_MAX_RR, &x->r->c.dns) <
			    0) {
				x->r->c.dns_bad_answer++;
				dots_event(x, "%s PTR: malformed answer skipped", svc);
				h.nrr = 0;
			}
			free(buf);
			/* RFC 6763 §4.1: each PTR names an instance; its SRV says where it is. */
			for (size_t i = 0; i < h.nrr; i++) {
				if (rr[i].type != DOTS_T_PTR || !dots_name_eq(rr[i].name, svc))
					continue;
				if (!dots_name_valid(rr[i].ptr)) {
					/* Instance labels may hold spaces (UTF-8); c-ares queries them fine. */
					dots_event(x, "instance \"%s\" has an unusual name",
					           rr[i].ptr);
				}
				if (res_srv(x, rr[i].ptr, (enum dots_transport)t, "") == 0)
					found++;
				else
					x->r->c.dnssd_incomplete++;
			}
			free(rr);
		}
	}
	return found ? 0 : -ENOENT;
}
