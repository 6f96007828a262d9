#!/bin/bash
# bench/syscalls.sh - system calls per request of real daemons, natively and
# under libgreen's shim, side by side: the cost that matters on these
# machines (DESIGN.md, "Performance shape"), counted where it is repeatable.
#
#   bench/syscalls.sh [build-dir] [other-libgreen.so ...]
#
# For each variant (native; the shim of build-dir with each GREEN_HUBS in
# HUBS; then each extra libgreen.so given, e.g. a build of main, to compare
# before and after a change) it starts a fresh daemon, counts its system
# calls with `perf stat -p` while a fixed number of requests runs, and
# prints per request: all system calls, epoll_wait, and the daemon's CPU
# time. Cases: redis-server with redis-benchmark GET at 1 connection (a
# strict ping-pong: every request waits) and at 50, and memcached -t 4
# with memcaslap (50 connections, DURATION seconds; per operation).
#
# Why perf stat and not strace -c: strace stops the tracee at every system
# call, which makes each one cost tens of microseconds, and the hub's poll
# rule is time-based (hub.c: a non-blocking poll at most every
# POLL_INTERVAL_NS while threads are runnable): under strace every turn
# looks long and the hub polls at every one. A futex ping-pong between two
# green threads of one hub shows 80,000 epoll_wait for 40,000 rounds under
# strace and 3,800 under perf stat. perf stat counts in the kernel without
# stopping anyone. Wall-clock throughput is printed too, but on two shared
# cores only the counts are repeatable.
#
# Environment: CASES ("redis1 redis50 memcached"), HUBS ("2 1"), N (redis requests per case, 100000), DURATION
# (memcached, 4). Needs perf, redis-server/redis-benchmark (redis-server,
# redis-tools), memcached and memcaslap (libmemcached-tools); a case whose
# tools are missing is skipped with the install line.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
shift || true
HUBS=${HUBS:-"2 1"}
N=${N:-100000}
DURATION=${DURATION:-4}
work=$(mktemp -d /tmp/green-syscalls.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
command -v perf >/dev/null || { echo "syscalls.sh: perf is missing: apt-get install -y linux-perf" >&2; exit 2; }

variants=(native)
for h in $HUBS; do variants+=("$build/preload/libgreen.so:$h"); done
for lib in "$@"; do for h in $HUBS; do variants+=("$(realpath "$lib"):$h"); done; done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# launch VARIANT CMD...: start the daemon natively or under the shim.
launch() {
    local v=$1; shift
    if [ "$v" = native ]; then
        env -u LD_PRELOAD "$@" >"$work/log" 2>&1 &
    else
        env LD_PRELOAD="${v%:*}" GREEN_HUBS="${v##*:}" "$@" >"$work/log" 2>&1 &
    fi
    SERVER=$!
}

stop() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; SERVER=""; }

# count PID: perf stat on PID in the background; PERF is its pid.
count() {
    perf stat -x, -e task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_timerfd_settime \
        -p "$1" -o "$work/stat" &
    PERF=$!
    sleep 0.3
}

# report LABEL VARIANT REQUESTS RATE: stop perf and print per request.
report() {
    kill -INT "$PERF"; wait "$PERF" 2>/dev/null
    awk -F, -v label="$1" -v var="$2" -v n="$3" -v rate="$4" '
        $1 ~ /^[0-9.]+$/ { split($3, e, ":"); v[e[length(e)]] = $1 }
        END { printf "%-14s %-36s %7s/s  syscalls %5.2f  epoll_wait %5.2f  timerfd %5.2f  cpu %6.2f us\n",
                     label, var, rate, v["sys_enter"] / n, v["sys_enter_epoll_wait"] / n,
                     v["sys_enter_timerfd_settime"] / n,
                     v["task-clock"] * 1000 / n }' "$work/stat"
}

label_of() { [ "$1" = native ] && echo native || echo "${1%/preload/*} hubs=${1##*:}"; }

redis_case() {
    local conns=$1 v port
    command -v redis-benchmark >/dev/null || { echo "redis: apt-get install -y redis-server redis-tools"; return; }
    for v in "${variants[@]}"; do
        port=$(free_port)
        mkdir -p "$work/rd"
        launch "$v" redis-server --port "$port" --dir "$work/rd" --save '' --appendonly no
        for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
        count "$SERVER"
        local out rps
        out=$(redis-benchmark -p "$port" -c "$conns" -n "$N" -t get -q 2>&1 | tr '\r' '\n')
        rps=$(echo "$out" | sed -n 's/.*GET: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
        report "redis c=$conns" "$(label_of "$v")" "$N" "${rps%.*}"
        stop
    done
}

memcached_case() {
    local v port user=()
    command -v memcaslap >/dev/null || { echo "memcached: apt-get install -y memcached libmemcached-tools"; return; }
    [ "$(id -u)" -eq 0 ] && user=(-u root)
    for v in "${variants[@]}"; do
        port=$(free_port)
        launch "$v" memcached "${user[@]}" -t 4 -l 127.0.0.1 -p "$port" -U 0 -c 4096 -m 256
        sleep 0.5
        count "$SERVER"
        local out ops tps
        out=$(memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -t "${DURATION}s" 2>&1)
        ops=$(echo "$out" | sed -n 's/.*Ops: *\([0-9]*\) *TPS: *\([0-9]*\).*/\1/p' | tail -1)
        tps=$(echo "$out" | sed -n 's/.*Ops: *\([0-9]*\) *TPS: *\([0-9]*\).*/\2/p' | tail -1)
        report "memcached c=50" "$(label_of "$v")" "${ops:-1}" "${tps:-0}"
        stop
    done
}

echo "per request, counted by perf stat in the daemon (all its threads); $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in ${CASES:-redis1 redis50 memcached}; do
    case $c in
    redis1) redis_case 1 ;;
    redis50) redis_case 50 ;;
    memcached) memcached_case ;;
    esac
done
