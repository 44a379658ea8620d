#!/usr/bin/env bash
# The model-serving part of `make demo`: serve examples/models/demo.ini, ask
# both endpoints once, load-test each with aiload for a few seconds, show the
# per-model metrics, stop the server. Usage: examples/models/demo.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-${AISERVE_BUILD:-build}}
PORT=${DEMO_PORT:-18080}
SECS=${DEMO_SECONDS:-5}
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

/usr/bin/python3 - "$tmp/digit.png" <<'PY'
import sys
import numpy as np
from PIL import Image
x = np.load("models/digits-test-x.npy")[0, 0]
Image.fromarray(np.rint(x * 255).astype(np.uint8)).resize((64, 64)).save(sys.argv[1])
PY

echo "== model serving: $B/aiserve examples/models/demo.ini on port $PORT"
"$B/aiserve" examples/models/demo.ini --http="127.0.0.1:$PORT" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break
    sleep 0.1
done
echo "GET /              -> $(curl -s "http://127.0.0.1:$PORT/")"
echo "POST /predict/digits (a held-out 8x8 digit, as a 64x64 PNG) ->"
curl -s --data-binary @"$tmp/digit.png" "http://127.0.0.1:$PORT/predict/digits?top_k=3"
echo
echo "== aiload: GET / (one MobileNetV2 forward pass each), 16 users, ${SECS}s"
"$B/aiload" "http://127.0.0.1:$PORT/" -c 16 -d "${SECS}s" --threads 1 --only-summary | tail -12
echo "== aiload: POST /predict/digits with the PNG, 16 users, ${SECS}s"
"$B/aiload" "http://127.0.0.1:$PORT/predict/digits" -m POST --body-file "$tmp/digit.png" \
    --header "Content-Type: image/png" -c 16 -d "${SECS}s" --threads 1 --only-summary | tail -12
echo "== per-model metrics"
curl -s "http://127.0.0.1:$PORT/metrics" |
    grep -E '^aiserve_model_(request_success|inference_count|execution_count)' || true
