/*
 * The server side of a TSP session over a libevent bufferevent (RFC 5572
 * §4, seed 001 C §4, DESIGN §3.1): VERSION, CAPABILITY, AUTHENTICATE and
 * the SASL steps as lines, then "Content-length" frames both ways.
 * Commands reach the application through a callback; replies leave in the
 * order the commands came, whatever order the application answers in, so
 * each create/delete takes a slot in a FIFO that tsp_conn_reply() fills.
 * Everything a peer can get wrong is counted in tsp_server_stats, logged
 * at a limited rate with its bytes sanitized, and ends or answers the
 * session as DESIGN §3.1 says. A session is freed only from its own
 * deferred event, never inside a callback the application is running.
 *
 * Two dialects share the machine: RFC 5572 clients (VERSION=2.0.x, the
 * deployed ones) end authentication on "200 Success", the DSTM profile
 * (VERSION=1.0, seed 001 C §4.1) on "OK Authentication successful". Both
 * get the deployed clients' framing, which RFC 2831 and 4422 also allow:
 * after DIGEST-MD5's or SCRAM's last server token the status line follows
 * unasked, in a write of its own (those clients read the token with one
 * recv() and then wait for the status; an empty line that a client sends
 * anyway is skipped as padding), and PLAIN's initial response comes
 * unasked, raw or base64.
 *
 * A session runs over a bufferevent (TCP, TLS) or over datagrams: then
 * the transport feeds it messages (tsp_conn_input) and takes its output
 * (tsp_conn_output), and a "write" is one datagram.
 *
 * The line phase (VERSION to the end of SASL) is tsp_auth.c's; the
 * session struct both files share is in tsp_int.h.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/addr.h"
#include "common/log.h"
#include "tsp/tsp_int.h"

/*
 * Deployed DIGEST-MD5 clients read the rspauth line with one recv() and
 * the status line with the next: written back to back over TCP, both may
 * reach such a client's buffer before it reads, and it then waits for a
 * status that it already swallowed. The status follows the rspauth once
 * that has left, after this pause (the client is not waited for).
 */
static const struct timeval status_gap = {.tv_sec = 0, .tv_usec = 100 * 1000};

static void on_gap(evutil_socket_t fd, short what, void *arg);
static void process_input(struct tsp_conn *c);

void
tsp_srv_log(struct tsp_conn *c, const char *what, const void *bytes, size_t n)
{
	char clean[128];

	if (bytes != NULL)
		log_sanitize(clean, sizeof(clean), bytes, n > 60 ? 60 : n);
	log_warnx_rl(&c->srv->rl, "tsp: %s: %s%s%s%s", c->peername, what, bytes ? " \"" : "",
	             bytes ? clean : "", bytes ? "\"" : "");
}

static struct evbuffer *
conn_in(struct tsp_conn *c)
{
	return c->bev ? bufferevent_get_input(c->bev) : c->din;
}

struct evbuffer *
tsp_srv_out(const struct tsp_conn *c)
{
	return c->bev ? bufferevent_get_output(c->bev) : c->dout;
}

/*
 * One sendmsg() of `iov` on a non-blocking socket, now. Returns how many
 * whole iovecs it took; a partly sent one is advanced past what went, so
 * the caller queues iov[result..n) and the stream stays in order. An
 * error takes nothing: the queued bytes meet it again, reported then.
 */
size_t
tsp_sendv_now(evutil_socket_t fd, struct iovec *iov, size_t n)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
	size_t i = 0;
	ssize_t w;

	do
		w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	for (; w > 0 && i < n; i++) {
		if ((size_t)w < iov[i].iov_len) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
			break;
		}
		w -= (ssize_t)iov[i].iov_len;
	}
	return i;
}

/*
 * Output of a stream session: one sendmsg straight to the socket while
 * the bufferevent's output buffer is empty, which is nearly always.
 * Handing the bytes to the bufferevent instead would switch its write
 * interest on and off around every reply: two epoll_ctl calls and an
 * epoll_wait round per message. What the socket does not take at once (a
 * full send buffer, an error) goes to the bufferevent, which sends it in
 * order once the socket is writable (or reports the error through
 * on_event) and then calls tsp_srv_on_write. TLS and datagram sessions queue
 * their output as before: the record layer is libevent's, a datagram
 * session's output is taken by its owner.
 */
