/*
 * The line phase of a TSP server session (RFC 5572 §4.1, seed 001 C §4.1,
 * DESIGN §3.1): VERSION, the CAPABILITY we answer with, AUTHENTICATE and
 * the SASL steps until the session accepts commands. The session itself,
 * its output and its end are tsp_server.c's; see there for the two
 * dialects' framing after the server's last SASL token.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsp/tsp_int.h"

static bool
mech_offered(const struct tsp_conn *c, const char *mech)
{
	const struct tsp_server *s = c->srv;

	/* PLAIN sends the password: only inside TLS unless told otherwise. */
	if (strcmp(mech, "PLAIN") == 0 && !c->tls && !s->plain_without_tls)
		return false;
	for (unsigned i = 0; i < s->nmechs; i++)
		if (strcmp(s->mechs[i], mech) == 0)
			return true;
	return false;
}

static void
send_capability(struct tsp_conn *c)
{
	char buf[512];
	size_t n;

	/* seed 001 C §4.1: "CAPABILITY TUNNEL=V4V6 AUTH=DIGEST-MD5 AUTH=ANONYMOUS" */
	n = (size_t)snprintf(buf, sizeof(buf), "CAPABILITY TUNNEL=V4V6");
	for (unsigned i = 0; i < c->srv->nmechs; i++)
		if (mech_offered(c, c->srv->mechs[i]) && n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " AUTH=%s",
			                      c->srv->mechs[i]);
	tsp_srv_send_line(c, buf);
}

void
tsp_auth_failed(struct tsp_conn *c, const char *why)
{
	c->srv->st.auth_failed++;
	tsp_srv_log(c, why, c->mech, strlen(c->mech));
	tsp_srv_send_status(c, TSP_AUTH_FAILED); /* RFC 5572: "300 Authentication failed" */
	tsp_srv_close(c, true);
}

