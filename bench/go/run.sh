#!/bin/sh
# bench/go/run.sh - Go's cross-thread hand-off and wake-up latency
# (handoff.go, GOMAXPROCS=2) beside libgreen's (bench_hubs, two hubs), in
# one run; name=value lines, ns per operation, each the median of REPS runs
# inside its program.
#
#   bench/go/run.sh [build-dir]      (default: ./build; REPS=5, SCALE=1)
#
# Go comes from Debian (apt-get install -y golang-go); without it the
# script says so and exits 2. bench_hubs is run when the build dir has it
# (meson setup ... -Ddemos=true), and then the ratios libgreen/Go follow:
# cross-hub green_sem round trip over Go's channel round trip between two
# goroutines locked to their own OS threads (both cross OS threads on every
# wake-up), and the cross-hub green_mutex pair over Go's sync.Mutex pair.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
REPS=${REPS:-5}
SCALE=${SCALE:-1}
command -v go >/dev/null 2>&1 || {
    echo "bench/go/run.sh: go is missing: apt-get install -y golang-go" >&2
    exit 2
}
out=$build/bench/go
mkdir -p "$out"
GOCACHE=${GOCACHE:-$out/cache} GO111MODULE=off \
    go build -o "$out/handoff" "$here/handoff.go"

echo "# $(go version | cut -d' ' -f3), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## go handoff (GOMAXPROCS=2)"
GOMAXPROCS=2 "$out/handoff" -scale "$SCALE" -reps "$REPS" | tee "$out/go.txt"
[ -x "$build/bench/bench_hubs" ] || exit 0
echo "## bench_hubs (libgreen, green_set_hubs(2) / (1))"
"$build/bench/bench_hubs" "$SCALE" "$REPS" | tee "$out/green.txt"
val() { sed -n "s/^$2=//p" "$out/$1.txt"; }
awk -v a="$(val green sem_pingpong_cross_hub_ns)" -v b="$(val go go_chan_pingpong_locked_ns)" \
    -v c="$(val green mutex_cross_hub_ns)" -v d="$(val go go_mutex_ns)" 'BEGIN {
    printf "ratio_green_sem_cross_hub_over_go_chan_locked=%.3f\n", a / b
    printf "ratio_green_mutex_cross_hub_over_go_mutex=%.3f\n", c / d }'