static void
conn_send(struct tsp_conn *c, struct iovec *iov, size_t n)
{
	struct evbuffer *out = tsp_srv_out(c);
	evutil_socket_t fd = c->bev ? bufferevent_getfd(c->bev) : -1;
	size_t i = 0;

	if (!c->tls && fd >= 0 && evbuffer_get_length(out) == 0) {
		i = tsp_sendv_now(fd, iov, n);
		if (i == n)
			return;
	}
	for (; i < n; i++)
		evbuffer_add(out, iov[i].iov_base, iov[i].iov_len);
	if (c->bev && !(bufferevent_get_enabled(c->bev) & EV_WRITE))
		bufferevent_enable(c->bev, EV_WRITE);
}

void
tsp_srv_send_line(struct tsp_conn *c, const char *line)
{
	struct iovec iov[2] = {{(void *)line, strlen(line)}, {"\r\n", 2}};

	conn_send(c, iov, 2);
}

void
tsp_srv_send_status(struct tsp_conn *c, int code)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "%d %s", code, tsp_status_text(code));
	tsp_srv_send_line(c, buf);
}

/* ---- the reply FIFO ---- */

static bool
can_read(const struct tsp_conn *c)
{
	return c->state < S_CLOSING && c->state != S_SASL_FINAL && !c->eof &&
	       c->nslots < MAX_PENDING && evbuffer_get_length(tsp_srv_out(c)) < OUT_HIGH;
}

void
tsp_srv_resume(struct tsp_conn *c)
{
	if (c->read_paused && can_read(c)) {
		c->read_paused = false;
		if (c->bev)
			bufferevent_enable(c->bev, EV_READ);
		event_active(c->kick, 0, 0);
	}
}

static void
flush_replies(struct tsp_conn *c)
{
	bool wrote = false;

	while (c->head != NULL && c->head->ready) {
		struct iovec iov[OUT_IOV];
		struct slot *done[OUT_IOV];
		size_t n = 0;

		/* The ready replies at the head leave together, in order. */
		for (struct slot *sl = c->head; sl && sl->ready && n < OUT_IOV; sl = sl->next) {
			iov[n].iov_base = sl->frame;
			iov[n].iov_len = sl->len;
			done[n++] = sl;
		}
		conn_send(c, iov, n);
		wrote = true;
		for (size_t i = 0; i < n; i++) {
			c->head = done[i]->next;
			c->nslots--;
			free(done[i]->frame);
			free(done[i]);
		}
		if (c->head == NULL)
			c->tail = NULL;
	}
	if (c->eof && c->nslots == 0 && c->state == S_COMMAND)
		tsp_srv_close(c, true);
	else
		tsp_srv_resume(c);
	if (wrote && c->dops && c->dops->output)
		c->dops->output(c, c->darg);
}

static struct slot *
slot_push(struct tsp_conn *c)
{
	struct slot *sl = calloc(1, sizeof(*sl));

	if (sl == NULL)
		return NULL;
	if (c->tail)
		c->tail->next = sl;
	else
		c->head = sl;
	c->tail = sl;
	c->nslots++;
	return sl;
}

/* "Content-length: N" CRLF, then "200 Success" CRLF and the XML. */
static int
build_frame(int status, const struct tsp_tunnel *t, char **frame, size_t *len)
{
	char body[TSP_CONTENT_MAX_DEFAULT + 128], *f;
	int n, x = 0, h;
	char hdr[64];

	n = snprintf(body, sizeof(body), "%d %s\r\n", status, tsp_status_text(status));
	if (t != NULL) {
		x = tsp_xml_format(t, body + n, sizeof(body) - (size_t)n);
		if (x < 0)
			return x;
	}
	h = snprintf(hdr, sizeof(hdr), "Content-length: %d\r\n", n + x);
	f = malloc((size_t)(h + n + x));
	if (f == NULL)
		return -ENOMEM;
	memcpy(f, hdr, (size_t)h);
	memcpy(f + h, body, (size_t)(n + x));
	*frame = f;
	*len = (size_t)(h + n + x);
	return 0;
}

