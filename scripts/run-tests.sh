#!/bin/bash
# Runs the unit tests (build/test/unit/test-*) and the integration tests
# (tests/integration/test_*.{py,sh}) and prints the final line
# "N passed, N failed". Each test program prints "ok NAME" / "not ok NAME"
# lines; a program that exits non-zero without a "not ok" line counts as one
# failure. Usage: run-tests.sh [unit|integration] [NAME-FILTER]
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
what=${1:-all}
filter=${2:-}
passed=0
failed=0
failures=()
export DROVER_BIN="${DROVER_BIN:-$top/build/test/bin}"
export DROVER_SHARED="${DROVER_SHARED:-$top/../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
logdir="$top/build/test/logs"
mkdir -p "$logdir"

run_one() {
    local name=$1 limit=$2
    shift 2
    local log="$logdir/$name.log" rc p f
    mkdir -p "$(dirname "$log")"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        f=1
        echo "not ok $name (exit status $rc)" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '%-40s %3d passed %3d failed %4ds\n' "$name" "$p" "$f" $((SECONDS - start))
    if [ "$f" != 0 ]; then
        failures+=("$name")
        grep -E '^not ok ' "$log" | sed 's/^/    /'
        tail -n 30 "$log" | sed 's/^/    | /'
    fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in build/test/unit/test-*; do
        [ -x "$t" ] || continue
        n=$(basename "$t")
        [ -n "$filter" ] && [[ "$n" != *"$filter"* ]] && continue
        run_one "unit/$n" 120 "$t"
    done
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
    for t in tests/integration/test_*.py tests/integration/test_*.sh; do
        [ -f "$t" ] || continue
        n=$(basename "$t")
        [ -n "$filter" ] && [[ "$n" != *"$filter"* ]] && continue
        case "$t" in
        *.py) run_one "integration/$n" 300 python3 "$t" ;;
        *.sh) run_one "integration/$n" 300 bash "$t" ;;
        esac
    done
fi
if [ "${#failures[@]}" != 0 ]; then
    echo "failed: ${failures[*]} (logs in $logdir)"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
