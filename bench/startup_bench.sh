#!/bin/bash
# dstmd's start-up and memory with many leases, and what a full listing
# costs while clients allocate. Each run: lease-fill writes LEASES active
# leases (default 1,000,000) whose clients are spread over SLASH64S /64s
# (default 100,000: the /64s of a few sites, the keys that made the old
# per-/64 hash quadratic); dstmd starts on it (time from exec to the
# first answer on the control socket, resident memory per lease); then
# `dstmctl leases --limit 10`, TSP allocations (tsp-load, 10 clients)
# alone, and the same again while `dstmctl leases` lists every lease.
# Three runs; figures only, never pass/fail.
#
# usage: bench/startup_bench.sh [BUILD_DIR] [LEASES] [SLASH64S] [RUNS]
set -eu
build=${1:-${DSTM_BUILD:-build}}
leases=${2:-1000000}
s64=${3:-100000}
runs=${4:-3}
dstmd=$build/src/dstmd/dstmd
ctl=$build/src/ctl/dstmctl
fill=$build/src/store/lease-fill
load=$build/src/tsp/tsp-load
for p in "$dstmd" "$ctl" "$fill" "$load"; do
	[ -x "$p" ] || { echo "bench: $p is not built (run scripts/build)" >&2; exit 2; }
done
tmp=$(mktemp -d /tmp/dstmd-startup.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
ms() { echo $(( $(date +%s%N) / 1000000 )); }

cat >"$tmp/dstmd.json" <<JSON
{
  "database": "$tmp/leases.db",
  "control": "$tmp/dstmd.sock",
  "lifetime": 3600, "quarantine": 300, "user": "",
  "listen": [ { "address": "[::1]:$port" } ],
  "auth": { "mechanisms": ["ANONYMOUS"], "relays": ["::1"] },
  "pools": [ { "name": "bench", "prefixes": ["10.0.0.0/12"] } ],
  "teps": [ { "name": "tep1", "ipv6": "fd00:d57::2", "ipv4": "198.51.100.1" } ],
  "limits": { "connections": 20000 }
}
JSON

echo "# dstmd start-up benchmark: $leases leases over $s64 client /64s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
	rm -f "$tmp"/leases.db*
	t0=$(ms)
	"$fill" "$tmp/leases.db" "$leases" "$s64"
	t1=$(ms)
	"$dstmd" -d -c "$tmp/dstmd.json" 2>"$tmp/dstmd.log" &
	pid=$!
	until "$ctl" -s "$tmp/dstmd.sock" -t 60 status >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { echo "bench: dstmd did not start:" >&2; cat "$tmp/dstmd.log" >&2; exit 1; }
		sleep 0.02
	done
	t2=$(ms)
	rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
	echo "--- run $r"
	echo "fill $((t1 - t0)) ms; start (exec to first control answer) $((t2 - t1)) ms; RSS $((rss / 1024)) MiB = $((rss * 1024 / leases)) bytes/lease"
	best=999999
	for _ in 1 2 3 4 5; do
		a=$(ms); "$ctl" -s "$tmp/dstmd.sock" leases --limit 10 >/dev/null; b=$(ms)
		last=$((b - a)); [ "$last" -lt "$best" ] && best=$last
	done
	echo "dstmctl leases --limit 10: $best ms (best of 5, process start included)"
	# tsp-load exits non-zero when a session failed; its figures still count.
	"$load" -s "[::1]:$port" -c 10 -n 2000 --prefix fd00:d57:ff01:: >"$tmp/alone.out" || true
	echo "allocations alone:          $(grep -E '^allocations/s' "$tmp/alone.out" | cut -d' ' -f2)/s, $(grep -E '^latency' "$tmp/alone.out")"
	a=$(ms)
	"$ctl" -s "$tmp/dstmd.sock" leases >"$tmp/list.out" &
	lp=$!
	sleep 0.3
	"$load" -s "[::1]:$port" -c 10 -n 2000 --prefix fd00:d57:ff02:: >"$tmp/during.out" || true
	wait "$lp"
	b=$(ms)
	echo "allocations during listing: $(grep -E '^allocations/s' "$tmp/during.out" | cut -d' ' -f2)/s, $(grep -E '^latency' "$tmp/during.out")"
	rss2=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
	echo "full listing: $(($(wc -l <"$tmp/list.out") - 1)) leases in $((b - a)) ms; dstmd RSS after it $((rss2 / 1024)) MiB"
	kill "$pid"; wait "$pid" 2>/dev/null || true
	pid=
done
