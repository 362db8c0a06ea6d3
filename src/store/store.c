/*
 * The SQLite backend of the lease store. Every statement is prepared once
 * at open and reused. The database runs in WAL mode with synchronous=FULL: a commit
 * returns once the WAL is fsync'd, which is the promise store_commit()
 * makes to dstmd. Write transactions are BEGIN IMMEDIATE so that a second
 * process on the same file (an operator's sqlite3 shell) fails at begin,
 * after busy_timeout, rather than half-way through a group of writes.
 * IPv6 addresses are stored as text so that the file reads well in the
 * sqlite3 shell; IPv4 addresses as integers (host order) so that the
 * unique index compares numbers. The writer thread that commits batches
 * of writes off the event loop is store_writer.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"
#include "store/store_pg.h"

#define STORE_BUSY_MS 5000

/*
 * Schema 2. What a commit writes is what it costs (every page a
 * transaction dirties is one WAL frame, and SQLite writes a frame with
 * two pwrite calls), so the schema is cut to the pages a commit must
 * touch:
 *  - lease: the rowid *is* the address, v4 * 65536 + port_lo. The table
 *    itself then holds one row per address + port range, the database's
 *    own guarantee of seed 001 §1 (one holder per IPv4 address + port
 *    range; DESIGN §4), with no index beside it. A grant or renewal
 *    dirties one page of it. One active lease per identity is the lease
 *    manager's rule (its identity map); schema 1 also kept it in an index,
 *    a second page per grant.
 *  - history: append-only, implicit rowid, no index: a commit's events
 *    land on the table's last page. Queries scan it in bounded steps
 *    (store_history_scan) from a second, read-only connection, and
 *    pruning deletes from its head (store_history_prune).
 * Schema 1 files are converted at open, in one transaction.
 */
#define LEASE_COLUMNS                                                          \
	" identity TEXT NOT NULL,"                                             \
	" v6 TEXT NOT NULL,"                                                   \
	" v4 INTEGER NOT NULL CHECK (v4 BETWEEN 0 AND 4294967295),"            \
	" port_lo INTEGER NOT NULL CHECK (port_lo BETWEEN 0 AND 65535),"       \
	" port_hi INTEGER NOT NULL CHECK (port_hi BETWEEN port_lo AND 65535)," \
	" pool TEXT NOT NULL,"                                                 \
	" tep TEXT NOT NULL,"                                                  \
	" start INTEGER NOT NULL,"                                             \
	" expiry INTEGER NOT NULL,"                                            \
	" state TEXT NOT NULL CHECK (state IN ('active', 'quarantine')),"      \
	" quarantine_until INTEGER NOT NULL DEFAULT 0,"                        \
	" CHECK (id = v4 * 65536 + port_lo))"

#define HISTORY_TABLE                \
	"CREATE TABLE history ("     \
	" t INTEGER NOT NULL,"       \
	" event INTEGER NOT NULL,"   \
	" v4 INTEGER NOT NULL,"      \
	" port_lo INTEGER NOT NULL," \
	" port_hi INTEGER NOT NULL," \
	" identity TEXT NOT NULL,"   \
	" v6 TEXT NOT NULL,"         \
	" start INTEGER NOT NULL,"   \
	" expiry INTEGER NOT NULL);"

static const char schema_v2[] = "CREATE TABLE lease (id INTEGER PRIMARY KEY," LEASE_COLUMNS
                                ";" HISTORY_TABLE "PRAGMA user_version = 2;";

static const char migrate_v1[] =
    "CREATE TABLE lease2 (id INTEGER PRIMARY KEY," LEASE_COLUMNS ";"
    "INSERT INTO lease2 SELECT v4 * 65536 + port_lo, identity, v6, v4, port_lo, port_hi, "
    "pool, tep, start, expiry, state, quarantine_until FROM lease;"
    "DROP TABLE lease;"
    "ALTER TABLE lease2 RENAME TO lease;" HISTORY_TABLE "PRAGMA user_version = 2;";

