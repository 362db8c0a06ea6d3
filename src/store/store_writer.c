/*
 * The lease store's writer thread (store_async_start): the event loop
 * records each turn's writes in a batch and hands it over with a ticket;
 * the thread commits batches in order, one transaction each (SQLite with
 * its WAL fsync'd, or PostgreSQL through store_pg.c), and says through an
 * eventfd which ticket is durable. A failed batch stops the writer until
 * the loop recovers (store_async_recover). The statements are store.c's.
 *
 * A small batch that finds the writer idle (the one client of a quiet
 * server) is committed in the caller's thread instead: the same
 * transaction and the same fdatasync, without handing it to the thread and
 * being woken back (a futex or two each way and the eventfd), which cost
 * more than the disk at one request in flight. Under load the batches are
 * larger or the writer is busy, and group commit goes on as before.
 * PostgreSQL batches always go to the thread, whose connection also
 * listens for the other instances while idle.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_pg.h"

void
store_batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->ops[i].strs);
	free(b->ops);
	free(b->idx);
	free(b);
}

/* The slot of row `id` in the batch's index: its own, or the empty one it would take. */
static size_t
idx_slot(const struct batch *b, int64_t id)
{
	size_t mask = b->nidx - 1, i = hash_u64((uint64_t)id) & mask;

	while (b->idx[i] && b->ops[b->idx[i] - 1].row.id != id)
		i = (i + 1) & mask;
	return i;
}

/* Room in the index for the ops the batch can hold (at most half full). */
static int
idx_grow(struct batch *b)
{
	size_t n = b->nidx ? b->nidx * 2 : 256;
	uint32_t *old = b->idx;
	size_t nold = b->nidx;

	if (b->cap > UINT32_MAX / 2)
		return -EIO;
	while (n < 2 * b->cap)
		n *= 2;
	if (n == b->nidx)
		return 0;
	if (!(b->idx = calloc(n, sizeof(*b->idx)))) {
		b->idx = old;
		return -EIO;
	}
	b->nidx = n;
	for (size_t i = 0; i < nold; i++)
		if (old[i])
			b->idx[idx_slot(b, b->ops[old[i] - 1].row.id)] = old[i];
	free(old);
	return 0;
}

/* `o` becomes `op`, with copies of its strings (o->strs is replaced). */
static int
op_copy(struct op *o, const struct op *op)
{
	const struct lease_row *row = &op->row;
	size_t li = strlen(row->identity) + 1, lp = strlen(row->pool) + 1,
	       lt = strlen(row->tep) + 1;
	char *strs = malloc(li + lp + lt);

	if (!strs)
		return -EIO;
	free(o->strs);
	*o = *op;
	o->strs = strs;
	memcpy(o->strs, row->identity, li);
	memcpy(o->strs + li, row->pool, lp);
	memcpy(o->strs + li + lp, row->tep, lt);
	o->row.identity = o->strs;
	o->row.pool = o->strs + li;
	o->row.tep = o->strs + li + lp;
	return 0;
}

/*
 * Record a write in the open batch, with copies of its strings.
 *
 * A lease row written again in the same batch is written once: an update
 * replaces the batch's earlier insert or update of that row (the insert
 * keeps its kind and its start, which an update does not write). The
 * batch is one transaction, so the file ends the same and nothing between
 * the two is ever on disk; a DHCPv6 exchange that falls in one batch (the
 * Solicit's insert and offer, the Request's confirmation) then costs one
 * row write instead of three. History rows are never merged. SQLite only:
 * PostgreSQL's index of active identities checks each statement, and a
 * write moved earlier could meet a row the batch only frees later.
 */
int
store_batch_add(struct store *st, const struct op *op)
{
	struct batch *b = st->open;
	size_t slot = 0;
	bool rowop =
	    !st->pg && (op->kind == OP_INSERT || op->kind == OP_UPDATE || op->kind == OP_DELETE);
	struct op *o;

	if (!b)
		return -EINVAL;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct op *ops = realloc(b->ops, cap * sizeof(*ops));

		if (!ops)
			return -EIO;
		b->ops = ops;
		b->cap = cap;
	}
	if (rowop && 2 * b->cap > b->nidx && idx_grow(b) < 0)
		return -EIO;
	if (rowop) {
		slot = idx_slot(b, op->row.id);
		o = b->idx[slot] ? &b->ops[b->idx[slot] - 1] : NULL;
		if (o && op->kind == OP_UPDATE && (o->kind == OP_INSERT || o->kind == OP_UPDATE)) {
			int kind = o->kind;
			int64_t start = o->row.start;

			if (op_copy(o, op) < 0)
				return -EIO;
			o->kind = kind;
			if (kind == OP_INSERT)
				o->row.start = start;
			return 0;
		}
	}
	o = &b->ops[b->n];
	o->strs = NULL;
	if (op_copy(o, op) < 0)
		return -EIO;
	b->n++;
	if (rowop)
		b->idx[slot] = (uint32_t)b->n;
	return 0;
}

