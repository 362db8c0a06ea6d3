/*
 * The last step of a grant, the same for every access method (DESIGN §4,
 * seed 001 C §2.1): once the lease is durable, its binding goes to the
 * TEP, and the reply waits for the TEP's answer; a TEP that refuses (or
 * cannot be asked) ends a new lease again, so that no lease exists
 * without its binding. The TEP channel and the store are the caller's,
 * behind struct grant_push_ops; nothing here does I/O.
 */
#include <stdlib.h>

#include "grant/grant.h"

struct pushing {
	const struct grant_push_ops *ops;
	void *env;
	struct grant_push_item *items;
	unsigned pending;
	void (*done)(void *arg);
	void *arg;
};

struct cookie {
	struct pushing *p;
	struct grant_push_item *it;
};

static void
refuse(const struct grant_push_ops *ops, void *env, struct grant_push_item *it)
{
	it->refused = true;
	if (it->is_new)
		ops->rollback(env, it->identity, it->v4, it->port_lo);
}

static void
release(struct pushing *p)
{
	if (--p->pending > 0)
		return;
	p->done(p->arg);
	free(p);
}

static void
answered(void *arg, bool ok)
{
	struct cookie *c = arg;
	struct pushing *p = c->p;

	if (!ok)
		refuse(p->ops, p->env, c->it);
	free(c);
	release(p);
}

void
grant_push(const struct grant_push_ops *ops, void *env, struct grant_push_item *items, size_t n,
           void (*done)(void *arg), void *arg)
{
	struct pushing *p = calloc(1, sizeof(*p));

	if (!p) {
		for (size_t i = 0; i < n; i++)
			if (items[i].tep)
				refuse(ops, env, &items[i]);
		done(arg);
		return;
	}
	*p = (struct pushing){ops, env, items, 1, done, arg};
	/* Held at 1 until every push is out: an answer may come at once. */
	for (size_t i = 0; i < n; i++) {
		struct cookie *c;

		if (!items[i].tep)
			continue;
		if (!(c = malloc(sizeof(*c)))) {
			refuse(ops, env, &items[i]);
			continue;
		}
		c->p = p;
		c->it = &items[i];
		p->pending++;
		ops->push(env, items[i].tep, items[i].binding, answered, c);
	}
	release(p);
}
