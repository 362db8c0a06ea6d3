/*
 * The TSP server access module of dstm-client (seed 001 appendix C,
 * shell.h): one session with dstmd (plain TCP or TLS), kept open for the
 * lease because the server uses it to delete; a "create" obtains the
 * address and renews it (a renewal carries the address, C §4.2); a
 * redirect (status >= 1000) replaces the server list; a failed session
 * is retried with jittered exponential back-off. What a reply means for
 * the lease is lease.c's decision.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "client/shell.h"
#include "common/addr.h"
#include "common/clock.h"

#define MAX_REDIRECTS 8 /* in a row, before backing off */

static void session_start(struct client_tsp *a);
static void retry_later(struct client_tsp *a);

void
tsp_access_find_linklocal(struct client_tsp *a)
{
	char ifn[IFNAMSIZ];
	int idx = nl_addr6_ifindex(a->nl, &a->v6);

	if (idx > 0 && if_indextoname((unsigned)idx, ifn) &&
	    nl_addr6_linklocal(a->nl, ifn, &a->v6ll) == 0)
		a->has_v6ll = true;
}

void
tsp_access_end(struct client_tsp *a, const char *why)
{
	if (!a->tsp)
		return;
	log_debug("closing the session: %s", why);
	tsp_client_free(a->tsp);
	a->tsp = NULL;
	a->ready = false;
	a->create_pending = false;
}

static void
send_create(struct client_tsp *a)
{
	const struct client_lease *l = a->lease;
	struct tsp_tunnel t;

	/* The link-local address may still have been tentative at start. */
	if (!a->has_v6ll)
		tsp_access_find_linklocal(a);
	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_CREATE;
	snprintf(t.type, sizeof(t.type), "v4v6");
	/* Seed 001 C §3.2: link-local and global addresses; C §4.2: a
	 * renewal carries the IPv4 address. */
	t.client.present = true;
	t.client.has_v6 = true;
	t.client.v6 = a->v6;
	t.client.has_v6ll = a->has_v6ll;
	t.client.v6ll = a->v6ll;
	if (l->state == LEASE_BOUND) {
		t.client.has_v4 = true;
		t.client.v4 = l->v4;
	}
	if (tsp_client_send(a->tsp, &t) < 0) {
		tsp_access_end(a, "cannot send create");
		retry_later(a);
		return;
	}
	a->create_pending = true;
}

void
tsp_access_request(struct client_tsp *a, enum lease_ask ask)
{
	if (ask == LEASE_ASK_ACQUIRE && evtimer_pending(a->ev_retry, NULL))
		return;
	if (a->ready && !a->create_pending)
		send_create(a);
	else if (!a->tsp)
		session_start(a);
}

static void
apply_info(struct client_tsp *a, const struct tsp_tunnel *t)
{
	struct lease_grant g = {0};

	if (!t || !t->client.has_v4) {
		log_warnx("server's answer lacks the IPv4 address or the TEP");
		a->lease->n.acquire_failures++;
		tsp_access_end(a, "incomplete answer");
		retry_later(a);
		return;
	}
	g.v4 = t->client.v4;
	g.port_lo = t->client.has_ports ? t->client.port_lo : 0;
	g.port_hi = t->client.has_ports ? t->client.port_hi : 0;
	g.has_tep6 = t->server.has_v6;
	g.tep6 = t->server.v6;
	g.has_tep4 = t->server.has_v4;
	g.tep4 = t->server.v4;
	g.lifetime = t->lifetime;
	g.obtained_ms = clock_mono_ms();
	g.timers = true;
	switch (lease_grant(a->lease, &g, g.obtained_ms)) {
	case LEASE_GRANTED:
	case LEASE_RENEWED:
		a->attempt = 0;
		break;
	case LEASE_NO_TEP:
		log_warnx("server's answer lacks the IPv4 address or the TEP");
		tsp_access_end(a, "incomplete answer");
		retry_later(a);
		break;
	case LEASE_NO_INTERFACE:
		retry_later(a);
		break;
	}
}

