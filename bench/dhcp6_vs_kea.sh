#!/bin/bash
# DHCPv6 allocations per second: dstmd against ISC Kea's
# kea-dhcp6, both driven by Kea's own load generator perfdhcp, both keeping
# their leases on disk (dstmd: SQLite, committed before each reply; Kea:
# memfile with persist true). Each server runs in a network namespace of its
# own, joined by a veth pair to a third namespace where perfdhcp runs.
#
# One perfdhcp drives the server by default, in its single-thread mode
# (-g single). Its default on more than one CPU, multi, receives in a
# second thread that costs the machine far more than it gains on 2 cores:
# in one run (load 1.0-1.7) the search ended at 19,906/s for dstmd and
# 11,988/s for Kea with multi, and at 33,806/s and 14,996/s with single.
# Both servers get the same generator; each trial prints the CPU the
# generators used (% of one core), so that whoever reads the figures sees
# when the generator, not the server, was the limit.
# DHCP6_BENCH_THREADS=multi is perfdhcp's own default.
#
# DHCP6_BENCH_GENERATORS=2 runs
# two at once, each from an address of its own on the link (unicast to the
# server's address, which Kea then listens on too), each with its own
# clients (half of POOL, MACs from a base of its own) and half of the
# offered rate; the figure is the sum of their exchanges and the worse of
# their drops. Two are no way out on a 2-core machine (measured with
# multi-thread generators): each cost about half a core even at 4,000/s,
# which the server then lacked (Kea fell from about 13,000 to 7,500/s
# with two; dstmd did not gain). Two are for machines with cores to spare.
#
# What each server serves, pools of the same size (POOL addresses):
#  - dstmd: the seed 002 §6.1 form, an IA_NA holding an IPv4-mapped address
#    (the first POOL addresses of 198.18.0.0/15), with perfdhcp adding the
#    empty Global IPv4 Address option (-o 65004,). Its TEP has no control
#    channel (learn mode), so no push waits on a TEP.
#  - Kea: an ordinary IA_NA pool of POOL IPv6 addresses.
# Every exchange of a trial is a client of its own (perfdhcp -R POOL; the
# servers start empty for each trial), so a trial that offers more than
# POOL exchanges runs the pool dry and its drops say nothing of the
# server: the search never offers more than POOL / SECONDS a second, and
# a figure that reaches that bound says so ("the pool's bound"). With 4 s
# trials and the old default of 60,000 addresses that bound was 15,000/s,
# where Kea's figure stopped once perfdhcp stopped being the limit.
# dstmd takes a client's tunnel address from the source of a message when
# it is global, else from the innermost relay's peer-address (dstmd(8)).
# perfdhcp sends from its interface's link-local address, so both servers
# get relayed traffic: perfdhcp -A1 wraps each message in a Relay-forward
# whose peer-address is the global address of its interface and whose
# link-address comes from -J (one address in the server's subnet, so that
# Kea selects its subnet by it). Every client therefore shares one /64 and
# one tunnel address: dstmd's per-/64 limit is lifted for the run.
#
# The figure: full 4-way exchanges (Solicit, Advertise, Request, Reply) per
# second at under 1 % drops, found by doubling the offered rate (-r) until
# drops reach 1 %, then bisecting; each trial starts from empty lease files
# and lasts SECONDS, and a rate that fails is tried a second time (the
# better of the two counts). dstmd makes each lease durable (fdatasync'd)
# before its Reply; Kea's memfile appends its CSV and never fsyncs, so Kea's
# figure has no disk latency in it: the ratio is printed with that said
# beside it.
# With --busy-disk the two are measured again while a background writer
# (dd, 16 MiB then fdatasync, in a loop) keeps the lease files' disk busy.
# perfdhcp waits one second (-W, its drop time) for the replies still on
# their way when the sending period ends, so that a reply that is merely in
# flight at the cut is not a drop (dstmd's wait for the disk would count
# against it otherwise); the rate is the Replies to Requests received per
# second of the sending period. A reply later than a second is a drop.
# Also printed: dstmd's leases per commit in its last trial (the
# lease_commits counter) and the load average around each measurement.
# Prints figures, never pass/fail; machine-readable lines start with
# "BENCH " (scripts/bench). Every process it starts (dstmd, kea-dhcp6,
# perfdhcp, the writer) is stopped on exit and its namespaces
# ($DSTM_LAB-pd, -dstm, -kea; DSTM_LAB defaults to bench<pid>) removed;
# Kea is never run as a host service.
#
# usage: bench/dhcp6_vs_kea.sh [--busy-disk] [BUILD_DIR] [SECONDS] [POOL]
#   DHCP6_BENCH_START: the first offered rate (default 250/s)
#   DHCP6_BENCH_GENERATORS: perfdhcp processes at once, 1 or 2 (default 1)
#   DHCP6_BENCH_THREADS: perfdhcp's -g, single (default) or multi
#   DHCP6_BENCH_RMEM: bytes; net.core.rmem_default for the run (restored at
#     exit), the receive buffer of every socket that does not ask for its
#     own: Kea's and perfdhcp's (dstmd asks for 4 MiB). The kernel's
#     default (212,992 here) is left alone unless this is given. It is a
#     host-wide setting (no namespace has its own on this kernel). With the
#     default, above about 30,000/s perfdhcp's own socket overflows
#     (Udp6RcvbufErrors in its namespace) while dstmd's does not, and Kea's
#     overflows from about 20,000/s with either size.
set -u
busy=0
if [ "${1:-}" = --busy-disk ]; then
	busy=1
	shift
