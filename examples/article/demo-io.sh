#!/usr/bin/env bash
# The I/O-bound part of `make demo`: the article's Flask app (io_demo.py, GET /
# waits on an upstream that answers after 2 s) under aiserve with the article's
# process model (2 processes x 8 threads), its upstream being aiserve's own
# built-in /delay/2 on a second instance; then the built-in /delay/2 alone, on
# one process and one thread, which needs no threads at all.
# Usage: examples/article/demo-io.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
B=$(cd "${1:-${AISERVE_BUILD:-build}}" && pwd)
UP=${DEMO_UPSTREAM_PORT:-18081}
APP=${DEMO_IO_PORT:-18082}
SECS=${DEMO_SECONDS:-5}
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

wait_ready() {
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$1/health/ready" >/dev/null && return 0
        sleep 0.1
    done
    echo "demo: nothing ready on port $1" >&2
    return 1
}

echo "== upstream: $B/aiserve --http=127.0.0.1:$UP --processes 1 (built-in /delay/N)"
"$B/aiserve" --http="127.0.0.1:$UP" --processes 1 --threads 1 --disable-logging \
    >"$tmp/upstream.log" 2>&1 &
pids+=($!)
wait_ready "$UP"

echo "== the article's I/O-bound Flask app: aiserve examples/article/uwsgi_io.ini (2 x 8 threads)"
(cd examples/article &&
    UPSTREAM="http://127.0.0.1:$UP/delay/2" exec "$B/aiserve" uwsgi_io.ini \
        --http="127.0.0.1:$APP" --builtins=health --disable-logging) >"$tmp/app.log" 2>&1 &
pids+=($!)
wait_ready "$APP"
echo "GET / -> $(curl -s "http://127.0.0.1:$APP/" | head -c 200)"

echo
echo "== aiload: the article's locustfile (between(5, 15)), 50 users, spawn rate 50, ${SECS}s"
"$B/aiload" -f "$root/examples/locust/locustfile.ini" --headless -u 50 -r 50 -t "${SECS}s" \
    -H "http://127.0.0.1:$APP" --only-summary --stop-timeout 15 | tail -8
echo
echo "== aiload: GET / with 16 connections and no think time, ${SECS}s (16 app threads, each held 2 s per request: 8 RPS)"
"$B/aiload" "http://127.0.0.1:$APP/" -c 16 -d "${SECS}s" --threads 1 --only-summary --stop-timeout 5 | tail -8
echo
echo "== aiload: the built-in /delay/2 on 1 process x 1 thread, 400 connections, ${SECS}s (event loop, no threads)"
"$B/aiload" "http://127.0.0.1:$UP/delay/2" -c 400 -d "${SECS}s" --threads 1 --only-summary --stop-timeout 5 | tail -8
