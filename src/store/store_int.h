/*
 * What the lease store's files share and its users never see: the store
 * itself, and the batch of writes that store.c records and the writer
 * thread (store_writer.c) commits.
 */
#ifndef DSTM_STORE_INT_H
#define DSTM_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* One write recorded for the writer thread; its strings live in `strs`. */
struct op {
	enum { OP_INSERT, OP_UPDATE, OP_DELETE, OP_HISTORY, OP_PRUNE, OP_PROBE } kind;
	struct lease_row row;
	int64_t t; /* OP_HISTORY: the event's time; OP_PRUNE: the cut-off */
	int event; /* OP_HISTORY: enum lease_event; OP_PRUNE: the most rows to delete */
	char *strs;
};

/* The writes of one event-loop turn: one transaction. */
struct batch {
	struct batch *next;
	uint64_t ticket;
	struct op *ops;
	size_t n, cap;
	/*
	 * The last op of each lease row, by row id (open addressing, op index
	 * + 1, 0 empty; nidx slots, a power of two): a row written twice in
	 * one batch is written once (store_batch_add).
	 */
	uint32_t *idx;
	size_t nidx;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *ins, *upd, *del, *sel, *begin, *commit, *rollback, *hist, *prune, *probe;
	sqlite3 *rdb;        /* read-only, for the control socket's queries */
	sqlite3_stmt *hscan; /* on rdb */
	int lockfd;          /* flock'd: one process per database */
	bool in_tx;
	char errmsg[256];
	/* The writer thread (store_async_start). */
	bool async;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *open;          /* being filled by the loop */
	struct batch *qhead, *qtail; /* queued for the writer (mu) */
	uint64_t issued;             /* last ticket handed out */
	uint64_t durable;            /* last ticket committed (mu) */
	bool stop, failed;           /* (mu) */
	bool busy;                   /* the writer holds a batch (mu) */
	int efd;
	/* Small batches committed in the caller's thread (store_writer.c commit_inline). */
	bool inline_commit;      /* one is being committed now (the caller's thread only) */
	bool checkpoint_due;     /* it filled the WAL: the next batch goes to the writer (atomic) */
	uint64_t inline_commits; /* (mu) */
	int64_t last_commit_us;  /* how long the last batch took to commit (atomic) */
	/*
	 * PostgreSQL instead of the file (store_open_pg): every write goes
	 * through a batch, also before the writer thread starts, and the batch
	 * is one transaction there (store_pg.c).
	 */
	struct store_pg *pg;
	bool foreign;  /* another instance committed (set by the writer thread, atomically) */
	bool conflict; /* the last failed batch conflicted with another instance (atomic) */
};

/* store.c: one statement stepped to its end; -EIO and the store's message on error. */
int store_step_done(struct store *st, sqlite3_stmt *s, const char *what);
/* store.c: one recorded write applied to the SQLite file. */
int store_apply_op(struct store *st, const struct op *o);
/* store_writer.c: the batches of writes. */
int store_batch_add(struct store *st, const struct op *op);
void store_batch_free(struct batch *b);
int store_apply_batch(struct store *st, const struct batch *b);
/* store_writer.c: checkpoints the WAL every STORE_CHECKPOINT_PAGES, in the writer thread. */
#define STORE_CHECKPOINT_PAGES 4000
int store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages);
/* store_vfs.c: the VFS the writing connection uses (a commit's WAL frames in one write). */
#define STORE_VFS "dstm-wal"
int store_vfs_register(void);

#endif
