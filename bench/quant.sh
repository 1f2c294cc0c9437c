#!/bin/sh
# skiff-quant speed and memory:
#  - a DistilBERT-sized model (66M parameters, deterministic random weights,
#    made like bench/model-io.sh does): dynamic int8 (target < 2 s) and int4
#    block 32 (target < 4 s), peak memory against the fp32 file (target
#    <= 1.5x); for scale, ONNX Runtime's Python quantize_dynamic took 4.4 s on
#    a 16-core machine for the same size (it is not installed here to run
#    side by side);
#  - calibration of 64 samples on the BERT classifier (static mode, target
#    < 30 s), and the same run per calibrator.
set -eu
B=${B:-build}
BIN=$B/bin
W=$B/bench/distilbert
SRC=../shared/models/distilbert_base_graph
. bench/lib.sh
if [ -f "$SRC/model.onnx" ]; then
    if [ ! -f "$W/model.onnx" ]; then
        mkdir -p "$W/ext"
        cp "$SRC/model.onnx" "$SRC/weights.json" "$W/ext/"
        /usr/bin/python3 ../shared/tools/fill_weights.py "$W/ext" >/dev/null
        "$BIN/skiff-convert" "$W/ext/model.onnx" -o "$W/model.onnx" --inline -q
    fi
    size=$(wc -c < "$W/model.onnx")
    echo "model: $W/model.onnx, $(fmt_mb "$size") MB, $(nproc) cores"
    for mode in dynamic int4; do
        case $mode in dynamic) target=2 ;; *) target=4 ;; esac
        measure "$BIN/skiff-quant" "$W/model.onnx" -o "$W/q-$mode.onnx" --mode $mode -q
        out=$(wc -c < "$W/q-$mode.onnx")
        echo "$mode: $(fmt_s "$T_MEDIAN") s median of $RUNS (target < $target s), peak $(fmt_mb "$T_RSS") MB =" \
             "$(ratio "$T_RSS" "$size")x the file (target <= 1.5x), output $(fmt_mb "$out") MB = $(ratio "$out" "$size")x"
        rm -f "$W/q-$mode.onnx"
    done
    RUNS=1 measure "$BIN/skiff-quant" "$W/model.onnx" -o "$W/q1.onnx" --mode int4 --threads 1 -q
    echo "int4, one thread: $(fmt_s "$T_MEDIAN") s"
    rm -f "$W/q1.onnx"
else
    echo "skipped: DistilBERT-sized runs ($SRC is absent)"
fi
M=../shared/models/bert_bytes_cls
if [ -f "$M/model.onnx" ]; then
    mkdir -p "$B/bench/quant"
    for c in percentile minmax entropy mse; do
        RUNS=1 measure "$BIN/skiff-quant" "$M/model.onnx" -o "$B/bench/quant/st.onnx" --mode static --calib "$M/calib" --calibrator $c -q
        echo "static, 64 calibration samples, $c: $(fmt_s "$T_MEDIAN") s (target < 30 s), peak $(fmt_mb "$T_RSS") MB"
    done
    RUNS=1 measure "$BIN/skiff-quant" "$M/model.onnx" -o "$B/bench/quant/i4.onnx" --mode int4 --calib "$M/calib" -q
    echo "int4 activation-aware, 64 samples: $(fmt_s "$T_MEDIAN") s"
    rm -rf "$B/bench/quant"
else
    echo "skipped: calibration timing ($M is absent)"
fi