static void
tsp_ready_cb(struct tsp_client *t, void *arg)
{
	struct client_tsp *a = arg;
	enum lease_state st = a->lease->state;

	a->ready = true;
	a->redirects_in_row = 0;
	log_info("session with %s authenticated", a->server_names[a->server_idx]);
	if (a->releasing)
		return;
	if (st == LEASE_BOUND || st == LEASE_ACQUIRING || a->cfg->mode == CLIENT_ALWAYS_ON ||
	    a->held)
		send_create(a);
}

static void
set_name(char *dst, const char *src)
{
	size_t n = strnlen(src, TSP_DN_MAX - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
redirect(struct client_tsp *a, const struct tsp_tunnel *t)
{
	unsigned n = 0;

	a->n.redirects++;
	/* The brokers replace the list, tried in order; the configured
	 * server comes back last so that a bad list cannot strand us. */
	for (unsigned i = 0; t && i < t->nbrokers && n < CLIENT_MAX_SERVERS - 1; i++) {
		if (!addr_parse_endpoint(t->brokers[i], TSP_PORT, &a->servers[n],
		                         &a->serverlens[n])) {
			log_warnx("redirect: ignoring broker \"%s\"", t->brokers[i]);
			continue;
		}
		set_name(a->server_names[n], t->brokers[i]);
		n++;
	}
	a->servers[n] = a->cfg->server_sa;
	a->serverlens[n] = a->cfg->server_salen;
	set_name(a->server_names[n], a->cfg->server);
	a->nservers = n + 1;
	a->server_idx = 0;
	tsp_access_end(a, "redirected");
	if (++a->redirects_in_row > MAX_REDIRECTS || n == 0) {
		a->redirects_in_row = 0;
		retry_later(a);
		return;
	}
	log_info("redirected to %s", a->server_names[0]);
	session_start(a);
}

static void
tsp_reply_cb(struct tsp_client *t, int status, const struct tsp_tunnel *tun, void *arg)
{
	struct client_tsp *a = arg;

	if (a->releasing) {
		event_active(a->ev_release, 0, 0);
		return;
	}
	a->create_pending = false;
	if (status == TSP_OK) {
		apply_info(a, tun);
		return;
	}
	if (status >= TSP_REDIRECT) {
		redirect(a, tun);
		return;
	}
	log_warnx("server answered %d %s", status, tsp_status_text(status));
	lease_refused(a->lease, status == TSP_ADDRESS_UNAVAILABLE || status == TSP_INVALID_IPV4);
	retry_later(a);
}

static void
tsp_command_cb(struct tsp_client *t, const struct tsp_tunnel *tun, void *arg)
{
	struct client_tsp *a = arg;
	struct tsp_tunnel ack;

	if (tun->action != TSP_ACTION_DELETE ||
	    !lease_deleted(a->lease, tun->client.has_v4 ? tun->client.v4 : 0)) {
		a->n.unknown_commands++;
		return;
	}
	/* Seed 001 C §4.3: acknowledge with an info (C §2, no answer expected). */
	ack = *tun;
	ack.action = TSP_ACTION_INFO;
	tsp_client_send(a->tsp, &ack);
	if (a->cfg->mode == CLIENT_ALWAYS_ON)
		retry_later(a);
}

static void
tsp_closed_cb(struct tsp_client *t, int status, const char *why, void *arg)
{
	struct client_tsp *a = arg;
	enum lease_state st = a->lease->state;

	log_warnx("session with %s ended: %s", a->server_names[a->server_idx],
	          why ? why : "closed");
	/* tsp_client_free() defers the release when called from a callback. */
	tsp_client_free(t);
	a->tsp = NULL;
	a->ready = false;
	a->create_pending = false;
	if (a->releasing) {
		event_active(a->ev_release, 0, 0);
		return;
	}
	a->n.session_failures++;
	if (status == TSP_AUTH_FAILED)
		a->n.auth_failures++;
	if (a->tls && *a->tls_error) {
		/* Nothing was said to a server we could not verify. */
		a->n.tls_refused++;
		log_warnx("TLS: refusing %s: %s", a->server_names[a->server_idx], a->tls_error);
		a->tls_error[0] = '\0';
	}
	/* The lease outlives the session: a new one renews it. */
	if (a->nservers > 1)
		a->server_idx = (a->server_idx + 1) % a->nservers;
	if (st == LEASE_BOUND || st == LEASE_ACQUIRING)
		retry_later(a);
}

/* ---- TSP over TLS ---- */

/* The SHA-256 of the certificate's SubjectPublicKeyInfo (RFC 7469 §2.4). */
static bool
tls_pin_matches(struct client_tsp *a, X509 *cert)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	bool ok = false;

	if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == 32)
		ok = CRYPTO_memcmp(md, a->cfg->tls.pin, 32) == 0;
	OPENSSL_free(der);
	return ok;
}

