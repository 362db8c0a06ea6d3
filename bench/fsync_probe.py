#!/usr/bin/env python3
"""The disk's own limit for a durable commit: how many write + fdatasync
cycles per second one writer gets in DIRECTORY (put it on the filesystem
of the database being measured), measured two ways:

- overwrite: each cycle overwrites the next 4 KiB block of a preallocated
  4 MiB file, as SQLite appends WAL frames to a WAL it reuses (after a
  checkpoint it writes from the start of the file again), then
  fdatasyncs it. Only data moves: this is the cheapest durable append
  there is, the figure a commit is held to.
- append: each cycle writes 4 KiB at the end of a file that grows, then
  fdatasyncs it. The file's size changes with every cycle, so fdatasync
  must also write the inode (on ext4 without a journal, a second write
  that waits for the first): what a durable append costs when the log
  is not preallocated, e.g. a fresh WAL before it reached its limit.

Prints "fdatasync/s R latency_us L cycles N" (overwrite), then
"append+fdatasync/s R latency_us L cycles N".

usage: bench/fsync_probe.py DIRECTORY [SECONDS]
"""
import os
import sys
import time


def cycles(fd, secs, size):
    """write + fdatasync for `secs`: over [0, size) in turn, or appending if size is 0."""
    blk = b"\x5a" * 4096
    n, off, t0 = 0, 0, time.monotonic()
    while True:
        os.pwrite(fd, blk, off)
        os.fdatasync(fd)
        n += 1
        off += 4096
        if size:
            off %= size
        dt = time.monotonic() - t0
        if dt >= secs:
            return n, dt


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    path = os.path.join(sys.argv[1], "fsync-probe.%d" % os.getpid())
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = 4 << 20
        for off in range(0, size, 1 << 20):
            os.pwrite(fd, b"\0" * (1 << 20), off)
        os.fsync(fd)  # the file's size and blocks are on disk: only data moves below
        n, dt = cycles(fd, secs, size)
        print("fdatasync/s %.1f latency_us %.1f cycles %d" % (n / dt, dt / n * 1e6, n))
        os.ftruncate(fd, 0)
        os.fsync(fd)
        n, dt = cycles(fd, secs, 0)
        print("append+fdatasync/s %.1f latency_us %.1f cycles %d" % (n / dt, dt / n * 1e6, n))
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
