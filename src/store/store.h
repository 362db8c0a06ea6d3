/*
 * The lease store of dstmd: one SQLite database in WAL mode with
 * synchronous=FULL, so that a committed transaction is on disk (fsync'd)
 * before store_commit() returns and a reply may be sent (DESIGN §4). One
 * row per lease, keyed by its address (STORE_ID): the database itself
 * refuses an IPv4 address (+ port range) held by two rows (seed 001 §1:
 * the server MUST guarantee the uniqueness of the IPv4 address). Every
 * grant, renewal, release, expiry and revocation is also appended to a
 * history table in the same transaction. One process per database: an
 * flock on PATH.lock (store_open fails naming the holder's pid). Writes
 * only happen between
 * store_begin() and store_commit(): everything one event-loop turn
 * decided is one transaction (group commit). The schema version is
 * PRAGMA user_version.
 */
#ifndef DSTM_STORE_H
#define DSTM_STORE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION     2
#define STORE_SCHEMA_VERSION_STR "2"

/* The key of a lease row: its address and first port. */
#define STORE_ID(v4, port_lo) ((int64_t)(v4) << 16 | (int64_t)(port_lo))

enum lease_state {
	LEASE_ACTIVE = 1,     /* held by a client until `expiry` */
	LEASE_QUARANTINE = 2, /* expired or released; address not reused before quarantine_until */
};

/*
 * One row. Strings point into the store's buffers during a store_load()
 * callback and are only read by the write functions.
 */
struct lease_row {
	int64_t id; /* assigned by store_insert() */
	const char *identity;
	struct in6_addr v6;
	uint32_t v4;               /* host byte order */
	uint16_t port_lo, port_hi; /* 0, 0: the whole address */
	const char *pool;
	const char *tep;
	int64_t start, expiry; /* wall-clock seconds */
	enum lease_state state;
	int64_t quarantine_until; /* 0 while active */
};

/* What happened to a lease, in the history table (the numbers are on disk). */
enum lease_event {
	LEASE_EV_GRANT = 1,
	LEASE_EV_RENEW = 2,
	LEASE_EV_RELEASE = 3, /* by the client */
	LEASE_EV_EXPIRE = 4,
	LEASE_EV_REVOKE = 5, /* by the operator or the server */
};

/* One history row; strings valid during the store_history_scan() callback. */
struct history_row {
	int64_t seq; /* the row's place in the table: a cursor */
	int64_t t;   /* when, wall-clock seconds */
	enum lease_event event;
	const char *identity;
	struct in6_addr v6;
	uint32_t v4;
	uint16_t port_lo, port_hi;
	int64_t start, expiry; /* of the lease, after the event */
};

struct store;

/*
 * Open or create the database (and its schema; a schema 1 file is
 * converted). NULL with a message in err when the file cannot be opened,
 * is not our database, was written by a newer schema, or another process
 * holds it (the message names its pid and the lock file).
 */
struct store *store_open(const char *path, char *err, size_t errlen);
/*
 * The same store on a PostgreSQL database (libpq conninfo), shared by
 * several dstmd instances; store_pg.c tells how the database keeps them
 * from handing out one address twice. Every function below works on it;
 * a batch that conflicts with another instance's commit fails as a full
 * disk would (store_async_poll returns -EIO) and the caller reloads.
 */
struct store *store_open_pg(const char *conninfo, char *err, size_t errlen);
/* Another instance committed since the last call (always false on SQLite). */
bool store_foreign_changes(struct store *st);
/* Several instances may share this store (PostgreSQL). */
bool store_shared(const struct store *st);
/* The last failed batch conflicted with another instance's commit (PostgreSQL only). */
bool store_conflicted(const struct store *st);
/* This instance runs expiry (always on SQLite; on PostgreSQL, one instance at a time). */
bool store_expiry_owner(const struct store *st);
/* Close; an open transaction is rolled back. */
void store_close(struct store *st);

/*
 * Every row, in id order. A non-zero return of cb stops the walk and is
 * returned. -EIO on a database error.
 */
