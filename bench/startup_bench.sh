#!/bin/bash
# dstmd's start-up and memory with many leases, and what a full listing
# costs while clients allocate. Each run: lease-fill writes LEASES active
# leases (default 1,000,000) whose clients are spread over SLASH64S /64s
# (default 100,000: the /64s of a few sites, the keys that made the old
# per-/64 hash quadratic); dstmd starts on it (time from exec to the
# first answer on the control socket, resident memory per lease); then
# `dstmctl leases --limit 10`, TSP allocations (tsp-load, 10 clients)
# alone, and the same again while `dstmctl leases` lists every lease.
# The peer, when kea-dhcp6 is installed: Kea's DHCPv6 server starting on
# a memfile of as many leases (its CSV, written here), the time from exec
# to its DHCP6_STARTED log line and its resident memory per lease.
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
	command -v kea-dhcp6 >/dev/null || { echo "peer: kea-dhcp6 is not installed"; continue; }
	rm -f "$tmp"/kea*
	# The lease file Kea 2.x writes itself (header included), one lease per address.
	awk -v n="$leases" -v until="$(($(date +%s) + 86400))" 'BEGIN {
		print "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid," \
		      "prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source"
		for (i = 0; i < n; i++)
			printf "fd00:b6:2::%x:%x,00:03:00:01:%02x:%02x:%02x:%02x,86400,%d,1,3600,0,1,128,0,0,,,0,,0,0\n",
			       1 + int(i / 65536), i % 65536, int(i / 16777216) % 256, int(i / 65536) % 256,
			       int(i / 256) % 256, i % 256, until
	}' >"$tmp/kea-leases6.csv"
	cat >"$tmp/kea.json" <<JSON
{ "Dhcp6": {
  "interfaces-config": { "interfaces": [] },
  "lease-database": { "type": "memfile", "persist": true, "name": "$tmp/kea-leases6.csv",
                      "lfc-interval": 0 },
  "server-id": { "type": "LL", "persist": false },
  "preferred-lifetime": 3600, "valid-lifetime": 86400,
  "subnet6": [ { "id": 1, "subnet": "fd00:b6:2::/64",
                 "pools": [ { "pool": "fd00:b6:2::1:0/100" } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "severity": "INFO",
                 "output_options": [ { "output": "$tmp/kea.log" } ] } ]
} }
JSON
	t1=$(ms)
	KEA_PIDFILE_DIR="$tmp" KEA_LOCKFILE_DIR="$tmp" kea-dhcp6 -c "$tmp/kea.json" >/dev/null 2>&1 &
	pid=$!
	until grep -q DHCP6_STARTED "$tmp/kea.log" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { echo "peer: kea-dhcp6 did not start:" >&2; tail -5 "$tmp/kea.log" >&2; break; }
		sleep 0.02
	done
	t2=$(ms)
	if kill -0 "$pid" 2>/dev/null; then
		rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
		echo "peer kea-dhcp6 (memfile, $leases leases): start $((t2 - t1)) ms; RSS $((rss / 1024)) MiB = $((rss * 1024 / leases)) bytes/lease"
	fi
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
	pid=
done
