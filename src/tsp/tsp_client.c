/*
 * The client side of a TSP session over a libevent bufferevent (RFC 5572
 * §4, seed 001 C §4, DESIGN §3.1), used by dstm-client toward dstmd and by
 * dstmd toward its TEPs: VERSION, CAPABILITY (the mechanism must be
 * offered), AUTHENTICATE and the SASL steps, then commands whose replies
 * come back in order (FIFO). A 200 frame whose action is delete or create
 * is the server's own command, not a reply: a server answers a command
 * with "info" XML or with a bare status line. Every wait is bounded: the
 * handshake and each reply by cfg->timeout.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "tsp/tsp_int.h"

enum cli_state {
	C_CAPABILITY, /* VERSION sent */
	C_AUTH,       /* AUTHENTICATE sent, SASL running */
	C_COMMAND,
	C_DEAD,
};

struct tsp_client {
	struct event_base *base;
	struct bufferevent *bev;
	struct tsp_limits lim;
	char version[16];
	char mech[32];
	char *user, *secret, *service, *hostname;
	unsigned timeout;
	bool plain; /* cfg->plain_socket */
	bool heard; /* the server has sent something: the connection is up */
	struct tsp_client_callbacks cb;
	void *arg;
	enum cli_state state;
	struct tsp_sasl *sasl;
	bool sasl_done;
	struct event *timer;
	unsigned pending; /* commands sent, not yet answered */
	unsigned in_cb;   /* callbacks running (free is deferred) */
	bool processing, freeing;
};

static void client_release(struct tsp_client *c);

/*
 * Output: straight to the socket (cfg->plain_socket) once the server has
 * spoken, so the connection is up, and while the bufferevent holds
 * nothing, which keeps the order; what the socket does not take at once
 * (a full buffer, an error) goes to the bufferevent, which sends it when
 * the socket is writable or reports the error (on_event). As tsp_server.c
 * conn_send does.
 */
static void
client_write(struct tsp_client *c, struct iovec *iov, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	size_t i = 0;

	if (c->plain && c->heard && fd >= 0 && evbuffer_get_length(out) == 0)
		i = tsp_sendv_now(fd, iov, n);
	for (; i < n; i++)
		evbuffer_add(out, iov[i].iov_base, iov[i].iov_len);
}

static void
send_line(struct tsp_client *c, const char *line)
{
	struct iovec iov[2] = {{(void *)line, strlen(line)}, {"\r\n", 2}};

	client_write(c, iov, 2);
}

static void
arm_timer(struct tsp_client *c)
{
	struct timeval tv = {.tv_sec = c->timeout, .tv_usec = 0};

	evtimer_add(c->timer, &tv);
}

static void
drop_bev(struct tsp_client *c)
{
	if (c->bev == NULL)
		return;
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_free(c->bev);
	c->bev = NULL;
}

/* The session is over: tell the application once. */
static void
client_fail(struct tsp_client *c, int status, const char *why)
{
	if (c->state == C_DEAD)
		return;
	c->state = C_DEAD;
	evtimer_del(c->timer);
	tsp_sasl_free(c->sasl);
	c->sasl = NULL;
	if (!c->processing)
		drop_bev(c);
	else if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	if (c->cb.closed) {
		c->in_cb++;
		c->cb.closed(c, status, why, c->arg);
		c->in_cb--;
	}
	/* Freed from the callback outside input processing: release now. */
	if (c->freeing && c->in_cb == 0 && !c->processing)
		client_release(c);
}

static void
sasl_out(struct tsp_client *c, enum tsp_sasl_result r, char *out, const char *why, bool first)
{
	char buf[160];

	switch (r) {
	case TSP_SASL_CONTINUE:
		/* A server-first mechanism has nothing to say first. */
		if (!first || out[0] != '\0')
			send_line(c, out);
		break;
	case TSP_SASL_DONE:
		send_line(c, out);
		c->sasl_done = true;
		break;
	case TSP_SASL_FAIL:
		snprintf(buf, sizeof(buf), "SASL %s failed: %s", c->mech, why ? why : "?");
		free(out);
		client_fail(c, 0, buf);
		return;
	}
	free(out);
}

