/*
 * A thin SQLite VFS over the default one (unix) that writes a commit's WAL
 * frames with one pwrite. SQLite writes every frame as two writes, its
 * 24-byte header and the page, one after the other at the end of the log;
 * a grant (the lease page and the history page) is four pwrite calls, a
 * group commit of a hundred leases a dozen or more. Here the writes to
 * the WAL file that follow each other are gathered in memory and written
 * at once when the commit frame is complete (before SQLite syncs the log
 * and publishes the frames), before anything reads the range back, and
 * whenever the run breaks (a write elsewhere, a truncate, the size asked,
 * a sync, the file closed). Nothing is
 * acknowledged by SQLite before its sync, and the sync writes first, so the
 * durability promise is unchanged; a crash loses only what was never
 * synced, which SQLite does not count on. The main database file and
 * every other file go straight through.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Gathered at most (a reload, a conversion; a commit is far smaller), then written. */
#define WAL_BUF_MAX (4u << 20)
/* A WAL frame's header (wal.c WAL_FRAME_HDRSIZE). */
#define WAL_FRAME_HDR 24
/* The WAL grows by this much of zeros at once: one size change (inode write) per ~120 grants. */
#define WAL_GROW (1u << 20)

struct wfile {
	sqlite3_file base;
	sqlite3_file *real; /* the unix file, in the same allocation, after this */
	bool wal;
	bool commit_page;   /* the next write is the page of a commit frame */
	unsigned char *buf; /* bytes [off, off + len) of the file, not written yet */
	size_t len, cap;
	sqlite3_int64 off;
	sqlite3_int64 size; /* the WAL file's size as we last made or saw it, -1 unknown */
};

static sqlite3_vfs vfs;

static sqlite3_vfs *
real_vfs(void)
{
	return vfs.pAppData;
}

/*
 * The unix VFS writes at most this much in one call (os_unix.c cuts the
 * length to 17 bits and calls the rest a full disk): up to 31 frames of
 * 4 KiB pages, a group commit of a hundred-odd leases.
 */
#define UNIX_WRITE_MAX 0x1ffff

/*
 * A WAL write is to end at `end`: if that is past the file's end, the
 * file first grows with zeros to the WAL_GROW boundary after it, so that
 * the next commits overwrite and their syncs move data only. Best effort:
 * on a failure the file is cut back to its size, and the write extends
 * it as before.
 */
static void
grow(struct wfile *f, sqlite3_int64 end)
{
	/* As large as the unix VFS writes in one call (UNIX_WRITE_MAX), in whole pages. */
	static const unsigned char zeros[0x1f000];
	sqlite3_int64 to = (end + WAL_GROW - 1) / WAL_GROW * WAL_GROW, at;

	if (f->size < 0 && f->real->pMethods->xFileSize(f->real, &f->size) != SQLITE_OK)
		f->size = -1;
	if (f->size < 0 || end <= f->size)
		return;
	at = f->size > end ? f->size : end;
	for (; at < to; at += (sqlite3_int64)sizeof(zeros)) {
		int n =
		    to - at < (sqlite3_int64)sizeof(zeros) ? (int)(to - at) : (int)sizeof(zeros);

		if (f->real->pMethods->xWrite(f->real, zeros, n, at) != SQLITE_OK) {
			/*
			 * A full disk: the zeros that fit would take the room the
			 * commit itself, the main file's checkpoint and the -shm
			 * need. Given back; the write then meets the disk as before.
			 */
			(void)f->real->pMethods->xTruncate(f->real, f->size);
			f->size = -1;
			return;
		}
	}
	f->size = to;
}

/* Write what is gathered, in as few calls as the unix VFS takes. */
static int
flush(struct wfile *f)
{
	int rc = SQLITE_OK;

	if (f->len)
		grow(f, f->off + (sqlite3_int64)f->len);

	for (size_t done = 0; done < f->len && rc == SQLITE_OK;) {
		size_t n = f->len - done < UNIX_WRITE_MAX ? f->len - done : UNIX_WRITE_MAX;

		rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
		                               f->off + (sqlite3_int64)done);
		done += n;
	}
	f->len = 0;
	return rc;
}

