/*
 * The ordered list of discovered DOTS servers and the retry back-off.
 * Order follows seed 003 §5 (RFC 8973 §4): a client prefers what the
 * methods found in the order they are listed; inside one method the
 * order that method produced (NAPTR order and preference, SRV priority
 * and weight, option order) is kept as it was appended.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dots/dots.h"

#define DOTS_LIST_MAX 4096 /* far above any sane discovery; bounds memory on hostile input */

void
dots_list_init(struct dots_list *l)
{
	memset(l, 0, sizeof(*l));
}

void
dots_list_free(struct dots_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int
dots_list_add(struct dots_list *l, const struct dots_server *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct dots_server *v;

		if (l->n >= DOTS_LIST_MAX)
			return -ENOSPC;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = *s;
	l->v[l->n].order = (unsigned)l->n; /* insertion rank until dots_list_finish */
	l->n++;
	return 0;
}

static int
server_cmp(const void *a, const void *b)
{
	const struct dots_server *x = a, *y = b;

	if (x->method != y->method)
		return x->method < y->method ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool
same_endpoint(const struct dots_server *a, const struct dots_server *b)
{
	if (a->transport != b->transport || a->port != b->port || a->addr.family != b->addr.family)
		return false;
	if (a->addr.family == AF_INET)
		return a->addr.v4.s_addr == b->addr.v4.s_addr;
	return memcmp(&a->addr.v6, &b->addr.v6, 16) == 0;
}

void
dots_list_finish(struct dots_list *l)
{
	size_t i, j, k;

	if (l->n == 0)
		return; /* qsort() wants a non-NULL array even for no element */
	qsort(l->v, l->n, sizeof(l->v[0]), server_cmp);
	/* Quadratic, but the list is bounded by DOTS_LIST_MAX and is a few dozen in practice. */
	for (i = k = 0; i < l->n; i++) {
		for (j = 0; j < k; j++)
			if (same_endpoint(&l->v[j], &l->v[i]))
				break;
		if (j < k)
			continue;
		l->v[k++] = l->v[i];
	}
	l->n = k;
	for (i = 0; i < l->n; i++)
		l->v[i].order = (unsigned)i + 1;
}

int64_t
dots_backoff_fail(struct dots_backoff *b, enum dots_fail f, int64_t now_ms)
{
	int64_t base, cap, d;
	unsigned shift;

	if (f == DOTS_FAIL_NONE) {
		memset(b, 0, sizeof(*b));
		return 0;
	}
	if (f != b->last)
		b->attempts = 0;
	b->last = f;
	switch (f) {
	case DOTS_FAIL_TIMEOUT:
		base = 1000;
		cap = 64000;
		break;
	case DOTS_FAIL_NXDOMAIN:
		base = 300000;
		cap = 3600000;
		break;
	default:
		base = 5000;
		cap = 300000;
		break;
	}
	shift = b->attempts < 16 ? b->attempts : 16;
	d = base << shift;
	if (d > cap)
		d = cap;
	if (b->attempts < 1000)
		b->attempts++;
	b->not_before_ms = now_ms + d;
	return d;
}

bool
dots_backoff_ready(const struct dots_backoff *b, int64_t now_ms)
{
	return b->last == DOTS_FAIL_NONE || now_ms >= b->not_before_ms;
}
