/*
 * The links from dstmd to its TEPs: see tepctl.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "dstmd/tepctl.h"

enum op_kind { OP_CREATE, OP_DELETE };

struct op {
	struct op *next;
	enum op_kind kind;
	struct tepctl_binding b;
	tepctl_done_fn done; /* NULL for bulk */
	void *arg;
};

struct opq {
	struct op *head, *tail;
	size_t n;
};

struct link {
	struct tepctl *tc;
	const struct dstmd_tep *tep;
	struct tsp_client *cl;
	bool up;
	int64_t down_since_ms; /* monotonic: when it went down (or was created) */
	struct event *retry;
	unsigned backoff_ms;
	struct opq waiting, bulk, inflight;
	uint64_t connects, failures, ok, refused, repushes;
};

struct tepctl {
	struct event_base *base;
	const struct dstmd_config *cfg;
	tepctl_repush_fn repush;
	void *arg;
	struct link **links; /* each allocated alone: timers and sessions hold it */
	size_t nlinks;
};

static void link_connect(struct link *l);
static void link_pump(struct link *l);

static void
opq_push(struct opq *q, struct op *o)
{
	o->next = NULL;
	if (q->tail)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
	q->n++;
}

static struct op *
opq_pop(struct opq *q)
{
	struct op *o = q->head;

	if (!o)
		return NULL;
	q->head = o->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	return o;
}

/* Put a whole queue in front of another, keeping its order. */
static void
opq_prepend(struct opq *dst, struct opq *src)
{
	if (!src->head)
		return;
	src->tail->next = dst->head;
	if (!dst->tail)
		dst->tail = src->tail;
	dst->head = src->head;
	dst->n += src->n;
	src->head = src->tail = NULL;
	src->n = 0;
}

static struct link *
link_of(const struct tepctl *tc, const struct dstmd_tep *tep)
{
	/* By name: a reload replaces the structures, the links stay. */
	for (size_t i = 0; tep && i < tc->nlinks; i++)
		if (!strcmp(tc->links[i]->tep->name, tep->name))
			return tc->links[i];
	return NULL;
}

static void
op_finish(struct op *o, int status)
{
	if (o->done)
		o->done(o->arg, status);
	free(o);
}

static void
build_tunnel(const struct link *l, const struct op *o, struct tsp_tunnel *t)
{
	memset(t, 0, sizeof(*t));
	t->action = o->kind == OP_CREATE ? TSP_ACTION_CREATE : TSP_ACTION_DELETE;
	snprintf(t->type, sizeof(t->type), "v4v6");
	t->lifetime = o->b.lifetime;
	t->client.present = true;
	t->client.has_v4 = true;
	t->client.v4 = o->b.v4;
	t->client.has_v6 = true;
	t->client.v6 = o->b.v6;
	if (o->b.port_lo || o->b.port_hi) {
		t->client.has_ports = true;
		t->client.port_lo = o->b.port_lo;
		t->client.port_hi = o->b.port_hi;
		t->client.psid_offset = o->b.psid_offset;
		t->client.psid_len = o->b.psid_len;
		t->client.psid = o->b.psid;
	}
	t->server.present = true;
	t->server.has_v4 = true;
	t->server.v4 = l->tep->v4;
	t->server.has_v6 = true;
	t->server.v6 = l->tep->v6;
}

/* Send queued commands while the window has room: waited-for ones first. */
static void
link_pump(struct link *l)
{
	while (l->up && l->inflight.n < TEPCTL_WINDOW) {
		struct op *o = opq_pop(&l->waiting);
		struct tsp_tunnel t;

		if (!o)
			o = opq_pop(&l->bulk);
		if (!o)
			return;
		build_tunnel(l, o, &t);
		if (tsp_client_send(l->cl, &t) != 0) {
			log_warnx("tep %s: cannot send a command", l->tep->name);
			if (o->done)
				op_finish(o, TSP_TEP_CONFIG_ERROR);
			else
				opq_push(&l->bulk, o);
			return;
		}
		opq_push(&l->inflight, o);
	}
}

static void
on_ready(struct tsp_client *c, void *arg)
{
	struct link *l = arg;
	struct opq again = {0};
	struct op *o;

	l->up = true;
	l->backoff_ms = 0;
	l->connects++;
	/* A TEP that vanishes without closing is noticed within about 4 s. */
	if (tsp_client_keepalive(c, TEPCTL_PROBE_S, TEPCTL_PROBES) < 0)
		log_warnx("tep %s: no TCP keepalive: a vanished TEP is noticed late", l->tep->name);
	log_info("tep %s: connected, pushing its live bindings", l->tep->name);
	/* Bulk creates still queued are superseded by the full re-push. */
	while ((o = opq_pop(&l->bulk))) {
		if (o->kind == OP_DELETE)
			opq_push(&again, o);
		else
			free(o);
	}
	opq_prepend(&l->bulk, &again);
	l->repushes++;
	if (l->tc->repush)
		l->tc->repush(l->tc->arg, l->tc, l->tep);
	link_pump(l);
}

