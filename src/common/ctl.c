/*
 * The control socket: a libevent listener on a Unix stream socket that
 * reads newline-terminated JSON requests, checks their envelope and
 * passes command and args to the daemon's handler, and the blocking
 * client of the same protocol (see ctl.h and doc/internals.md). Every
 * connection is bounded: one request line may hold CTL_MAX_REQUEST
 * bytes, at most CTL_MAX_CLIENTS connections are served at once and a
 * silent one is closed after CTL_IDLE_TIMEOUT seconds, so a stuck or
 * hostile local client cannot starve the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "common/clock.h"
#include "common/ctl.h"
#include "common/log.h"

struct ctl_conn {
	struct ctl_server *srv;
	struct bufferevent *bev;
	struct ctl_conn *next;
	bool closing; /* close once the output has drained */
};

struct ctl_server {
	struct event_base *base;
	struct evconnlistener *lev;
	char *path;
	ctl_handler_fn fn;
	void *arg;
	struct ctl_conn *conns;
	unsigned nconns;
};

static int
ctl_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

static void
ctl_conn_free(struct ctl_conn *c)
{
	struct ctl_conn **pp;

	for (pp = &c->srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->srv->nconns--;
	bufferevent_free(c->bev);
	free(c);
}

/* Queue one reply line; the envelope reference is consumed. */
static void
ctl_send(struct ctl_conn *c, json_t *reply)
{
	char *text;

	text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (text == NULL) {
		/* Only on allocation failure: the client sees the connection close. */
		c->closing = true;
		return;
	}
	/* JSON_COMPACT escapes newlines inside strings: the reply is one line. */
	evbuffer_add(bufferevent_get_output(c->bev), text, strlen(text));
	evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
	free(text);
}

static void
ctl_send_error(struct ctl_conn *c, const char *msg)
{
	ctl_send(c, json_pack("{s:i, s:b, s:s}", "version", CTL_VERSION, "ok", 0, "error", msg));
}

/* Check the envelope of one request line and run the handler. */
static void
ctl_dispatch(struct ctl_conn *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req, *version, *command, *args, *result;
	char err[256], msg[300];

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL) {
		snprintf(msg, sizeof(msg), "bad JSON at column %d: %s", jerr.column, jerr.text);
		ctl_send_error(c, msg);
		return;
	}
	if (!json_is_object(req)) {
		ctl_send_error(c, "a request is a JSON object");
		goto out;
	}
	version = json_object_get(req, "version");
	if (!json_is_integer(version) || json_integer_value(version) != CTL_VERSION) {
		snprintf(msg, sizeof(msg), "unsupported protocol version (this daemon speaks %d)",
		         CTL_VERSION);
		ctl_send_error(c, msg);
		goto out;
	}
	command = json_object_get(req, "command");
	if (!json_is_string(command) || json_string_length(command) == 0) {
		ctl_send_error(c, "\"command\" must be a non-empty string");
		goto out;
	}
	args = json_object_get(req, "args");
	if (args == NULL || json_is_null(args)) {
		args = json_object();
		json_object_set_new(req, "args", args);
	} else if (!json_is_object(args)) {
		ctl_send_error(c, "\"args\" must be an object");
		goto out;
	}
	err[0] = '\0';
	if (log_getverbose() >= 2) {
		char safe[128];

		log_trace("control: %s",
		          log_sanitize(safe, sizeof(safe), json_string_value(command),
		                       json_string_length(command)));
	}
	result = c->srv->fn(c->srv->arg, json_string_value(command), args, err, sizeof(err));
	if (result == NULL) {
		ctl_send_error(c, err[0] ? err : "command failed");
		goto out;
	}
	ctl_send(c,
	         json_pack("{s:i, s:b, s:o}", "version", CTL_VERSION, "ok", 1, "result", result));
out:
	json_decref(req);
}