static void
auth_succeeded(struct tsp_conn *c)
{
	const char *u = c->sasl ? tsp_sasl_user(c->sasl) : NULL;

	if (u != NULL)
		c->user = strdup(u);
	tsp_sasl_free(c->sasl);
	c->sasl = NULL;
	/* RFC 5572 §4.1 "200 Success"; seed 001 C §4.1 "OK …" for 1.0. */
	tsp_srv_send_line(c, c->v1 ? TSP_AUTH_OK_LINE : "200 Success");
	c->srv->st.auth_ok++;
	c->state = S_COMMAND;
	evtimer_del(c->deadline);
	if (c->srv->idle_timeout && c->bev) {
		struct timeval tv = {.tv_sec = c->srv->idle_timeout, .tv_usec = 0};

		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	if (c->srv->cb.authenticated)
		c->srv->cb.authenticated(c, c->srv->arg);
}

static void
sasl_result(struct tsp_conn *c, enum tsp_sasl_result r, char *out, const char *why)
{
	switch (r) {
	case TSP_SASL_CONTINUE:
		/* A client-first mechanism's empty first challenge is not sent. */
		if (c->state == S_SASL || out[0] != '\0')
			tsp_srv_send_line(c, out);
		c->state = S_SASL;
		break;
	case TSP_SASL_DONE:
		if (out != NULL && out[0] != '\0') {
			/*
			 * rspauth / server-final now; the status line once this
			 * write has left (tsp_srv_on_write, tsp_conn_output_taken).
			 */
			tsp_srv_send_line(c, out);
			c->state = S_SASL_FINAL;
			/* It left at once (conn_send): no write callback will say so. */
			if (c->bev && evbuffer_get_length(tsp_srv_out(c)) == 0)
				tsp_srv_on_write(c->bev, c);
		} else {
			auth_succeeded(c);
		}
		break;
	case TSP_SASL_FAIL:
		tsp_auth_failed(c, why ? why : "SASL failed");
		break;
	}
	free(out);
}

static void
on_authenticate(struct tsp_conn *c, const char *line, size_t len)
{
	enum tsp_sasl_result r;
	const char *why;
	char *out;

	if (tsp_parse_authenticate(line, len, c->mech, sizeof(c->mech)) < 0) {
		c->srv->st.bad_line++;
		tsp_srv_log(c, "expected AUTHENTICATE, got", line, len);
		tsp_srv_close(c, false);
		return;
	}
	if (!mech_offered(c, c->mech)) {
		tsp_auth_failed(c, "mechanism not offered");
		return;
	}
	/* seed 001 C §4.1: ANONYMOUS carries no token and succeeds at once. */
	if (strcmp(c->mech, "ANONYMOUS") == 0) {
		auth_succeeded(c);
		return;
	}
	if (tsp_sasl_server_start(c->srv->sasl, c->mech, &c->sasl) < 0) {
		tsp_auth_failed(c, "mechanism unavailable");
		return;
	}
	if (strcmp(c->mech, "PLAIN") == 0) {
		/* RFC 4616: client-first; deployed clients send it raw. */
		c->state = S_PLAIN;
		return;
	}
	c->state = S_AUTHENTICATE; /* until the first step says otherwise */
	r = tsp_sasl_step(c->sasl, NULL, 0, &out, &why);
	if (r == TSP_SASL_CONTINUE && out[0] == '\0') {
		free(out);
		c->state = S_SASL;
		return;
	}
	sasl_result(c, r, out, why);
}

static void
on_plain(struct tsp_conn *c, const char *line, size_t len)
{
	char raw[2 * TSP_DN_MAX + 8], *out;
	size_t rawlen;
	enum tsp_sasl_result r;
	const char *why;

	if (tsp_plain_initial(line, len, raw, sizeof(raw), &rawlen) < 0) {
		tsp_auth_failed(c, "malformed PLAIN response");
		return;
	}
	if (memchr(line, '\0', len) != NULL)
		c->srv->st.plain_raw++;
	else
		c->srv->st.plain_b64++;
	r = tsp_sasl_step_raw(c->sasl, raw, rawlen, &out, &why);
	explicit_bzero(raw, sizeof(raw));
	c->state = S_SASL;
	sasl_result(c, r, out, why);
}

/* The last server token left: now the status line, in a write of its own. */
void
tsp_auth_final_sent(struct tsp_conn *c)
{
	if (c->state != S_SASL_FINAL)
		return;
	auth_succeeded(c);
	/* Input waited while the status was pending: read it now. */
	if (c->read_paused)
		tsp_srv_resume(c);
	else
		event_active(c->kick, 0, 0);
}

void
tsp_auth_line(struct tsp_conn *c, const char *line, size_t len)
{
	char ver[32];
	enum tsp_sasl_result r;
	const char *why;
	char *out;

	switch (c->state) {
	case S_VERSION:
		if (tsp_parse_version(line, len, ver, sizeof(ver)) < 0) {
			c->srv->st.bad_line++;
			tsp_srv_log(c, "expected VERSION, got", line, len);
			tsp_srv_close(c, false);
			return;
		}
		if (!tsp_version_supported(ver)) {
			/* DESIGN §3.1: 302 and close. */
			c->srv->st.bad_version++;
			tsp_srv_log(c, "unsupported version", ver, strlen(ver));
			tsp_srv_send_status(c, TSP_UNSUPPORTED_VERSION);
			tsp_srv_close(c, true);
			return;
		}
		c->v1 = strcmp(ver, "1.0") == 0;
		send_capability(c);
		c->state = S_AUTHENTICATE;
		return;
	case S_AUTHENTICATE:
		on_authenticate(c, line, len);
		return;
	case S_SASL:
		r = tsp_sasl_step(c->sasl, line, len, &out, &why);
		sasl_result(c, r, out, why);
		return;
	case S_PLAIN:
		on_plain(c, line, len);
		return;
	default:
		return;
	}
}