static const char *
state_name(enum lease_state s)
{
	return s == LEASE_QUARANTINE ? "quarantine" : "active";
}

static void
seterr(struct store *st, const char *what)
{
	snprintf(st->errmsg, sizeof(st->errmsg), "%s: %s", what, sqlite3_errmsg(st->db));
}

int
store_step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return 0;
	seterr(st, what);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return -EEXIST;
	return -EIO;
}

static int
exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* A single integer from a query. */
static int
query_int(sqlite3 *db, const char *sql, long long *out)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

static int
schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	long long version, nobj;
	const char *sql = schema_v2;
	char msg[256];

	if (query_int(db, "PRAGMA user_version", &version) < 0 ||
	    query_int(db, "SELECT count(*) FROM sqlite_master", &nobj) < 0) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		return -EIO;
	}
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen,
		         "%s: lease database schema %lld is newer than this dstmd's (%d); run the "
		         "newer dstmd or move the file away",
		         path, version, STORE_SCHEMA_VERSION);
		return -EINVAL;
	}
	if (version == 1)
		sql = migrate_v1;
	else if (nobj != 0) {
		snprintf(err, errlen,
		         "%s: not a dstm lease database (it has tables but no version)", path);
		return -EINVAL;
	}
	if (exec(db, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0 ||
	    exec(db, sql, msg, sizeof(msg)) < 0 || exec(db, "COMMIT", msg, sizeof(msg)) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "%s: %s the schema: %s", path,
		         version == 1 ? "converting" : "creating", msg);
		return -EIO;
	}
	return 0;
}

/*
 * One process per database: an flock on PATH.lock, which holds the pid
 * of its owner so that the second one can name it. SQLite's own locks
 * do not do this (two processes in WAL mode both run, each with its own
 * memory of the leases, and hand out the same addresses). The lock goes
 * with the process, however it ends, so a kill -9 leaves no stale lock.
 */
