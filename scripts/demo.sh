#!/usr/bin/env bash
# make demo: serve and load-test for a short while, then stop everything.
# Each part of the project extends this as it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${AISERVE_BUILD:-build}
for p in aiserve aiinfer aiload; do
    "$B/$p" --version
done
examples/models/demo.sh "$B"
