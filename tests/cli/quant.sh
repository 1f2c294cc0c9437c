#!/bin/sh
# skiff-quant from the outside: usage errors (exit 2), bad input (exit 1, one
# line, no output left behind, an existing output untouched), every mode on a
# small generated model (the output runs in skiff-run), ONNX Runtime's flag
# spellings, --exclude, --report JSON/HTML, --json, --external-data, and
# byte-identical output across runs and thread counts.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/quant-cli
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION CMD...: exit code CODE, stderr one line when CODE is 1
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; got=$?
    lines=$(wc -l < "$T/err")
    if [ "$got" != "$want" ]; then bad "$what: exit $got, wanted $want ($(head -c 300 "$T/err"))"; return; fi
    if [ "$want" = 1 ] && [ "$lines" != 1 ]; then bad "$what: $lines lines on stderr, wanted 1"; cat "$T/err"; return; fi
    if grep -q -i -E "AddressSanitizer|LeakSanitizer|runtime error|Segmentation" "$T/err"; then bad "$what: sanitizer report"; cat "$T/err"; return; fi
    ok "$what"
}
Q=$BIN/skiff-quant
PY=/usr/bin/python3

expect 0 "--help" $Q --help
grep -q -- "--mode" "$T/out" || bad "--help lists --mode"
expect 0 "--version" $Q --version
grep -q "skiff-quant 0" "$T/out" || bad "--version prints name and version"
expect 2 "no argument" $Q
expect 2 "no -o" $Q in.onnx
expect 2 "unknown option" $Q in.onnx -o x.onnx --frobnicate
expect 2 "bad --mode" $Q in.onnx -o x.onnx --mode int3
expect 2 "static without --calib" $Q in.onnx -o x.onnx --mode static
expect 2 "bad --block" $Q in.onnx -o x.onnx --mode int4 --block 48
expect 2 "--block without int4" $Q in.onnx -o x.onnx --block 64
expect 2 "--format qdq without int4" $Q in.onnx -o x.onnx --format qdq
expect 2 "bad --calibrator" $Q in.onnx -o x.onnx --mode static --calib . --calibrator magic
expect 2 "bad --percentile" $Q in.onnx -o x.onnx --percentile 30
expect 2 "--report without .json/.html" $Q in.onnx -o x.onnx --report r.txt
expect 2 "--threads 0" $Q in.onnx -o x.onnx --threads 0
expect 2 "bad --weight_type" $Q in.onnx -o x.onnx --weight_type QInt4
expect 2 "--external-data with a path" $Q in.onnx -o x.onnx --external-data a/b.bin
expect 2 "a value given to a flag" $Q in.onnx -o x.onnx --asym=1

# bad input: one line, exit 1, no output file
printf 'not a model\n' > "$T/text.onnx"
: > "$T/empty.onnx"
for f in text empty missing; do
    expect 1 "$f input" $Q "$T/$f.onnx" -o "$T/out-$f.onnx"
    [ -e "$T/out-$f.onnx" ] && bad "$f input leaves no output" || ok "$f input leaves no output"
done

if ! $PY -c 'import onnx, numpy' 2>/dev/null; then
    echo "skipped: generated-model cases (/usr/bin/python3 lacks onnx or numpy)"
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]; exit
fi

# a small model: x [2, 64] -> MatMul -> Relu -> Gemm (transB, bias) -> y ; ids -> Gather(E [512, 64]) -> e
$PY - "$T" <<'PY'
import os, sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP, numpy_helper as nh
d = sys.argv[1]
rng = np.random.default_rng(1)
W1 = rng.standard_normal((64, 96)).astype(np.float32) * 0.2
W2 = rng.standard_normal((32, 96)).astype(np.float32) * 0.2
C = rng.standard_normal(32).astype(np.float32)
E = rng.standard_normal((512, 64)).astype(np.float32)
nodes = [h.make_node('MatMul', ['x', 'W1'], ['h0'], name='enc/layer.0/MatMul'),
         h.make_node('Relu', ['h0'], ['h'], name='enc/layer.0/Relu'),
         h.make_node('Gemm', ['h', 'W2', 'C'], ['y'], name='head/Gemm', transB=1),
         h.make_node('Gather', ['E', 'ids'], ['e'], name='embed/Gather')]
