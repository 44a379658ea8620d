#!/usr/bin/env bash
# ONNX backend tests (Debian libonnx-testdata: node/, pytorch-converted/,
# pytorch-operator/, simple/) through aiinfer, once on the oneDNN path and once
# with the C reference kernels only. Each test directory counts once per mode:
# pass, fail, or skip when it needs an op/dtype/feature the engine does not
# support (reported with the reason by `aiinfer check -v`; every reason is listed
# with its count). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${AISERVE_BUILD:-build}/aiinfer
data=/usr/share/libonnx-testdata/data
if [ ! -x "$bin" ] || [ ! -d "$data/node" ]; then
    echo "missing $bin or $data (install libonnx-testdata)"
    echo "0 passed, 1 failed"
    exit 1
fi
dirs=("$data"/node/* "$data"/pytorch-converted/* "$data"/pytorch-operator/* "$data"/simple/*)
passed=0
failed=0
for mode in "" --reference; do
    out=$("$bin" check -v $mode "${dirs[@]}")
    echo "$out" | grep '^FAIL' || true
    line=$(echo "$out" | tail -1)
    echo "mode ${mode:-onednn}: $line"
    # every skip with its reason, grouped (docs/engine.md explains each group)
    echo "$out" | grep '^SKIP' |
        sed -E 's/^SKIP [^:]*: (.*\/model\.onnx: )?//; s/^node .[^ ]*. //; s/^test_data_set_[0-9]*: //' |
        sort | uniq -c | sort -rn | sed 's/^/  skipped: /'
    if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
