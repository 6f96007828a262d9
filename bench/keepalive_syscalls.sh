#!/bin/bash
# bench/keepalive_syscalls.sh - system calls per keep-alive HTTP request of
# demo/legacy_http under the shim, beside nginx with as many workers as
# hubs: the figure behind issue 9's keep-alive target (README, "Every
# core"), by kind of call, counted where it is repeatable.
#
#   bench/keepalive_syscalls.sh [build-dir]
#
# build-dir must hold the demos (meson's default -Ddemos=true) and
# preload/libgreen.so; a release build (build-bench) is what the figures
# in README use. For each variant (the shim with GREEN_HUBS 1 and 2, with
# GREEN_FD_CACHE=1 and 0; nginx with 1 and 2 workers, when nginx is
# installed) it starts the server, drives it with demo/loadgen_native at
# CONNS connections for 4 s (1 s of warm-up), counts the server's system
# calls with `perf stat -p` over 2 s in the middle of the run, and prints
# them per request (requests = the load generator's rate x 2 s: within a
# few percent). perf and not strace: bench/syscalls.sh says why.
#
# Environment: CONNS (1000; each connection is two descriptors of the
# machine's 20,000, and a thread natively), PORT (18080, and PORT+1 for
# nginx). Needs perf (linux-perf) and, for the anchor, nginx-light.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
CONNS=${CONNS:-1000}
PORT=${PORT:-18080}
lib=$build/preload/libgreen.so
for f in "$lib" "$build/demo/legacy_http" "$build/demo/loadgen_native"; do
    [ -e "$f" ] || { echo "keepalive_syscalls.sh: $f is missing (build with -Ddemos=true)" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "keepalive_syscalls.sh: perf is missing: apt-get install -y linux-perf" >&2; exit 2; }
work=$(mktemp -d /tmp/green-kasys.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true
events=raw_syscalls:sys_enter
for c in recvfrom recvmsg sendto sendmsg read write writev epoll_wait fcntl getsockopt sched_yield; do
    events+=",syscalls:sys_enter_$c"
done

# measure LABEL PIDS PORT: load, count, print per request.
measure() {
    sleep 0.5
    "$build/demo/loadgen_native" --addr "127.0.0.1:$3" --conns "$CONNS" --duration 4 \
        --warmup 1 --proto http --path / >"$work/lg" 2>&1 &
    local lg=$!
    sleep 1.5
    perf stat -x, -e "$events" -p "$2" -o "$work/perf" sleep 2
    wait "$lg"
    local rps
    rps=$(sed -n 's/^rps=//p' "$work/lg")
    awk -F, -v label="$1" -v rps="${rps:-0}" '
        BEGIN { n = rps * 2 }
        $1 ~ /^[0-9]+$/ { split($3, e, ":"); name = e[2]; sub(/^sys_enter_?/, "", name)
                          if (name == "") name = "all"; v[name] = $1; order[++k] = name }
        END {
            printf "%-14s %9.0f req/s", label, rps
            for (i = 1; i <= k; i++)
                if (n > 0 && (order[i] == "all" || v[order[i]] / n >= 0.005))
                    printf "  %s %.2f", order[i], v[order[i]] / n
            printf "\n"
        }' "$work/perf"
}

echo "system calls per request, keep-alive HTTP at $CONNS connections ($(date +%F), load $(cut -d' ' -f1-3 /proc/loadavg))"
for v in "1 1" "1 0" "2 1" "2 0"; do
    set -- $v
    env GREEN_HUBS="$1" GREEN_FD_CACHE="$2" LD_PRELOAD="$lib" \
        setsid "$build/demo/legacy_http" --port "$PORT" >"$work/srv" 2>&1 &
    SERVER=$!
    measure "green h$1 c$2" "$SERVER" "$PORT"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null; SERVER=""
done
if ! command -v nginx >/dev/null; then
    echo "nginx: not installed (apt-get install -y nginx-light): no anchor"
    exit 0
fi
for w in 1 2; do
    d=$work/nginx$w
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
worker_processes $w;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log crit;
events { worker_connections 20000; }
http {
    access_log off; server_tokens off; default_type text/plain;
    keepalive_requests 1000000000; keepalive_timeout 300s;
    client_body_temp_path $d/cb; proxy_temp_path $d/p; fastcgi_temp_path $d/f;
    uwsgi_temp_path $d/u; scgi_temp_path $d/s;
    server { listen 127.0.0.1:$((PORT + 1)) backlog=4096; location / { return 200 "hello"; } }
}
EOF
    setsid nginx -c "$d/nginx.conf" -p "$d" >/dev/null 2>&1 &
    SERVER=$!
    sleep 0.5
    measure "nginx w$w" "$(pgrep -P "$SERVER" | paste -sd,)" "$((PORT + 1))"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null; SERVER=""
done
