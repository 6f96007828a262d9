#!/bin/bash
# compare.sh - the measurements behind demo/explicit/README.md, in one run.
#
#  1. green_loadgen and wrk, side by side, loading the same green_http at
#     each concurrency: the two load generators should agree.
#  2. green_http against nginx (one worker, the same 128-byte body from
#     memory with `return 200`), both loaded by wrk, then by green_loadgen:
#     requests/s ratio green_http / nginx.
#  3. green_http's two styles: explicit waits on non-blocking sockets (the
#     default) against --hooks (blocking sockets, libgreen's io hooks).
#
# Every pair alternates A B A B (ROUNDS rounds) so background noise hits both
# sides alike; the table shows the median of the rounds and the ratio.
# Loopback only; every run is bounded by DURATION.
#
# Usage: demo/explicit/compare.sh [BUILD_DIR]
#   BUILD_DIR holds demo/explicit/green_http and green_loadgen (default:
#   ./build). Environment: DURATION (seconds per run, default 5), CONNS
#   (default "10 100 1000"), ROUNDS (default 2), BODY (bytes, default 128).
set -euo pipefail

BUILD=${1:-build}
HTTP=$BUILD/demo/explicit/green_http
LOADGEN=$BUILD/demo/explicit/green_loadgen
DURATION=${DURATION:-5}
CONNS=${CONNS:-10 100 1000}
ROUNDS=${ROUNDS:-2}
BODY=${BODY:-128}
WORK=$(mktemp -d /tmp/green-compare.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in "$HTTP" "$LOADGEN"; do
    [ -x "$tool" ] || { echo "compare.sh: $tool missing: build first" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "compare.sh: wrk missing (apt-get install wrk)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

# start_green_http NAME [ARGS]: run green_http on a free port; sets
# NAME_PORT and NAME_PID.
start_green_http() {
    local port name=$1
    shift
    "$HTTP" --port 0 --body-size "$BODY" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    printf -v "${name}_PID" %s "$!"
    for _ in $(seq 50); do
        port=$(awk '/^listening on/ {print $3}' "$WORK/$name.out" 2>/dev/null || true)
        [ -n "$port" ] && { printf -v "${name}_PORT" %s "$port"; return 0; }
        sleep 0.1
    done
    echo "compare.sh: green_http $* did not start" >&2; exit 1
}

# start_nginx: one worker returning the same body from memory; sets NGINX_PORT.
start_nginx() {
    NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local body
    body=$(head -c "$((BODY - 1))" /dev/zero | tr '\0' 'x')
    mkdir -p "$WORK/nginx/logs"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000000;
    default_type text/plain;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / { return 200 "$body\n"; }
    }
}
EOF
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" &
    PIDS+=($!)
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$NGINX_PORT/" -o /dev/null && return 0
        sleep 0.1
    done
    echo "compare.sh: nginx did not start" >&2; exit 1
}

# to_us VALUE: wrk's "1.23ms" / "456.78us" / "1.02s" in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN { n = v + 0;
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1e6; else m = 1;
        printf "%d", n * m }'
}

# run_wrk PORT CONNS: prints "rps p50_us p99_us errors".
run_wrk() {
    local out rps p50 p99 errs
    out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency "http://127.0.0.1:$1/" 2>&1)
    rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errs=$(awk '/Socket errors:/ {gsub(",", ""); s = $4 + $6 + $8 + $10}
                /Non-2xx/ {s += $5} END {printf "%d", s}' <<<"$out")
    echo "$rps $p50 $p99 $errs"
}

# run_loadgen PORT CONNS: prints "rps p50_us p99_us errors".
run_loadgen() {
    "$LOADGEN" --addr "127.0.0.1:$1" --conns "$2" --duration "$DURATION" --expect-body "$BODY" |
        awk -F= '{v[$1] = $2} END {printf "%d %d %d %d\n", v["rps"], v["p50_us"], v["p99_us"], v["errors"]}'
}

# median of the numbers on stdin.
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# pair NAME_A CMD_A NAME_B CMD_B CONNS: alternate the two, ROUNDS times,
# and print one table row with medians and the A/B requests/s ratio.
pair() {
    local r a b
    : >"$WORK/a"; : >"$WORK/b"
    for r in $(seq "$ROUNDS"); do
        $2 "$5" >>"$WORK/a"
        $4 "$5" >>"$WORK/b"
    done
    for side in a b; do
        for col in 1 2 3; do
            eval "${side}$col=$(cut -d' ' -f$col "$WORK/$side" | median)"
        done
        eval "${side}4=$(awk '{s += $4} END {print s + 0}' "$WORK/$side")"
    done
    printf "%6s | %-22s %8s %7s %8s %4s | %-22s %8s %7s %8s %4s | %5.2f\n" \
        "$5" "$1" "$a1" "$a2" "$a3" "$a4" "$3" "$b1" "$b2" "$b3" "$b4" \
        "$(awk -v x="$a1" -v y="$b1" 'BEGIN {print y ? x / y : 0}')"
}

header() {
    printf "\n%s\n" "$1"
    printf "%6s | %-22s %8s %7s %8s %4s | %-22s %8s %7s %8s %4s | %5s\n" \
        conns A rps p50_us p99_us err B rps p50_us p99_us err "A/B"
}

lg_green() { run_loadgen "$GREEN_PORT" "$1"; }
wrk_green() { run_wrk "$GREEN_PORT" "$1"; }
lg_nginx() { run_loadgen "$NGINX_PORT" "$1"; }
lg_hooks() { run_loadgen "$HOOKS_PORT" "$1"; }
wrk_nginx() { run_wrk "$NGINX_PORT" "$1"; }

# peak_rss_kb PID...: the sum of the processes' peak resident sets (VmHWM).
peak_rss_kb() {
    local p sum=0 kb
    for p in "$@"; do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        sum=$((sum + ${kb:-0}))
    done
    echo "$sum"
}

start_green_http GREEN
start_green_http HOOKS --hooks
start_nginx
NGINX_PID=${PIDS[-1]}
echo "green_http on $GREEN_PORT (--hooks on $HOOKS_PORT), nginx on $NGINX_PORT; body $BODY bytes;" \
     "$DURATION s per run, $ROUNDS rounds, medians; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"

header "1. load generators on the same green_http (keep-alive)"
for c in $CONNS; do pair green_loadgen lg_green wrk wrk_green "$c"; done

header "2a. green_http vs nginx (1 worker, return 200), loaded by wrk"
for c in $CONNS; do pair green_http wrk_green nginx wrk_nginx "$c"; done

header "2b. green_http vs nginx, loaded by green_loadgen"
for c in $CONNS; do pair green_http lg_green nginx lg_nginx "$c"; done

header "3. green_http explicit waits vs --hooks (blocking sockets + io hooks), loaded by green_loadgen"
for c in $CONNS; do pair explicit lg_green --hooks lg_hooks "$c"; done

echo
echo "peak RSS over the run: green_http $(peak_rss_kb "$GREEN_PID") kB," \
     "nginx master+worker $(peak_rss_kb "$NGINX_PID" $(pgrep -P "$NGINX_PID")) kB"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
