/*
 * The PostgreSQL backend of the lease store: several dstmd instances
 * share one pool through one database.
 *
 * Each instance keeps, as with SQLite, the whole lease table in memory
 * and decides there (lease.c); the database is the arbiter. The design is
 * optimistic concurrency, with the database refusing every conflicting
 * write, never one process's memory:
 *  - lease.id is the address and first port (PRIMARY KEY): two instances
 *    that pick the same free address both INSERT, the second gets a
 *    unique violation. A partial unique index on identity WHERE state =
 *    'active' does the same for a client that asked at both.
 *  - every row has a version `ver`. This module remembers the version of
 *    every row it loaded or wrote (a hash, id -> ver); UPDATE and DELETE
 *    carry it (WHERE ver = known), so a write decided on a stale memory
 *    (another instance renewed, released or expired the row since) changes
 *    nothing and fails the batch.
 *  - a batch is one transaction (group commit, as with SQLite, committed
 *    with synchronous_commit on before any reply goes out); a conflict
 *    fails the whole batch. store.c then fails it and every batch queued
 *    after it, dstmd refuses what waited on them (TSP 530, DHCPv6
 *    NoAddrsAvail: the clients ask again), probes, and reloads the leases
 *    from the database, which now hold the other instance's rows. Nothing
 *    is acknowledged that is not committed, and nothing committed is
 *    overwritten by a stale decision.
 *  - each commit NOTIFYs channel dstm_lease. The writer thread LISTENs
 *    while idle; another backend's notification makes dstmd reload its
 *    memory at the next moment no batch is in flight (dstmd.c), so a
 *    client renews, releases or is revoked at whichever instance it
 *    reaches, usually without a conflict first.
 *  - expiry runs at one instance: the one whose connection holds the
 *    session advisory lock STORE_PG_EXPIRY_LOCK (tried while idle; it goes
 *    with the connection, so a dead instance hands it over). Should two
 *    ever believe they hold it, the versions still make one of them fail.
 *  - the schema is created and versioned by dstmd (table dstm_meta),
 *    under a transaction-scoped advisory lock so that two instances
 *    starting together do not both create it.
 * A lost connection fails the batch like a conflict; the probe reconnects
 * (PQreset) once a second, and until it commits dstmd refuses changes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_pg.h"

#define STORE_PG_SCHEMA_VERSION 1
/* Advisory lock keys: "dstm" and "dstx" as integers. */
#define STORE_PG_SCHEMA_LOCK 0x6473746dLL
#define STORE_PG_EXPIRY_LOCK 0x64737478LL
/* How often the idle writer retries a broken connection or the expiry lock. */
#define STORE_PG_RETRY_S 1

static const char schema_v1[] =
    "CREATE TABLE lease ("
    " id BIGINT PRIMARY KEY,"
    " identity TEXT NOT NULL,"
    " v6 TEXT NOT NULL,"
    " v4 BIGINT NOT NULL CHECK (v4 BETWEEN 0 AND 4294967295),"
    " port_lo INTEGER NOT NULL CHECK (port_lo BETWEEN 0 AND 65535),"
    " port_hi INTEGER NOT NULL CHECK (port_hi BETWEEN port_lo AND 65535),"
    " pool TEXT NOT NULL,"
    " tep TEXT NOT NULL,"
    " start BIGINT NOT NULL,"
    " expiry BIGINT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('active', 'quarantine')),"
    " quarantine_until BIGINT NOT NULL DEFAULT 0,"
    " ver BIGINT NOT NULL DEFAULT 1,"
    " CHECK (id = v4 * 65536 + port_lo));"
    "CREATE UNIQUE INDEX lease_active_identity ON lease (identity) WHERE state = 'active';"
    "CREATE TABLE history ("
    " seq BIGSERIAL PRIMARY KEY,"
    " t BIGINT NOT NULL,"
    " event INTEGER NOT NULL,"
    " v4 BIGINT NOT NULL,"
    " port_lo INTEGER NOT NULL,"
    " port_hi INTEGER NOT NULL,"
    " identity TEXT NOT NULL,"
    " v6 TEXT NOT NULL,"
    " start BIGINT NOT NULL,"
    " expiry BIGINT NOT NULL);"
    "INSERT INTO dstm_meta (k, v) VALUES ('schema', 1);";

/* id -> version of every row this instance knows, open addressing. */
struct vmap {
	int64_t *id, *ver; /* ver 0: empty slot */
	size_t cap, n;
};