static void
reply_now(struct tsp_conn *c, int status)
{
	struct slot *sl = slot_push(c);

	if (sl == NULL || build_frame(status, NULL, &sl->frame, &sl->len) < 0) {
		tsp_srv_close(c, false);
		return;
	}
	sl->ready = true;
	c->srv->st.replies++;
	flush_replies(c);
}

int
tsp_conn_reply(struct tsp_conn *c, int status, const struct tsp_tunnel *t)
{
	struct slot *sl;
	int rc;

	if (c->state != S_COMMAND)
		return -ENOTCONN;
	for (sl = c->head; sl != NULL && sl->ready; sl = sl->next)
		;
	if (sl == NULL)
		return -ENOENT;
	rc = build_frame(status, t, &sl->frame, &sl->len);
	if (rc < 0)
		return rc;
	sl->ready = true;
	c->srv->st.replies++;
	flush_replies(c);
	return 0;
}

int
tsp_conn_send(struct tsp_conn *c, const struct tsp_tunnel *t)
{
	char *frame;
	size_t len;
	int rc;

	if (c->state != S_COMMAND)
		return -ENOTCONN;
	rc = build_frame(TSP_OK, t, &frame, &len);
	if (rc < 0)
		return rc;
	/* The client tells it from a reply by its action (delete/create). */
	conn_send(c, &(struct iovec){frame, len}, 1);
	free(frame);
	if (c->dops && c->dops->output)
		c->dops->output(c, c->darg);
	return 0;
}

/* ---- commands ---- */

static bool
type_supported(const struct tsp_tunnel *t)
{
	/* An absent type is taken as the profile's own; only v4v6 is served. */
	return t->type[0] == '\0' || strcasecmp(t->type, "v4v6") == 0;
}

static void
handle_content(struct tsp_conn *c, const char *data, size_t len)
{
	struct tsp_tunnel t;
	enum tsp_xml_errclass cls;
	char err[128];
	struct slot *sl;

	c->srv->st.commands++;
	if (tsp_xml_parse_ex(data, len, c->srv->lim.xml_depth, &t, err, sizeof(err), &cls) < 0) {
		c->srv->st.bad_xml++;
		tsp_srv_log(c, "bad command:", err, strlen(err));
		reply_now(c, cls == TSP_XML_ERR_IPV6   ? TSP_INVALID_IPV6
		             : cls == TSP_XML_ERR_IPV4 ? TSP_INVALID_IPV4
		                                       : TSP_INVALID_REQUEST);
		return;
	}
	if (t.action != TSP_ACTION_CREATE && t.action != TSP_ACTION_DELETE) {
		/* info/accept/reject acknowledge what we sent: no reply. */
		if (c->srv->cb.command)
			c->srv->cb.command(c, &t, c->srv->arg);
		return;
	}
	if (!type_supported(&t)) {
		tsp_srv_log(c, "unsupported tunnel type", t.type, strlen(t.type));
		reply_now(c, TSP_UNSUPPORTED_TUNNEL);
		return;
	}
	sl = slot_push(c);
	if (sl == NULL) {
		tsp_srv_close(c, false);
		return;
	}
	if (c->srv->cb.command)
		c->srv->cb.command(c, &t, c->srv->arg);
}