g = h.make_graph(nodes, 'small',
                 [h.make_tensor_value_info('x', TP.FLOAT, ['batch', 64]), h.make_tensor_value_info('ids', TP.INT64, ['n'])],
                 [h.make_tensor_value_info('y', TP.FLOAT, ['batch', 32]), h.make_tensor_value_info('e', TP.FLOAT, ['n', 64])],
                 [nh.from_array(W1, 'W1'), nh.from_array(W2, 'W2'), nh.from_array(C, 'C'), nh.from_array(E, 'E')])
m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)])
m.ir_version = 8
onnx.save(m, os.path.join(d, 'small.onnx'))
for i in range(4):
    s = os.path.join(d, 'calib', 'sample_%d' % i)
    os.makedirs(s)
    np.save(os.path.join(s, 'x.npy'), rng.standard_normal((2, 64)).astype(np.float32))
    np.save(os.path.join(s, 'ids.npy'), rng.integers(0, 512, 5).astype(np.int64))
s = os.path.join(d, 'badcalib', 'sample_0')
os.makedirs(s)
np.save(os.path.join(s, 'input_ids.npy'), np.zeros((1, 4), np.int64))
np.save(os.path.join(d, 'x.npy'), rng.standard_normal((2, 64)).astype(np.float32))
np.save(os.path.join(d, 'ids.npy'), np.array([0, 511, 7], np.int64))
PY
M=$T/small.onnx
run_ok() { # model: runs in skiff-run
    $BIN/skiff-run "$1" --input x="$T/x.npy" --input ids="$T/ids.npy" -q >/dev/null 2>"$T/runerr" ||
        { bad "$2: skiff-run fails: $(head -c 300 "$T/runerr")"; return 1; }
    ok "$2: runs in skiff-run"
}

expect 0 "dynamic" $Q "$M" -o "$T/dyn.onnx" --json
$PY -c "
import json
d = json.load(open('$T/out'))
for k in ('input', 'output', 'mode', 'layers', 'skipped', 'bytes_before', 'bytes_after', 'ratio', 'seconds'): assert k in d, k
assert d['layers'] == 3, d
assert d['ratio'] < 0.4, d
" && ok "--json has the documented keys, 3 layers, smaller" || bad "--json: $(cat "$T/out")"
run_ok "$T/dyn.onnx" dynamic
$PY -c "
import onnx
m = onnx.load('$T/dyn.onnx')
ops = [n.op_type for n in m.graph.node]
assert ops.count('MatMulInteger') == 2 and 'DynamicQuantizeLinear' in ops and 'GatherBlockQuantized' in ops, ops
assert not any(i.name in ('W1', 'W2', 'E') for i in m.graph.initializer)
onnx.checker.check_model(m)
" 2>"$T/pyerr" && ok "dynamic: MatMulInteger for MatMul and Gemm, GatherBlockQuantized, float weights gone, onnx checker passes" || bad "dynamic graph: $(tail -1 "$T/pyerr")"

expect 0 "dynamic again, 1 thread" $Q "$M" -o "$T/dyn2.onnx" --threads 1 -q
cmp -s "$T/dyn.onnx" "$T/dyn2.onnx" && ok "byte-identical across runs and thread counts" || bad "output differs between runs"