/* One batch as one PostgreSQL transaction (store_pg.c says why a conflict fails it whole). */
static int
apply_batch_pg(struct store *st, const struct batch *b)
{
	struct store_pg *pg = st->pg;
	int rc = 0;

	if (spg_begin(pg) < 0) {
		__atomic_store_n(&st->conflict, false, __ATOMIC_RELEASE);
		return -EIO;
	}
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		const struct op *o = &b->ops[i];

		switch (o->kind) {
		case OP_INSERT:
			rc = spg_insert(pg, &o->row);
			break;
		case OP_UPDATE:
			rc = spg_update(pg, &o->row);
			break;
		case OP_DELETE:
			rc = spg_delete(pg, o->row.id);
			break;
		case OP_HISTORY:
			rc = spg_history(pg, o->event, o->t, &o->row);
			break;
		case OP_PRUNE:
			rc = spg_prune(pg, o->t, (unsigned)o->event);
			break;
		case OP_PROBE:
			rc = spg_probe(pg);
			break;
		}
	}
	if (rc < 0) {
		spg_rollback(pg);
		/* Refused for another instance's sake, not for a broken database. */
		__atomic_store_n(&st->conflict, rc == -EEXIST || rc == -ESTALE, __ATOMIC_RELEASE);
		return -EIO;
	}
	if ((rc = spg_commit(pg)) < 0)
		__atomic_store_n(&st->conflict, false, __ATOMIC_RELEASE);
	return rc;
}

int
store_apply_batch(struct store *st, const struct batch *b)
{
	if (st->pg)
		return apply_batch_pg(st, b);
	if (store_step_done(st, st->begin, "begin") < 0)
		return -EIO;
	for (size_t i = 0; i < b->n; i++)
		if (store_apply_op(st, &b->ops[i]) < 0)
			goto fail;
	if (store_step_done(st, st->commit, "commit") < 0)
		goto fail;
	return 0;
fail:
	if (sqlite3_get_autocommit(st->db) == 0)
		(void)store_step_done(st, st->rollback, "rollback");
	return -EIO;
}

static int apply_timed(struct store *st, const struct batch *b);