fi
build=${1:-${DSTM_BUILD:-build}}
secs=${2:-4}
pool=${3:-131070}
start=${DHCP6_BENCH_START:-250} # the first offered rate; it doubles until drops reach 1 %
gens=${DHCP6_BENCH_GENERATORS:-1}
threads=${DHCP6_BENCH_THREADS:-single}
rmem=${DHCP6_BENCH_RMEM:-}
dstmd=$build/src/dstmd/dstmd
ctl=$build/src/ctl/dstmctl
for p in "$dstmd" "$ctl" kea-dhcp6 perfdhcp python3; do
	command -v "$p" >/dev/null ||
		{ echo "bench: $p is missing (build dstmd; apt-get install kea-dhcp6-server kea-admin; python3 in PATH)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces)" >&2; exit 2; }
((pool >= 16 && pool <= 131070)) || { echo "bench: POOL from 16 to 131070" >&2; exit 2; }
cap=$((pool / secs)) # the highest rate a trial may offer (see above)
[ "$gens" = 1 ] || [ "$gens" = 2 ] || { echo "bench: DHCP6_BENCH_GENERATORS is 1 or 2" >&2; exit 2; }
[ "$threads" = single ] || [ "$threads" = multi ] ||
	{ echo "bench: DHCP6_BENCH_THREADS is single or multi" >&2; exit 2; }
[ -z "$rmem" ] || [[ "$rmem" =~ ^[0-9]+$ && "$rmem" -ge 4096 ]] ||
	{ echo "bench: DHCP6_BENCH_RMEM is a number of bytes (4096 or more)" >&2; exit 2; }

tag=${DSTM_LAB:-bench$$}
for n in pd dstm kea; do
	if ip netns list | grep -qw "$tag-$n"; then
		echo "bench: namespace $tag-$n exists (another run with DSTM_LAB=$tag?)" >&2
		exit 2
	fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dhcp6-bench.XXXXXX")