static int
lock_file(struct store *st, const char *path, char *err, size_t errlen)
{
	char lp[4200], pid[32] = "";
	ssize_t n;

	snprintf(lp, sizeof(lp), "%s.lock", path);
	if ((st->lockfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", lp, strerror(errno));
		return -errno;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e != EWOULDBLOCK) {
			snprintf(err, errlen, "%s: %s", lp, strerror(e));
			return -e;
		}
		if ((n = pread(st->lockfd, pid, sizeof(pid) - 1, 0)) > 0)
			pid[n] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen,
		         "%s is in use by another dstmd (pid %s, lock file %s); one dstmd per "
		         "database",
		         path, pid[0] ? pid : "unknown", lp);
		return -EBUSY;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(st->lockfd, 0) != 0 ||
	    pwrite(st->lockfd, pid, strlen(pid), 0) != (ssize_t)strlen(pid)) {
		/* The lock holds without the pid; the message of a second process says "unknown". */
	}
	return 0;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store *st;
	sqlite3_stmt *s = NULL;
	char msg[256];
	bool wal;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	st->efd = -1;
	st->lockfd = -1;
	if (lock_file(st, path, err, errlen) < 0)
		goto fail;
	if (store_vfs_register() < 0) {
		snprintf(err, errlen, "%s: cannot register SQLite VFS %s", path, STORE_VFS);
		goto fail;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, STORE_VFS) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
		         st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		goto fail;
	}
	wal = strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
	sqlite3_finalize(s);
	if (!wal) {
		snprintf(err, errlen, "%s: the database refuses WAL mode (a read-only directory?)",
		         path);
		goto fail;
	}
	/*
	 * FULL: the WAL is fsync'd at every commit, so commit means durable.
	 * cache_size: the writer touches the last pages of history and the
	 * lease pages of the addresses it changes; 2 MB of cache (SQLite's
	 * default) holds what a commit needs, and more is resident memory per
	 * lease for nothing (start-up reads the table once, in rowid order).
	 * The checkpoint (store_wal_hook, instead of wal_autocheckpoint): it
	 * copies the WAL back into the file and fsyncs it, in the writer
	 * thread, inside a commit; every 4000 pages (16 MB of WAL) it runs
	 * about once per 2000 grants of one lease each, so that its cost
	 * spreads thin without the WAL growing large.
	 * journal_size_limit: after a checkpoint the WAL file is cut back.
	 */
	if (exec(st->db,
	         "PRAGMA synchronous = FULL; PRAGMA cache_size = -2048; "
	         "PRAGMA journal_size_limit = 16777216",
	         msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto fail;
	}
	sqlite3_wal_hook(st->db, store_wal_hook, st);
	if (schema(st->db, path, err, errlen) < 0)
		goto fail;
	if (sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
		         st->rdb != NULL ? sqlite3_errmsg(st->rdb) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(st->rdb, STORE_BUSY_MS);
	exec(st->rdb, "PRAGMA cache_size = -512", msg, sizeof(msg));

#define PREP(h, stmt, sql)                                                                    \
	if (sqlite3_prepare_v3(st->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt, NULL) != \
	    SQLITE_OK) {                                                                      \
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->h));                 \
		goto fail;                                                                    \
	}
	PREP(db, ins,
	     "INSERT INTO lease (id, identity, v6, v4, port_lo, port_hi, pool, tep, "
	     "start, expiry, state, quarantine_until) "
	     "VALUES (?3 * 65536 + ?4, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
	/* The row's key is its address: an update never moves it (a move is delete + insert). */
	PREP(db, upd,
	     "UPDATE lease SET identity = ?1, v6 = ?2, pool = ?6, tep = ?7, expiry = ?8, "
	     "state = ?9, quarantine_until = ?10 WHERE id = ?11 AND v4 = ?3 AND port_lo = ?4 "
	     "AND port_hi = ?5");
	PREP(db, del, "DELETE FROM lease WHERE id = ?");
	PREP(db, sel,
	     "SELECT id, identity, v6, v4, port_lo, port_hi, pool, tep, start, expiry, "
	     "state, quarantine_until FROM lease ORDER BY id");
	PREP(db, hist,
	     "INSERT INTO history (t, event, v4, port_lo, port_hi, identity, v6, start, expiry) "
	     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
	/*
	 * Rows are appended in time order, so the oldest are at the head: look
	 * at the first ?2 rows only, never a scan of the table for nothing.
	 */
	PREP(db, prune,
	     "DELETE FROM history WHERE rowid IN (SELECT rowid FROM history ORDER BY rowid "
	     "LIMIT ?2) AND t < ?1");
	/* Rewrites page 1 as it is: a commit that needs one page of room. */
	PREP(db, probe, "PRAGMA user_version = " STORE_SCHEMA_VERSION_STR);
	PREP(db, begin, "BEGIN IMMEDIATE");
	PREP(db, commit, "COMMIT");
	PREP(db, rollback, "ROLLBACK");
	PREP(rdb, hscan,
	     "SELECT rowid, t, event, v4, port_lo, port_hi, identity, v6, start, expiry "
	     "FROM history WHERE rowid > ? ORDER BY rowid LIMIT ?");
#undef PREP
	return st;
fail:
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->async)
		(void)store_async_stop(st);
	if (st->in_tx)
		store_rollback(st);
	if (st->pg) {
		store_batch_free(st->open);
		spg_close(st->pg);
	}
	sqlite3_finalize(st->ins);
	sqlite3_finalize(st->hist);
	sqlite3_finalize(st->prune);
	sqlite3_finalize(st->probe);
	sqlite3_finalize(st->hscan);
	sqlite3_close(st->rdb);
	sqlite3_finalize(st->upd);
	sqlite3_finalize(st->del);
	sqlite3_finalize(st->sel);
	sqlite3_finalize(st->begin);
	sqlite3_finalize(st->commit);
	sqlite3_finalize(st->rollback);
	sqlite3_close(st->db);
	if (st->lockfd >= 0)
		close(st->lockfd); /* the lock goes with it */
	free(st);
}

