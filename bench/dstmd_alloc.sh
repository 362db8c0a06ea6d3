#!/bin/bash
# TSP allocations per second of dstmd with durable (fdatasync'd) leases,
# driven by tsp-load (a C libevent load generator, bench/tsp_load.c) on
# loopback, at each concurrency given (default 1, 100 and 1000 clients).
# Each allocation is a whole TSP session: connect, VERSION, CAPABILITY,
# AUTHENTICATE ANONYMOUS, create, the 200 reply. The peer, run in the same
# script with the same load right after, is `tsp-load --serve`: the same
# TSP layer answering every create at once with no pool, no lease and no
# disk, i.e. the cost of TCP + TSP alone on this machine; the ratio says
# what allocation and durability cost on top. At 1 client the disk is the
# other limit: bench/fsync_probe.py measures write + fdatasync cycles per
# second on the database's filesystem right before and right after dstmd's
# run (overwriting a preallocated file, as a commit into dstmd's WAL does,
# and, for comparison, appending), and dstmd's rate is shown against the
# overwriting figure's mean too, and against the serial bound: a lone
# client's session is the TSP layer's round trips (the peer's session at
# 1 client) followed by one fdatasync, which cannot overlap them. CPU ms
# per 1000 sessions of dstmd and of the peer come from /proc/PID/stat: on
# shared cores the rate alone says little. Also printed: the load
# generator's share of a core in each of the two runs (tsp-load is one
# thread: where it nears 100 %, as in the peer's run at 100 clients on 2
# cores, the generator, not the server, set the rate), leases per commit
# (dstmd's lease_commits counter) and the load average. tsp-load's clients all
# connect from ::1, each naming its own IPv6 address in <client>: ::1 is a
# trusted relay (auth.relays) for the run. Figures, never pass/fail;
# every figure is measured in this run.
#
# Machine-readable lines start with "BENCH " (scripts/bench reads them).
#
# usage: bench/dstmd_alloc.sh [BUILD_DIR] [TOTAL] [CONCURRENCY...]
#   BUILD_DIR defaults to $DSTM_BUILD, else build; TOTAL (default 30000)
#   sessions at 100 clients and more, a tenth of it at fewer.
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-${DSTM_BUILD:-build}}
total=${2:-30000}
shift $(($# > 2 ? 2 : $#))
concs=("$@")
[ ${#concs[@]} -gt 0 ] || concs=(1 100 1000)
dstmd=$build/src/dstmd/dstmd
load=$build/src/tsp/tsp-load
ctl=$build/src/ctl/dstmctl
for p in "$dstmd" "$load" "$ctl"; do
	[ -x "$p" ] || { echo "bench: $p is not built (run scripts/build)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "bench: python3 is not in PATH" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dstmd-bench.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load1() { cut -d' ' -f1 /proc/loadavg; }

# CPU time (user + system, ms) process $1 has used so far.
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$1/stat"
}

# A free loopback port for this run (two runs at once do not collide).
free_port() {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])'
}

wait_gone() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# Drive the server on port $1 with $2 clients, $3 sessions; tsp-load's
# report goes to $4, and to $5 the share of one core the generator used
# (user + system over elapsed, bash's own `time`). tsp-load is one
# thread: near 100 % it, not the server, sets the rate.
drive() {
	local TIMEFORMAT='%R %U %S'
	{ time "$load" -s "[::1]:$1" -c "$2" -n "$3" >"$4"; } 2>"$5.t"
	awk '{ printf "%.0f", ($1 > 0 ? ($2 + $3) * 100 / $1 : 0) }' "$5.t" >"$5"
}

run() {
	local conc=$1 n=$2 port a b rss commits allocs ld inl c0 c1 cpu pc0 pc1
	port=$(free_port)
	rm -f "$tmp"/leases.db*
	cat >"$tmp/dstmd.json" <<JSON
{
  "database": "$tmp/leases.db",
  "control": "$tmp/dstmd.sock",
  "lifetime": 3600, "quarantine": 300,
  "listen": [ { "address": "[::1]:$port" } ],
  "auth": { "mechanisms": ["ANONYMOUS"], "relays": ["::1"] },
  "pools": [ { "name": "bench", "prefixes": ["10.0.0.0/12"] } ],
  "teps": [ { "name": "tep1", "ipv6": "fd00:d57::2", "ipv4": "198.51.100.1" } ],
  "limits": { "connections": 20000 }
}
JSON
	"$dstmd" -d -c "$tmp/dstmd.json" 2>"$tmp/dstmd.log" &
	pid=$!
	for _ in $(seq 100); do "$ctl" -s "$tmp/dstmd.sock" status >/dev/null 2>&1 && break; sleep 0.05; done
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "bench: dstmd did not start:" >&2
		cat "$tmp/dstmd.log" >&2
		exit 1
	fi
	echo "--- $conc concurrent clients, $n allocations (load $(load1))"
	ld=$(load1)
	# The disk's latency moves from second to second on a shared machine: at
	# 1 client it is probed right before and right after dstmd's run.
	((conc == 1)) && python3 "$here/fsync_probe.py" "$tmp" 1 >"$tmp/probe1"
	c0=$(cpu_ms "$pid")
	drive "$port" "$conc" "$n" "$tmp/dstmd.out" "$tmp/gen1"
	cat "$tmp/dstmd.out"
	c1=$(cpu_ms "$pid")
	((conc == 1)) && python3 "$here/fsync_probe.py" "$tmp" 1 >"$tmp/probe2"
	rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
	echo "dstmd RSS after $n leases: $rss KiB"
	"$ctl" -s "$tmp/dstmd.sock" counters >"$tmp/counters"
	commits=$(awk '$1 == "lease_commits" {print $2}' "$tmp/counters")
	allocs=$(awk '$1 == "lease_allocations" {print $2}' "$tmp/counters")
	inl=$(awk '$1 == "commit_inline" {print $2}' "$tmp/counters")
	echo "dstmd: $allocs allocations in $commits commits ($(awk -v a="$allocs" -v c="$commits" 'BEGIN { printf "%.1f", c ? a / c : 0 }') a commit, ${inl:-0} of them committed in the event loop's thread)"
	wait_gone "$pid"
	pid=
	# The peer: the TSP layer alone, same load, fresh port.
	port=$(free_port)
	"$load" --serve "[::1]:$port" >/dev/null 2>&1 &
	pid=$!
	sleep 0.3
	pc0=$(cpu_ms "$pid")
	drive "$port" "$conc" "$n" "$tmp/peer.out" "$tmp/gen2"
	pc1=$(cpu_ms "$pid")
	wait_gone "$pid"
	pid=
	a=$(awk '/^allocations\/s/ {print $2}' "$tmp/dstmd.out")
	b=$(awk '/^allocations\/s/ {print $2}' "$tmp/peer.out")
	ld=$(awk -v x="$ld" -v y="$(load1)" 'BEGIN { printf "%.2f", (x + y) / 2 }')
	echo "peer (tsp-load --serve, no lease, no disk): $b sessions/s; dstmd/peer = $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
	# CPU per allocation says what the rate alone hides when others share the cores.
	echo "load generator (tsp-load, one thread): $(cat "$tmp/gen1") % of a core against dstmd, $(cat "$tmp/gen2") % against the peer"
	echo "CPU ms per 1000 sessions (user + system, /proc/PID/stat): dstmd $(awk -v c=$((c1 - c0)) -v n="$n" 'BEGIN { printf "%.0f", c * 1000 / n }'), peer $(awk -v c=$((pc1 - pc0)) -v n="$n" 'BEGIN { printf "%.0f", c * 1000 / n }')"
	printf 'BENCH {"name": "TSP allocations/s, %d client%s", "ours": %s, "peer": %s, "unit": "/s", "peer_name": "tsp-load --serve", "load": %s, "note": "%.1f leases a commit; generator %s %% / %s %% of a core"}\n' \
		"$conc" "$( ((conc == 1)) || echo s)" "$a" "$b" "$ld" "$(awk -v a="$allocs" -v c="$commits" 'BEGIN { printf "%.1f", c ? a / c : 0 }')" \
		"$(cat "$tmp/gen1")" "$(cat "$tmp/gen2")"
	if [ "$conc" = 1 ]; then
		local f
		echo "disk before: $(head -1 "$tmp/probe1") (overwrite 4 KiB of a preallocated file + fdatasync, on the database's filesystem)"
		echo "disk after:  $(head -1 "$tmp/probe2")"
		echo "             $(sed -n 2p "$tmp/probe1"), $(sed -n 2p "$tmp/probe2") (appending instead: each sync also writes the inode)"
		f=$(awk '$1 == "fdatasync/s" {s += $2; n++} END {printf "%.1f", n ? s / n : 0}' "$tmp/probe1" "$tmp/probe2")
		echo "disk: $f fdatasync/s (overwriting, the mean of the two)"
		echo "dstmd at 1 client / (1 / fdatasync latency) = $(awk -v a="$a" -v b="$f" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
		printf 'BENCH {"name": "TSP allocations/s, 1 client, vs the disk", "ours": %s, "peer": %s, "unit": "/s", "peer_name": "1/fdatasync (fsync_probe)", "load": %s, "note": "same filesystem"}\n' \
			"$a" "$f" "$(load1)"
		# One client waits for each round trip and for the commit in
		# turn: a session can take no less than the TSP layer's own
		# session (the peer's, at 1 client) plus one fdatasync.
		local bound
		bound=$(awk -v b="$b" -v f="$f" 'BEGIN { printf "%.1f", (b > 0 && f > 0) ? 1 / (1 / b + 1 / f) : 0 }')
		echo "serial bound (the peer's session + one fdatasync, one after the other): $bound/s; dstmd / bound = $(awk -v a="$a" -v b="$bound" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
		printf 'BENCH {"name": "TSP allocations/s, 1 client, vs its serial bound", "ours": %s, "peer": %s, "unit": "/s", "peer_name": "1/(1/peer + 1/fdatasync)", "load": %s, "note": "round trips then the disk"}\n' \
			"$a" "$bound" "$(load1)"
	fi
}

echo "dstmd TSP allocation benchmark on $(nproc) cores; leases in SQLite WAL, synchronous=FULL; $tmp on $(df -T "$tmp" | awk 'NR == 2 {print $2}')"
for c in "${concs[@]}"; do
	if ((c >= 100)); then run "$c" "$total"; else run "$c" $((total / 10)); fi
done