static void
on_capability(struct tsp_client *c, const char *line, size_t len)
{
	char buf[200], clean[120];
	enum tsp_sasl_result r;
	const char *why;
	char *out;
	int code;

	if (tsp_line_is_status(line, len, &code)) {
		log_sanitize(clean, sizeof(clean), line, len);
		snprintf(buf, sizeof(buf), "server refused VERSION=%s: %s", c->version, clean);
		client_fail(c, code, buf);
		return;
	}
	if (!tsp_capability_offers(line, len, c->mech)) {
		log_sanitize(clean, sizeof(clean), line, len);
		snprintf(buf, sizeof(buf), "server does not offer %s (it said \"%s\")", c->mech,
		         clean);
		client_fail(c, 0, buf);
		return;
	}
	snprintf(buf, sizeof(buf), "AUTHENTICATE %s", c->mech);
	send_line(c, buf);
	c->state = C_AUTH;
	if (strcmp(c->mech, "ANONYMOUS") == 0) {
		c->sasl_done = true; /* seed 001 C §4.1: no token */
		return;
	}
	if (tsp_sasl_client_start(c->mech, c->user, c->secret, c->service, c->hostname, &c->sasl) <
	    0) {
		snprintf(buf, sizeof(buf), "SASL mechanism %s unavailable here", c->mech);
		client_fail(c, 0, buf);
		return;
	}
	r = tsp_sasl_step(c->sasl, NULL, 0, &out, &why);
	sasl_out(c, r, out, why, true);
}

static void
on_auth_line(struct tsp_client *c, const char *line, size_t len)
{
	char buf[200], clean[120];
	enum tsp_sasl_result r;
	const char *why;
	char *out;
	int code;

	if (tsp_line_is_status(line, len, &code)) {
		if (code != TSP_OK) {
			log_sanitize(clean, sizeof(clean), line, len);
			snprintf(buf, sizeof(buf), "authentication refused: %s", clean);
			client_fail(c, code, buf);
			return;
		}
		if (!c->sasl_done) {
			/* Mutual mechanisms: the server must prove itself first. */
			client_fail(c, 0, "server ended authentication before proving itself");
			return;
		}
		tsp_sasl_free(c->sasl);
		c->sasl = NULL;
		c->state = C_COMMAND;
		evtimer_del(c->timer);
		if (c->cb.ready) {
			c->in_cb++;
			c->cb.ready(c, c->arg);
			c->in_cb--;
		}
		return;
	}
	if (c->sasl == NULL || c->sasl_done) {
		client_fail(c, 0, "unexpected SASL token from the server");
		return;
	}
	r = tsp_sasl_step(c->sasl, line, len, &out, &why);
	sasl_out(c, r, out, why, false);
}

static bool
is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static void
on_frame(struct tsp_client *c, const char *data, size_t len)
{
	struct tsp_tunnel t;
	const char *xml;
	size_t xmllen;
	char err[128], buf[200];
	int code;

	if (tsp_split_status(data, len, &code, &xml, &xmllen) < 0) {
		client_fail(c, 0, "server frame without a status line");
		return;
	}
	if (!is_blank(xml, xmllen)) {
		if (tsp_xml_parse(xml, xmllen, c->lim.xml_depth, &t, err, sizeof(err)) < 0) {
			snprintf(buf, sizeof(buf), "bad XML from the server: %s", err);
			client_fail(c, 0, buf);
			return;
		}
		/* tsp_conn_send() frames carry 200; an error status is a reply. */
		if (code == TSP_OK &&
		    (t.action == TSP_ACTION_DELETE || t.action == TSP_ACTION_CREATE)) {
			if (c->cb.command) {
				c->in_cb++;
				c->cb.command(c, &t, c->arg);
				c->in_cb--;
			}
			return;
		}
	}
	if (c->pending == 0) {
		client_fail(c, 0, "reply from the server without a command");
		return;
	}
	c->pending--;
	if (c->pending)
		arm_timer(c);
	else
		evtimer_del(c->timer);
	if (c->cb.reply) {
		c->in_cb++;
		c->cb.reply(c, code, is_blank(xml, xmllen) ? NULL : &t, c->arg);
		c->in_cb--;
	}
}