const char *
store_errmsg(const struct store *st)
{
	if (st->pg)
		return spg_errmsg(st->pg);
	return st->errmsg;
}

int
store_load(struct store *st, int (*cb)(void *arg, const struct lease_row *row), void *arg)
{
	int rc, ret = 0;

	if (st->pg)
		return spg_load(st->pg, cb, arg);
	while ((rc = sqlite3_step(st->sel)) == SQLITE_ROW) {
		struct lease_row r = {0};
		const char *v6 = (const char *)sqlite3_column_text(st->sel, 2);
		const char *state = (const char *)sqlite3_column_text(st->sel, 10);

		r.id = sqlite3_column_int64(st->sel, 0);
		r.identity = (const char *)sqlite3_column_text(st->sel, 1);
		r.v4 = (uint32_t)sqlite3_column_int64(st->sel, 3);
		r.port_lo = (uint16_t)sqlite3_column_int(st->sel, 4);
		r.port_hi = (uint16_t)sqlite3_column_int(st->sel, 5);
		r.pool = (const char *)sqlite3_column_text(st->sel, 6);
		r.tep = (const char *)sqlite3_column_text(st->sel, 7);
		r.start = sqlite3_column_int64(st->sel, 8);
		r.expiry = sqlite3_column_int64(st->sel, 9);
		r.state = state != NULL && strcmp(state, "quarantine") == 0 ? LEASE_QUARANTINE
		                                                            : LEASE_ACTIVE;
		r.quarantine_until = sqlite3_column_int64(st->sel, 11);
		if (r.identity == NULL || r.pool == NULL || r.tep == NULL || v6 == NULL ||
		    inet_pton(AF_INET6, v6, &r.v6) != 1) {
			snprintf(st->errmsg, sizeof(st->errmsg), "lease row %lld is malformed",
			         (long long)r.id);
			ret = -EIO;
			break;
		}
		if ((ret = cb(arg, &r)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		seterr(st, "loading leases");
		ret = -EIO;
	}
	sqlite3_reset(st->sel);
	return ret;
}

int
store_begin(struct store *st)
{
	int rc;

	if (st->async || st->pg) {
		if (st->open)
			return -EINVAL;
		if (!(st->open = calloc(1, sizeof(*st->open))))
			return -EIO;
		return 0;
	}
	if (st->in_tx)
		return -EINVAL;
	if ((rc = store_step_done(st, st->begin, "begin")) == 0)
		st->in_tx = true;
	return rc < 0 ? -EIO : 0;
}

int
store_commit(struct store *st)
{
	int rc;

	if (st->async) {
		uint64_t ticket;

		rc = store_commit_async(st, &ticket);

		pthread_mutex_lock(&st->mu);
		while (rc == 0 && !st->failed && st->durable < ticket)
			pthread_cond_wait(&st->cv, &st->mu);
		if (st->failed)
			rc = -EIO;
		pthread_mutex_unlock(&st->mu);
		return rc;
	}
	if (st->pg) {
		struct batch *b = st->open;

		if (!b)
			return -EINVAL;
		st->open = NULL;
		rc = store_apply_batch(st, b);
		store_batch_free(b);
		return rc;
	}
	if (!st->in_tx)
		return -EINVAL;
	if (store_step_done(st, st->commit, "commit") < 0) {
		/* A failed COMMIT may leave the transaction open: end it. */
		store_rollback(st);
		return -EIO;
	}
	st->in_tx = false;
	return 0;
}

void
store_rollback(struct store *st)
{
	if (st->async || st->pg) {
		store_batch_free(st->open);
		st->open = NULL;
		return;
	}
	if (sqlite3_get_autocommit(st->db) == 0)
		(void)store_step_done(st, st->rollback, "rollback");
	st->in_tx = false;
}

bool
store_in_transaction(const struct store *st)
{
	return st->async || st->pg ? st->open != NULL : st->in_tx;
}

static void
bind_row(sqlite3_stmt *s, const struct lease_row *r)
{
	char v6[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, &r->v6, v6, sizeof(v6));
	sqlite3_bind_text(s, 1, r->identity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, v6, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, r->v4);
	sqlite3_bind_int(s, 4, r->port_lo);
	sqlite3_bind_int(s, 5, r->port_hi);
	sqlite3_bind_text(s, 6, r->pool, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, r->tep, -1, SQLITE_STATIC);
}

/* Run one write on the database, inside the open transaction. */
int
store_apply_op(struct store *st, const struct op *o)
{
	const struct lease_row *row = &o->row;
	char v6[INET6_ADDRSTRLEN];
	int rc;

	switch (o->kind) {
	case OP_INSERT:
		bind_row(st->ins, row);
		sqlite3_bind_int64(st->ins, 8, row->start);
		sqlite3_bind_int64(st->ins, 9, row->expiry);
		sqlite3_bind_text(st->ins, 10, state_name(row->state), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st->ins, 11, row->quarantine_until);
		return store_step_done(st, st->ins, "insert");
	case OP_UPDATE:
		bind_row(st->upd, row);
		sqlite3_bind_int64(st->upd, 8, row->expiry);
		sqlite3_bind_text(st->upd, 9, state_name(row->state), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st->upd, 10, row->quarantine_until);
		sqlite3_bind_int64(st->upd, 11, row->id);
		if ((rc = store_step_done(st, st->upd, "update")) == 0 &&
		    sqlite3_changes(st->db) == 0) {
			snprintf(st->errmsg, sizeof(st->errmsg), "update: no lease row %lld",
			         (long long)row->id);
			return -ENOENT;
		}
		return rc;
	case OP_DELETE:
		sqlite3_bind_int64(st->del, 1, row->id);
		if ((rc = store_step_done(st, st->del, "delete")) == 0 &&
		    sqlite3_changes(st->db) == 0) {
			snprintf(st->errmsg, sizeof(st->errmsg), "delete: no lease row %lld",
			         (long long)row->id);
			return -ENOENT;
		}
		return rc;
	case OP_HISTORY:
		inet_ntop(AF_INET6, &row->v6, v6, sizeof(v6));
		sqlite3_bind_int64(st->hist, 1, o->t);
		sqlite3_bind_int(st->hist, 2, o->event);
		sqlite3_bind_int64(st->hist, 3, row->v4);
		sqlite3_bind_int(st->hist, 4, row->port_lo);
		sqlite3_bind_int(st->hist, 5, row->port_hi);
		sqlite3_bind_text(st->hist, 6, row->identity, -1, SQLITE_STATIC);
		sqlite3_bind_text(st->hist, 7, v6, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st->hist, 8, row->start);
		sqlite3_bind_int64(st->hist, 9, row->expiry);
		return store_step_done(st, st->hist, "history");
	case OP_PRUNE:
		sqlite3_bind_int64(st->prune, 1, o->t);
		sqlite3_bind_int(st->prune, 2, o->event);
		return store_step_done(st, st->prune, "pruning history");
	case OP_PROBE:
		return store_step_done(st, st->probe, "probe");
	}
	return -EINVAL;
}

/*
 * A write: recorded in the open batch with the writer thread running,
 * otherwise run at once (store_begin() must have been called).
 */
static int
store_op(struct store *st, struct op *o)
{
	if (st->async || st->pg)
		return store_batch_add(st, o);
	if (!st->in_tx)
		return -EINVAL;
	return store_apply_op(st, o);
}

int
store_insert(struct store *st, struct lease_row *row)
{
	struct op o = {.kind = OP_INSERT, .row = *row};

	row->id = o.row.id = STORE_ID(row->v4, row->port_lo);
	return store_op(st, &o);
}

int
store_update(struct store *st, const struct lease_row *row)
{
	struct op o = {.kind = OP_UPDATE, .row = *row};

	return store_op(st, &o);
}

int
store_delete(struct store *st, int64_t id)
{
	struct op o = {.kind = OP_DELETE, .row = {.id = id, .identity = "", .pool = "", .tep = ""}};

	return store_op(st, &o);
}

int
store_history_add(struct store *st, enum lease_event ev, int64_t t, const struct lease_row *row)
{
	struct op o = {.kind = OP_HISTORY, .row = *row, .t = t, .event = (int)ev};

	return store_op(st, &o);
}

int
store_history_prune(struct store *st, int64_t before, unsigned max)
{
	struct op o = {.kind = OP_PRUNE,
	               .row = {.identity = "", .pool = "", .tep = ""},
	               .t = before,
	               .event = (int)max};

	return store_op(st, &o);
}

int
store_probe(struct store *st)
{
	struct op o = {.kind = OP_PROBE, .row = {.identity = "", .pool = "", .tep = ""}};

	return store_op(st, &o);
}

int
store_history_scan(struct store *st, int64_t after, unsigned max,
                   int (*cb)(void *arg, const struct history_row *h), void *arg, int64_t *next)
{
	unsigned n = 0;
	int rc, ret = 0;

	if (st->pg)
		return spg_history_scan(st->pg, after, max, cb, arg, next);
	*next = 0;
	sqlite3_bind_int64(st->hscan, 1, after);
	sqlite3_bind_int(st->hscan, 2, (int)max);
	while ((rc = sqlite3_step(st->hscan)) == SQLITE_ROW) {
		struct history_row h = {0};
		const char *v6 = (const char *)sqlite3_column_text(st->hscan, 7);

		n++;
		h.seq = sqlite3_column_int64(st->hscan, 0);
		h.t = sqlite3_column_int64(st->hscan, 1);
		h.event = (enum lease_event)sqlite3_column_int(st->hscan, 2);
		h.v4 = (uint32_t)sqlite3_column_int64(st->hscan, 3);
		h.port_lo = (uint16_t)sqlite3_column_int(st->hscan, 4);
		h.port_hi = (uint16_t)sqlite3_column_int(st->hscan, 5);
		h.identity = (const char *)sqlite3_column_text(st->hscan, 6);
		h.start = sqlite3_column_int64(st->hscan, 8);
		h.expiry = sqlite3_column_int64(st->hscan, 9);
		*next = h.seq;
		if (h.identity == NULL || v6 == NULL || inet_pton(AF_INET6, v6, &h.v6) != 1)
			continue; /* damaged: skipped, the scan goes on */
		if ((ret = cb(arg, &h)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		snprintf(st->errmsg, sizeof(st->errmsg), "reading history: %s",
		         sqlite3_errmsg(st->rdb));
		ret = -EIO;
	}
	if (ret == 0 && n < max)
		*next = 0; /* the table ended before the step did */
	sqlite3_reset(st->hscan);
	return ret;
}

struct store *
store_open_pg(const char *conninfo, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));

	if (!st) {
		snprintf(err, errlen, "postgresql: out of memory");
		return NULL;
	}
	st->efd = -1;
	st->lockfd = -1;
	if (!(st->pg = spg_open(conninfo, err, errlen))) {
		free(st);
		return NULL;
	}
	return st;
}

bool
store_foreign_changes(struct store *st)
{
	return __atomic_exchange_n(&st->foreign, false, __ATOMIC_ACQ_REL);
}

bool
store_shared(const struct store *st)
{
	return st->pg != NULL;
}

bool
store_conflicted(const struct store *st)
{
	return st->pg && __atomic_load_n(&st->conflict, __ATOMIC_ACQUIRE);
}

bool
store_expiry_owner(const struct store *st)
{
	return st->pg ? spg_expiry_owner(st->pg) : true;
}
