#!/bin/bash
# What one commit of the lease store writes: dstmd runs under strace -f
# while tsp-load allocates N leases with 1 client (one lease a commit) and
# then with 100 (group commits); prints pwrite64 calls (all, and those to
# the WAL) and fdatasync calls per commit and per lease (lease_commits from
# dstmd's counters), counted up to the end of the load, before dstmd's exit
# checkpoints the WAL into the database file, and from the start of the
# load only: the start-up's own commits (the schema) are neither counted
# nor in lease_commits. SQLite writes a WAL frame (one page) as two
# writes, header and page; store_vfs.c makes a commit's frames one pwrite.
# The WAL's growth ahead of its frames (1 MiB of zeros, store_vfs.c) and
# the checkpoints are counted with the commits that caused them. N leases
# with 1 client, ten times N with 100 (so that there are enough commits to
# divide by). Figures only, never pass/fail; "BENCH " lines for
# scripts/bench.
#
# usage: bench/store_writes.sh [BUILD_DIR] [N]
set -eu
build=${1:-${DSTM_BUILD:-build}}
n=${2:-2000}
dstmd=$build/src/dstmd/dstmd
ctl=$build/src/ctl/dstmctl
load=$build/src/tsp/tsp-load
for p in "$dstmd" "$ctl" "$load"; do
	[ -x "$p" ] || { echo "bench: $p is not built (run scripts/build)" >&2; exit 2; }
done
command -v strace >/dev/null || { echo "bench: strace is missing" >&2; exit 2; }
tmp=$(mktemp -d /tmp/store-writes.XXXXXX)
spid=
cleanup() {
	[ -n "$spid" ] && kill "$(pgrep -P "$spid")" "$spid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))

echo "# lease store writes per commit ($(df -T /tmp | awk 'NR == 2 {print $2}') under /tmp), load $(cut -d' ' -f1-3 /proc/loadavg)"
for conc in 1 100; do
	rm -f "$tmp"/leases.db* "$tmp"/strace.txt
	cat >"$tmp/dstmd.json" <<JSON
{ "database": "$tmp/leases.db", "control": "$tmp/dstmd.sock", "user": "", "seccomp": false,
  "listen": [ { "address": "[::1]:$port" } ],
  "auth": { "mechanisms": ["ANONYMOUS"], "relays": ["::1"] },
  "pools": [ { "name": "bench", "prefixes": ["10.0.0.0/12"] } ],
  "teps": [ { "name": "tep1", "ipv6": "fd00:d57::2", "ipv4": "198.51.100.1" } ],
  "limits": { "connections": 20000 } }
JSON
	strace -f -y -e trace=pwrite64,fdatasync -o "$tmp/strace.txt" "$dstmd" -d -c "$tmp/dstmd.json" 2>"$tmp/dstmd.log" &
	spid=$!
	until "$ctl" -s "$tmp/dstmd.sock" status >/dev/null 2>&1; do
		kill -0 "$spid" 2>/dev/null || { cat "$tmp/dstmd.log" >&2; exit 1; }
		sleep 0.05
	done
	before=$("$ctl" -s "$tmp/dstmd.sock" --json counters | awk -F'[:,]' '/"lease_commits"/ {print $2 + 0}')
	# strace writes each call's line as it returns: what is there now is the start-up.
	skip=$(wc -l <"$tmp/strace.txt")
	"$load" -s "[::1]:$port" -c "$conc" -n "$((conc == 1 ? n : 10 * n))" >/dev/null || true
	commits=$(("$("$ctl" -s "$tmp/dstmd.sock" --json counters | awk -F'[:,]' '/"lease_commits"/ {print $2 + 0}')" - before))
	leases=$("$ctl" -s "$tmp/dstmd.sock" --json counters | awk -F'[:,]' '/"lease_allocations"/ {print $2 + 0}')
	# What the commits wrote, before dstmd's exit checkpoints the WAL into the file.
	sleep 0.2
	tail -n +"$((skip + 1))" "$tmp/strace.txt" >"$tmp/run.txt"
	# End dstmd, strace's child, so that strace writes its summary and ends too.
	kill "$(pgrep -P "$spid")" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
	pw=$(grep -c 'pwrite64(' "$tmp/run.txt" || true)
	wal=$(grep -c 'pwrite64([0-9]*<[^>]*-wal>' "$tmp/run.txt" || true)
	fs=$(grep -c 'fdatasync(' "$tmp/run.txt" || true)
	awk -v c="$conc" -v pw="${pw:-0}" -v wal="${wal:-0}" -v fs="${fs:-0}" -v k="$commits" -v l="$leases" 'BEGIN {
		printf "%4d clients: %d leases in %d commits: %.2f pwrite (%.2f to the WAL) and %.2f fdatasync a commit, %.2f pwrite a lease\n",
		       c, l, k, pw / k, wal / k, fs / k, pw / l }'
	ld=$(cut -d' ' -f1 /proc/loadavg)
	awk -v c="$conc" -v pw="${pw:-0}" -v wal="${wal:-0}" -v fs="${fs:-0}" -v k="$commits" -v l="$leases" -v ld="$ld" 'BEGIN {
		printf "BENCH {\"name\": \"pwrite a commit, %d client%s\", \"ours\": %.2f, \"peer\": null, \"unit\": \"\", \"peer_name\": \"\", \"load\": %s, \"note\": \"%.2f to the WAL, %.2f fdatasync a commit, %.1f leases a commit\"}\n",
		       c, c == 1 ? "" : "s", pw / k, ld, wal / k, fs / k, l / k }'
done