/*
 * Every certificate of the chain passes here. With a CA the chain and
 * the name must verify; with a pin the server's own key must be the
 * pinned one (with a pin alone, the chain is not judged: the pin is the
 * trust). The first reason to refuse is kept for the log and the counter.
 */
static int
tls_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct client_tsp *a = ssl ? SSL_get_app_data(ssl) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(x);

	if (!a)
		return 0;
	if (!*a->cfg->tls.ca)
		ok = 1;
	if (!ok && !*a->tls_error)
		snprintf(a->tls_error, sizeof(a->tls_error), "%s (depth %d)",
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)), depth);
	if (ok && depth == 0 && a->cfg->tls.has_pin &&
	    !tls_pin_matches(a, X509_STORE_CTX_get_current_cert(x))) {
		ok = 0;
		if (!*a->tls_error)
			snprintf(a->tls_error, sizeof(a->tls_error),
			         "its public key does not match the configured pin");
	}
	return ok;
}

static int
tls_init(struct client_tsp *a)
{
	a->tls = SSL_CTX_new(TLS_client_method());
	if (!a->tls)
		return -ENOMEM;
	/* TLS 1.2 or later only. */
	if (SSL_CTX_set_min_proto_version(a->tls, TLS1_2_VERSION) != 1)
		return -EPROTO;
	if (*a->cfg->tls.ca && SSL_CTX_load_verify_locations(a->tls, a->cfg->tls.ca, NULL) != 1) {
		log_warnx("TLS: cannot load the CA file %s: %s", a->cfg->tls.ca,
		          ERR_reason_error_string(ERR_get_error()));
		return -EINVAL;
	}
	SSL_CTX_set_verify(a->tls, SSL_VERIFY_PEER, tls_verify_cb);
	return 0;
}

/* A TLS connection to the current server, bound to our address; NULL on failure. */
static struct bufferevent *
tls_connect(struct client_tsp *a, const struct sockaddr *sa, socklen_t salen, const char *host)
{
	const char *name = *a->cfg->tls.name ? a->cfg->tls.name : host;
	struct sockaddr_in6 bind6 = {.sin6_family = AF_INET6, .sin6_addr = a->v6};
	struct in6_addr a6;
	struct in_addr a4;
	struct bufferevent *bev;
	SSL *ssl;
	int fd;

	ssl = SSL_new(a->tls);
	if (!ssl)
		return NULL;
	SSL_set_app_data(ssl, a);
	/* With a CA, the certificate must name the server (RFC 6125). */
	if (inet_pton(AF_INET6, name, &a6) == 1 || inet_pton(AF_INET, name, &a4) == 1) {
		if (*a->cfg->tls.ca &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
			goto fail;
	} else {
		SSL_set_tlsext_host_name(ssl, name);
		if (*a->cfg->tls.ca && SSL_set1_host(ssl, name) != 1)
			goto fail;
	}
	a->tls_error[0] = '\0';
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 && bind(fd, (struct sockaddr *)&bind6, sizeof(bind6)) < 0) {
		close(fd);
		goto fail;
	}
	bev = bufferevent_openssl_socket_new(a->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		goto fail;
	}
	if (bufferevent_socket_connect(bev, sa, (int)salen) < 0) {
		bufferevent_free(bev); /* frees ssl and closes fd */
		return NULL;
	}
	return bev;
fail:
	SSL_free(ssl);
	return NULL;
}

