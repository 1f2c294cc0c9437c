#!/bin/sh
# Runs every test: cmocka unit tests ($B/tests/test_*), CLI tests (tests/cli/*.sh)
# and oracle tests (tests/oracle/*.sh). Each prints its own results; this script
# ends with one line "N passed, N failed" counting test programs.
B=${B:-build}
export B
pass=0; fail=0; failed=""
run() { # name, command...
    name=$1; shift
    t0=$(date +%s)
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $name"; fi
    echo "-- $name: $(($(date +%s) - t0)) s"
}
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    run "$(basename "$t")" "$t"
done
for t in tests/cli/*.sh tests/oracle/*.sh; do
    [ -f "$t" ] || continue
    [ -n "$SK_ASAN" ] && grep -q '^# no-asan' "$t" && { echo "skipped: $t (not under ASan)"; continue; }
    echo "== $t"
    run "$t" sh "$t"
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
