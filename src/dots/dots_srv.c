/*
 * Service resolution rules: which NAPTR records a DOTS client follows
 * (S-NAPTR, RFC 3958 §2.2; seed 003 §6, RFC 8973 §5.2) and the order in
 * which it tries SRV targets (RFC 2782, "Usage rules"). Pure functions:
 * the randomness of the SRV weights comes from the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dots/dots.h"

/*
 * RFC 3958 §2.2: service field "App-Service:proto1:proto2...". Returns a
 * bit mask of the transports named, 0 if the service is not DOTS.
 */
static unsigned
service_tags(const char *svc)
{
	const char *p = strchr(svc, ':');
	unsigned mask = 0;
	char tag[64];

	if (!p || (size_t)(p - svc) != 4 || strncasecmp(svc, "DOTS", 4) != 0)
		return 0;
	/* Bounded by the field's length: each turn consumes one tag. */
	while (p && *p == ':') {
		const char *q = strchr(p + 1, ':');
		size_t n = q ? (size_t)(q - p - 1) : strlen(p + 1);
		enum dots_transport t;

		if (n > 0 && n < sizeof(tag)) {
			memcpy(tag, p + 1, n);
			tag[n] = '\0';
			/* Call Home has its own service tag in RFC 8973; here only the DOTS ones. */
			if (dots_transport_parse(tag, &t) && t <= DOTS_DATA_TCP)
				mask |= 1u << t;
		}
		p = q;
	}
	return mask;
}

static int
pick_cmp(const void *a, const void *b)
{
	const struct dots_naptr_pick *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->transport < y->transport ? -1 : x->transport > y->transport;
}

size_t
dots_naptr_select(const struct dots_naptr *in, size_t n, unsigned want, struct dots_naptr_pick *out,
                  size_t cap, struct dots_naptr_stats *st)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct dots_naptr *r = &in[i];
		unsigned tags = service_tags(r->service) & want;
		char flag;

		if (!tags) {
			st->other_service++;
			continue;
		}
		/* RFC 3958 §2.2: S-NAPTR uses no regexp; flags are "S", "A" or empty. */
		if (r->regexp[0] != '\0' || r->replacement[0] == '\0' ||
		    strcmp(r->replacement, ".") == 0) {
			st->bad_record++;
			continue;
		}
		if (r->flags[0] == '\0')
			flag = 0;
		else if (r->flags[1] == '\0' && (r->flags[0] == 'S' || r->flags[0] == 's'))
			flag = 'S';
		else if (r->flags[1] == '\0' && (r->flags[0] == 'A' || r->flags[0] == 'a'))
			flag = 'A';
		else {
			st->bad_record++;
			continue;
		}
		for (unsigned t = 0; t <= DOTS_DATA_TCP && k < cap; t++) {
			if (!(tags & (1u << t)))
				continue;
			out[k].transport = (enum dots_transport)t;
			out[k].flag = flag;
			out[k].order = r->order;
			out[k].pref = r->pref;
			snprintf(out[k].target, sizeof(out[k].target), "%s", r->replacement);
			k++;
		}
	}
	/* RFC 3403 §4.1: lowest order first, then lowest preference. */
	qsort(out, k, sizeof(out[0]), pick_cmp);
	return k;
}

static int
prio_cmp(const void *a, const void *b)
{
	const struct dots_srv *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	/* RFC 2782: zero-weight records go first in the list the draw runs over. */
	if ((x->weight == 0) != (y->weight == 0))
		return x->weight == 0 ? -1 : 1;
	return 0;
}

size_t
dots_srv_order(struct dots_srv *v, size_t n, uint32_t (*rnd)(void *), void *rctx)
{
	size_t i, j, start;

	/* RFC 2782: a single "." target says the service is decidedly not available. */
	if (n == 1 && (strcmp(v[0].target, ".") == 0 || v[0].target[0] == '\0'))
		return 0;
	/* Drop "." targets among others: they cannot be connected to. */
	for (i = j = 0; i < n; i++)
		if (strcmp(v[i].target, ".") != 0 && v[i].target[0] != '\0')
			v[j++] = v[i];
	n = j;
	/*
	 * qsort is not stable, so insertion sort keeps the answer's order
	 * among equals (n is small: a DNS answer holds a few dozen at most).
	 */
	for (i = 1; i < n; i++) {
		struct dots_srv t = v[i];

		for (j = i; j > 0 && prio_cmp(&v[j - 1], &t) > 0; j--)
			v[j] = v[j - 1];
		v[j] = t;
	}
	for (start = 0; start < n;) {
		size_t end = start;

		while (end < n && v[end].prio == v[start].prio)
			end++;
		/* Weighted draw without replacement over v[start..end). */
		for (i = start; i + 1 < end; i++) {
			uint64_t total = 0, run = 0, r;
			size_t pick = i;

			for (j = i; j < end; j++)
				total += v[j].weight;
			r = total ? (uint64_t)rnd(rctx) % (total + 1) : 0;
			for (j = i; j < end; j++) {
				run += v[j].weight;
				if (run >= r) {
					pick = j;
					break;
				}
			}
			if (pick != i) {
				struct dots_srv t = v[pick];

				memmove(&v[i + 1], &v[i], (pick - i) * sizeof(v[0]));
				v[i] = t;
			}
		}
		start = end;
	}
	return n;
}
