#!/bin/sh
# skiff-prune on the BERT classifier (4 layers x 8 heads, 3.3M parameters):
#  - ablation scoring of all 32 heads on the 64 calibration samples (target:
#    under 60 s; 2112 forward passes, run as the part of the model after each
#    block), and activation scoring for comparison;
#  - for the original and the 25% / 50% pruned models: parameters, file size,
#    eval accuracy (ONNX Runtime), and latency (batch 1, 128 tokens, one
#    thread) in skiff-run and in onnxruntime-node, median and minimum of 50
#    runs. These machines are shared: read the minimum when they are busy.
set -eu
B=${B:-build}
BIN=$B/bin
M=../shared/models/bert_bytes_cls
W=$B/bench/prune
if [ ! -f "$M/model.onnx" ]; then
    echo "skipped: skiff-prune benchmark ($M is absent)"; exit 0
fi
mkdir -p "$W"
S=$M/calib/sample_00
IN="--input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy"
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for h in 25 50; do
    "$BIN/skiff-prune" "$M/model.onnx" -o "$W/p$h.onnx" --calib "$M/calib" --heads "$h%" --report "$W/p$h.json" -q
    /usr/bin/python3 - "$W/p$h.json" "$h" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r['seconds']
print(f"{sys.argv[2]}%: ablation scoring of {r['heads_total']} heads on {r['samples']} samples: {s['score']:.1f} s "
      f"(target < 60 s); compensation {s['compensate']:.1f} s; rewrite and check {s['rewrite']:.2f} s")
EOF
done
"$BIN/skiff-prune" "$M/model.onnx" -o "$W/act.onnx" --calib "$M/calib" --heads 25% --score activation --report "$W/act.json" -q
/usr/bin/python3 -c "
import json; r = json.load(open('$W/act.json'))
print(f\"activation scoring, {r['samples']} samples: {r['seconds']['score']:.1f} s\")"
printf '%-10s %10s %10s %9s %22s %22s\n' model params MB accuracy "skiff-run ms med/min" "onnxruntime ms med/min"
for v in orig p25 p50; do
    f=$W/$v.onnx
    [ $v = orig ] && f=$M/model.onnx
    params=$("$BIN/skiff-inspect" --json "$f" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])')
    size=$(wc -c < "$f")
    acc=$(node tests/oracle/bert-accuracy.mjs "$f" | sed -n 's/^accuracy \([0-9.]*\).*/\1/p')
    sk=$("$BIN/skiff-run" "$f" $IN --bench 50 --threads 1 | sed -n 's/^median \([0-9.]*\) ms  min \([0-9.]*\) ms.*/\1 \/ \2/p')
    ort=$(node tests/oracle/ort-run.mjs "$f" $IN --bench 50 --threads 1 2>/dev/null | sed -n 's/^median \([0-9.]*\) ms  min \([0-9.]*\) ms.*/\1 \/ \2/p')
    printf '%-10s %10s %10.2f %9s %22s %22s\n' "$v" "$params" "$(awk -v x="$size" 'BEGIN{print x/1e6}')" "$acc" "$sk" "$ort"
done