static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	/* Bounded by the input watermark: at most CTL_MAX_REQUEST + 1 bytes are buffered. */
	while (!c->closing && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		if (len > CTL_MAX_REQUEST) {
			ctl_send_error(c, "request too long");
			c->closing = true;
		} else if (len > 0) {
			ctl_dispatch(c, line, len);
		}
		free(line);
	}
	if (!c->closing && evbuffer_get_length(in) > CTL_MAX_REQUEST) {
		ctl_send_error(c, "request too long");
		c->closing = true;
	}
	if (c->closing) {
		bufferevent_disable(bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			ctl_conn_free(c);
	}
}

static void
ctl_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;

	if (c->closing)
		ctl_conn_free(c);
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *c = arg;

	if (what & BEV_EVENT_EOF) {
		/* The client is done sending: answer what is complete, then close. */
		c->closing = true;
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			ctl_conn_free(c);
		return;
	}
	/* An error or the idle timeout. */
	ctl_conn_free(c);
}

static void
ctl_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
              void *arg)
{
	struct ctl_server *srv = arg;
	struct ctl_conn *c;
	struct timeval idle = {CTL_IDLE_TIMEOUT, 0};

	if (srv->nconns >= CTL_MAX_CLIENTS) {
		log_warnx("control: %u connections already, refusing another", srv->nconns);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->srv = srv;
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
	bufferevent_setcb(c->bev, ctl_read_cb, ctl_write_cb, ctl_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CTL_MAX_REQUEST + 1);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
ctl_listen_error_cb(struct evconnlistener *lev, void *arg)
{
	/* EMFILE and the like: the listener keeps going; say so once per event. */
	log_warn("control: accept");
}

/* Remove `path` if it is a socket nobody listens on; -EADDRINUSE if somebody does. */
static int
ctl_remove_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(sun->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST; /* never remove what is not ours to remove */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	if (rc == 0 || errno == EAGAIN) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	if (unlink(sun->sun_path) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

struct ctl_server *
ctl_server_new(struct event_base *base, const char *path, ctl_handler_fn fn, void *arg)
{
	struct ctl_server *srv = NULL;
	struct sockaddr_un sun;
	int fd = -1, rc;

	rc = ctl_sockaddr(path, &sun);
	if (rc < 0)
		goto fail;
	rc = ctl_remove_stale(&sun);
	if (rc < 0)
		goto fail;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL || (srv->path = strdup(path)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	/*
	 * libevent writes replies with write(2): a client that hangs up
	 * before its reply would kill the daemon with SIGPIPE. Nobody who
	 * serves a control socket wants that default.
	 */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	srv->base = base;
	srv->fn = fn;
	srv->arg = arg;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		rc = -errno;
		goto fail;
	}
	/* Before listen(): nobody can connect while the mode is still the umask's. */
	if (chmod(path, 0660) == -1 || listen(fd, 16) == -1) {
		rc = -errno;
		unlink(path);
		goto fail;
	}
	srv->lev = evconnlistener_new(base, ctl_accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (srv->lev == NULL) {
		rc = -ENOMEM;
		unlink(path);
		goto fail;
	}
	evconnlistener_set_error_cb(srv->lev, ctl_listen_error_cb);
	return srv;
fail:
	if (fd != -1)
		close(fd);
	if (srv)
		free(srv->path);
	free(srv);
	errno = -rc;
	return NULL;
}

void
ctl_server_free(struct ctl_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->conns)
		ctl_conn_free(srv->conns);
	evconnlistener_free(srv->lev);
	unlink(srv->path);
	free(srv->path);
	free(srv);
}

/* Milliseconds left until `deadline`, at least 0. */
static int
ctl_left(int64_t deadline)
{
	int64_t left = deadline - clock_mono_ms();

	return left > 0 ? (int)left : 0;
}

/* Wait for `events` on fd until the deadline: 0, or -ETIMEDOUT / -errno. */
static int
ctl_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	for (;;) {
		n = poll(&pfd, 1, ctl_left(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int
ctl_send_all(int fd, const char *p, size_t n, int64_t deadline)
{
	ssize_t w;
	int rc;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = ctl_wait(fd, POLLOUT, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Read one line (without its newline) into a malloc'ed buffer. */
static int
ctl_recv_line(int fd, char **out, size_t *outlen, int64_t deadline)
{
	char *buf = NULL, *nbuf, *nl;
	size_t len = 0, cap = 0;
	ssize_t r;
	int rc;

	for (;;) {
		if (cap - len < 4096) {
			if (cap >= CTL_MAX_REPLY) {
				rc = -EMSGSIZE;
				goto fail;
			}
			cap = cap ? cap * 2 : 8192;
			nbuf = realloc(buf, cap + 1);
			if (nbuf == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = nbuf;
		}
		r = recv(fd, buf + len, cap - len, 0);
		if (r > 0) {
			nl = memchr(buf + len, '\n', (size_t)r);
			len += (size_t)r;
			if (nl) {
				*nl = '\0';
				*out = buf;
				*outlen = (size_t)(nl - buf);
				return 0;
			}
			continue;
		}
		if (r == 0) {
			rc = -ECONNRESET; /* closed before a whole reply */
			goto fail;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto fail;
		}
		rc = ctl_wait(fd, POLLIN, deadline);
		if (rc < 0)
			goto fail;
	}
fail:
	free(buf);
	return rc;
}

int
ctl_request(const char *path, const char *command, json_t *args, unsigned timeout_ms,
            json_t **result, char *err, size_t errlen)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	struct sockaddr_un sun;
	json_t *req = NULL, *rep = NULL, *v;
	json_error_t jerr;
	char *text = NULL, *line = NULL;
	size_t len = 0;
	int fd = -1, rc;

	*result = NULL;
	rc = ctl_sockaddr(path, &sun);
	if (rc < 0) {
		snprintf(err, errlen, "%s: socket path too long", path);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	/* A Unix connect completes at once or fails with EAGAIN when the backlog is full. */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EAGAIN && ctl_left(deadline) > 0) {
			usleep(10000);
			continue;
		}
		rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-rc));
		goto out;
	}
	req = json_pack("{s:i, s:s, s:o}", "version", CTL_VERSION, "command", command, "args",
	                args ? json_incref(args) : json_object());
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (text == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cannot encode the request");
		goto out;
	}
	rc = ctl_send_all(fd, text, strlen(text), deadline);
	if (rc == 0)
		rc = ctl_send_all(fd, "\n", 1, deadline);
	if (rc == 0)
		rc = ctl_recv_line(fd, &line, &len, deadline);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path,
		         rc == -ETIMEDOUT ? "no reply in time" : strerror(-rc));
		goto out;
	}
	rep = json_loadb(line, len, 0, &jerr);
	v = rep ? json_object_get(rep, "version") : NULL;
	if (!json_is_object(rep) || !json_is_integer(v) || json_integer_value(v) != CTL_VERSION ||
	    !json_is_boolean(json_object_get(rep, "ok"))) {
		rc = -EPROTO;
		snprintf(err, errlen, "%s: not a version %d control reply", path, CTL_VERSION);
		goto out;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		v = json_object_get(rep, "error");
		snprintf(err, errlen, "%s", json_is_string(v) ? json_string_value(v) : "failed");
		rc = CTL_EREPLY;
		goto out;
	}
	v = json_object_get(rep, "result");
	*result = v ? json_incref(v) : json_null();
	rc = CTL_OK;
out:
	if (fd != -1)
		close(fd);
	json_decref(req);
	json_decref(rep);
	free(text);
	free(line);
	return rc;
}

json_t *
ctl_call(const char *path, const char *command, json_t *args, unsigned timeout_ms, char *err,
         size_t errlen)
{
	json_t *result;

	if (ctl_request(path, command, args, timeout_ms, &result, err, errlen) != CTL_OK)
		return NULL;
	return result;
}
