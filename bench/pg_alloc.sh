#!/bin/bash
# TSP allocations per second with the leases on PostgreSQL, one and two
# dstmd instances sharing one database, against one dstmd on SQLite, all
# in the same run on this machine (tsp-load on loopback, bench/tsp_load.c).
# PostgreSQL is a private cluster in a temporary directory
# (scripts/pg-cluster; fsync and synchronous_commit on, its defaults),
# reached over its Unix socket. With two instances, two tsp-load run at
# once, one per instance, each with its own client addresses (--prefix), and
# the rate is all 200 replies over the wall time of both; the refusals
# (TSP 530 while an instance reloads after a conflict) are counted, and the
# database is checked for an address held twice. Each setup runs RUNS
# times (default 3): the median and the spread (min-max) are printed, and
# the load average. Figures, never pass/fail.
#
# Machine-readable lines start with "BENCH " (scripts/bench reads them).
#
# usage: bench/pg_alloc.sh [BUILD_DIR] [TOTAL] [CONCURRENCY] [RUNS]
#   defaults: $DSTM_BUILD or build, 3000 sessions, 50 clients, 3 runs
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-${DSTM_BUILD:-build}}
total=${2:-3000}
conc=${3:-50}
runs=${4:-3}
dstmd=$build/src/dstmd/dstmd
load=$build/src/tsp/tsp-load
ctl=$build/src/ctl/dstmctl
for p in "$dstmd" "$load" "$ctl"; do
	[ -x "$p" ] || { echo "bench: $p is not built (run scripts/build)" >&2; exit 2; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pg-bench.XXXXXX")
chmod 755 "$tmp" # the cluster under it runs as user postgres
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$here/../scripts/pg-cluster" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rc=0
"$here/../scripts/pg-cluster" start "$tmp/pg" || rc=$?
[ $rc = 77 ] && { echo "bench: no PostgreSQL binaries (Debian package postgresql)" >&2; exit 2; }
[ $rc = 0 ] || exit 1
conninfo=$("$here/../scripts/pg-cluster" conninfo "$tmp/pg")
psqlq() { psql -qAt "$conninfo" -c "$1"; }

load1() { cut -d' ' -f1 /proc/loadavg; }
free_port() {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])'
}

# start NAME STORE_JSON: a dstmd of its own directory; its port in $port.
start() {
	local d=$tmp/$1 i
	mkdir -p "$d"
	port=$(free_port)
	cat >"$d/dstmd.json" <<JSON
{ $2
  "database": "$d/leases.db",
  "control": "$d/dstmd.sock",
  "lifetime": 3600, "quarantine": 300,
  "listen": [ { "address": "[::1]:$port" } ],
  "auth": { "mechanisms": ["ANONYMOUS"], "relays": ["::1"] },
  "pools": [ { "name": "bench", "prefixes": ["10.0.0.0/12"] } ],
  "teps": [ { "name": "tep1", "ipv6": "fd00:d57::2", "ipv4": "198.51.100.1" } ],
  "limits": { "connections": 20000 }
}
JSON
	"$dstmd" -d -c "$d/dstmd.json" >"$d/dstmd.log" 2>&1 </dev/null &
	pids+=($!)
	for i in $(seq 200); do "$ctl" -s "$d/dstmd.sock" status >/dev/null 2>&1 && return 0; sleep 0.05; done
	echo "bench: dstmd $1 did not start:" >&2
	cat "$d/dstmd.log" >&2
	exit 1
}

stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
	rm -rf "$tmp"/i*
}

ok_of() { awk '/^status 200 / {n = $NF} END {print n + 0}' "$1"; }
refused_of() { awk '/^status 530 / {n = $NF} END {print n + 0}' "$1"; }

# one SETUP: one run; "RATE REFUSED" in $tmp/one
one() {
	local setup=$1 t0 t1 ok=0 ref=0 ports=() f
	rm -f "$tmp"/out.*
	case $setup in
	sqlite)
		start i1 ""
		ports=("$port")
		;;
	pg1 | pg2)
		psqlq "SET client_min_messages = warning; DROP TABLE IF EXISTS lease, history, dstm_meta"
		start i1 "\"store\": {\"postgresql\": \"$conninfo\"},"
		ports=("$port")
		if [ "$setup" = pg2 ]; then
			start i2 "\"store\": {\"postgresql\": \"$conninfo\"},"
			ports+=("$port")
		fi
		;;
	esac
	t0=$(date +%s.%N)
	local n=$((total / ${#ports[@]})) c=$((conc / ${#ports[@]})) k=0 lp=()
	for p in "${ports[@]}"; do
		k=$((k + 1))
		"$load" -s "[::1]:$p" -c "$c" -n "$n" --prefix "fd00:d57:$k::" >"$tmp/out.$k" &
		lp+=($!)
	done
	wait "${lp[@]}"
	t1=$(date +%s.%N)
	for f in "$tmp"/out.*; do
		ok=$((ok + $(ok_of "$f")))
		ref=$((ref + $(refused_of "$f")))
	done
	if [ "$setup" != sqlite ]; then
		local dup
		dup=$(psqlq "SELECT count(*) - count(DISTINCT v4) FROM lease WHERE state = 'active'")
		[ "$dup" = 0 ] || echo "bench: $dup addresses held twice in the database!" >&2
	fi
	stop_all
	awk -v ok="$ok" -v a="$t0" -v b="$t1" -v r="$ref" 'BEGIN { printf "%.1f %d\n", ok / (b - a), r }' >"$tmp/one"
}

# median and spread of the first column of stdin
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

echo "dstmd TSP allocations/s on $(nproc) cores: SQLite (WAL, synchronous=FULL) vs PostgreSQL $(psqlq 'SHOW server_version') (fsync on, synchronous_commit $(psqlq 'SHOW synchronous_commit')) with 1 and 2 instances; $total sessions, $conc clients, $runs runs each"
declare -A med lo hi refs
for r in $(seq "$runs"); do
	for s in sqlite pg1 pg2; do
		one "$s"
		res=$(cat "$tmp/one")
		echo "run $r $s: ${res% *} allocations/s, ${res#* } refused (530) (load $(load1))"
		echo "${res% *}" >>"$tmp/res.$s"
		refs[$s]=$((${refs[$s]:-0} + ${res#* }))
	done
done
for s in sqlite pg1 pg2; do
	read -r m a b < <(stats <"$tmp/res.$s")
	med[$s]=$m lo[$s]=$a hi[$s]=$b
	echo "$s: median $m allocations/s (spread $a-$b), ${refs[$s]} refused in all runs"
done
ld=$(load1)
printf 'BENCH {"name": "TSP allocations/s on PostgreSQL, 1 instance", "ours": %s, "peer": %s, "unit": "/s", "peer_name": "dstmd on SQLite", "load": %s, "note": "spread %s-%s, %d clients"}\n' \
	"${med[pg1]}" "${med[sqlite]}" "$ld" "${lo[pg1]}" "${hi[pg1]}" "$conc"
printf 'BENCH {"name": "TSP allocations/s on PostgreSQL, 2 instances", "ours": %s, "peer": %s, "unit": "/s", "peer_name": "dstmd on SQLite", "load": %s, "note": "spread %s-%s, %d refused (conflicts)"}\n' \
	"${med[pg2]}" "${med[sqlite]}" "$ld" "${lo[pg2]}" "${hi[pg2]}" "${refs[pg2]}"
