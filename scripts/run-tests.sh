#!/usr/bin/env bash
# Runs every test of the project and ends with one line "N passed, N failed".
#   1. format check            (1 test)
#      layering check          (1 test: scripts/check-layers.sh, who includes what)
#   2. build (warnings are errors under CI)
#   3. Criterion unit tests    (each test case)
#   4. the same unit tests built with ASan+UBSan
#   5. black-box pytest suite  (each test case; 2 concurrent shards, then the
#      tests that measure the machine alone: scripts/pytest-shards.py)
#   6. suites under tests/suites/*.sh, each ending "N passed, N failed"
#   7. the engine unit tests and the ONNX conformance suite again with oneDNN
#      capped at each ISA of ISA_CAPS (default "AVX2 SSE41"), and the black-box
#      engine and model tests at each of ISA_PYTEST (default "AVX2"): the
#      kernels an AVX2-only or older CPU runs, so float checks hold on every
#      machine CI may land on
#   8. libFuzzer smoke runs    (1 test per target)
# Environment: FAST=1 skips the ASan build and the fuzz runs and caps at AVX2
# only (for local loops); ISA_CAPS="" skips step 7; FUZZ_SEED=0 gives the fuzz
# runs a random seed (default 1: replayable).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
passed=0
failed=0
jobs=$(nproc 2>/dev/null || echo 2)
art=tests/artifacts
mkdir -p "$art"

count() { passed=$((passed + $1)); failed=$((failed + $2)); }
say() { printf '\n== %s\n' "$*"; }

# Criterion prints "Synthesis: Tested: T | Passing: P | Failing: F | Crashing: C".
run_unit() {
    local bin=$1 out
    out=$("$bin" -j1 2>&1)
    local rc=$?
    echo "$out" | grep -E "^\[----\]|FAIL|Synthesis" | tail -20
    local syn p f c
    syn=$(echo "$out" | grep -o 'Tested: [0-9]* | Passing: [0-9]* | Failing: [0-9]* | Crashing: [0-9]*' | tail -1)
    if [ -z "$syn" ]; then
        echo "$out" | tail -20
        count 0 1
        return
    fi
    p=$(echo "$syn" | sed -E 's/.*Passing: ([0-9]+).*/\1/')
    f=$(echo "$syn" | sed -E 's/.*Failing: ([0-9]+).*/\1/')
    c=$(echo "$syn" | sed -E 's/.*Crashing: ([0-9]+).*/\1/')
    count "$p" $((f + c))
    [ $rc -eq 0 ] || [ $((f + c)) -gt 0 ] || count 0 1
}

say "format-check"
if make --no-print-directory format-check; then count 1 0; else count 0 1; fi

say "layering check"
if scripts/check-layers.sh; then count 1 0; else count 0 1; fi

say "build"
if ! make --no-print-directory -j"$jobs" all >"$art/build.log" 2>&1; then
    tail -40 "$art/build.log"
    count 0 1
    echo
    echo "$passed passed, $failed failed"
    exit 1
fi
echo "build: ok"

