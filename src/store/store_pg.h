/*
 * The PostgreSQL backend of the lease store (store_pg.c), used by store.c
 * when the configuration names a PostgreSQL database instead of a file.
 * store.c keeps the batches, the writer thread and the tickets; this
 * module runs one batch as one transaction on its connection, loads the
 * rows, scans the history and watches for the other instances' commits.
 * Every function is called by one thread at a time for a given
 * connection (a mutex inside serialises the writer thread's idle work
 * with the event loop's loads).
 */
#ifndef DSTM_STORE_PG_H
#define DSTM_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_pg;

/* Connect, create or check the schema. NULL with a message in err. */
struct store_pg *spg_open(const char *conninfo, char *err, size_t errlen);
void spg_close(struct store_pg *pg);
const char *spg_errmsg(const struct store_pg *pg);

int spg_load(struct store_pg *pg, int (*cb)(void *arg, const struct lease_row *row), void *arg);

/* One batch: begin, the writes, commit (0) or -EIO/-EEXIST/-ESTALE and rolled back. */
int spg_begin(struct store_pg *pg);
int spg_insert(struct store_pg *pg, const struct lease_row *row);
int spg_update(struct store_pg *pg, const struct lease_row *row);
int spg_delete(struct store_pg *pg, int64_t id);
int spg_history(struct store_pg *pg, int event, int64_t t, const struct lease_row *row);
int spg_prune(struct store_pg *pg, int64_t before, unsigned max);
int spg_probe(struct store_pg *pg);
int spg_commit(struct store_pg *pg);
void spg_rollback(struct store_pg *pg);

int spg_history_scan(struct store_pg *pg, int64_t after, unsigned max,
                     int (*cb)(void *arg, const struct history_row *h), void *arg, int64_t *next);

/*
 * The writer thread's work while no batch is queued: read notifications
 * (true when another instance committed since the last call), reconnect
 * a broken connection, and try to become the instance that runs expiry.
 */
bool spg_idle(struct store_pg *pg);
/* This instance holds the expiry lock (on its live connection). */
bool spg_expiry_owner(const struct store_pg *pg);

#endif
