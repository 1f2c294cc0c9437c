#!/bin/sh
# no-asan (ONNX Runtime is the oracle here; the sanitizer build runs the unit tests)
# The quantized ops ONNX's node tests do not cover (MatMulNBits for block sizes
# 16..128 with and without zero points, GatherBlockQuantized, blocked int4
# Quantize/DequantizeLinear, DynamicQuantizeMatMul, ...): one-node models from
# tests/data/gen_quant_models.py run in ONNX Runtime, then skiff's kernels on
# the same inputs must agree to 1e-4 relative (build/tests/test_ops_quant).
set -u
B=${B:-build}
T=$B/test-tmp/quant-ort
if [ ! -d node_modules/onnxruntime-node ]; then
    echo "skipped: onnxruntime-node is not installed (make deps)"; exit 1
fi
if [ ! -x "$B/tests/test_ops_quant" ]; then
    echo "FAIL: $B/tests/test_ops_quant is not built"; exit 1
fi
rm -rf "$T"; mkdir -p "$T"
/usr/bin/python3 tests/data/gen_quant_models.py "$T" || { echo "FAIL: gen_quant_models.py"; exit 1; }
fail=0; n=0
for d in "$T"/*/; do
    d=${d%/}
    set --
    for f in "$d"/test_data_set_0/input_*.pb; do set -- "$@" --input "$f"; done
    n=$((n + 1))
    if ! node tests/oracle/ort-run.mjs "$d/model.onnx" "$@" --output-dir "$d/ort" --quiet >"$d/ort.log" 2>&1; then
        echo "FAIL: ONNX Runtime could not run $(basename "$d"):"; sed 's/^/    /' "$d/ort.log" | head -5
        fail=$((fail + 1))
    fi
done
echo "ran $n cases in ONNX Runtime ($fail failed)"
# the kernels on their own ...
SK_QUANT_CASES=$T "$B/tests/test_ops_quant" || fail=$((fail + 1))
# ... and through the engine
if [ -x "$B/bin/skiff-run" ]; then
    ok=0; bad=0
    for d in "$T"/*/; do
        d=${d%/}
        [ -d "$d/ort" ] || continue
        set --
        for f in "$d"/test_data_set_0/input_*.pb; do set -- "$@" --input "$f"; done
        rm -rf "$d/skiff"
        if "$B/bin/skiff-run" "$d/model.onnx" "$@" --output-dir "$d/skiff" -q >"$d/skiff.log" 2>&1 &&
           node tests/oracle/compare.mjs "$d/skiff" "$d/ort" --rtol 1e-4 --atol 1e-5 --quiet >>"$d/skiff.log" 2>&1; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1)); echo "FAIL: skiff-run $(basename "$d"):"; sed 's/^/    /' "$d/skiff.log" | head -5
        fi
    done
    echo "skiff-run vs ONNX Runtime: $ok passed, $bad failed"
    fail=$((fail + bad))
else
    echo "skipped: skiff-run vs ONNX Runtime ($B/bin/skiff-run is not built)"
fi
[ "$fail" = 0 ]