say "unit tests"
for t in build/tests/*_tests; do [ -x "$t" ] && { echo "-- $t"; run_unit "$t"; }; done

if [ "${FAST:-0}" != 1 ]; then
    say "unit tests under ASan+UBSan"
    if make --no-print-directory -j"$jobs" BUILD=build-asan SAN=1 all >"$art/build-asan.log" 2>&1; then
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
        for t in build-asan/tests/*_tests; do [ -x "$t" ] && { echo "-- $t"; run_unit "$t"; }; done
        unset ASAN_OPTIONS UBSAN_OPTIONS
    else
        tail -40 "$art/build-asan.log"
        count 0 1
    fi
fi

# Runs pytest on the given paths and counts its cases from the JUnit XML $1:
# in PYTEST_SHARDS (default 2) concurrent shards of files balanced by
# tests/durations.txt, then the tests marked there to run alone
# (scripts/pytest-shards.py; PYTEST_SHARDS=1: one pytest, as before).
run_pytest() {
    local xml=$1 p f
    shift
    scripts/pytest-shards.py "$xml" "$@" 2>&1
    read -r p f < <(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [r] if r.tag == "testsuite" else list(r)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - sk, bad)
PY
)
    count "$p" "$f"
}

say "black-box tests (pytest)"
# -quit rather than a pipe into grep -q: under pipefail, find killed by
# SIGPIPE after grep's early exit would skip the whole stage.
if [ -n "$(find tests -name "test_*.py" -print -quit)" ]; then
    run_pytest "$art/pytest.xml" tests tests/build
fi

for s in tests/suites/*.sh; do
    [ -f "$s" ] || continue
    say "suite $s"
    line=$(bash "$s" 2>&1 | tee "$art/$(basename "$s" .sh).log" | tail -1)
    echo "$line"
    if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
        tail -20 "$art/$(basename "$s" .sh).log"
        count 0 1
    fi
done

# oneDNN picks its kernels by the CPU's ISA; ONEDNN_MAX_CPU_ISA caps it, so this
# machine also runs what an AVX2-only (or SSE4.1) CPU would.
if [ "${FAST:-0}" = 1 ]; then caps=${ISA_CAPS-AVX2}; else caps=${ISA_CAPS-AVX2 SSE41}; fi
for isa in $caps; do
    say "engine and model tests with ONEDNN_MAX_CPU_ISA=$isa"
    export ONEDNN_MAX_CPU_ISA=$isa
    want=$(echo "$isa" | tr 'A-Z' 'a-z')
    case $isa in AVX2) above=':avx512' ;; SSE41) above=':avx' ;; *) above='' ;; esac
    kernels=$(build/aiinfer layers models/mobilenetv2-160.onnx 2>&1)
    if grep -q "onednn " <<<"$kernels" && { [ -z "$above" ] || ! grep -q "$above" <<<"$kernels"; }; then
        echo "cap in effect: MobileNetV2 runs $(echo "$kernels" | grep -o 'onednn [a-z_0-9]*:[a-z_0-9]*' | sort | uniq -c | sort -rn | head -1 | sed 's/^ *//')..."
        count 1 0
    else
        echo "ONEDNN_MAX_CPU_ISA=$isa did not change oneDNN's kernels:"
        echo "$kernels" | head -5
        count 0 1
    fi
    [ -x build/tests/engine_tests ] && { echo "-- build/tests/engine_tests"; run_unit build/tests/engine_tests; }
    # the black-box engine and model tests under AVX2 only (ISA_PYTEST): what
    # CI machines run; SSE4.1 keeps the unit tests and the conformance suite
    case " ${ISA_PYTEST-AVX2} " in *" $isa "*) run_pytest "$art/pytest-$want.xml" tests/engine tests/model ;; esac
    line=$(bash tests/suites/onnx_conformance.sh 2>&1 | tail -1)
    echo "onnx conformance: $line"
    if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
        count 0 1
    fi
    unset ONEDNN_MAX_CPU_ISA
done

if [ "${FAST:-0}" != 1 ] && compgen -G "fuzz/*.c" >/dev/null; then
    say "fuzz smoke runs"
    if make --no-print-directory fuzz >"$art/build-fuzz.log" 2>&1; then
        for f in fuzz/*.c; do
            name=$(basename "$f" .c)
            secs=$(cat "fuzz/$name.seconds" 2>/dev/null || echo 15)
            corpus=$(mktemp -d)
            [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$corpus/"
            # A fixed seed makes the smoke run replayable: the same commit explores
            # the same inputs, so a failure here reproduces. FUZZ_SEED=0 picks a
            # random seed, for longer runs that look for new bugs.
            if "build-fuzz/$name" -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" \
                -print_final_stats=0 -artifact_prefix="$art/fuzz-$name-" "$corpus" \
                >"$art/fuzz-$name.log" 2>&1; then
                echo "fuzz $name: ${secs}s clean"
                count 1 0
            else
                echo "fuzz $name: FAILED"
                tail -30 "$art/fuzz-$name.log"
                count 0 1
            fi
            rm -rf "$corpus"
        done
    else
        tail -30 "$art/build-fuzz.log"
        count 0 1
    fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