struct store_pg {
	char *conninfo;
	PGconn *c;
	PGconn *rc; /* history scans, opened when first needed */
	pthread_mutex_t mu;
	struct vmap vm;
	bool vm_valid; /* false after a failed batch, until spg_load */
	bool in_tx;
	volatile bool owner; /* holds STORE_PG_EXPIRY_LOCK */
	time_t last_try;
	char errmsg[256];
};

static uint64_t
vm_hash(int64_t id)
{
	return (uint64_t)id * 0x9E3779B97F4A7C15ULL;
}

static void vm_put(struct vmap *m, int64_t id, int64_t ver);

static int
vm_grow(struct vmap *m)
{
	struct vmap n = {.cap = m->cap ? m->cap * 2 : 1024};

	if (!(n.id = calloc(n.cap, sizeof(*n.id))) || !(n.ver = calloc(n.cap, sizeof(*n.ver)))) {
		free(n.id);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->ver[i])
			vm_put(&n, m->id[i], m->ver[i]);
	free(m->id);
	free(m->ver);
	*m = n;
	return 0;
}

static size_t
vm_find(const struct vmap *m, int64_t id)
{
	size_t i = vm_hash(id) & (m->cap - 1);

	while (m->ver[i] && m->id[i] != id)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void
vm_put(struct vmap *m, int64_t id, int64_t ver)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && vm_grow(m) < 0)
		return; /* without memory the row is unknown: its next write fails, then a reload */
	i = vm_find(m, id);
	if (!m->ver[i])
		m->n++;
	m->id[i] = id;
	m->ver[i] = ver;
}

static int64_t
vm_get(const struct vmap *m, int64_t id)
{
	return m->cap ? m->ver[vm_find(m, id)] : 0;
}

/* Removal with backward shift: the probe chains stay whole without tombstones. */
static void
vm_del(struct vmap *m, int64_t id)
{
	size_t i, j;

	if (!m->cap || !m->ver[i = vm_find(m, id)])
		return;
	m->ver[i] = 0;
	m->n--;
	for (j = (i + 1) & (m->cap - 1); m->ver[j]; j = (j + 1) & (m->cap - 1)) {
		size_t h = vm_hash(m->id[j]) & (m->cap - 1);

		/* Move j back to the hole when its home is not in (i, j]. */
		if ((i < j && (h <= i || h > j)) || (i > j && h <= i && h > j)) {
			m->id[i] = m->id[j];
			m->ver[i] = m->ver[j];
			m->ver[j] = 0;
			i = j;
		}
	}
}

static void
vm_clear(struct vmap *m)
{
	if (m->cap)
		memset(m->ver, 0, m->cap * sizeof(*m->ver));
	m->n = 0;
}

static void
seterr(struct store_pg *pg, const char *what, PGconn *c, const PGresult *r)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);

	snprintf(pg->errmsg, sizeof(pg->errmsg), "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/* Run a statement; 0, -EEXIST (unique violation) or -EIO, with the message. */
static int
run(struct store_pg *pg, const char *what, const char *sql, int n, const char *const *v,
    PGresult **out)
{
	/* Without parameters, PQexec: the schema is several statements in one string. */
	PGresult *r = n ? PQexecParams(pg->c, sql, n, NULL, v, NULL, NULL, 0) : PQexec(pg->c, sql);
	ExecStatusType s = PQresultStatus(r);
	int rc = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		seterr(pg, what, pg->c, r);
		rc = state && strcmp(state, "23505") == 0 ? -EEXIST : -EIO;
	}
	if (out && rc == 0)
		*out = r;
	else
		PQclear(r);
	return rc;
}

static int
listen_and_prepare(struct store_pg *pg)
{
	if (run(pg, "listen", "LISTEN dstm_lease", 0, NULL, NULL) < 0)
		return -EIO;
	pg->owner = false; /* a new session holds no lock */
	return 0;
}

