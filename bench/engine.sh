#!/bin/sh
# Engine speed, issue 3's benchmark: the shared BERT classifier (batch 1,
# sequence 128, one thread) through skiff-run and through onnxruntime-node
# side by side, in float32 and as the dynamic-int8 model skiff-quant makes.
# Targets: skiff/ORT <= 2.0 in fp32, <= 1.5 in int8.
#
# The machines are shared, so the two runtimes run interleaved (ROUNDS rounds,
# the order alternating, each RUNS timed iterations after their warm-ups), and
# three numbers are printed per runtime:
#   median  median over rounds of each run's median wall-clock latency
#   min     fastest single iteration seen (the least disturbed)
#   cpu     CPU time per iteration: (CPU of a run with RUNS+1 iterations minus
#           CPU of a run with 1) / RUNS, which cancels start-up (model load,
#           Node and ONNX Runtime initialisation) and does not count time spent
#           waiting for a core; the steadiest of the three on a loaded machine.
# Usage: bench/engine.sh [ROUNDS [RUNS]]   (defaults 5 and 40; B=build)
# With BASE=DIR, DIR/skiff-run (another build: the tree before a change) runs
# in the same rounds too, and the lines show what the change bought.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
BIN=$B/bin
ROUNDS=${1:-5}
RUNS=${2:-40}
M=../shared/models/bert_bytes_cls
S=$M/calib/sample_00
PY=/usr/bin/python3

if [ ! -f "$M/model.onnx" ]; then echo "skipped: engine bench ($M is absent)"; exit 0; fi
if [ ! -d node_modules/onnxruntime-node ]; then echo "skipped: engine bench (onnxruntime-node is not installed: make deps)"; exit 0; fi
for t in skiff-run skiff-quant; do
    [ -x "$BIN/$t" ] || { echo "FAIL: $BIN/$t is not built"; exit 1; }
done
if [ -n "${BASE:-}" ] && [ ! -x "$BASE/skiff-run" ]; then echo "FAIL: BASE=$BASE has no skiff-run"; exit 1; fi
[ "$RUNS" -ge 2 ] || { echo "usage: bench/engine.sh [ROUNDS [RUNS >= 2]]"; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM

if ! "$BIN/skiff-quant" "$M/model.onnx" -o "$T/bert_int8.onnx" --mode dynamic -q >"$T/quant.log" 2>&1; then
    echo "FAIL: skiff-quant --mode dynamic: $(head -3 "$T/quant.log")"
    exit 1
fi

IN="--input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy"

# run CMD...: runs it, prints "<cpu seconds of the child> <its stdout's
# 'median X ms  min Y ms' numbers>" (CPU from getrusage, microseconds).
run() {
    $PY - "$@" <<'PY'
import re, resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
if r.returncode:
    sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(sys.argv[1:]), r.stderr[-500:]))
u = resource.getrusage(resource.RUSAGE_CHILDREN)
m = re.search(r"median ([0-9.]+) ms\s+min ([0-9.]+) ms", r.stdout)
if not m:
    sys.exit("no bench line in the output of %s: %s" % (" ".join(sys.argv[1:]), r.stdout[-300:]))
print("%.6f %s %s" % (u.ru_utime + u.ru_stime, m.group(1), m.group(2)))
PY
}

# one ROUND of runtime $1 (skiff|ort) on model $2: appends "median min cpu_ms" to $T/$1.$3
round() {
    case $1 in
    skiff) set -- "$1" "$2" "$3" "$BIN/skiff-run" "$2" $IN -q --bench ;;
    base) set -- "$1" "$2" "$3" "$BASE/skiff-run" "$2" $IN -q --bench ;;
    ort) set -- "$1" "$2" "$3" node tests/oracle/ort-run.mjs "$2" $IN --quiet --bench ;;
    esac
    who=$1 tag=$3
    shift 3
    one=$(run "$@" 1) || { echo "FAIL: $one"; return 1; }
    many=$(run "$@" "$RUNS") || { echo "FAIL: $many"; return 1; }
    echo "$one $many" | awk -v n="$RUNS" '{ printf "%s %s %.4f\n", $5, $6, ($4 - $1) * 1000 / (n - 1) }' >>"$T/$who.$tag"
}

# median / min / cpu (median over rounds) of a result file
stats() {
    sort -g -k1,1 "$1" | awk '{ a[NR] = $1 } END { printf "%.2f ", a[int((NR + 1) / 2)] }'
    sort -g -k2,2 "$1" | awk 'NR == 1 { printf "%.2f ", $2 }'
    sort -g -k3,3 "$1" | awk '{ a[NR] = $3 } END { printf "%.2f\n", a[int((NR + 1) / 2)] }'
}

status=0
echo "engine: BERT classifier ($M), batch 1, seq 128, 1 thread; $ROUNDS rounds x $RUNS runs, interleaved"
for cfg in "fp32 $M/model.onnx 2.0" "int8 $T/bert_int8.onnx 1.5"; do
    set -- $cfg
    tag=$1 model=$2 target=$3
    : >"$T/skiff.$tag"
    : >"$T/ort.$tag"
    : >"$T/base.$tag"
    i=0
    while [ "$i" -lt "$ROUNDS" ]; do
        if [ $((i % 2)) -eq 0 ]; then order="skiff ort${BASE:+ base}"; else order="${BASE:+base }ort skiff"; fi
        for who in $order; do round "$who" "$model" "$tag" || { status=1; break; }; done
        [ "$status" -eq 0 ] || break
        i=$((i + 1))
    done
    [ "$status" -eq 0 ] || break
    if [ -n "${BASE:-}" ]; then
        set -- $(stats "$T/base.$tag") $(stats "$T/skiff.$tag")
        echo "$tag  base ($BASE): median $1 ms  min $2 ms  cpu $3 ms | this build/base: median" \
             "$(awk -v a="$4" -v b="$1" 'BEGIN { printf "%.2f", a / b }')" \
             " min $(awk -v a="$5" -v b="$2" 'BEGIN { printf "%.2f", a / b }')" \
             " cpu $(awk -v a="$6" -v b="$3" 'BEGIN { printf "%.2f", a / b }')"
    fi
    set -- $(stats "$T/skiff.$tag") $(stats "$T/ort.$tag")
    echo "$tag  skiff: median $1 ms  min $2 ms  cpu $3 ms | ORT: median $4 ms  min $5 ms  cpu $6 ms" \
         "| skiff/ORT: median $(awk -v a="$1" -v b="$4" 'BEGIN { printf "%.2f", a / b }')" \
         " min $(awk -v a="$2" -v b="$5" 'BEGIN { printf "%.2f", a / b }')" \
         " cpu $(awk -v a="$3" -v b="$6" 'BEGIN { printf "%.2f", a / b }') (target <= $target)"
done
exit $status