static void
process_input(struct tsp_conn *c)
{
	struct evbuffer *in = conn_in(c);
	size_t win = tsp_frame_window(&c->srv->lim);

	for (unsigned n = 0; n < FRAMES_PER_TURN; n++) {
		struct tsp_frame f;
		size_t len, consumed;
		const char *p;

		if (c->state >= S_CLOSING)
			return;
		if (!can_read(c)) {
			c->read_paused = true;
			if (c->bev)
				bufferevent_disable(c->bev, EV_READ);
			return;
		}
		len = evbuffer_get_length(in);
		if (len == 0)
			return;
		if (len > win)
			len = win;
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		if (c->state == S_PLAIN)
			tsp_frame_raw_line(&c->srv->lim, p, len, &f, &consumed);
		else
			tsp_frame_next(&c->srv->lim, c->state == S_COMMAND, p, len, &f, &consumed);
		switch (f.kind) {
		case TSP_FRAME_NEED_MORE:
			return;
		case TSP_FRAME_ERROR:
			if (strstr(f.error, "too long") || strstr(f.error, "limit") ||
			    strstr(f.error, "padding"))
				c->srv->st.too_long++;
			else if (c->state == S_COMMAND)
				c->srv->st.bad_frame++;
			else
				c->srv->st.bad_line++;
			if (c->state == S_PLAIN || c->state == S_SASL) {
				/* Inside authentication: "300" and close, as any failure. */
				tsp_auth_failed(c, f.error);
				return;
			}
			tsp_srv_log(c, f.error, p, len);
			tsp_srv_close(c, false);
			return;
		case TSP_FRAME_LINE:
			tsp_auth_line(c, f.data, f.len);
			break;
		case TSP_FRAME_CONTENT:
			handle_content(c, f.data, f.len);
			break;
		}
		if (c->state == S_DEAD)
			return;
		evbuffer_drain(in, consumed);
	}
	/* More may be waiting: come back after others had their turn. */
	if (evbuffer_get_length(in) > 0)
		event_active(c->kick, 0, 0);
}

/* ---- libevent glue ---- */

static void
conn_free(struct tsp_conn *c)
{
	struct tsp_server *s = c->srv;

	while (c->head) {
		struct slot *sl = c->head;

		c->head = sl->next;
		free(sl->frame);
		free(sl);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->st.sessions_open--;
	tsp_sasl_free(c->sasl);
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->dops && c->dops->gone)
		c->dops->gone(c, c->darg);
	if (c->din)
		evbuffer_free(c->din);
	if (c->dout)
		evbuffer_free(c->dout);
	event_free(c->deadline);
	event_free(c->kick);
	event_free(c->done);
	event_free(c->gap);
	free(c->user);
	free(c);
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct tsp_conn *c = arg;

	(void)fd, (void)what;
	c->state = S_DEAD;
	if (c->srv->cb.closed)
		c->srv->cb.closed(c, c->srv->arg);
	conn_free(c);
}

void
tsp_srv_close(struct tsp_conn *c, bool flush)
{
	struct timeval tv = {.tv_sec = CLOSE_FLUSH_SEC, .tv_usec = 0};

	if (c->state >= S_CLOSING)
		return;
	c->state = S_CLOSING;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->deadline);
	/* A datagram session's output is taken by its transport, not flushed. */
	if (flush && c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		/* tsp_srv_on_write ends it when the output drains, the deadline if not. */
		evtimer_add(c->deadline, &tv);
		return;
	}
	event_active(c->done, 0, 0);
}

void
tsp_conn_close(struct tsp_conn *c)
{
	tsp_srv_close(c, true);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process_input(arg);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	process_input(arg);
}

void
tsp_srv_on_write(struct bufferevent *bev, void *arg)
{
	struct tsp_conn *c = arg;

	(void)bev;
	if (c->state == S_CLOSING)
		event_active(c->done, 0, 0);
	else if (c->state == S_SASL_FINAL && strcmp(c->mech, "DIGEST-MD5") == 0)
		evtimer_add(c->gap, &status_gap);
	else if (c->state == S_SASL_FINAL)
		tsp_auth_final_sent(c);
	else
		tsp_srv_resume(c);
}