expect 0 "ONNX Runtime's spellings" $Q "$M" -o "$T/ort.onnx" --per_channel --weight_type QUInt8 --nodes_to_exclude 'head/*' --op_types_to_quantize MatMul,Gemm -q
$PY -c "
import onnx
m = onnx.load('$T/ort.onnx')
ops = [n.op_type for n in m.graph.node]
assert ops.count('MatMulInteger') == 1 and 'Gemm' in ops and 'Gather' in ops, ops
assert any(i.data_type == 2 and i.name.endswith('_quantized') for i in m.graph.initializer)
" && ok "--nodes_to_exclude glob, --op_types_to_quantize, QUInt8 weights" || bad "ORT spellings"
run_ok "$T/ort.onnx" "QUInt8"

for v in "int4" "int4 --asym --block 64 --embed int4" "int4 --format qdq" "int4 --calib $T/calib"; do
    expect 0 "--mode $v" $Q "$M" -o "$T/i4.onnx" --mode $v -q
    run_ok "$T/i4.onnx" "--mode $v"
done
for c in minmax percentile entropy mse; do
    expect 0 "--mode static --calibrator $c" $Q "$M" -o "$T/st.onnx" --mode static --calib "$T/calib" --calibrator $c -q
    run_ok "$T/st.onnx" "static $c"
done

expect 0 "--report json and html" $Q "$M" -o "$T/rep.onnx" --mode static --calib "$T/calib" --report "$T/r.json" --report "$T/r.html" -q
$PY -c "
import json
d = json.load(open('$T/r.json'))
for k in ('mode', 'file_bytes_before', 'file_bytes_after', 'layers', 'skipped', 'activations', 'agreement', 'calibration'): assert k in d, k
l = d['layers'][0]
for k in ('node', 'op', 'weight', 'shape', 'scheme', 'sqnr_db', 'bytes_before', 'bytes_after'): assert k in l, k
a = d['agreement']['outputs']
assert {o['name'] for o in a} == {'y', 'e'} and all(o['cosine_min'] > 0.99 for o in a), a
" && ok "report JSON: layers, activations, agreement (cosine > 0.99)" || bad "report JSON: $(head -c 400 "$T/r.json")"
grep -q "<svg" "$T/r.html" && ! grep -q -E "<script|src=|<link" "$T/r.html" && ok "report HTML: inline SVG, self-contained" || bad "report HTML"

expect 0 "--external-data" $Q "$M" -o "$T/ext.onnx" --external-data ext.bin -q
[ -s "$T/ext.bin" ] && ok "--external-data writes the weights file" || bad "no ext.bin"
run_ok "$T/ext.onnx" "external data"

# calibration problems: one line naming the problem, nothing written, an existing output untouched
cp "$T/dyn.onnx" "$T/keep.onnx"
expect 1 "calibration input named wrong" $Q "$M" -o "$T/keep.onnx" --mode static --calib "$T/badcalib"
grep -q "input_ids" "$T/err" && ok "the error names the file's input" || bad "error: $(cat "$T/err")"
cmp -s "$T/dyn.onnx" "$T/keep.onnx" && ok "an existing output stays as it was" || bad "existing output changed"
expect 1 "missing --calib folder" $Q "$M" -o "$T/nocal.onnx" --mode static --calib "$T/nope"
[ -e "$T/nocal.onnx" ] && bad "missing calib leaves no output" || ok "missing calib leaves no output"
ls "$T" | grep -q '\.tmp' && bad "temporary files left in $T" || ok "no temporary files left"

BERT=../shared/models/bert_bytes_cls/model.onnx
if [ -f "$BERT" ]; then
    expect 0 "BERT classifier, dynamic" $Q "$BERT" -o "$T/bert.onnx" --json
    $PY -c "
import json
d = json.load(open('$T/out'))
assert d['layers'] == 28 and d['ratio'] <= 0.28, d
" && ok "BERT dynamic: 28 layers (MatMul, Gemm, embeddings), <= 0.28x" || bad "BERT dynamic: $(cat "$T/out")"
else
    echo "skipped: BERT case (../shared/models is absent)"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
