#!/bin/sh
# no-asan (whole-model runs in ONNX Runtime; the pipeline's own checks run under ASan in tests/cli/build.sh)
# skiff build on the shared BERT classifier, checked by ONNX Runtime: prune 25%
# of the heads and quantize to int8 with the 464 labelled held-out samples as the
# quality gate; the accuracy skiff build reports must equal what
# onnxruntime-node measures on the unpacked package, and stay within 1 point of
# the original's 0.9224.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/build-ort
M=${SK_SHARED_MODELS:-../shared/models}/bert_bytes_cls
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
if [ ! -f "$M/model.onnx" ] || [ ! -f "$M/eval_input_ids.npy" ]; then
    echo "skipped: skiff build on the BERT classifier: $M is absent"
    echo "0 passed, 0 failed"; exit 0
fi
json_get() { node -e "const j=JSON.parse(require('fs').readFileSync(0,'utf8')); const v=process.argv[1].split('.').reduce((o,k)=>o==null?o:o[k],j); console.log(v)" "$1" 2>/dev/null; }

# the held-out set as sample folders of 58 rows (attention mask all ones, as the
# oracle's bert-accuracy.mjs runs it)
/usr/bin/python3 - "$M" "$T/eval" <<'EOF' || bad "could not split the eval set"
import os, sys, numpy as np
m, out = sys.argv[1], sys.argv[2]
ids = np.load(os.path.join(m, "eval_input_ids.npy"))
for i in range(0, len(ids), 58):
    d = os.path.join(out, "batch_%02d" % (i // 58))
    os.makedirs(d)
    np.save(os.path.join(d, "input_ids.npy"), ids[i:i + 58])
    np.save(os.path.join(d, "attention_mask.npy"), np.ones_like(ids[i:i + 58]))
EOF
"$BIN/skiff-keygen" --no-password -p "$T/k.pub" -s "$T/k.key" -q || bad "keygen"

if "$BIN/skiff" build "$M/model.onnx" -o "$T/pkg" --prune 25% --quant int8 --calib "$M/calib" \
        --eval "$T/eval" --labels "$M/eval_labels.npy" --max-accuracy-drop 1% --min-cosine 0.95 \
        -s "$T/k.key" --json > "$T/build.json" 2> "$T/err"; then
    ok "skiff build: prune 25% + int8 passes the 1-point gate"
else
    bad "skiff build: $(cat "$T/err")"
fi
orig=$(json_get eval.accuracy_original < "$T/build.json")
acc=$(json_get eval.accuracy < "$T/build.json")
echo "  skiff build: accuracy $orig -> $acc, cosine mean $(json_get eval.cosine_mean < "$T/build.json"), package $(json_get pack.package_bytes < "$T/build.json") bytes ($(json_get params_after < "$T/build.json") of $(json_get params_before < "$T/build.json") parameters)"
[ "$orig" = 0.922414 ] && ok "skiff's engine measures the original at 0.9224, as ONNX Runtime does" || bad "original accuracy $orig, wanted 0.922414"

"$BIN/skiff-unpack" "$T/pkg" -o "$T/unpacked" -p "$T/k.pub" -q 2>"$T/err" || bad "unpack: $(cat "$T/err")"
line=$(node tests/oracle/bert-accuracy.mjs "$T/unpacked/model.onnx" 2>&1)
ort=$(echo "$line" | sed -n 's/^accuracy \([0-9.]*\).*/\1/p')
if [ -n "$ort" ] && node -e "process.exit(Math.abs(+process.argv[1] - +process.argv[2]) < 1e-4 ? 0 : 1)" "$ort" "$acc"; then
    ok "onnxruntime-node on the unpacked package: $line (skiff build said $acc)"
else
    bad "onnxruntime-node on the unpacked package: '$line', skiff build said $acc"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