static void
on_gap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	tsp_auth_final_sent(arg);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct tsp_conn *c = arg;

	(void)fd, (void)what;
	if (c->state == S_CLOSING) {
		event_active(c->done, 0, 0);
		return;
	}
	c->srv->st.timeouts++;
	tsp_srv_log(c, "handshake timed out", NULL, 0);
	tsp_srv_close(c, false);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct tsp_conn *c = arg;

	(void)bev;
	/* A TLS bufferevent reports the end of its handshake: nothing to do. */
	if (what == BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT) {
		c->srv->st.timeouts++;
		tsp_srv_log(c, "idle timeout", NULL, 0);
		tsp_srv_close(c, false);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state == S_COMMAND && c->nslots > 0) {
		/* A half-closed peer still gets the answers it asked for. */
		c->eof = true;
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (c->state == S_CLOSING) {
		event_active(c->done, 0, 0);
		return;
	}
	tsp_srv_close(c, false);
}

static void
set_nodelay(struct bufferevent *bev)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	int one = 1;

	/* Lines of a handshake are small and sent back to back: no Nagle. */
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct tsp_conn *
conn_new(struct tsp_server *s, const struct sockaddr *peer, socklen_t peerlen)
{
	struct tsp_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->srv = s;
	if (peer != NULL && peerlen > 0 && peerlen <= sizeof(c->peer)) {
		memcpy(&c->peer, peer, peerlen);
		c->peerlen = peerlen;
		addr_fmt_sockaddr(peer, c->peername);
	} else {
		snprintf(c->peername, sizeof(c->peername), "(local)");
	}
	c->deadline = evtimer_new(s->base, on_deadline, c);
	c->kick = event_new(s->base, -1, 0, on_kick, c);
	c->done = event_new(s->base, -1, 0, on_done, c);
	c->gap = evtimer_new(s->base, on_gap, c);
	if (!c->deadline || !c->kick || !c->done || !c->gap) {
		if (c->deadline)
			event_free(c->deadline);
		if (c->kick)
			event_free(c->kick);
		if (c->done)
			event_free(c->done);
		if (c->gap)
			event_free(c->gap);
		free(c);
		return NULL;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.sessions++;
	s->st.sessions_open++;
	return c;
}

struct tsp_conn *
tsp_server_accept(struct tsp_server *s, struct bufferevent *bev, const struct sockaddr *peer,
                  socklen_t peerlen, bool tls)
{
	struct tsp_conn *c = conn_new(s, peer, peerlen);
	struct timeval tv = {.tv_sec = s->handshake_timeout, .tv_usec = 0};

	if (c == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	c->bev = bev;
	c->tls = tls;
	set_nodelay(bev);
	bufferevent_setcb(bev, on_read, tsp_srv_on_write, on_event, c);
	/*
	 * Write interest only once output waits (conn_send): enabled at once,
	 * it would be armed and disarmed with nothing to send. A TLS
	 * bufferevent has its handshake to write: both from the start.
	 */
	bufferevent_enable(bev, tls ? EV_READ | EV_WRITE : EV_READ);
	evtimer_add(c->deadline, &tv);
	return c;
}

/* ---- datagram sessions (TSP over UDP) ---- */

struct tsp_conn *
tsp_server_accept_dgram(struct tsp_server *s, const struct sockaddr *peer, socklen_t peerlen,
                        const struct tsp_dgram_ops *ops, void *arg)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct timeval tv = {.tv_sec = s->handshake_timeout, .tv_usec = 0};
	struct tsp_conn *c;

	if (in == NULL || out == NULL || (c = conn_new(s, peer, peerlen)) == NULL) {
		if (in)
			evbuffer_free(in);
		if (out)
			evbuffer_free(out);
		return NULL;
	}
	c->din = in;
	c->dout = out;
	c->dops = ops;
	c->darg = arg;
	evtimer_add(c->deadline, &tv);
	return c;
}

int
tsp_conn_input(struct tsp_conn *c, const void *msg, size_t len)
{
	if (c->state >= S_CLOSING || c->din == NULL)
		return -ENOTCONN;
	/* Bounded like a TCP session's input: one frame window at most. */
	if (evbuffer_get_length(c->din) + len > tsp_frame_window(&c->srv->lim)) {
		c->srv->st.too_long++;
		tsp_srv_log(c, "datagram input over the frame limit", NULL, 0);
		tsp_srv_close(c, false);
		return -EMSGSIZE;
	}
	evbuffer_add(c->din, msg, len);
	process_input(c);
	return 0;
}

struct evbuffer *
tsp_conn_output(struct tsp_conn *c)
{
	return tsp_srv_out(c);
}

void
tsp_conn_output_taken(struct tsp_conn *c)
{
	if (c->state == S_SASL_FINAL)
		tsp_auth_final_sent(c);
	else
		tsp_srv_resume(c);
}

void
tsp_conn_set_dgram_arg(struct tsp_conn *c, void *arg)
{
	c->darg = arg;
}

bool
tsp_conn_awaiting(const struct tsp_conn *c)
{
	return c->head != NULL && !c->head->ready;
}

bool
tsp_conn_closing(const struct tsp_conn *c)
{
	return c->state >= S_CLOSING;
}

/* ---- the server ---- */

static int
parse_mechs(struct tsp_server *s, const char *list)
{
	char buf[256], *tok, *save = NULL;

	if (list == NULL)
		list = "ANONYMOUS";
	if (strlen(list) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, list);
	for (tok = strtok_r(buf, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		for (char *p = tok; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		if (strcmp(tok, "ANONYMOUS") != 0 && !tsp_sasl_server_supports(s->sasl, tok)) {
			log_warnx("tsp: SASL mechanism %s is not available", tok);
			return -ENOTSUP;
		}
		if (s->nmechs == MAX_MECHS)
			return -E2BIG;
		s->mechs[s->nmechs] = strdup(tok);
		if (s->mechs[s->nmechs] == NULL)
			return -ENOMEM;
		s->nmechs++;
	}
	return s->nmechs ? 0 : -EINVAL;
}

struct tsp_server *
tsp_server_new(struct event_base *base, const struct tsp_server_config *cfg,
               const struct tsp_server_callbacks *cb, void *arg)
{
	struct tsp_server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	tsp_limits_fill(&s->lim, &cfg->limits);
	s->plain_without_tls = cfg->plain_without_tls;
	s->handshake_timeout = cfg->handshake_timeout ? cfg->handshake_timeout : 10;
	s->idle_timeout = cfg->idle_timeout;
	if (cb)
		s->cb = *cb;
	s->arg = arg;
	s->rl.burst = 10;
	s->sasl = tsp_sasl_server_new(cfg->realm, cfg->service, cfg->hostname, cfg->secret,
	                              cfg->secret_arg);
	if (s->sasl == NULL || parse_mechs(s, cfg->mechanisms) < 0) {
		tsp_server_free(s);
		return NULL;
	}
	return s;
}

void
tsp_server_free(struct tsp_server *s)
{
	if (s == NULL)
		return;
	/* Sessions end with their closed callback, as if the peer had left. */
	while (s->conns) {
		struct tsp_conn *c = s->conns;

		c->state = S_DEAD;
		if (s->cb.closed)
			s->cb.closed(c, s->arg);
		conn_free(c);
	}
	for (unsigned i = 0; i < s->nmechs; i++)
		free(s->mechs[i]);
	tsp_sasl_server_free(s->sasl);
	free(s);
}

const struct tsp_server_stats *
tsp_server_stats(const struct tsp_server *s)
{
	return &s->st;
}

void
tsp_conn_set_data(struct tsp_conn *c, void *data)
{
	c->data = data;
}

void *
tsp_conn_data(const struct tsp_conn *c)
{
	return c->data;
}

const char *
tsp_conn_user(const struct tsp_conn *c)
{
	return c->user;
}

const char *
tsp_conn_mechanism(const struct tsp_conn *c)
{
	return c->mech[0] ? c->mech : NULL;
}

const struct sockaddr *
tsp_conn_peer(const struct tsp_conn *c)
{
	return c->peerlen ? (const struct sockaddr *)&c->peer : NULL;
}

bool
tsp_conn_tls(const struct tsp_conn *c)
{
	return c->tls;
}