spid=
wpid=
rmem_was=
stop_server() {
	if [ -n "$spid" ]; then
		kill -TERM "$spid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	fi
	spid=
}
cleanup() {
	stop_server
	stop_writer
	for n in pd dstm kea; do
		pids=$(ip netns pids "$tag-$n" 2>/dev/null)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
		ip netns del "$tag-$n" 2>/dev/null
	done
	[ -z "$rmem_was" ] || sysctl -qw net.core.rmem_default="$rmem_was"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The busy disk: another process writing and fsyncing on the lease files' filesystem.
start_writer() {
	(
		trap 'exit 0' TERM
		while :; do
			dd if=/dev/zero of="$tmp/busy" bs=1M count=16 conv=fdatasync status=none
		done
	) &
	wpid=$!
}
stop_writer() {
	if [ -n "$wpid" ]; then
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
		rm -f "$tmp/busy"
	fi
	wpid=
}

# pd (perfdhcp) -- veth dstm/eth0 -- dstm (dstmd) ; pd -- veth kea/eth0 -- kea (kea-dhcp6);
# with two generators, generator g speaks from fd00:b6:i::1g (i: 1 dstm, 2 kea).
for n in pd dstm kea; do
	ip netns add "$tag-$n"
	ip netns exec "$tag-$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$tag-$n" link set lo up
done
i=1
for n in dstm kea; do
	ip -n "$tag-pd" link add "$n" type veth peer name eth0 netns "$tag-$n"
	for g in $(seq "$gens"); do
		ip -n "$tag-pd" addr add "fd00:b6:$i::1$((g - 1))/64" dev "$n" nodad
	done
	ip -n "$tag-$n" addr add "fd00:b6:$i::1/64" dev eth0 nodad
	ip -n "$tag-pd" link set "$n" up
	ip -n "$tag-$n" link set eth0 up
	# The link-address of the Relay-forward (-J), in the server's first subnet.
	echo "fd00:b6:$i::77" >"$tmp/relay-$n"
	i=$((i + 1))
done
sleep 2 # link-local addresses
# dstmd takes Relay-forward from the relays it trusts (dhcpv6.relays): perfdhcp's,
# which speaks from its interface's global addresses (or its link-local one).
relay_ll=$(ip -n "$tag-pd" -6 -o addr show dev dstm scope link | awk '{print $4}' | cut -d/ -f1)

# The dstmd pool: POOL addresses of 198.18.0.0/15 (RFC 2544's benchmark
# range) from 198.18.0.1; Kea's: as many from fd00:b6:2::1:1.
last=$((pool))
last4=198.$((18 + last / 65536)).$((last / 256 % 256)).$((last % 256))
last6=$(printf 'fd00:b6:2::%x:%x' $(((0x10000 + last) / 65536)) $(((0x10000 + last) % 65536)))
dstmd_conf() {
	cat >"$tmp/dstmd.json" <<JSON
{
  "database": "$tmp/leases.db",
  "control": "$tmp/dstmd.sock",
  "lifetime": 3600, "quarantine": 60,
  "listen": [ { "address": "[::1]:$((20000 + RANDOM % 20000))" } ],
  "auth": { "mechanisms": ["ANONYMOUS"] },
  "pools": [ { "name": "bench", "ranges": ["198.18.0.1-$last4"] } ],
  "teps": [ { "name": "tep", "ipv6": "fd00:b6:1::2", "ipv4": "198.51.100.1",
              "clients": ["fd00:b6:1::/64"] } ],
  "limits": { "per_64": 0 },
  "dhcpv6": { "enable": true, "interfaces": ["eth0"], "form": "global_v4", "relays": ["fd00:b6:1::10", "fd00:b6:1::11", "$relay_ll"],
              "rapid_commit": false, "limits": { "per_duid": 4, "per_64": 0 } }
}
JSON
}
kea_conf() {
	cat >"$tmp/kea.json" <<JSON
{ "Dhcp6": {
  "interfaces-config": { "interfaces": ["eth0$( ((gens == 1)) || echo /fd00:b6:2::1)"] },
  "lease-database": { "type": "memfile", "persist": true,
                      "name": "$tmp/kea-leases6.csv", "lfc-interval": 0 },
  "server-id": { "type": "LL", "persist": false },
  "preferred-lifetime": 3600, "valid-lifetime": 3600,
  "renew-timer": 1800, "rebind-timer": 2880,
  "subnet6": [ { "id": 1, "subnet": "fd00:b6:2::/64",
                  "pools": [ { "pool": "fd00:b6:2::1:1 - $last6" } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "severity": "ERROR",
                 "output_options": [ { "output": "$tmp/kea.log" } ] } ]
} }
JSON
}

start_server() {
	local which=$1 i res
	stop_server
	rm -f "$tmp"/leases.db* "$tmp"/kea-leases6.csv* "$tmp"/*.pid "$tmp/dstmd.sock"
	if [ "$which" = dstm ]; then
		dstmd_conf
		ip netns exec "$tag-dstm" "$dstmd" -d -c "$tmp/dstmd.json" >"$tmp/dstmd.log" 2>&1 &
	else
		kea_conf
		ip netns exec "$tag-kea" env KEA_PIDFILE_DIR="$tmp" KEA_LOCKFILE_DIR="$tmp" \
			kea-dhcp6 -c "$tmp/kea.json" >"$tmp/kea.out" 2>&1 &
	fi
	spid=$!
	# Ready when it answers one exchange.
	for i in $(seq 20); do
		kill -0 "$spid" 2>/dev/null || { echo "bench: $which server exited:" >&2; tail "$tmp"/*.log "$tmp"/*.out >&2; exit 1; }
		res=$(trial "$which" 20 1) && [ "${res%% *}" != 0.0 ] && return 0
		sleep 0.5
	done
	echo "bench: the $which server does not answer" >&2
	tail "$tmp"/*.log "$tmp"/*.out >&2
	exit 1
}

# CPU seconds (user + system) process $1 has used so far (0 once gone).
proc_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' \
		"/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU seconds (user + system) of this shell's children waited for so far:
# `times` runs in this shell (in a command substitution it would see only
# the substitution's own children).
children_cpu() {
	times >"$tmp/times.$BASHPID"
	awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
		printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$tmp/times.$BASHPID"
}

# trial SERVER RATE [SECONDS]: one run of the generators at once, each at
# RATE / gens with clients of its own; prints "exchanges/s drops% cpu%",
# the last the generators' CPU in % of one core while they ran.
trial() {
	local which=$1 rate=$2 period=${3:-$secs} g out sa rr got=0 worst=0 pids=()
	local t0=$EPOCHREALTIME c0 c1 cpu
	children_cpu >"$tmp/cpu0.$BASHPID"
	for g in $(seq "$gens"); do
		local i=1 from=$which
		[ "$which" = kea ] && i=2
		((gens == 1)) || from=fd00:b6:$i::1$((g - 1))
		local args=(-6 -l "$from" -A1 -J "$tmp/relay-$which" -R $((pool / gens))
		            -r $(((rate + gens - 1) / gens)) -p "$period" -W 1000000)
		[ "$which" = dstm ] && args+=(-o 65004,)
		args+=(-g "$threads")
		# Two: clients of their own, and from an address (not an interface)
		# perfdhcp needs the server's: unicast, as relays do.
		((gens == 1)) || args+=(-b "mac=0a:0${g}:00:00:00:00" "fd00:b6:$i::1")
		timeout $((period + 20)) ip netns exec "$tag-pd" perfdhcp "${args[@]}" \
			>"$tmp/perfdhcp-$g.txt" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	children_cpu >"$tmp/cpu1.$BASHPID"
	c0=$(<"$tmp/cpu0.$BASHPID") c1=$(<"$tmp/cpu1.$BASHPID")
	cpu=$(python3 -c "print('%.0f' % (100 * ($c1 - $c0) / ($EPOCHREALTIME - $t0)))")
	for g in $(seq "$gens"); do
		out=$(cat "$tmp/perfdhcp-$g.txt")
		sa=$(echo "$out" | awk '/SOLICIT-ADVERTISE/{f=1} f&&/drops ratio/{print $3; exit}')
		rr=$(echo "$out" | awk '/REQUEST-REPLY/{f=1} f&&/drops ratio/{print $3; exit}')
		# Replies to Requests received.
		out=$(echo "$out" | awk '/REQUEST-REPLY/{f=1} f&&/received packets/{print $3; exit}')
		[ -n "$out" ] && [ -n "$sa" ] && [ -n "$rr" ] || return 1
		got=$((got + out))
		# the worse of the exchanges and of the generators
		worst=$(python3 -c "print(max(float('$worst'), float('$sa'), float('$rr')))")
	done
	# per second of the sending period
	python3 -c "print('%.1f %.2f %s' % ($got / float('$period'), float('$worst'), '$cpu'))"
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# The highest rate served at under 1 % drops, for both servers at once: the
# two searches advance in turn, one trial of dstmd then one of Kea, so that
# what the rest of the machine does weighs on both alike.
declare -A lo hi r best fin ntr bound
# fresh_trial SERVER [SUFFIX]: SERVER started afresh, one trial at its
# rate r[SERVER], the trial's line (SUFFIX at its end) on stderr; sets
# tgot and tdrops.
fresh_trial() {
	local which=$1 res cpu s0 t0 srv
	start_server "$which"
	s0=$(proc_cpu "$spid") t0=$EPOCHREALTIME
	res=$(trial "$which" "${r[$which]}") || res="0 100 -"
	srv=$(python3 -c "print('%.0f' % (100 * ($(proc_cpu "$spid") - $s0) / ($EPOCHREALTIME - $t0)))")
	read -r tgot tdrops cpu <<<"$res"
	printf '  %-5s offered %6d/s: %8s exchanges/s, %6s %% dropped (load %s; CPU: server %s %%, perfdhcp %s %%)%s\n' \
		"$which" "${r[$which]}" "$tgot" "$tdrops" "$(load1)" "$srv" "$cpu" "${2:-}" >&2
}

step() {
	local which=$1 got drops
	fresh_trial "$which"
	got=$tgot drops=$tdrops
	# A failed rate is tried once more, from a fresh start, before it bounds
	# the search: one bad moment of a shared machine (once it stopped Kea's
	# search at 1,875/s) must not end it. Both servers alike.
	if ! python3 -c "import sys; sys.exit(0 if float('$drops') < 1 else 1)"; then
		fresh_trial "$which" ", again"
		if python3 -c "import sys; sys.exit(0 if float('$tdrops') < float('$drops') else 1)"; then
			got=$tgot drops=$tdrops
		fi
	fi
	if python3 -c "import sys; sys.exit(0 if float('$drops') < 1 else 1)"; then
		lo[$which]=${r[$which]}
		best[$which]=$(python3 -c "print(max(float('${best[$which]}'), float('$got')))")
	else
		hi[$which]=${r[$which]}
	fi
	ntr[$which]=$((ntr[$which] + 1))
	if [ -z "${hi[$which]}" ] && ((r[$which] >= cap)); then
		fin[$which]=1 bound[$which]=pool # served at the pool's bound
	elif [ -z "${hi[$which]}" ] &&
		python3 -c "import sys; sys.exit(0 if float('$got') < 0.95 * ${r[$which]} else 1)"; then
		# Under 1 % dropped of what perfdhcp sent, but it sent too little:
		# the generator, not the server, is the limit; higher rates tell no more.
		fin[$which]=1 bound[$which]=perfdhcp
	elif [ -z "${hi[$which]}" ]; then
		r[$which]=$((r[$which] * 2 > cap ? cap : r[$which] * 2))
	elif ((hi[$which] - lo[$which] <= hi[$which] / 10)); then
		fin[$which]=1
	else
		r[$which]=$(((lo[$which] + hi[$which]) / 2))
	fi
	((ntr[$which] >= 12)) && fin[$which]=1
	# The leases of the last trial are on disk: count them there.
	if [ "${fin[$which]}" = 1 ] && [ "$which" = dstm ]; then
		ip netns exec "$tag-dstm" "$ctl" -s "$tmp/dstmd.sock" counters >"$tmp/counters" 2>&1
		stop_server
		printf '  dstm  last trial: %s leases in %s commits; %s in SQLite\n' \
			"$(awk '$1 == "lease_allocations" {print $2}' "$tmp/counters")" \
			"$(awk '$1 == "lease_commits" {print $2}' "$tmp/counters")" \
			"$(sqlite3 "$tmp/leases.db" 'select count(*) from lease' 2>&1)" >&2
	elif [ "${fin[$which]}" = 1 ]; then
		printf '  kea   leases in the memfile after the last trial: %s\n' \
			"$(grep -c '^fd00:b6:2::' "$tmp/kea-leases6.csv" 2>&1)" >&2
	fi
	stop_server
}

# pair LABEL: dstmd then Kea, the ratio, and a BENCH line.
pair() {
	local label=$1 d k l0 l1 w note="dstmd durable per lease${rmem:+; net.core.rmem_default $rmem}"
	local -A at=()
	l0=$(load1)
	for w in dstm kea; do
		lo[$w]=0 hi[$w]= r[$w]=$((start > cap ? cap : start)) best[$w]=0 fin[$w]= ntr[$w]=0 bound[$w]=
	done
	while [ -z "${fin[dstm]}" ] || [ -z "${fin[kea]}" ]; do
		[ -n "${fin[dstm]}" ] || step dstm
		[ -n "${fin[kea]}" ] || step kea
	done
	d=${best[dstm]} k=${best[kea]}
	l1=$(load1)
	for w in dstm kea; do
		case ${bound[$w]} in
		pool) at[$w]=" (at the pool's bound, $pool addresses in ${secs}s: the server may do more)" ;;
		perfdhcp) at[$w]=" (perfdhcp's limit: it sent less than offered, the server dropped < 1 %: the server may do more)" ;;
		esac
	done
	[ -z "${bound[dstm]}${bound[kea]}" ] || note="$note; a floor for ${bound[dstm]:+dstmd (${bound[dstm]})}${bound[kea]:+ Kea (${bound[kea]})}"
	echo "dstmd (seed 002 form, IA_NA + Global IPv4 Address, each lease fdatasync'd before its Reply): $d 4-way exchanges/s at < 1 % drops$label${at[dstm]:-}"
	echo "kea-dhcp6 $(kea-dhcp6 -v) (IA_NA, memfile: appends its CSV, never fsyncs): $k 4-way exchanges/s at < 1 % drops$label${at[kea]:-}"
	if [ -z "$d" ] || [ -z "$k" ]; then
		echo "bench: not measured (a server did not run; see above)" >&2
		return
	fi
	python3 -c "k=float('$k'); d=float('$d'); print('ratio dstmd/Kea: %.2f (load %s to %s)' % (d / k, '$l0', '$l1') if k else 'ratio: n/a')"
	printf 'BENCH {"name": "DHCPv6 exchanges/s%s", "ours": %s, "peer": %s, "unit": "/s", "peer_name": "kea-dhcp6 memfile (never fsyncs)", "load": %s, "note": "%s"}\n' \
		"$label" "$d" "$k" "$(python3 -c "print('%.2f' % ((float('$l0') + float('$l1')) / 2))")" "$note"
}

if [ -n "$rmem" ]; then
	rmem_was=$(sysctl -n net.core.rmem_default)
	sysctl -qw net.core.rmem_default="$rmem" || exit 1
fi
echo "dhcp6_vs_kea: pools of $pool, ${secs}s per trial, $gens perfdhcp at once (-g $threads), net.core.rmem_default $(sysctl -n net.core.rmem_default), leases on disk (dstmd SQLite, Kea memfile) in $tmp"
pair ""
if ((busy)); then
	start_writer
	echo "--- again, with a background writer keeping the disk busy (dd 16 MiB + fdatasync, looped)"
	pair ", busy disk"
	stop_writer
fi
