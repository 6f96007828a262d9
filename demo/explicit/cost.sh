#!/bin/bash
# cost.sh - what a request costs each server, counted rather than timed:
# user-space instructions per request (callgrind) and system calls per
# request (strace -c). Counts are repeatable on a noisy machine, where
# requests/s are not.
#
# For each server (green_http, green_http --hooks, nginx with one worker
# process answering the same body with `return 200`):
#   1. start it under the tool, warm it up with WARM requests,
#   2. callgrind: zero the counters, send N requests, dump; Ir / N.
#      strace: syscalls over warm-up + N requests / (WARM + N).
# Load comes from green_loadgen (natively), CONNS keep-alive connections.
#
# Usage: demo/explicit/cost.sh [BUILD_DIR]   (default ./build)
# Environment: N (default 20000), WARM (2000), CONNS (100), BODY (128).
set -euo pipefail

BUILD=${1:-build}
HTTP=$BUILD/demo/explicit/green_http
LOADGEN=$BUILD/demo/explicit/green_loadgen
N=${N:-20000}
WARM=${WARM:-2000}
CONNS=${CONNS:-100}
BODY=${BODY:-128}
WORK=$(mktemp -d /tmp/green-cost.XXXXXX)
SERVER_PID=

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in "$HTTP" "$LOADGEN" valgrind callgrind_control strace nginx; do
    command -v "$tool" >/dev/null || { echo "cost.sh: $tool missing" >&2; exit 1; }
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# nginx_conf PORT: a single-process nginx returning BODY bytes from memory.
nginx_conf() {
    local body
    body=$(head -c "$((BODY - 1))" /dev/zero | tr '\0' 'x')
    mkdir -p "$WORK/nginx/logs"
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_rlimit_nofile 20000;
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
        listen 127.0.0.1:$1 backlog=4096;
        location / { return 200 "$body\n"; }
    }
}
EOF
}

# start WRAPPER... -- SERVER...: run the server under the wrapper; sets
# SERVER_PID (the wrapper's pid) and PORT.
start() {
    local wrap=() port
    while [ "$1" != "--" ]; do wrap+=("$1"); shift; done
    shift
    if [ "$1" = nginx ]; then
        port=$(free_port)
        nginx_conf "$port"
        "${wrap[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
            -e "$WORK/nginx/logs/error.log" >"$WORK/server.out" 2>&1 &
    else
        "${wrap[@]}" "$@" --port 0 --body-size "$BODY" >"$WORK/server.out" 2>&1 &
    fi
    SERVER_PID=$!
    for _ in $(seq 300); do
        [ "$1" != nginx ] && port=$(awk '/^listening on/ {print $3}' "$WORK/server.out" 2>/dev/null || true)
        if [ -n "${port:-}" ] && curl -sf "http://127.0.0.1:$port/" -o /dev/null; then
            PORT=$port
            return 0
        fi
        sleep 0.1
    done
    echo "cost.sh: $* did not start" >&2; cat "$WORK/server.out" >&2; exit 1
}

# stop: end the server. Under strace the server is the wrapper's child and
# gets the signal itself (strace would only detach); valgrind runs in place.
stop() {
    local kids
    kids=$(pgrep -P "$SERVER_PID" || true)
    kill ${kids:-$SERVER_PID} 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# load COUNT: COUNT verified keep-alive requests; fails on any error.
load() {
    local out
    out=$("$LOADGEN" --addr "127.0.0.1:$PORT" --conns "$CONNS" --max-requests "$1" \
          --duration 300 --expect-body "$BODY")
    grep -q '^errors=0$' <<<"$out" || { echo "cost.sh: errors: $out" >&2; exit 1; }
}

# instructions SERVER...: user-space instructions per request.
instructions() {
    rm -f "$WORK"/cg.out*
    start valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" -- "$@"
    load "$WARM"
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    load "$N"
    callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
    stop
    awk -v n="$N" '/^summary:/ {printf "%.0f", $2 / n; exit}' "$WORK/cg.out.1"
}

# syscalls SERVER...: system calls per request: the total, then each call
# made at least once per 100 requests.
syscalls() {
    start strace -f -c -o "$WORK/strace.out" -- "$@"
    load "$WARM"
    load "$N"
    stop
    awk -v n="$((N + WARM))" '$1 ~ /^[0-9.]+$/ && NF >= 5 {printf "%s %.2f\n", $NF, $4 / n}' \
        "$WORK/strace.out" | sort -k2 -rn |
        awk '$1 == "total" {t = $2; next} $2 >= 0.01 {s = s sprintf(" %s %s", $1, $2)}
             END {printf "%s  (%s )", t, s}'
}

printf "%-22s %14s   %s\n" server "instr/request" "syscalls/request (each call)"
for spec in "green_http:$HTTP" "green_http --hooks:$HTTP --hooks" "nginx (1 process):nginx"; do
    name=${spec%%:*}
    read -r -a cmd <<<"${spec#*:}"
    ir=$(instructions "${cmd[@]}")
    sc=$(syscalls "${cmd[@]}")
    printf "%-22s %14s   %s\n" "$name" "$ir" "$sc"
done
echo "($N keep-alive requests over $CONNS connections from green_loadgen, after $WARM warm-up; body $BODY bytes)"