/* Returns false when `c` was released (freed from a callback). */
static bool
process_input(struct tsp_client *c)
{
	struct evbuffer *in;
	size_t win = tsp_frame_window(&c->lim);

	if (c->bev == NULL)
		return true;
	in = bufferevent_get_input(c->bev);
	c->processing = true;
	/* Bounded: every turn consumes a frame or stops. */
	for (unsigned n = 0; n < 1024 && c->state != C_DEAD && !c->freeing; n++) {
		struct tsp_frame f;
		size_t len = evbuffer_get_length(in), consumed;
		const char *p;
		char buf[160];

		if (len == 0)
			break;
		c->heard = true;
		if (len > win)
			len = win;
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		tsp_frame_next(&c->lim, c->state == C_COMMAND, p, len, &f, &consumed);
		if (f.kind == TSP_FRAME_NEED_MORE)
			break;
		if (f.kind == TSP_FRAME_ERROR) {
			snprintf(buf, sizeof(buf), "bad frame from the server: %s", f.error);
			client_fail(c, 0, buf);
			break;
		}
		if (f.kind == TSP_FRAME_LINE && c->state == C_CAPABILITY)
			on_capability(c, f.data, f.len);
		else if (f.kind == TSP_FRAME_LINE && c->state == C_AUTH)
			on_auth_line(c, f.data, f.len);
		else if (f.kind == TSP_FRAME_CONTENT)
			on_frame(c, f.data, f.len);
		if (c->state != C_DEAD && !c->freeing)
			evbuffer_drain(in, consumed);
	}
	c->processing = false;
	if (c->state == C_DEAD)
		drop_bev(c);
	if (c->freeing && c->in_cb == 0) {
		client_release(c);
		return false;
	}
	return true;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process_input(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct tsp_client *c = arg;
	char buf[160];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	/* Bytes that came with the EOF are read first (a 302 or 300 line). */
	if (!process_input(c) || c->state == C_DEAD)
		return;
	if (what & BEV_EVENT_EOF)
		snprintf(buf, sizeof(buf), "server closed the connection");
	else
		snprintf(buf, sizeof(buf), "connection failed: %s",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	client_fail(c, 0, buf);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tsp_client *c = arg;

	(void)fd, (void)what;
	client_fail(c, 0,
	            c->state == C_COMMAND ? "timed out waiting for a reply"
	                                  : "timed out during the handshake");
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct tsp_client *
tsp_client_new(struct event_base *base, struct bufferevent *bev,
               const struct tsp_client_config *cfg, const struct tsp_client_callbacks *cb,
               void *arg)
{
	struct tsp_client *c = calloc(1, sizeof(*c));
	const char *ver = cfg->version ? cfg->version : "2.0.0";
	const char *mech = cfg->mechanism ? cfg->mechanism : "ANONYMOUS";
	char line[64];
	evutil_socket_t fd;
	int one = 1;

	if (c == NULL || strlen(ver) >= sizeof(c->version) || strlen(mech) >= sizeof(c->mech)) {
		free(c);
		bufferevent_free(bev);
		return NULL;
	}
	c->base = base;
	c->bev = bev;
	tsp_limits_fill(&c->lim, &cfg->limits);
	strcpy(c->version, ver);
	for (size_t i = 0; mech[i]; i++)
		c->mech[i] = (char)(mech[i] >= 'a' && mech[i] <= 'z' ? mech[i] - 32 : mech[i]);
	c->user = dup_or_null(cfg->user);
	c->secret = dup_or_null(cfg->secret);
	c->service = strdup(cfg->service ? cfg->service : "tsp");
	c->hostname = strdup(cfg->hostname ? cfg->hostname : "localhost");
	c->timeout = cfg->timeout ? cfg->timeout : 10;
	c->plain = cfg->plain_socket;
	if (cb)
		c->cb = *cb;
	c->arg = arg;
	c->timer = evtimer_new(base, on_timer, c);
	if (!c->service || !c->hostname || !c->timer) {
		client_release(c);
		return NULL;
	}
	fd = bufferevent_getfd(bev);
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_setcb(bev, on_read, NULL, on_event, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* RFC 5572 §4.1 / seed 001 C §4.1: the client speaks first. */
	snprintf(line, sizeof(line), "VERSION=%s", c->version);
	send_line(c, line);
	c->state = C_CAPABILITY;
	arm_timer(c);
	return c;
}

struct tsp_client *
tsp_client_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                   const struct sockaddr *bind_to, socklen_t bindlen,
                   const struct tsp_client_config *cfg, const struct tsp_client_callbacks *cb,
                   void *arg)
{
	struct bufferevent *bev;
	int fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (bind_to != NULL && bind(fd, bind_to, bindlen) < 0) {
		close(fd);
		return NULL;
	}
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return NULL;
	}
	if (bufferevent_socket_connect(bev, sa, (int)salen) < 0) {
		bufferevent_free(bev);
		return NULL;
	}
	return tsp_client_new(base, bev, cfg, cb, arg);
}

int
tsp_client_send(struct tsp_client *c, const struct tsp_tunnel *t)
{
	char xml[TSP_CONTENT_MAX_DEFAULT], hdr[48];
	int n, h;

	if (c->state != C_COMMAND || c->bev == NULL)
		return -ENOTCONN;
	n = tsp_xml_format(t, xml, sizeof(xml));
	if (n < 0)
		return n;
	h = snprintf(hdr, sizeof(hdr), "Content-length: %d\r\n", n);
	client_write(c, (struct iovec[2]){{hdr, (size_t)h}, {xml, (size_t)n}}, 2);
	/* info/accept/reject acknowledge the server's command: no reply. */
	if (t->action != TSP_ACTION_CREATE && t->action != TSP_ACTION_DELETE)
		return 0;
	if (c->pending++ == 0)
		arm_timer(c);
	return 0;
}

static void
client_release(struct tsp_client *c)
{
	drop_bev(c);
	if (c->timer)
		event_free(c->timer);
	tsp_sasl_free(c->sasl);
	free(c->user);
	free(c->secret);
	free(c->service);
	free(c->hostname);
	free(c);
}

void
tsp_client_free(struct tsp_client *c)
{
	if (c == NULL)
		return;
	c->cb.closed = NULL;
	c->cb.reply = NULL;
	c->cb.command = NULL;
	c->cb.ready = NULL;
	if (c->in_cb > 0 || c->processing) {
		c->freeing = true;
		if (c->bev)
			bufferevent_disable(c->bev, EV_READ);
		evtimer_del(c->timer);
		return;
	}
	client_release(c);
}

int
tsp_client_local(const struct tsp_client *c, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	evutil_socket_t fd;

	if (c->bev == NULL)
		return -ENOTCONN;
	fd = bufferevent_getfd(c->bev);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)ss, &len) < 0)
		return -errno;
	return 0;
}

int
tsp_client_keepalive(struct tsp_client *c, unsigned interval_s, unsigned count)
{
	int on = 1, idle = (int)interval_s, cnt = (int)count;
	unsigned user_ms = interval_s * (count + 1) * 1000;
	evutil_socket_t fd;

	if (c->bev == NULL || (fd = bufferevent_getfd(c->bev)) < 0)
		return -ENOTCONN;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms)) < 0)
		return -errno;
	return 0;
}