static void
session_start(struct client_tsp *a)
{
	static const struct tsp_client_callbacks cb = {
	    .ready = tsp_ready_cb,
	    .reply = tsp_reply_cb,
	    .command = tsp_command_cb,
	    .closed = tsp_closed_cb,
	};
	struct tsp_client_config tc = {
	    .version = "2.0.0",
	    .mechanism = a->cfg->mechanism,
	    .user = a->cfg->user,
	    .secret = a->cfg->secret,
	    .service = "tsp",
	    .timeout = a->cfg->timeout,
	};
	struct sockaddr_in6 bind6 = {.sin6_family = AF_INET6, .sin6_addr = a->v6};
	const struct sockaddr_storage *ss = &a->servers[a->server_idx];
	bool v6 = ss->ss_family == AF_INET6;
	char host[ADDR_STRLEN];

	if (a->tsp)
		return;
	tc.hostname = addr_fmt_sockaddr((const struct sockaddr *)ss, host);
	a->n.sessions++;
	if (a->tls) {
		char ip[ADDR_STRLEN];
		struct bufferevent *bev;

		/* The certificate names the bare address (subjectAltName IP). */
		if (v6)
			addr_fmt_v6(&((const struct sockaddr_in6 *)ss)->sin6_addr, ip);
		else
			addr_fmt_v4(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr), ip);
		bev = tls_connect(a, (const struct sockaddr *)ss, a->serverlens[a->server_idx], ip);

		a->tsp = bev ? tsp_client_new(a->base, bev, &tc, &cb, a) : NULL;
	} else {
		a->tsp = tsp_client_connect(
		    a->base, (const struct sockaddr *)ss, a->serverlens[a->server_idx],
		    v6 ? (struct sockaddr *)&bind6 : NULL, v6 ? sizeof(bind6) : 0, &tc, &cb, a);
	}
	if (!a->tsp) {
		log_warn("connect to %s", a->server_names[a->server_idx]);
		a->n.session_failures++;
		a->server_idx = (a->server_idx + 1) % a->nservers;
		retry_later(a);
	}
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	tsp_access_request(arg, LEASE_ASK_RENEW);
}

static void
retry_later(struct client_tsp *a)
{
	uint32_t rnd = 0;
	unsigned ms;
	struct timeval tv;

	if (evtimer_pending(a->ev_retry, NULL))
		return;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)clock_mono_ms();
	ms = client_backoff_ms(a->attempt++, a->cfg->backoff_max, rnd);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	log_debug("next attempt in %u ms", ms);
	evtimer_add(a->ev_retry, &tv);
}

/*
 * The DSTM profile has no release message of its own: we send a delete
 * of our address (dstmd takes a client's delete as a release), wait a
 * moment for the answer, then main closes and clears the interface.
 */
void
tsp_access_release(struct client_tsp *a)
{
	struct timeval tv = {RELEASE_WAIT_MS / 1000, (RELEASE_WAIT_MS % 1000) * 1000};
	struct tsp_tunnel t;

	a->releasing = true;
	evtimer_del(a->ev_retry);
	if (a->lease->state != LEASE_BOUND || !a->ready) {
		event_active(a->ev_release, 0, 0);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.action = TSP_ACTION_DELETE;
	snprintf(t.type, sizeof(t.type), "v4v6");
	t.client.present = true;
	t.client.has_v6 = true;
	t.client.v6 = a->v6;
	t.client.has_v4 = true;
	t.client.v4 = a->lease->v4;
	if (tsp_client_send(a->tsp, &t) < 0) {
		event_active(a->ev_release, 0, 0);
		return;
	}
	a->releases++;
	evtimer_add(a->ev_release, &tv);
}

const char *
tsp_access_session(const struct client_tsp *a)
{
	return a->ready ? "ready" : a->tsp ? "connecting" : "none";
}

int
tsp_access_init(struct client_tsp *a)
{
	a->servers[0] = a->cfg->server_sa;
	a->serverlens[0] = a->cfg->server_salen;
	set_name(a->server_names[0], a->cfg->server);
	a->nservers = 1;
	a->ev_retry = evtimer_new(a->base, on_retry, a);
	if (!a->ev_retry)
		return -ENOMEM;
	if (a->cfg->tls.enable && tls_init(a) < 0) {
		log_warnx("TLS: cannot set up the client context");
		return -EINVAL;
	}
	return 0;
}

void
tsp_access_free(struct client_tsp *a)
{
	tsp_access_end(a, "exit");
	if (a->ev_retry)
		event_free(a->ev_retry);
	a->ev_retry = NULL;
	SSL_CTX_free(a->tls);
	a->tls = NULL;
}
