/*
 * The state of one discovery run that every I/O half of src/dots writes
 * into (dots_int.h): the server list, the bounded event log and the
 * random numbers for transaction ids and SRV weights. Kept apart from
 * the procedure (dots_discover.c) so that the halves it drives (dots_link,
 * dots_resolve) depend on this file only, and the imports point one way:
 * discover -> link, resolve -> run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/clock.h"
#include "dots/dots_int.h"

void
dots_run_init(struct dots_run *r)
{
	memset(r, 0, sizeof(*r));
	dots_list_init(&r->list);
}

void
dots_run_free(struct dots_run *r)
{
	dots_list_free(&r->list);
	free(r->ev);
	memset(r, 0, sizeof(*r));
}

void
dots_event(struct dots_ctx *x, const char *fmt, ...)
{
	struct dots_run *r = x->r;
	struct dots_event *e;
	va_list ap;

	if (r->nev == r->capev) {
		size_t cap = r->capev ? r->capev * 2 : 32;
		struct dots_event *v;

		if (cap > 4096)
			return; /* bounded: a hostile network cannot grow the log forever */
		v = realloc(r->ev, cap * sizeof(*v));
		if (!v)
			return;
		r->ev = v;
		r->capev = cap;
	}
	e = &r->ev[r->nev++];
	snprintf(e->ifname, sizeof(e->ifname), "%s", x->ifname);
	e->family = x->family;
	e->method = x->method;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

uint32_t
dots_rand(void *ctx)
{
	uint32_t v = 0;

	(void)ctx;
	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint32_t)clock_mono_ms() * 2654435761u;
	return v;
}
