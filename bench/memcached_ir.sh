#!/bin/bash
# bench/memcached_ir.sh - user-space instructions per memcached request,
# natively and under libgreen's shim, counted by callgrind: the figure
# that stays put on two shared cores, where memcached.sh's ops/s move by
# more than most changes do.
#
#   bench/memcached_ir.sh [build-dir] [other-libgreen.so ...]
#
# For each variant (native; the shim of build-dir, default ./build-bench,
# with each GREEN_HUBS in HUBS; then each extra libgreen.so given, e.g. a
# build of another commit) it runs `memcached -t 4` under valgrind
# --tool=callgrind twice, serving N and then 2N requests of memcaslap
# (50 connections, 90% get / 10% set), and prints the difference of the
# two totals divided by N: start-up and shut-down cancel out. Variants:
# native, shim_hH, and otherK_hH for the K-th extra library. Kernel work
# (most of a request's cost) is not counted: bench/syscalls.sh counts the
# system calls.
#
# Caveats. Valgrind runs one thread at a time, so the threads of a
# native run or of two hubs never run in parallel here; memcached's
# background threads (LRU maintainer, crawler) work by the clock, not by
# the request: a variant moves by up to 10% from run to run. The figures compare
# variants measured in one run, not absolute costs. Valgrind wants the
# fd limit equal to memcached's -c (it refuses any other setrlimit): the
# script runs with ulimit -n 1036 and -c 1024.
#
# Environment: N (20000), HUBS ("2 1"). Needs valgrind, memcached and
# memcaslap (libmemcached-tools).
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build-bench}" && pwd)
shift || true
N=${N:-20000}
HUBS=${HUBS:-"2 1"}
for t in valgrind memcached memcaslap; do
    command -v $t >/dev/null || { echo "memcached_ir.sh: $t is missing" >&2; exit 2; }
done
work=$(mktemp -d /tmp/memcached-ir.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 1036 && ulimit -Hn 1036 || { echo "memcached_ir.sh: cannot set ulimit -n 1036" >&2; exit 2; }

variants=(native) labels=(native)
for h in $HUBS; do variants+=("$build/preload/libgreen.so:$h"); labels+=("shim_h$h"); done
k=0
for lib in "$@"; do
    k=$((k + 1))
    echo "# other$k: $(realpath "$lib")"
    for h in $HUBS; do variants+=("$(realpath "$lib"):$h"); labels+=("other${k}_h$h"); done
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ir VARIANT OPS: callgrind's total for memcached serving OPS requests.
ir() {
    local port user=() cmd
    port=$(free_port)
    [ "$(id -u)" -eq 0 ] && user=(-u root)
    cmd=(valgrind --tool=callgrind --callgrind-out-file="$work/cg" memcached "${user[@]}" -t 4
         -l 127.0.0.1 -p "$port" -U 0 -c 1024 -m 256)
    if [ "$1" = native ]; then
        env -u LD_PRELOAD "${cmd[@]}" >"$work/log" 2>&1 &
    else
        env LD_PRELOAD="${1%:*}" GREEN_HUBS="${1##*:}" "${cmd[@]}" >"$work/log" 2>&1 &
    fi
    SERVER=$!
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$SERVER" 2>/dev/null || { echo "memcached exited: $(tail -3 "$work/log")" >&2; return 1; }
        sleep 0.2
    done
    memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -x "$2" >/dev/null 2>&1
    kill -INT "$SERVER"; wait "$SERVER" 2>/dev/null; SERVER=""
    sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$work/cg" | head -1
}

echo "# memcached -t 4 under callgrind, memcaslap -c 50 -x $N and -x $((2 * N)); $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!variants[@]}"; do
    a=$(ir "${variants[$i]}" "$N") && b=$(ir "${variants[$i]}" $((2 * N))) || exit 1
    awk -v l="${labels[$i]}" -v a="$a" -v b="$b" -v n="$N" \
        'BEGIN { printf "ir_per_request_%s=%.0f\n", l, (b - a) / n }'
done
