#!/bin/sh
# Build (if needed) and run every libgreen benchmark, then count
# instructions per operation with callgrind (repeatable on a noisy machine,
# where wall-clock numbers are not). Each benchmark prints name=value lines;
# ratios are measured in the same run.
#
#   bench/run_benchmarks.sh [build-dir]      (default: ./build-bench)
#
# The bench/ subdir is built with the demos (-Ddemos=true); release build.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-bench}
benches="bench_switch bench_spawn bench_yield bench_parked bench_fdwait bench_lockmt bench_hubs bench_sud"

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$src" -Ddemos=true -Dtests=false --buildtype=release >/dev/null
fi
targets="bench/bench_mutex bench/bench_clock bench/bench_stdio preload/libgreen.so.0.1.0"
tls_sizes="0 64 1024 16384"
for sz in $tls_sizes; do targets="$targets bench/bench_tls_$sz"; done
for b in $benches; do targets="$targets bench/$b"; done
ninja -C "$build" $targets >/dev/null

echo "# $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for b in $benches; do
    echo "## $b"
    "$build/bench/$b"
done
echo "## bench_tls (green_switch, program TLS of N bytes, GREEN_TLS=0 then 1)"
for sz in $tls_sizes; do
    for t in 0 1; do
        GREEN_TLS=$t "$build/bench/bench_tls_$sz" | sed -n "s/^switch_ns=/tls_${sz}_switch_ns_green_tls_$t=/p"
    done
done
echo "## bench_mutex (plain pthreads program: native, then under the shim)"
"$build/bench/bench_mutex" | sed 's/=/_native=/'
LD_PRELOAD="$build/preload/libgreen.so" "$build/bench/bench_mutex" | sed 's/=/_shim=/'

echo "## bench_clock (clock_gettime, and sched_yield before/after a thread CPU clock is read: native, then the shim with one hub)"
"$build/bench/bench_clock" | sed 's/=/_native=/'
GREEN_HUBS=1 LD_PRELOAD="$build/preload/libgreen.so" "$build/bench/bench_clock" | sed 's/=/_shim=/'
echo "## bench_stdio (glibc streams over pipes: stdin read with fgets, getline, getc, scanf; a stream written with fprintf, fputs: native, then the shim with one hub)"
"$build/bench/bench_stdio" | sed 's/=/_native=/'
GREEN_HUBS=1 LD_PRELOAD="$build/preload/libgreen.so" "$build/bench/bench_stdio" | sed 's/=/_shim=/'

# Syscalls of the fd ping-pong: epoll_ctl per round trip must stay ~0
# (per-fd watchers stay armed across waits).
if command -v strace >/dev/null 2>&1; then
    echo "## strace -c of bench_fdwait (syscalls per round trip)"
    n=20000
    strace -f -c -o /tmp/green_bench_strace.$$ "$build/bench/bench_fdwait" --only=x $n >/dev/null 2>&1
    awk -v n=$n '$NF ~ /^(epoll_ctl|epoll_wait|recvfrom|sendto)$/ { printf "syscalls_%s_per_round_trip=%.3f\n", $NF, $4 / n }' /tmp/green_bench_strace.$$
    rm -f /tmp/green_bench_strace.$$
fi

command -v valgrind >/dev/null 2>&1 || { echo "# valgrind missing: no instruction counts"; exit 0; }

# ir PROG KERNEL N: total instructions of `PROG --only=KERNEL N`
# ($PRELOAD, when set, is preloaded into PROG only).
ir() {
    out=$(mktemp)
    env ${PRELOAD:+LD_PRELOAD=$PRELOAD} \
        valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$1" "--only=$2" "$3" >/dev/null 2>&1
    sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$out" | head -1
    rm -f "$out"
}
# per_op NAME PROG KERNEL N1 N2 OPS_PER_ITER: instructions of one operation
# from two runs, so that start-up and fixed costs cancel out.
per_op() {
    a=$(ir "$2" "$3" "$4")
    b=$(ir "$2" "$3" "$5")
    awk -v n="$1" -v a="$a" -v b="$b" -v d="$(( ($5 - $4) * $6 ))" \
        'BEGIN { printf "%s=%.1f\n", n, (b - a) / d }'
}
echo "## callgrind instructions per operation"
per_op ir_switch_raw           "$build/bench/bench_switch" raw         10000 20000 2
per_op ir_switch_green         "$build/bench/bench_switch" green       10000 20000 2
per_op ir_swapcontext          "$build/bench/bench_switch" swapcontext 2000  4000  2
per_op ir_spawn_join           "$build/bench/bench_spawn"  one         10000 20000 1
per_op ir_spawn_join_batch     "$build/bench/bench_spawn"  batch       10000 20000 1
per_op ir_pthread_create_join  "$build/bench/bench_spawn"  pthread     200   400   1
per_op ir_yield_2              "$build/bench/bench_yield"  2           20000 40000 1
per_op ir_yield_1000           "$build/bench/bench_yield"  1000        20000 40000 1
per_op ir_fdwait_round_trip   "$build/bench/bench_fdwait" x           5000  10000 1
per_op ir_mutex_native         "$build/bench/bench_mutex"  lock        20000 40000 1
# Syscall user dispatch: the handler's own work (the trap itself is the
# kernel's and cannot run under valgrind: docs/syscall-dispatch.md).
per_op ir_sud_libc_getppid     "$build/bench/bench_sud"    libc        10000 20000 1
per_op ir_sud_dispatch_getppid "$build/bench/bench_sud"    dispatch    10000 20000 1
per_op ir_sud_pingpong_hooked  "$build/bench/bench_sud"    pingpong_hooked 2000 4000 1
per_op ir_clock_mono_native   "$build/bench/bench_clock"  mono        20000 40000 1
PRELOAD="$build/preload/libgreen.so" \
per_op ir_clock_mono_shim     "$build/bench/bench_clock"  mono        20000 40000 1
PRELOAD="$build/preload/libgreen.so" \
per_op ir_mutex_shim           "$build/bench/bench_mutex"  lock        20000 40000 1
# glibc's streams over pipes (hooks/io_stdio_glibc.c), per line, one hub.
export GREEN_HUBS=1
for k in fgets getline getc scanf fprintf fputs; do
    PRELOAD= per_op ir_stdio_${k}_native "$build/bench/bench_stdio" $k 20000 40000 1
    PRELOAD="$build/preload/libgreen.so" \
    per_op ir_stdio_${k}_shim   "$build/bench/bench_stdio" $k 20000 40000 1
done
unset GREEN_HUBS PRELOAD
# The lock core's FIFO path: a contended lock queues, the unlock hands
# over (one hub; per lock + unlock of one thread, the switches included).
export GREEN_HUBS=1
PRELOAD="$build/preload/libgreen.so" \
per_op ir_mutex_handoff_shim   "$build/bench/bench_mutex"  handoff     5000  10000 2
unset GREEN_HUBS PRELOAD          # (a shell may keep a function's prefix)
# Thread-local storage per green thread (README "Thread-local storage").
for sz in $tls_sizes; do
    for t in 0 1; do
        export GREEN_TLS=$t
        per_op "ir_switch_tls_${sz}_green_tls_$t" "$build/bench/bench_tls_$sz" x 10000 20000 2
        unset GREEN_TLS
    done
done
