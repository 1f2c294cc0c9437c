#!/bin/sh
# ONNX node tests (libonnx-testdata) through skiff-run --test-data.
#
# For every test folder: if the model uses an op skiff's table lacks
# (skiff-run --model-ops), the test is skipped; otherwise
# `skiff-run model.onnx --test-data test_data_set_0` must pass. Tests listed in
# tests/cli/conformance-known-failures.txt (with the reason) may fail; a line
# there with rtol=X / atol=Y runs that test with those tolerances instead.
# Prints one line per failure and ends with "N passed, M failed, K skipped".
#
# Environment: B (build folder, default build), SK_NODE_TESTS (default
# /usr/share/libonnx-testdata/data/node), SK_CONF_JOBS (parallel jobs, default
# 2), SK_CONF_RESULTS (write a TSV of every result there: status, test, ops),
# SK_CONF_FILTER (only tests whose name matches this grep pattern).
set -u
B=${B:-build}
RUN="$B/bin/skiff-run"
DATA=${SK_NODE_TESTS:-/usr/share/libonnx-testdata/data/node}
JOBS=${SK_CONF_JOBS:-2}
KNOWN="$(dirname "$0")/conformance-known-failures.txt"

# Worker: one test folder -> one line "status<TAB>test<TAB>ops<TAB>message".
if [ "${1:-}" = --one ]; then
    d=$2
    t=$(basename "$d")
    ops=$("$RUN" "$d/model.onnx" --model-ops 2>&1)
    if [ $? -ne 0 ]; then
        printf 'fail\t%s\t\t%s\n' "$t" "$(echo "$ops" | head -1)"
        exit 0
    fi
    list=$(echo "$ops" | awk -F'\t' '{printf "%s%s:%s", (NR>1?",":""), $1, $2}')
    missing=$(echo "$ops" | awk -F'\t' '$4=="missing"{printf "%s%s", (n++?",":""), $2}')
    if [ -n "$missing" ]; then
        printf 'skip\t%s\t%s\tmissing %s\n' "$t" "$list" "$missing"
        exit 0
    fi
    to=""
    command -v timeout >/dev/null && to="timeout 120"
    # "test_name rtol=X atol=Y # reason" in the list: tolerances for this test
    tol=$(sed -e 's/#.*//' "$KNOWN" 2>/dev/null | awk -v t="$t" '$1==t{for(i=2;i<=NF;i++){split($i,kv,"="); if(kv[1]=="rtol"||kv[1]=="atol") printf " --%s %s", kv[1], kv[2]}}')
    msg=$($to "$RUN" "$d/model.onnx" --test-data "$d/test_data_set_0" -q $tol 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        printf 'pass\t%s\t%s\t\n' "$t" "$list"
    else
        [ $rc -ge 124 ] && msg="exit status $rc (timeout or crash) $msg"
        printf 'fail\t%s\t%s\t%s\n' "$t" "$list" "$(echo "$msg" | tr '\n\t' '  ' | cut -c1-400)"
    fi
    exit 0
fi

if [ ! -d "$DATA" ]; then
    echo "skipped: conformance (no ONNX node tests at $DATA; install libonnx-testdata)"
    exit 0
fi
if [ ! -x "$RUN" ]; then
    echo "conformance: $RUN is missing (run make)" >&2
    exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM
find "$DATA" -mindepth 1 -maxdepth 1 -type d -name 'test_*' | sort |
    { if [ -n "${SK_CONF_FILTER:-}" ]; then grep -- "${SK_CONF_FILTER}"; else cat; fi; } |
    xargs -P "$JOBS" -I{} sh "$0" --one {} > "$out"

# Known failures: first word of each non-comment line without tolerances.
known=$(sed -e 's/#.*//' "$KNOWN" 2>/dev/null | awk 'NF==1{print $1}')
is_known() { echo "$known" | grep -qx -- "$1"; }

pass=0; fail=0; skip=0; kfail=0
sort -k2,2 "$out" > "$out.s" && mv "$out.s" "$out"
while IFS="$(printf '\t')" read -r status t ops msg; do
    case $status in
    pass)
        pass=$((pass + 1))
        is_known "$t" && echo "note: $t passes; remove it from $(basename "$KNOWN")" ;;
    skip) skip=$((skip + 1)) ;;
    fail)
        if is_known "$t"; then
            kfail=$((kfail + 1))
        else
            fail=$((fail + 1))
            echo "FAIL $t: $msg"
        fi ;;
    esac
done < "$out"
[ -n "${SK_CONF_RESULTS:-}" ] && cp "$out" "$SK_CONF_RESULTS"
echo "conformance: $pass passed, $fail failed, $skip skipped ($kfail known failures)"
[ "$fail" -eq 0 ]
