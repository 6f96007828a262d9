#!/bin/bash
# bench/memcached.sh - memcached -t 4 natively and under libgreen's shim,
# side by side: issue 9 asks for "memcached -t 4 under the shim >= 1.0x
# native" on this 2-core machine.
#
#   bench/memcached.sh [build-dir] [other-libgreen.so ...]   (default: ./build)
#
# Each round starts a fresh `memcached -t 4` per variant, in this order:
# native, shim with GREEN_HUBS=2, shim with GREEN_HUBS=1 (A B C A B C ...),
# and loads it with the same memcaslap run (libmemcached-tools' memaslap:
# CONNS connections, 90% get / 10% set, DURATION seconds, a share VERIFY of
# the gets checked against what was set). It prints ops/s per run, the
# medians, and the ratios shim/native, both measured in this one run.
# Each other-libgreen.so given (a build of another commit) adds its own
# variants, other1_h2, other1_h1..., to the same rounds: a before/after
# comparison whose every ratio comes from one run.
#
# Proofs, before a run counts: the server answers a set/get of our own
# through the text protocol byte for byte; under the shim libgreen.so is in
# /proc/PID/maps, no OS thread carries memcached's "mc-worker" name (its
# four workers are green threads; natively there are four such OS threads),
# and /proc/PID/status shows fewer OS threads than natively (native: main,
# 4 workers and 5 helpers = 10; shim: one per hub plus the shim's offload
# pool, GREEN_WORKERS=4, which memcached's getaddrinfo of -l starts).
# Exit status 1 when a server does not start, a proof fails, or memcaslap
# reports a failed verification; 2 when a tool is missing (the install
# line is printed).
#
# Environment: ROUNDS (3), DURATION (5), CONNS (50), LG_THREADS (1,
# memcaslap's threads), VERIFY (0.1), HUBS ("2 1"), SETSID (0; 1 starts
# each memcached in a session of its own, as a service manager and
# tools/compat do: with the kernel's autogroup scheduling on, the daemon
# and the load generator are then two scheduling groups that share the
# CPUs fairly, and a yield by one no longer hands the CPU to the other). The connections stay
# far below the fd limit (20000 here); memcached gets -c 4096.
#
# Rejected: memtier_benchmark (not in Debian); a load generator of our own
# (memcaslap verifies values and is the same binary for every variant, which
# is what the ratio needs).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
lib=$build/preload/libgreen.so
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
LG_THREADS=${LG_THREADS:-1}
VERIFY=${VERIFY:-0.1}
HUBS=${HUBS:-"2 1"}
SETSID=${SETSID:-0}
sess=()
[ "$SETSID" = 1 ] && sess=(setsid)

need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "memcached.sh: $1 is missing: apt-get install -y $2" >&2
    exit 2
}
need memcached memcached
need memcaslap libmemcached-tools
[ -f "$lib" ] || { echo "memcached.sh: no $lib (ninja -C $build)" >&2; exit 2; }
shift || true
others=("")
for o in "$@"; do
    [ -f "$o" ] || { echo "memcached.sh: no $o" >&2; exit 2; }
    others+=("$(realpath "$o")")
done
if [ $((CONNS + 200)) -gt "$(ulimit -n)" ]; then
    echo "memcached.sh: CONNS=$CONNS does not fit under ulimit -n $(ulimit -n)" >&2
    exit 2
fi

work=$(mktemp -d /tmp/memcached-bench.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "memcached.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# probe PORT: set a key and read it back through the text protocol; 0 when
# every byte of both answers is the expected one.
probe() {
    local val="green-$RANDOM-$RANDOM" got want
    want=$'STORED\r\nVALUE probe 0 '"${#val}"$'\r\n'"$val"$'\r\nEND\r\n'
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'set probe 0 0 %d\r\n%s\r\nget probe\r\n' "${#val}" "$val" >&3
    got=$(timeout 2 head -c "${#want}" <&3)
    exec 3<&-
    [ "$got" = "${want%$'\n'}" ]
}

# start VARIANT PORT: memcached -t 4 on PORT, natively (VARIANT native) or
# under the shim with GREEN_HUBS=VARIANT (VARIANT H) or under other library
# K with GREEN_HUBS=H (VARIANT oK:H); sets SERVER to its pid.
start() {
    local user=()
    [ "$(id -u)" -eq 0 ] && user=(-u root)
    local cmd=(memcached "${user[@]}" -t 4 -l 127.0.0.1 -p "$2" -U 0 -c 4096 -m 256)
    if [ "$1" = native ]; then
        "${sess[@]}" env -u LD_PRELOAD "${cmd[@]}" >"$work/$1.log" 2>&1 &
    else
        local l=$lib k=${1%%:*}
        [ "${1#o}" = "$1" ] || l=${others[${k#o}]}
        "${sess[@]}" env LD_PRELOAD="$l" GREEN_HUBS="$(hubs_of "$1")" "${cmd[@]}" >"$work/$1.log" 2>&1 &
    fi
    SERVER=$!
    for _ in $(seq 100); do
        kill -0 "$SERVER" 2>/dev/null || fail "memcached ($1) exited at start: $(tail -3 "$work/$1.log")"
        probe "$2" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "memcached ($1) does not answer a set/get on port $2"
}

# hubs_of VARIANT: its GREEN_HUBS (H of "H" or "oK:H"); name_of VARIANT:
# its name in the output.
hubs_of() { echo "${1##*:}"; }
name_of() {
    case $1 in
    native) echo native ;;
    o*) local k=${1%%:*}; echo "other${k#o}_h${1##*:}" ;;
    *) echo "shim_h$1" ;;
    esac
}

stop() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
}

threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
# OS threads named mc-worker (memcached names its workers' threads).
os_workers() { cat /proc/"$1"/task/*/comm 2>/dev/null | grep -c '^mc-worker$' || true; }

# load PORT: one memcaslap run; prints its ops/s, fails on verification.
load() {
    local out
    out=$(memcaslap -s "127.0.0.1:$1" -T "$LG_THREADS" -c "$CONNS" -t "${DURATION}s" \
          -v "$VERIFY" 2>&1) || fail "memcaslap failed: $(echo "$out" | tail -3)"
    local tps vfail
    tps=$(echo "$out" | sed -n 's/.*Ops: *[0-9]* *TPS: *\([0-9]*\).*/\1/p' | tail -1)
    vfail=$(echo "$out" | awk '/^verify_failed:/ { print $2 }' | tail -1)
    [ -n "$tps" ] && [ "$tps" -gt 0 ] || fail "memcaslap gave no throughput: $(echo "$out" | tail -3)"
    [ "${vfail:-0}" -eq 0 ] || fail "memcaslap: $vfail values failed verification"
    echo "$tps $(echo "$out" | awk '/^cmd_get:/ { g = $2 } /^cmd_set:/ { s = $2 }
                                    /^verify_misses:/ { m = $2 }
                                    END { printf "get=%d set=%d verify_misses=%d", g, s, m }')"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 }
    END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

variants="native $HUBS"
shims=$HUBS
for k in $(seq $((${#others[@]} - 1))); do
    for v in $HUBS; do variants="$variants o$k:$v"; shims="$shims o$k:$v"; done
    echo "# other$k: LD_PRELOAD=${others[$k]}"
done
echo "# memcached -t 4: native vs LD_PRELOAD=$lib (GREEN_HUBS: $HUBS)"
echo "# $(memcached -V), memcaslap -T $LG_THREADS -c $CONNS -t ${DURATION}s -v $VERIFY" \
     "(90% get / 10% set), $ROUNDS rounds, SETSID=$SETSID; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A ops thr
for r in $(seq "$ROUNDS"); do
    for v in $variants; do
        port=$(free_port)
        start "$v" "$port"
        t=$(threads "$SERVER")
        w=$(os_workers "$SERVER")
        if [ "$v" != native ]; then
            grep -q libgreen "/proc/$SERVER/maps" || fail "libgreen.so is not mapped in memcached ($v hubs)"
            [ "$w" -eq 0 ] || fail "memcached under the shim ($v hubs) has $w mc-worker OS threads"
        else
            [ "$w" -eq 4 ] || fail "native memcached -t 4 has $w mc-worker OS threads, not 4"
        fi
        res=$(load "$port")
        t=$(( $(threads "$SERVER") > t ? $(threads "$SERVER") : t ))
        kill -0 "$SERVER" 2>/dev/null || fail "memcached ($v) died during the run"
        stop
        name=$(name_of "$v")
        ops[$name]="${ops[$name]:-} ${res%% *}"
        [ "${thr[$name]:-0}" -ge "$t" ] || thr[$name]=$t
        echo "round=$r variant=$name ops_per_s=${res%% *} threads=$t mc_worker_os_threads=$w ${res#* }"
    done
done

nat_t=${thr[native]}
for v in $shims; do
    n=$(name_of "$v")
    [ "${thr[$n]}" -lt "$nat_t" ] ||
        fail "memcached under the shim ($n) has ${thr[$n]} OS threads, native $nat_t: the shim was not taken"
done
nat=$(echo "${ops[native]}" | median)
echo "native_median_ops_per_s=$nat"
echo "native_threads=$nat_t"
for v in $shims; do
    n=$(name_of "$v")
    m=$(echo "${ops[$n]}" | median)
    echo "${n}_median_ops_per_s=$m"
    echo "${n}_threads=${thr[$n]}"
    awk -v n="$nat" -v g="$m" -v h="$n" 'BEGIN { printf "ratio_%s_over_native=%.3f\n", h, g / n }'
done
