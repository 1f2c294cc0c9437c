#!/bin/sh
# Model I/O speed and memory on a DistilBERT-sized model (66M parameters):
# skiff-inspect time, round-trip (load + save) throughput against a plain copy
# of the same bytes (disk speed), and peak memory against the file size.
set -eu
B=${B:-build}
BIN=$B/bin
W=$B/bench/distilbert
SRC=../shared/models/distilbert_base_graph
if [ ! -f "$SRC/model.onnx" ]; then echo "skipped: model-io bench ($SRC is absent)"; exit 0; fi
if [ ! -f "$W/model.onnx" ]; then
    mkdir -p "$W/ext"
    cp "$SRC/model.onnx" "$SRC/weights.json" "$W/ext/"
    /usr/bin/python3 ../shared/tools/fill_weights.py "$W/ext" >/dev/null
    "$BIN/skiff-convert" "$W/ext/model.onnx" -o "$W/model.onnx" --inline -q
fi
. bench/lib.sh
size=$(wc -c < "$W/model.onnx")
echo "model: $W/model.onnx, $(fmt_mb "$size") MB ($("$BIN/skiff-inspect" --json "$W/model.onnx" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])') params)"

measure "$BIN/skiff-inspect" "$W/model.onnx"
echo "inspect:      $(fmt_s "$T_MEDIAN") s median of $RUNS (target < 0.5 s), peak $(fmt_mb "$T_RSS") MB"

sync
measure cp "$W/model.onnx" "$W/copy.onnx"
copy=$T_MEDIAN
measure "$BIN/skiff-convert" "$W/model.onnx" -o "$W/rt.onnx"
rt=$T_MEDIAN
cmp -s "$W/model.onnx" "$W/rt.onnx" || { echo "round trip is not byte-identical"; exit 1; }
echo "round trip:   $(fmt_s "$rt") s = $(fmt_rate "$size" "$rt") MB/s; plain cp of the same file $(fmt_s "$copy") s = $(fmt_rate "$size" "$copy") MB/s; ratio skiff/cp $(ratio "$rt" "$copy") (target: disk speed)"
echo "              peak $(fmt_mb "$T_RSS") MB = $(ratio "$T_RSS" "$size")x the file (target <= 1.2x)"
measure "$BIN/skiff-convert" "$W/model.onnx" -o "$W/x.onnx" --external-data x.bin
echo "to external:  $(fmt_s "$T_MEDIAN") s, peak $(fmt_mb "$T_RSS") MB = $(ratio "$T_RSS" "$size")x the file"
rm -f "$W/copy.onnx" "$W/rt.onnx" "$W/x.onnx" "$W/x.bin"
