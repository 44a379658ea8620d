#!/usr/bin/env bash
# make demo: the article's two experiments with no Python in the model path,
# each served by aiserve and load-tested by aiload for a few seconds, then
# everything is stopped. About 25 s of load in all.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${AISERVE_BUILD:-build}
for p in aiserve aiinfer aiload; do
    "$B/$p" --version
done
echo
echo "######## CPU-bound: MobileNetV2@160 served natively (examples/models/demo.ini)"
examples/models/demo.sh "$B"
echo
echo "######## I/O-bound: a 2 s upstream (examples/article/)"
examples/article/demo-io.sh "$B"
echo
echo "demo: done; everything stopped."