static void
on_reply(struct tsp_client *c, int status, const struct tsp_tunnel *t, void *arg)
{
	struct link *l = arg;
	struct op *o = opq_pop(&l->inflight);

	if (!o) {
		log_warnx("tep %s: a reply to no command", l->tep->name);
		return;
	}
	if (status == TSP_OK) {
		l->ok++;
	} else {
		l->refused++;
		log_warnx("tep %s: %s refused with %d", l->tep->name,
		          o->kind == OP_CREATE ? "create" : "delete", status);
	}
	op_finish(o, status == TSP_OK ? TSP_OK : TSP_TEP_CONFIG_ERROR);
	link_pump(l);
}

static void
on_command(struct tsp_client *c, const struct tsp_tunnel *t, void *arg)
{
	struct link *l = arg;

	log_debug("tep %s: ignoring a command from the TEP", l->tep->name);
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	link_connect(arg);
}

static void
on_closed(struct tsp_client *c, int status, const char *why, void *arg)
{
	struct link *l = arg;
	struct op *o;
	struct timeval tv;

	if (l->up)
		log_warnx("tep %s: session lost: %s", l->tep->name, why ? why : "closed");
	else
		log_debug("tep %s: cannot connect: %s", l->tep->name, why ? why : "closed");
	if (l->up)
		l->down_since_ms = clock_mono_ms();
	l->up = false;
	l->cl = NULL;
	l->failures++;
	/* In flight: a waited-for command fails now; bulk ones go again later. */
	struct opq bulk_again = {0};
	while ((o = opq_pop(&l->inflight))) {
		if (o->done)
			op_finish(o, TSP_TEP_CONFIG_ERROR);
		else
			opq_push(&bulk_again, o);
	}
	opq_prepend(&l->bulk, &bulk_again);
	while ((o = opq_pop(&l->waiting)))
		op_finish(o, TSP_TEP_CONFIG_ERROR);
	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : 100;
	if (l->backoff_ms > 1000)
		l->backoff_ms = 1000;
	tv.tv_sec = l->backoff_ms / 1000;
	tv.tv_usec = (l->backoff_ms % 1000) * 1000;
	evtimer_add(l->retry, &tv);
}

static void
link_connect(struct link *l)
{
	static const struct tsp_client_callbacks cb = {
	    .ready = on_ready,
	    .reply = on_reply,
	    .command = on_command,
	    .closed = on_closed,
	};
	struct tsp_client_config cc = {
	    .mechanism = l->tep->ctl_mechanism,
	    .user = l->tep->ctl_user,
	    .secret = l->tep->ctl_secret,
	    .service = "tsp",
	    .timeout = 5,
	};

	l->cl = tsp_client_connect(l->tc->base, (const struct sockaddr *)&l->tep->ctl_addr,
	                           l->tep->ctl_len, NULL, 0, &cc, &cb, l);
	if (!l->cl)
		on_closed(NULL, 0, "cannot start a session", l);
}

/* A link to `tep` (which has a control endpoint), connecting at once. */
static struct link *
link_new(struct tepctl *tc, const struct dstmd_tep *tep)
{
	struct link *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->tc = tc;
	l->tep = tep;
	l->down_since_ms = clock_mono_ms();
	if (!(l->retry = evtimer_new(tc->base, retry_cb, l))) {
		free(l);
		return NULL;
	}
	link_connect(l);
	return l;
}

struct tepctl *
tepctl_new(struct event_base *base, const struct dstmd_config *cfg, tepctl_repush_fn repush,
           void *arg)
{
	struct tepctl *tc = calloc(1, sizeof(*tc));

	if (!tc)
		return NULL;
	tc->base = base;
	tc->cfg = cfg;
	tc->repush = repush;
	tc->arg = arg;
	tc->links = calloc(cfg->nteps ? cfg->nteps : 1, sizeof(*tc->links));
	if (!tc->links) {
		free(tc);
		return NULL;
	}
	for (size_t i = 0; i < cfg->nteps; i++) {
		if (!cfg->teps[i].has_control)
			continue;
		if (!(tc->links[tc->nlinks] = link_new(tc, &cfg->teps[i]))) {
			tepctl_free(tc);
			return NULL;
		}
		tc->nlinks++;
	}
	return tc;
}

static bool
same_control(const struct dstmd_tep *a, const struct dstmd_tep *b)
{
	return a->ctl_len == b->ctl_len && !memcmp(&a->ctl_addr, &b->ctl_addr, a->ctl_len) &&
	       !strcmp(a->ctl_mechanism, b->ctl_mechanism) &&
	       !strcmp(a->ctl_user ? a->ctl_user : "", b->ctl_user ? b->ctl_user : "") &&
	       !strcmp(a->ctl_secret ? a->ctl_secret : "", b->ctl_secret ? b->ctl_secret : "");
}