int store_load(struct store *st, int (*cb)(void *arg, const struct lease_row *row), void *arg);

/* Transactions: 0 or -EIO (-EINVAL when nested / none is open). */
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
bool store_in_transaction(const struct store *st);

/*
 * Writes, only inside a transaction (-EINVAL otherwise). -EEXIST when a
 * UNIQUE constraint refuses the row (address + ports or identity taken),
 * -ENOENT when no row has that id, -EIO on any other database error.
 */
int store_insert(struct store *st, struct lease_row *row); /* sets row->id (STORE_ID) */
/* Rewrites every field of row `row->id` but id and start. */
int store_update(struct store *st, const struct lease_row *row);
int store_delete(struct store *st, int64_t id);

/* Append a history row for `row` (its state after the event); like the writes above. */
int store_history_add(struct store *st, enum lease_event ev, int64_t t,
                      const struct lease_row *row);
/* Delete history rows older than `before`, at most `max` of them (bounded work per commit). */
int store_history_prune(struct store *st, int64_t before, unsigned max);
/*
 * Read at most `max` history rows after `after` (a seq; 0: from the
 * start), oldest first, on a read-only connection of its own (any time,
 * also with the writer thread running: WAL readers do not block it).
 * *next is the last seq read (the cursor of the next step), 0 when the
 * table ended within this step. A non-zero return of cb stops the step
 * (*next is then the row cb saw last) and is returned; -EIO on a
 * database error.
 */
int store_history_scan(struct store *st, int64_t after, unsigned max,
                       int (*cb)(void *arg, const struct history_row *h), void *arg, int64_t *next);

/* A write of one page that changes nothing: does a commit go through again? */
int store_probe(struct store *st);

/* The last SQLite error message, for logs. */
const char *store_errmsg(const struct store *st);

/*
 * The writer thread (group commit without stalling the event loop).
 * After store_async_start() the calling thread never touches SQLite
 * again: store_begin/insert/update/delete only record the operations of
 * the open batch in memory (insert ids come from the row's
 * key), and store_commit_async() hands the batch to a thread that
 * applies and commits each batch, in order, in one transaction. While it
 * fsyncs, the event loop goes on deciding the next batch. Each batch has
 * a ticket; store_async_fd() becomes readable when batches are durable,
 * and store_async_poll() says up to which ticket. A batch that fails (a
 * full disk, a read-only file) is rolled back, and so is every batch
 * queued after it (they were decided on top of it): poll returns -EIO
 * until store_async_recover(), after which the file holds exactly the
 * batches up to the durable ticket and the caller rebuilds its memory
 * from it (lease_mgr_reload).
 */
int store_async_start(struct store *st);
int store_async_fd(const struct store *st);
/*
 * Queue the open batch (if any); *ticket is the ticket to wait for. A
 * small batch (a lease or two) that finds the writer idle and nothing
 * queued is committed in the calling thread instead, before this returns
 * (SQLite only): store_async_durable() then covers the ticket. If that
 * commit fails it is told as the writer's failures are (the fd becomes
 * readable, the poll returns -EIO). A batch handed over while another
 * waits for the busy writer joins it (SQLite only): one transaction for
 * both, and *ticket is the waiting batch's ticket.
 */
int store_commit_async(struct store *st, uint64_t *ticket);
/* The highest durable ticket, without reading the notification. */
uint64_t store_async_durable(struct store *st);
/* How many batches were committed in the calling thread (counters). */
uint64_t store_inline_commits(struct store *st);
/* Read the notification: 0 and the highest durable ticket, or -EIO. */
int store_async_poll(struct store *st, uint64_t *durable);
/*
 * After a failure: wait until the writer has dropped every queued batch,
 * drop the open one, and let the writer commit again. The store's
 * writing connection is idle until the next store_commit_async(), so the
 * caller may store_load() from it.
 */
int store_async_recover(struct store *st);
/* Wait until every queued batch is durable, then stop the thread (0 or -EIO). */
int store_async_stop(struct store *st);

#endif