static int
w_close(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f), rc2 = f->real->pMethods->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
w_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 ofst)
{
	struct wfile *f = (struct wfile *)p;

	/* What SQLite reads back must be what it wrote. */
	if (f->len && ofst < f->off + (sqlite3_int64)f->len && ofst + amt > f->off) {
		int rc = flush(f);

		if (rc != SQLITE_OK)
			return rc;
	}
	return f->real->pMethods->xRead(f->real, out, amt, ofst);
}

static int
w_write(sqlite3_file *p, const void *in, int amt, sqlite3_int64 ofst)
{
	struct wfile *f = (struct wfile *)p;
	int rc;

	if (!f->wal)
		return f->real->pMethods->xWrite(f->real, in, amt, ofst);
	if (f->len &&
	    (ofst != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > WAL_BUF_MAX) &&
	    (rc = flush(f)) != SQLITE_OK)
		return rc;
	if ((size_t)amt > WAL_BUF_MAX) {
		grow(f, ofst + amt);
		return f->real->pMethods->xWrite(f->real, in, amt, ofst);
	}
	if (f->len + (size_t)amt > f->cap) {
		size_t cap = f->cap ? f->cap : 65536;
		unsigned char *b;

		while (cap < f->len + (size_t)amt)
			cap *= 2;
		if (!(b = realloc(f->buf, cap))) {
			/* No memory to gather: write as SQLite asked. */
			if ((rc = flush(f)) != SQLITE_OK)
				return rc;
			grow(f, ofst + amt);
			return f->real->pMethods->xWrite(f->real, in, amt, ofst);
		}
		f->buf = b;
		f->cap = cap;
	}
	if (f->len == 0)
		f->off = ofst;
	memcpy(f->buf + f->len, in, (size_t)amt);
	f->len += (size_t)amt;
	/*
	 * A frame header whose bytes 4-7 (the database's size after the
	 * commit) are not zero ends a transaction: SQLite publishes the frames
	 * in the WAL index next, with or without a sync (synchronous=NORMAL
	 * has none), and other connections read them through their own
	 * descriptors. So the commit frame's page is written at once; with
	 * FULL the sync that follows finds nothing left, still one pwrite.
	 */
	if (f->commit_page) {
		f->commit_page = false;
		return flush(f);
	}
	if (amt == WAL_FRAME_HDR) {
		const unsigned char *h = in;

		f->commit_page = (h[4] | h[5] | h[6] | h[7]) != 0;
	}
	return SQLITE_OK;
}

static int
w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	if (rc != SQLITE_OK)
		return rc;
	f->size = -1; /* asked again at the next growth */
	return f->real->pMethods->xTruncate(f->real, size);
}

static int
w_sync(sqlite3_file *p, int flags)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
w_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
w_lock(sqlite3_file *p, int l)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xLock(f->real, l);
}

static int
w_unlock(sqlite3_file *p, int l)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xUnlock(f->real, l);
}

static int
w_reserved(sqlite3_file *p, int *out)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int
w_fcntl(sqlite3_file *p, int op, void *arg)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
w_sector(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xSectorSize(f->real);
}

static int
w_devchar(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int
w_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

static int
w_shm_lock(sqlite3_file *p, int ofst, int n, int flags)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xShmLock(f->real, ofst, n, flags);
}

static void
w_shm_barrier(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;

	f->real->pMethods->xShmBarrier(f->real);
}

static int
w_shm_unmap(sqlite3_file *p, int del)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xShmUnmap(f->real, del);
}

static int
w_fetch(sqlite3_file *p, sqlite3_int64 ofst, int amt, void **out)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xFetch(f->real, ofst, amt, out);
}