static void *
writer(void *arg)
{
	struct store *st = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&st->mu);
	for (;;) {
		struct batch *b;
		int rc;

		while (!st->qhead && !st->stop) {
			if (st->pg) {
				/* Idle: the other instances' commits and the expiry lock. */
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 100 * 1000 * 1000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&st->cv, &st->mu, &ts);
				if (st->qhead || st->stop)
					break;
				pthread_mutex_unlock(&st->mu);
				if (spg_idle(st->pg)) {
					__atomic_store_n(&st->foreign, true, __ATOMIC_RELEASE);
					if (write(st->efd, &one, sizeof(one)) < 0) {
						/* As below. */
					}
				}
				pthread_mutex_lock(&st->mu);
			} else
				pthread_cond_wait(&st->cv, &st->mu);
		}
		if (!st->qhead)
			break;
		b = st->qhead;
		st->qhead = b->next;
		if (!st->qhead)
			st->qtail = NULL;
		st->busy = true;
		/*
		 * After a failed batch the later ones were decided on top of it:
		 * they are dropped too, until store_async_recover().
		 */
		rc = -EIO;
		if (!st->failed) {
			pthread_mutex_unlock(&st->mu);
			rc = apply_timed(st, b);
			pthread_mutex_lock(&st->mu);
		}
		st->busy = false;
		if (rc < 0)
			st->failed = true;
		else
			st->durable = b->ticket;
		store_batch_free(b);
		pthread_cond_broadcast(&st->cv);
		if (write(st->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow at our rates; nothing to do. */
		}
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

int
store_async_start(struct store *st)
{
	if (st->async || st->in_tx)
		return -EINVAL;
	if ((st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -errno;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	if (pthread_create(&st->thread, NULL, writer, st) != 0) {
		close(st->efd);
		return -EAGAIN;
	}
	st->async = true;
	return 0;
}

int
store_async_fd(const struct store *st)
{
	return st->async ? st->efd : -1;
}

/*
 * Operations a batch committed in the caller's thread may hold: one or two
 * leases (a grant is an insert and a history row). Larger batches mean
 * requests are queueing, and the loop had better go on reading them while
 * the writer fsyncs. So does a slow disk: while the last commit took more
 * than STORE_INLINE_MAX_US (another process keeps the disk busy and an
 * fdatasync waits for its writes), every batch goes to the writer, since
 * the loop could neither read nor answer for that long.
 */
#define STORE_INLINE_MAX_OPS 4
#define STORE_INLINE_MAX_US  2000

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* store_apply_batch, noting how long it took (for the inline rule). */
static int
apply_timed(struct store *st, const struct batch *b)
{
	int64_t t0 = mono_us();
	int rc = store_apply_batch(st, b);

	__atomic_store_n(&st->last_commit_us, mono_us() - t0, __ATOMIC_RELAXED);
	return rc;
}

/*
 * The WAL is checkpointed every STORE_CHECKPOINT_PAGES pages (16 MB), in
 * the writer thread: a commit made in the caller's thread (the event
 * loop) only notes that one is due, and the next batch goes to the writer,
 * whose commit runs it. The hook replaces PRAGMA wal_autocheckpoint,
 * which would checkpoint in whatever thread committed.
 */
int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *st = arg;

	if (pages < STORE_CHECKPOINT_PAGES)
		return SQLITE_OK;
	if (st->inline_commit) {
		__atomic_store_n(&st->checkpoint_due, true, __ATOMIC_RELEASE);
		return SQLITE_OK;
	}
	/* Passive, as the autocheckpoint is: a failure is tried again next time. */
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	__atomic_store_n(&st->checkpoint_due, false, __ATOMIC_RELEASE);
	return SQLITE_OK;
}

/*
 * `b`'s writes go at the end of `to`, a batch queued for the writer that
 * it has not taken yet (mu held): one transaction and one fdatasync for
 * both, however many turns of the loop hand batches over while the writer
 * is busy. The order of the writes is kept, so the file ends as if they
 * were committed one after the other; a failure fails both, as a failed
 * batch fails every later one anyway. `b` is left empty.
 */
static int
batch_join(struct batch *to, struct batch *b)
{
	if (to->n + b->n > to->cap) {
		size_t cap = to->cap ? to->cap : 64;
		struct op *ops;

		while (cap < to->n + b->n)
			cap *= 2;
		if (!(ops = realloc(to->ops, cap * sizeof(*ops))))
			return -ENOMEM;
		to->ops = ops;
		to->cap = cap;
	}
	memcpy(to->ops + to->n, b->ops, b->n * sizeof(*b->ops));
	to->n += b->n;
	b->n = 0;
	return 0;
}

/* Commit `b` here: the writer is idle and nothing is queued (mu held, released inside). */
static void
commit_inline(struct store *st, struct batch *b)
{
	uint64_t one = 1;
	int rc;

	st->busy = true;
	pthread_mutex_unlock(&st->mu);
	st->inline_commit = true;
	rc = apply_timed(st, b);
	st->inline_commit = false;
	pthread_mutex_lock(&st->mu);
	st->busy = false;
	st->inline_commits++;
	if (rc < 0) {
		/* Told as the writer tells it: the poll returns -EIO. */
		st->failed = true;
		if (write(st->efd, &one, sizeof(one)) < 0) {
			/* As in writer(). */
		}
	} else
		st->durable = b->ticket;
	pthread_mutex_unlock(&st->mu);
	store_batch_free(b);
}

int
store_commit_async(struct store *st, uint64_t *ticket)
{
	struct batch *b = st->open;

	if (!st->async)
		return -EINVAL;
	st->open = NULL;
	if (!b || b->n == 0) {
		/* Nothing new: whatever was decided before is in the last batch. */
		store_batch_free(b);
		*ticket = st->issued;
		return 0;
	}
	pthread_mutex_lock(&st->mu);
	if (!st->pg && st->qtail && batch_join(st->qtail, b) == 0) {
		/* The queued batch has not begun: this one commits with it, under its ticket. */
		*ticket = st->qtail->ticket;
		pthread_mutex_unlock(&st->mu);
		store_batch_free(b);
		return 0;
	}
	b->ticket = ++st->issued;
	*ticket = b->ticket;
	if (!st->pg && !st->qhead && !st->busy && !st->failed && b->n <= STORE_INLINE_MAX_OPS &&
	    __atomic_load_n(&st->last_commit_us, __ATOMIC_RELAXED) <= STORE_INLINE_MAX_US &&
	    !__atomic_load_n(&st->checkpoint_due, __ATOMIC_ACQUIRE)) {
		commit_inline(st, b);
		return 0;
	}
	if (st->qtail)
		st->qtail->next = b;
	else
		st->qhead = b;
	st->qtail = b;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int
store_async_poll(struct store *st, uint64_t *durable)
{
	uint64_t n;
	int rc;

	*durable = 0;
	if (read(st->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&st->mu);
	*durable = st->durable;
	rc = st->failed ? -EIO : 0;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

uint64_t
store_async_durable(struct store *st)
{
	uint64_t durable;

	pthread_mutex_lock(&st->mu);
	durable = st->durable;
	pthread_mutex_unlock(&st->mu);
	return durable;
}

uint64_t
store_inline_commits(struct store *st)
{
	uint64_t n = 0;

	if (!st->async)
		return 0;
	pthread_mutex_lock(&st->mu);
	n = st->inline_commits;
	pthread_mutex_unlock(&st->mu);
	return n;
}

int
store_async_recover(struct store *st)
{
	if (!st->async)
		return -EINVAL;
	pthread_mutex_lock(&st->mu);
	while (st->qhead || st->busy)
		pthread_cond_wait(&st->cv, &st->mu);
	st->failed = false;
	pthread_mutex_unlock(&st->mu);
	store_batch_free(st->open);
	st->open = NULL;
	return 0;
}

int
store_async_stop(struct store *st)
{
	int rc;

	if (!st->async)
		return 0;
	pthread_mutex_lock(&st->mu);
	st->stop = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	pthread_join(st->thread, NULL);
	rc = st->failed ? -EIO : 0;
	store_batch_free(st->open);
	st->open = NULL;
	close(st->efd);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	st->async = false;
	return rc;
}
