#!/usr/bin/env python3
"""The disk's own limit for a durable commit: how many write + fdatasync
cycles per second one writer gets in DIRECTORY (put it on the filesystem
of the database being measured). Each cycle overwrites the next 4 KiB
block of a preallocated 4 MiB file, as SQLite appends WAL frames to a WAL
it reuses, then fdatasyncs it. Prints "fdatasync/s R latency_us L cycles N".

usage: bench/fsync_probe.py DIRECTORY [SECONDS]
"""
import os
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    path = os.path.join(sys.argv[1], "fsync-probe.%d" % os.getpid())
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        blk, size = b"\x5a" * 4096, 4 << 20
        for off in range(0, size, 1 << 20):
            os.pwrite(fd, b"\0" * (1 << 20), off)
        os.fsync(fd)  # the file's size and blocks are on disk: only data moves below
        n, off, t0 = 0, 0, time.monotonic()
        while True:
            os.pwrite(fd, blk, off)
            os.fdatasync(fd)
            n += 1
            off = (off + 4096) % size
            dt = time.monotonic() - t0
            if dt >= secs:
                break
        print("fdatasync/s %.1f latency_us %.1f cycles %d" % (n / dt, dt / n * 1e6, n))
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