int
tepctl_reload(struct tepctl *tc, const struct dstmd_config *cfg)
{
	struct link **links = calloc(cfg->nteps + tc->nlinks + 1, sizeof(*links));
	size_t n = 0;

	if (!links)
		return -ENOMEM;
	/* Links of TEPs that stay keep their session and queues. */
	for (size_t i = 0; i < tc->nlinks; i++) {
		struct link *l = tc->links[i];
		const struct dstmd_tep *t = NULL;

		for (size_t j = 0; j < cfg->nteps && !t; j++)
			if (cfg->teps[j].has_control && !strcmp(cfg->teps[j].name, l->tep->name))
				t = &cfg->teps[j];
		if (!t) {
			/* dstmd_reload refuses this; keep the link rather than lose it. */
			links[n++] = l;
			continue;
		}
		if (!same_control(l->tep, t)) {
			log_info("tep %s: control endpoint or credentials changed: reconnecting",
			         t->name);
			l->tep = t;
			if (l->cl) {
				tsp_client_free(l->cl);
				l->cl = NULL;
				on_closed(NULL, 0, "reconfigured", l);
			}
		}
		l->tep = t;
		links[n++] = l;
	}
	for (size_t j = 0; j < cfg->nteps; j++) {
		if (!cfg->teps[j].has_control || link_of(tc, &cfg->teps[j]))
			continue;
		if (!(links[n] = link_new(tc, &cfg->teps[j]))) {
			free(links);
			return -ENOMEM;
		}
		log_info("tep %s: added", cfg->teps[j].name);
		n++;
	}
	free(tc->links);
	tc->links = links;
	tc->nlinks = n;
	tc->cfg = cfg;
	return 0;
}

static void
opq_free(struct opq *q)
{
	struct op *o;

	while ((o = opq_pop(q)))
		free(o);
}

void
tepctl_free(struct tepctl *tc)
{
	if (!tc)
		return;
	for (size_t i = 0; i < tc->nlinks; i++) {
		struct link *l = tc->links[i];

		if (l->cl)
			tsp_client_free(l->cl);
		event_free(l->retry);
		opq_free(&l->waiting);
		opq_free(&l->bulk);
		opq_free(&l->inflight);
		free(l);
	}
	free(tc->links);
	free(tc);
}

static void
enqueue(struct tepctl *tc, const struct dstmd_tep *tep, enum op_kind kind,
        const struct tepctl_binding *b, tepctl_done_fn done, void *arg)
{
	struct link *l = link_of(tc, tep);
	struct op *o;

	if (!l) {
		/* No control endpoint: a learning TEP needs no command. */
		if (done)
			done(arg, TSP_OK);
		return;
	}
	if (done && !l->up) {
		done(arg, TSP_TEP_CONFIG_ERROR);
		return;
	}
	if (!(o = calloc(1, sizeof(*o)))) {
		log_warnx("tep %s: out of memory queueing a command", tep->name);
		if (done)
			done(arg, TSP_TEP_CONFIG_ERROR);
		return;
	}
	o->kind = kind;
	o->b = *b;
	o->done = done;
	o->arg = arg;
	opq_push(done ? &l->waiting : &l->bulk, o);
	link_pump(l);
}

void
tepctl_create(struct tepctl *tc, const struct dstmd_tep *tep, const struct tepctl_binding *b,
              tepctl_done_fn done, void *arg)
{
	enqueue(tc, tep, OP_CREATE, b, done, arg);
}

void
tepctl_delete(struct tepctl *tc, const struct dstmd_tep *tep, const struct tepctl_binding *b)
{
	enqueue(tc, tep, OP_DELETE, b, NULL, NULL);
}

bool
tepctl_up(const struct tepctl *tc, const struct dstmd_tep *tep)
{
	const struct link *l = link_of(tc, tep);

	return !l || l->up;
}

int64_t
tepctl_down_ms(const struct tepctl *tc, const struct dstmd_tep *tep)
{
	const struct link *l = link_of(tc, tep);

	return !l || l->up ? 0 : clock_mono_ms() - l->down_since_ms + 1;
}

json_t *
tepctl_status(const struct tepctl *tc)
{
	json_t *a = json_array();
	char v6[ADDR_STRLEN], v4[ADDR_STRLEN];

	for (size_t i = 0; i < tc->cfg->nteps; i++) {
		const struct dstmd_tep *tep = &tc->cfg->teps[i];
		const struct link *l = link_of(tc, tep);

		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
		              tep->name, "ipv6", addr_fmt_v6(&tep->v6, v6), "ipv4",
		              addr_fmt_v4(tep->v4, v4), "state",
		              !l      ? "learning"
		              : l->up ? "up"
		                      : "down",
		              "connects", (json_int_t)(l ? l->connects : 0), "failures",
		              (json_int_t)(l ? l->failures : 0), "ok", (json_int_t)(l ? l->ok : 0),
		              "refused", (json_int_t)(l ? l->refused : 0), "queued",
		              (json_int_t)(l ? l->waiting.n + l->bulk.n : 0), "inflight",
		              (json_int_t)(l ? l->inflight.n : 0)));
	}
	return a;
}