static int
schema(struct store_pg *pg, char *err, size_t errlen)
{
	PGresult *r = NULL;
	char lock[32];
	const char *v[1] = {lock};
	long version = 0;

	snprintf(lock, sizeof(lock), "%lld", STORE_PG_SCHEMA_LOCK);
	if (run(pg, "begin", "BEGIN", 0, NULL, NULL) < 0 ||
	    run(pg, "schema lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1, v, NULL) < 0 ||
	    run(pg, "schema",
	        "CREATE TABLE IF NOT EXISTS dstm_meta (k TEXT PRIMARY KEY, v BIGINT NOT NULL)", 0,
	        NULL, NULL) < 0 ||
	    run(pg, "schema", "SELECT v FROM dstm_meta WHERE k = 'schema'", 0, NULL, &r) < 0)
		goto fail;
	if (PQntuples(r) == 1)
		version = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (version > STORE_PG_SCHEMA_VERSION) {
		snprintf(pg->errmsg, sizeof(pg->errmsg),
		         "lease database schema %ld is newer than this dstmd's (%d); run the newer "
		         "dstmd",
		         version, STORE_PG_SCHEMA_VERSION);
		goto fail;
	}
	if (version == 0 && run(pg, "creating the schema", schema_v1, 0, NULL, NULL) < 0)
		goto fail;
	if (run(pg, "commit", "COMMIT", 0, NULL, NULL) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "postgresql: %s", pg->errmsg);
	(void)run(pg, "rollback", "ROLLBACK", 0, NULL, NULL);
	return -EIO;
}

static void
quiet(void *arg, const char *message)
{
}

struct store_pg *
spg_open(const char *conninfo, char *err, size_t errlen)
{
	struct store_pg *pg = calloc(1, sizeof(*pg));

	if (!pg || !(pg->conninfo = strdup(conninfo))) {
		free(pg);
		snprintf(err, errlen, "postgresql: out of memory");
		return NULL;
	}
	pthread_mutex_init(&pg->mu, NULL);
	pg->vm_valid = true; /* empty: a row is known once loaded or written here */
	pg->c = PQconnectdb(conninfo);
	/* NOTICEs ("already exists, skipping") are not for dstmd's stderr. */
	PQsetNoticeProcessor(pg->c, quiet, NULL);
	if (PQstatus(pg->c) != CONNECTION_OK) {
		seterr(pg, "connecting", pg->c, NULL);
		snprintf(err, errlen, "postgresql: %s", pg->errmsg);
		spg_close(pg);
		return NULL;
	}
	if (schema(pg, err, errlen) < 0)
		goto fail;
	if (listen_and_prepare(pg) < 0) {
		snprintf(err, errlen, "postgresql: %s", pg->errmsg);
		goto fail;
	}
	return pg;
fail:
	spg_close(pg);
	return NULL;
}

void
spg_close(struct store_pg *pg)
{
	if (!pg)
		return;
	PQfinish(pg->c);
	if (pg->rc)
		PQfinish(pg->rc);
	pthread_mutex_destroy(&pg->mu);
	free(pg->vm.id);
	free(pg->vm.ver);
	free(pg->conninfo);
	free(pg);
}

const char *
spg_errmsg(const struct store_pg *pg)
{
	return pg->errmsg;
}

/*
 * With mu held: the connection, reset if it broke (the probe's way back
 * after PostgreSQL restarted or the network broke); 0, or -EIO with the
 * reason in errmsg.
 */
static int
reconnect(struct store_pg *pg)
{
	if (PQstatus(pg->c) == CONNECTION_OK)
		return 0;
	PQreset(pg->c);
	if (PQstatus(pg->c) != CONNECTION_OK || listen_and_prepare(pg) < 0) {
		seterr(pg, "reconnecting", pg->c, NULL);
		return -EIO;
	}
	return 0;
}

static int64_t
num(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int
spg_load(struct store_pg *pg, int (*cb)(void *arg, const struct lease_row *row), void *arg)
{
	PGresult *r = NULL;
	int ret = 0;

	pthread_mutex_lock(&pg->mu);
	if (reconnect(pg) < 0) {
		pthread_mutex_unlock(&pg->mu);
		return -EIO;
	}
	if (run(pg, "loading leases",
	        "SELECT id, identity, v6, v4, port_lo, port_hi, pool, tep, start, expiry, state, "
	        "quarantine_until, ver FROM lease ORDER BY id",
	        0, NULL, &r) < 0) {
		pthread_mutex_unlock(&pg->mu);
		return -EIO;
	}
	vm_clear(&pg->vm);
	for (int i = 0; i < PQntuples(r); i++) {
		struct lease_row row = {0};

		row.id = num(r, i, 0);
		row.identity = PQgetvalue(r, i, 1);
		row.v4 = (uint32_t)num(r, i, 3);
		row.port_lo = (uint16_t)num(r, i, 4);
		row.port_hi = (uint16_t)num(r, i, 5);
		row.pool = PQgetvalue(r, i, 6);
		row.tep = PQgetvalue(r, i, 7);
		row.start = num(r, i, 8);
		row.expiry = num(r, i, 9);
		row.state = strcmp(PQgetvalue(r, i, 10), "quarantine") == 0 ? LEASE_QUARANTINE
		                                                            : LEASE_ACTIVE;
		row.quarantine_until = num(r, i, 11);
		if (inet_pton(AF_INET6, PQgetvalue(r, i, 2), &row.v6) != 1) {
			snprintf(pg->errmsg, sizeof(pg->errmsg), "lease row %lld is malformed",
			         (long long)row.id);
			ret = -EIO;
			break;
		}
		vm_put(&pg->vm, row.id, num(r, i, 12));
		if ((ret = cb(arg, &row)) != 0)
			break;
	}
	PQclear(r);
	pg->vm_valid = ret == 0;
	pthread_mutex_unlock(&pg->mu);
	return ret;
}

int
spg_begin(struct store_pg *pg)
{
	pthread_mutex_lock(&pg->mu);
	if (reconnect(pg) < 0) {
		pthread_mutex_unlock(&pg->mu);
		return -EIO;
	}
	if (run(pg, "begin", "BEGIN", 0, NULL, NULL) < 0) {
		pthread_mutex_unlock(&pg->mu);
		return -EIO;
	}
	pg->in_tx = true;
	return 0; /* the mutex is held until commit or rollback */
}

/* The ten text parameters of a row, in the order of the statements below. */
struct rowtext {
	char v6[INET6_ADDRSTRLEN], v4[16], lo[8], hi[8], start[24], expiry[24], qu[24], id[24],
	    ver[24];
	const char *v[12];
};

static void
rowtext(struct rowtext *t, const struct lease_row *r)
{
	inet_ntop(AF_INET6, &r->v6, t->v6, sizeof(t->v6));
	snprintf(t->v4, sizeof(t->v4), "%u", r->v4);
	snprintf(t->lo, sizeof(t->lo), "%u", r->port_lo);
	snprintf(t->hi, sizeof(t->hi), "%u", r->port_hi);
	snprintf(t->start, sizeof(t->start), "%lld", (long long)r->start);
	snprintf(t->expiry, sizeof(t->expiry), "%lld", (long long)r->expiry);
	snprintf(t->qu, sizeof(t->qu), "%lld", (long long)r->quarantine_until);
	snprintf(t->id, sizeof(t->id), "%lld", (long long)r->id);
	t->v[0] = r->identity;
	t->v[1] = t->v6;
	t->v[2] = t->v4;
	t->v[3] = t->lo;
	t->v[4] = t->hi;
	t->v[5] = r->pool;
	t->v[6] = r->tep;
	t->v[7] = t->start;
	t->v[8] = t->expiry;
	t->v[9] = r->state == LEASE_QUARANTINE ? "quarantine" : "active";
	t->v[10] = t->qu;
	t->v[11] = t->id;
}

int
spg_insert(struct store_pg *pg, const struct lease_row *row)
{
	struct rowtext t;
	int rc;

	rowtext(&t, row);
	rc = run(pg, "insert",
	         "INSERT INTO lease (identity, v6, v4, port_lo, port_hi, pool, tep, start, expiry, "
	         "state, quarantine_until, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
	         "$11, $12)",
	         12, t.v, NULL);
	if (rc == -EEXIST)
		snprintf(pg->errmsg, sizeof(pg->errmsg),
		         "insert: address %s port %u or identity %s is taken (another instance)",
		         t.v4, row->port_lo, row->identity);
	if (rc == 0)
		vm_put(&pg->vm, row->id, 1);
	return rc;
}

int
spg_update(struct store_pg *pg, const struct lease_row *row)
{
	struct rowtext t;
	const char *v[13];
	PGresult *r = NULL;
	int64_t ver = pg->vm_valid ? vm_get(&pg->vm, row->id) : 0;
	int rc;

	if (!ver) {
		snprintf(pg->errmsg, sizeof(pg->errmsg),
		         "update: lease row %lld unknown here (changed by another instance)",
		         (long long)row->id);
		return -ESTALE;
	}
	rowtext(&t, row);
	snprintf(t.ver, sizeof(t.ver), "%lld", (long long)ver);
	memcpy(v, t.v, sizeof(t.v));
	v[12] = t.ver;
	/* start is not rewritten ($8 is unused but sent, for one parameter layout). */
	rc = run(pg, "update",
	         "UPDATE lease SET identity = $1, v6 = $2, pool = $6, tep = $7, expiry = $9, "
	         "state = $10, quarantine_until = $11, ver = ver + 1 WHERE id = $12 AND v4 = $3 "
	         "AND port_lo = $4 AND port_hi = $5 AND ver = $13 AND $8::bigint IS NOT NULL",
	         13, v, &r);
	if (rc < 0)
		return rc;
	if (strcmp(PQcmdTuples(r), "1") != 0) {
		PQclear(r);
		snprintf(pg->errmsg, sizeof(pg->errmsg),
		         "update: lease row %lld was changed by another instance",
		         (long long)row->id);
		return -ESTALE;
	}
	PQclear(r);
	vm_put(&pg->vm, row->id, ver + 1);
	return 0;
}

int
spg_delete(struct store_pg *pg, int64_t id)
{
	char sid[24], sver[24];
	const char *v[2] = {sid, sver};
	PGresult *r = NULL;
	int64_t ver = pg->vm_valid ? vm_get(&pg->vm, id) : 0;
	int rc;

	if (!ver) {
		snprintf(pg->errmsg, sizeof(pg->errmsg),
		         "delete: lease row %lld unknown here (changed by another instance)",
		         (long long)id);
		return -ESTALE;
	}
	snprintf(sid, sizeof(sid), "%lld", (long long)id);
	snprintf(sver, sizeof(sver), "%lld", (long long)ver);
	if ((rc = run(pg, "delete", "DELETE FROM lease WHERE id = $1 AND ver = $2", 2, v, &r)) < 0)
		return rc;
	if (strcmp(PQcmdTuples(r), "1") != 0) {
		PQclear(r);
		snprintf(pg->errmsg, sizeof(pg->errmsg),
		         "delete: lease row %lld was changed by another instance", (long long)id);
		return -ESTALE;
	}
	PQclear(r);
	vm_del(&pg->vm, id);
	return 0;
}

int
spg_history(struct store_pg *pg, int event, int64_t t, const struct lease_row *row)
{
	struct rowtext rt;
	char st[24], sev[8];
	const char *v[9];

	rowtext(&rt, row);
	snprintf(st, sizeof(st), "%lld", (long long)t);
	snprintf(sev, sizeof(sev), "%d", event);
	v[0] = st;
	v[1] = sev;
	v[2] = rt.v4;
	v[3] = rt.lo;
	v[4] = rt.hi;
	v[5] = row->identity;
	v[6] = rt.v6;
	v[7] = rt.start;
	v[8] = rt.expiry;
	return run(pg, "history",
	           "INSERT INTO history (t, event, v4, port_lo, port_hi, identity, v6, start, "
	           "expiry) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
	           9, v, NULL) < 0
	           ? -EIO
	           : 0;
}

int
spg_prune(struct store_pg *pg, int64_t before, unsigned max)
{
	char sb[24], sm[16];
	const char *v[2] = {sb, sm};

	snprintf(sb, sizeof(sb), "%lld", (long long)before);
	snprintf(sm, sizeof(sm), "%u", max);
	/* The oldest rows are at the head of seq: look at `max` of them, never the whole table. */
	return run(pg, "pruning history",
	           "DELETE FROM history WHERE seq IN (SELECT seq FROM history ORDER BY seq LIMIT "
	           "$2) AND t < $1",
	           2, v, NULL) < 0
	           ? -EIO
	           : 0;
}

int
spg_probe(struct store_pg *pg)
{
	return run(pg, "probe", "UPDATE dstm_meta SET v = v WHERE k = 'schema'", 0, NULL, NULL) < 0
	           ? -EIO
	           : 0;
}

int
spg_commit(struct store_pg *pg)
{
	int rc;

	/* Delivered to the listeners only if the transaction commits. */
	rc = run(pg, "notify", "NOTIFY dstm_lease", 0, NULL, NULL);
	if (rc == 0)
		rc = run(pg, "commit", "COMMIT", 0, NULL, NULL);
	if (rc < 0) {
		spg_rollback(pg);
		return -EIO;
	}
	pg->in_tx = false;
	pthread_mutex_unlock(&pg->mu);
	return 0;
}

void
spg_rollback(struct store_pg *pg)
{
	if (!pg->in_tx)
		return;
	if (PQstatus(pg->c) == CONNECTION_OK)
		PQclear(PQexec(pg->c, "ROLLBACK"));
	/* The versions written in the failed transaction are unknown now: reload first. */
	pg->vm_valid = false;
	pg->in_tx = false;
	pthread_mutex_unlock(&pg->mu);
}

int
spg_history_scan(struct store_pg *pg, int64_t after, unsigned max,
                 int (*cb)(void *arg, const struct history_row *h), void *arg, int64_t *next)
{
	char sa[24], sm[16];
	const char *v[2] = {sa, sm};
	PGresult *r;
	int ret = 0, n;

	*next = 0;
	if (!pg->rc || PQstatus(pg->rc) != CONNECTION_OK) {
		if (pg->rc)
			PQreset(pg->rc);
		else
			pg->rc = PQconnectdb(pg->conninfo);
		PQsetNoticeProcessor(pg->rc, quiet, NULL);
		if (PQstatus(pg->rc) != CONNECTION_OK) {
			seterr(pg, "reading history", pg->rc, NULL);
			return -EIO;
		}
	}
	snprintf(sa, sizeof(sa), "%lld", (long long)after);
	snprintf(sm, sizeof(sm), "%u", max);
	r = PQexecParams(pg->rc,
	                 "SELECT seq, t, event, v4, port_lo, port_hi, identity, v6, start, expiry "
	                 "FROM history WHERE seq > $1 ORDER BY seq LIMIT $2",
	                 2, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		seterr(pg, "reading history", pg->rc, r);
		PQclear(r);
		return -EIO;
	}
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		struct history_row h = {0};

		h.seq = num(r, i, 0);
		h.t = num(r, i, 1);
		h.event = (enum lease_event)num(r, i, 2);
		h.v4 = (uint32_t)num(r, i, 3);
		h.port_lo = (uint16_t)num(r, i, 4);
		h.port_hi = (uint16_t)num(r, i, 5);
		h.identity = PQgetvalue(r, i, 6);
		h.start = num(r, i, 8);
		h.expiry = num(r, i, 9);
		*next = h.seq;
		if (inet_pton(AF_INET6, PQgetvalue(r, i, 7), &h.v6) != 1)
			continue; /* damaged: skipped, the scan goes on */
		if ((ret = cb(arg, &h)) != 0)
			break;
	}
	PQclear(r);
	if (ret == 0 && (unsigned)n < max)
		*next = 0;
	return ret;
}

bool
spg_idle(struct store_pg *pg)
{
	bool foreign = false;
	time_t now = time(NULL);
	PGnotify *n;

	pthread_mutex_lock(&pg->mu);
	if (PQstatus(pg->c) == CONNECTION_OK && PQconsumeInput(pg->c) == 0)
		pg->owner = false; /* the connection broke: PQstatus says so now */
	if (PQstatus(pg->c) != CONNECTION_OK) {
		pg->owner = false;
		/*
		 * An idle instance reconnects by itself (a busy one's batch fails
		 * and its probe does it). The other instances' notifications sent
		 * meanwhile are lost: say "changed" so that dstmd reloads.
		 */
		if (now - pg->last_try >= STORE_PG_RETRY_S) {
			pg->last_try = now;
			PQreset(pg->c);
			foreign = PQstatus(pg->c) == CONNECTION_OK && listen_and_prepare(pg) == 0;
		}
		pthread_mutex_unlock(&pg->mu);
		return foreign;
	}
	while ((n = PQnotifies(pg->c))) {
		if (n->be_pid != PQbackendPID(pg->c))
			foreign = true;
		PQfreemem(n);
	}
	if (!pg->owner && now - pg->last_try >= STORE_PG_RETRY_S) {
		char lock[32];
		const char *v[1] = {lock};
		PGresult *r = NULL;

		pg->last_try = now;
		snprintf(lock, sizeof(lock), "%lld", STORE_PG_EXPIRY_LOCK);
		if (run(pg, "expiry lock", "SELECT pg_try_advisory_lock($1::bigint)", 1, v, &r) ==
		    0) {
			pg->owner = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
			PQclear(r);
		}
	}
	pthread_mutex_unlock(&pg->mu);
	return foreign;
}

bool
spg_expiry_owner(const struct store_pg *pg)
{
	return pg->owner;
}