static int
w_unfetch(sqlite3_file *p, sqlite3_int64 ofst, void *ptr)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xUnfetch(f->real, ofst, ptr);
}

static const sqlite3_io_methods methods = {
    .iVersion = 3,
    .xClose = w_close,
    .xRead = w_read,
    .xWrite = w_write,
    .xTruncate = w_truncate,
    .xSync = w_sync,
    .xFileSize = w_size,
    .xLock = w_lock,
    .xUnlock = w_unlock,
    .xCheckReservedLock = w_reserved,
    .xFileControl = w_fcntl,
    .xSectorSize = w_sector,
    .xDeviceCharacteristics = w_devchar,
    .xShmMap = w_shm_map,
    .xShmLock = w_shm_lock,
    .xShmBarrier = w_shm_barrier,
    .xShmUnmap = w_shm_unmap,
    .xFetch = w_fetch,
    .xUnfetch = w_unfetch,
};

static int
w_open(sqlite3_vfs *v, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	struct wfile *f = (struct wfile *)p;
	int rc;

	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = real_vfs()->xOpen(real_vfs(), name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || !f->real->pMethods) {
		/* SQLite calls no method of a file whose open failed. */
		f->base.pMethods = NULL;
		return rc;
	}
	/* Methods of version 3 are called on the real file: it must have them. */
	if (f->real->pMethods->iVersion < 3) {
		f->real->pMethods->xClose(f->real);
		f->base.pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	f->size = -1;
	f->base.pMethods = &methods;
	return SQLITE_OK;
}

static int
w_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return real_vfs()->xDelete(real_vfs(), name, sync_dir);
}

static int
w_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	return real_vfs()->xAccess(real_vfs(), name, flags, out);
}

static int
w_fullpath(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return real_vfs()->xFullPathname(real_vfs(), name, n, out);
}

static void *
w_dlopen(sqlite3_vfs *v, const char *name)
{
	return real_vfs()->xDlOpen(real_vfs(), name);
}

static void
w_dlerror(sqlite3_vfs *v, int n, char *out)
{
	real_vfs()->xDlError(real_vfs(), n, out);
}

static void (*w_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	return real_vfs()->xDlSym(real_vfs(), h, sym);
}

static void
w_dlclose(sqlite3_vfs *v, void *h)
{
	real_vfs()->xDlClose(real_vfs(), h);
}

static int
w_random(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs()->xRandomness(real_vfs(), n, out);
}

static int
w_sleep(sqlite3_vfs *v, int us)
{
	return real_vfs()->xSleep(real_vfs(), us);
}

static int
w_time(sqlite3_vfs *v, double *out)
{
	return real_vfs()->xCurrentTime(real_vfs(), out);
}

static int
w_lasterr(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs()->xGetLastError(real_vfs(), n, out);
}

static int
w_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	return real_vfs()->xCurrentTimeInt64(real_vfs(), out);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static void
register_once(void)
{
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);

	if (!real || real->iVersion < 2)
		return;
	vfs = (sqlite3_vfs){
	    .iVersion = 2,
	    .szOsFile = (int)sizeof(struct wfile) + real->szOsFile,
	    .mxPathname = real->mxPathname,
	    .zName = STORE_VFS,
	    .pAppData = real,
	    .xOpen = w_open,
	    .xDelete = w_delete,
	    .xAccess = w_access,
	    .xFullPathname = w_fullpath,
	    .xDlOpen = w_dlopen,
	    .xDlError = w_dlerror,
	    .xDlSym = w_dlsym,
	    .xDlClose = w_dlclose,
	    .xRandomness = w_random,
	    .xSleep = w_sleep,
	    .xCurrentTime = w_time,
	    .xGetLastError = w_lasterr,
	    .xCurrentTimeInt64 = w_time64,
	};
	registered = sqlite3_vfs_register(&vfs, 0);
}

int
store_vfs_register(void)
{
	pthread_once(&once, register_once);
	return registered == SQLITE_OK ? 0 : -EIO;
}
