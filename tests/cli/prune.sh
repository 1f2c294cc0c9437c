#!/bin/sh
# skiff-prune from the outside: usage errors (exit 2), bad input (exit 1, one
# line, no output left behind), the summary, --json, reports, determinism,
# skiff-inspect's attention section; on a two-layer model generated here and
# on the exports in ../shared/models (every output keeps its shape).
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/prune-cli
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION CMD...: exit code CODE, one line on stderr for 1 and 2
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; got=$?
    lines=$(wc -l < "$T/err")
    if [ "$got" != "$want" ]; then bad "$what: exit $got, wanted $want ($(head -c 300 "$T/err"))"; return 1; fi
    if [ "$want" != 0 ] && [ "$lines" != 1 ]; then bad "$what: $lines lines on stderr, wanted 1"; cat "$T/err"; return 1; fi
    if grep -q -i -E "AddressSanitizer|LeakSanitizer|runtime error|Segmentation" "$T/err"; then bad "$what: sanitizer report"; cat "$T/err"; return 1; fi
    ok "$what"
}
PY=/usr/bin/python3
if ! $PY -c 'import onnx, numpy' 2>/dev/null; then
    echo "skipped: prune CLI tests (/usr/bin/python3 lacks onnx or numpy)"; exit 1
fi

# two blocks of 4 heads (head size 8) with a residual between them, and 3 samples
$PY - "$T" <<'EOF' || { echo "FAIL: generating the test model"; exit 1; }
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
out = sys.argv[1]
rng = np.random.default_rng(3)
E, H, D, S = 32, 4, 8, 5
inits, nodes = [], []
def const(name, a):
    inits.append(numpy_helper.from_array(a, name))
def w(name, shape):
    const(name, (rng.standard_normal(shape) * 0.3).astype(np.float32))
const('split_shape', np.array([1, -1, H, D], np.int64))
const('merge_shape', np.array([1, -1, E], np.int64))
const('scale', np.array(D ** -0.5, np.float32))
x = 'x'
for l in range(2):
    p = f'l{l}_'
    for r in 'qkv':
        w(p + 'w' + r, [E, E]); w(p + 'b' + r, [E])
        nodes.append(helper.make_node('MatMul', [x, p + 'w' + r], [p + r + '0'], name=p + r + '_proj'))
        nodes.append(helper.make_node('Add', [p + r + '0', p + 'b' + r], [p + r + '1'], name=p + r + '_bias'))
        nodes.append(helper.make_node('Reshape', [p + r + '1', 'split_shape'], [p + r + '2'], name=p + r + '_split'))
        perm = [0, 2, 3, 1] if r == 'k' else [0, 2, 1, 3]
        nodes.append(helper.make_node('Transpose', [p + r + '2'], [p + r + '3'], perm=perm, name=p + r + '_tr'))
    w(p + 'wo', [E, E]); w(p + 'bo', [E])
    nodes += [helper.make_node('MatMul', [p + 'q3', p + 'k3'], [p + 's0'], name=p + 'scores'),
              helper.make_node('Mul', [p + 's0', 'scale'], [p + 's1'], name=p + 'scale'),
              helper.make_node('Softmax', [p + 's1'], [p + 'p'], axis=-1, name=p + 'softmax'),
              helper.make_node('MatMul', [p + 'p', p + 'v3'], [p + 'c0'], name=p + 'context'),
              helper.make_node('Transpose', [p + 'c0'], [p + 'c1'], perm=[0, 2, 1, 3], name=p + 'c_tr'),
              helper.make_node('Reshape', [p + 'c1', 'merge_shape'], [p + 'c2'], name=p + 'c_merge'),
              helper.make_node('MatMul', [p + 'c2', p + 'wo'], [p + 'o0'], name=p + 'o_proj'),
              helper.make_node('Add', [p + 'o0', p + 'bo'], [p + 'o1'], name=p + 'o_bias'),
              helper.make_node('Add', [p + 'o1', x], [p + 'out'], name=p + 'residual')]
    x = p + 'out'
nodes.append(helper.make_node('Identity', [x], ['y'], name='out'))
g = helper.make_graph(nodes, 'tiny_attention',
                      [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 'seq', E])],
                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 'seq', E])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
m.ir_version = 8
onnx.save(m, os.path.join(out, 'tiny.onnx'))
for i in range(3):
    os.makedirs(os.path.join(out, 'calib', f's{i}'))
    np.save(os.path.join(out, 'calib', f's{i}', 'x.npy'), rng.standard_normal((1, S, E)).astype(np.float32))
os.makedirs(os.path.join(out, 'wrongcalib', 's0'))
np.save(os.path.join(out, 'wrongcalib', 's0', 'z.npy'), np.zeros((1, S, E), np.float32))
EOF
M=$T/tiny.onnx
C=$T/calib
NOATT=/usr/share/libonnx-testdata/data/node/test_add_bcast/model.onnx

# usage
expect 0 "--help" $BIN/skiff-prune --help
grep -q -- "--min-heads-per-layer" "$T/out" || bad "--help lists --min-heads-per-layer"
expect 0 "--version" $BIN/skiff-prune --version
expect 2 "no argument" $BIN/skiff-prune
expect 2 "unknown option" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --frobnicate
expect 2 "no -o" $BIN/skiff-prune $M --calib $C --heads 1
expect 2 "no --heads nor --prune-heads" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C
expect 2 "no --calib" $BIN/skiff-prune $M -o "$T/o.onnx" --heads 1
for h in abc 100% -3 12x %; do
    expect 2 "--heads $h" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads "$h"
done
expect 2 "--heads with --prune-heads" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --prune-heads 0:1
for p in 0 0:x 0:1,0:1 ,; do
    expect 2 "--prune-heads '$p'" $BIN/skiff-prune $M -o "$T/o.onnx" --prune-heads "$p" --compensate none
done
expect 2 "--score bogus" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --score bogus
expect 0 "--compensate bias" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --compensate bias
rm -f "$T/o.onnx"
expect 2 "--compensate bogus" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --compensate bogus
expect 2 "--min-heads-per-layer 0" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --min-heads-per-layer 0
expect 2 "--report with another extension" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --report r.txt
[ -e "$T/o.onnx" ] && bad "a usage error left $T/o.onnx"

# bad input: exit 1, one line, nothing written
expect 1 "a missing model" $BIN/skiff-prune "$T/none.onnx" -o "$T/o.onnx" --calib $C --heads 1
printf 'not a model\n' > "$T/text.onnx"
expect 1 "a text file as model" $BIN/skiff-prune "$T/text.onnx" -o "$T/o.onnx" --calib $C --heads 1
if [ -f $NOATT ]; then
    expect 1 "a model without attention" $BIN/skiff-prune $NOATT -o "$T/o.onnx" --prune-heads 0:0 --compensate none &&
        { grep -q "no recognisable attention" "$T/err" && ok "says there is no recognisable attention" || bad "message: $(cat "$T/err")"; }
fi
expect 1 "more heads than the minimum allows" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 7 &&
    { grep -q "at most 6" "$T/err" && ok "says at most 6 can go" || bad "message: $(cat "$T/err")"; }
expect 1 "--min-heads-per-layer 4 leaves nothing to remove" $BIN/skiff-prune $M -o "$T/o.onnx" --calib $C --heads 1 --min-heads-per-layer 4
expect 1 "a head outside the model" $BIN/skiff-prune $M -o "$T/o.onnx" --prune-heads 2:0 --compensate none
expect 1 "a missing calibration folder" $BIN/skiff-prune $M -o "$T/o.onnx" --calib "$T/nowhere" --heads 1
expect 1 "samples for another model" $BIN/skiff-prune $M -o "$T/o.onnx" --calib "$T/wrongcalib" --heads 1 &&
    { grep -q "z" "$T/err" && ok "names the stray input" || bad "message: $(cat "$T/err")"; }
[ -e "$T/o.onnx" ] && bad "a failure left $T/o.onnx behind"

# the real thing
expect 0 "prune 2 of 8 heads" $BIN/skiff-prune $M -o "$T/p2.onnx" --calib $C --heads 2 --report "$T/r.json" --report "$T/r.html"
grep -q "removed 2 of 8 heads" "$T/err" && ok "summary line" || bad "summary: $(cat "$T/err")"
$PY - "$T/r.json" <<'EOF' && ok "report JSON: scores, choices, parameters" || bad "report JSON"
import json, sys, math
r = json.load(open(sys.argv[1]))
assert r['heads_total'] == 8 and r['heads_removed'] == 2, r
assert r['score'] == 'ablation' and r['samples'] == 3 and r['compensate'] in ('auto: bias', 'auto: lsq'), r['compensate']
assert r['auto_divergence']['bias'] >= 0 and r['auto_divergence']['lsq'] >= 0
assert r['params_after'] < r['params_before'] and r['head_params_after'] < r['head_params_before']
assert r['check_rel_err'] is not None and r['check_rel_err'] < 1e-3
assert len(r['layers']) == 2
removed = [(l['layer'], h) for l in r['layers'] for h, p in enumerate(l['pruned']) if p]
assert len(removed) == 2
scores = sorted((s, l['layer'], h) for l in r['layers'] for h, s in enumerate(l['scores']))
assert all(s > 0 and math.isfinite(s) for s, _, _ in scores)
assert sorted(removed) == sorted((l, h) for _, l, h in scores[:2]), (removed, scores[:2])
EOF
grep -q "<table" "$T/r.html" && grep -q "layer 1" "$T/r.html" && ok "report HTML has the heat map" || bad "report HTML"
$BIN/skiff-inspect "$T/p2.onnx" > "$T/insp" 2>&1
grep -q "attention  2 blocks, 6 heads" "$T/insp" && ok "the pruned model has 6 heads left" || bad "inspect pruned: $(grep attention "$T/insp")"
expect 0 "the pruned model runs in skiff-run" $BIN/skiff-run "$T/p2.onnx" --input x=$C/s0/x.npy --output-dir "$T/run"
expect 0 "prune again: same bytes" $BIN/skiff-prune $M -o "$T/p2b.onnx" --calib $C --heads 2 --threads 1 -q
cmp -s "$T/p2.onnx" "$T/p2b.onnx" && ok "deterministic (threads do not matter)" || bad "two runs differ"
expect 0 "--heads 25%" $BIN/skiff-prune $M -o "$T/p25.onnx" --calib $C --heads 25% --score activation --compensate lsq --json
$PY -c "
import json,sys
d=json.load(open('$T/out'))
assert d['heads_removed'] == 2 and d['heads_total'] == 8, d
assert sum(len(l['removed']) for l in d['layers']) == 2
for k in ('input','output','score','params_before','params_after','bytes_before','bytes_after','seconds'): assert k in d, k
assert d['compensate'] == 'lsq' and d['score'] == 'activation', d
" && ok "--json summary" || bad "--json: $(cat "$T/out")"
expect 0 "--prune-heads without samples" $BIN/skiff-prune $M -o "$T/pick.onnx" --prune-heads 0:1,1:3,1:0 --compensate none
$BIN/skiff-inspect --json "$T/pick.onnx" > "$T/pick.json"
$PY -c "
import json
d=json.load(open('$T/pick.json'))['attention']['blocks']
assert [b['heads'] for b in d] == [3, 2], d
assert d[0]['q']['columns'] == [0, 24] and d[1]['o']['rows'] == [0, 16], d
" && ok "inspect --json of the picked model: 3 and 2 heads" || bad "inspect --json pick"
expect 0 "--external-data" $BIN/skiff-prune $M -o "$T/ext.onnx" --calib $C --heads 1 --external-data ext.bin -q
[ -s "$T/ext.bin" ] && ok "weights in ext.bin" || bad "no ext.bin"

# skiff-inspect's attention section
expect 0 "inspect the two-layer model" $BIN/skiff-inspect $M
grep -q "attention  2 blocks, 8 heads" "$T/out" && grep -q "l1_softmax" "$T/out" && ok "inspect lists the blocks" || bad "inspect: $(cat "$T/out")"
expect 0 "inspect -v" $BIN/skiff-inspect -v $M
grep -q "weight l0_wq cols 0..32  bias l0_bq" "$T/out" && grep -q "weight l1_wo rows 0..32" "$T/out" && ok "inspect -v names weights" || bad "inspect -v: $(cat "$T/out")"
if [ -f $NOATT ]; then
    expect 0 "inspect a model without attention" $BIN/skiff-inspect $NOATT
    grep -q "attention  none recognised" "$T/out" && ok "inspect says none recognised" || bad "inspect: $(tail -3 "$T/out")"
    $BIN/skiff-inspect --json $NOATT | $PY -c "
import json,sys
a=json.load(sys.stdin)['attention']; assert a == {'blocks': [], 'unrecognised': []}, a" && ok "inspect --json: empty attention" || bad "inspect --json attention"
fi

# the exporters' graphs: every output keeps its shape
EX=../shared/models/exports
if [ -d $EX ]; then
    for d in $EX/*/; do
        d=${d%/}; n=$(basename "$d")
        [ -f "$d/model.onnx" ] || continue
        if ! $BIN/skiff-prune "$d/model.onnx" -o "$T/$n.onnx" --calib "$d/test_data_set_0" --heads 50% -q 2>"$T/err"; then
            bad "$n: $(cat "$T/err")"; continue
        fi
        set --
        for f in "$d"/test_data_set_0/input_*.pb; do set -- "$@" --input "$f"; done
        rm -rf "$T/$n.a" "$T/$n.b"
        if $BIN/skiff-run "$d/model.onnx" "$@" --output-dir "$T/$n.a" -q 2>"$T/err" &&
           $BIN/skiff-run "$T/$n.onnx" "$@" --output-dir "$T/$n.b" -q 2>>"$T/err" &&
           $PY -c "
import numpy as np, os, sys
a, b = sys.argv[1:3]
names = sorted(os.listdir(a)); assert names == sorted(os.listdir(b)), names
for f in names:
    x, y = np.load(os.path.join(a, f)), np.load(os.path.join(b, f))
    assert x.shape == y.shape and np.isfinite(y).all(), (f, x.shape, y.shape)
" "$T/$n.a" "$T/$n.b"; then
            ok "$n: 50% of heads removed, outputs keep their shapes"
        else
            bad "$n: $(cat "$T/err")"
        fi
    done
else
    echo "skipped: exports ($EX is absent)"
fi

# ONNX Runtime's fused com.microsoft Attention (two layers, a [batch, seq] key
# mask): the engine runs it, so heads are scored by ablation, compensated and
# the result checked; do_rotary (not implemented) is refused in one line
$PY - "$T" <<'EOF' || bad "generating the fused-attention model"
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
out = sys.argv[1]
rng = np.random.default_rng(5)
E, H, S = 24, 4, 6
def build(name, rotary):
    inits, nodes, x = [], [], 'x'
    for l in range(2):
        p = 'l%d_' % l
        for n, shape in (('wqkv', [E, 3 * E]), ('bqkv', [3 * E]), ('wo', [E, E]), ('bo', [E])):
            inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), p + n))
        attrs = dict(num_heads=H)
        if rotary:
            attrs['do_rotary'] = 1
        nodes += [helper.make_node('Attention', [x, p + 'wqkv', p + 'bqkv', 'mask'], [p + 'ctx'], domain='com.microsoft',
                                   name=p + 'attention', **attrs),
                  helper.make_node('MatMul', [p + 'ctx', p + 'wo'], [p + 'o0'], name=p + 'o_proj'),
                  helper.make_node('Add', [p + 'o0', p + 'bo'], [p + 'o1'], name=p + 'o_bias'),
                  helper.make_node('Add', [p + 'o1', x], [p + 'out'], name=p + 'residual')]
        x = p + 'out'
    nodes.append(helper.make_node('Identity', [x], ['y'], name='out'))
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 'seq', E]),
                                        helper.make_tensor_value_info('mask', TensorProto.INT32, [1, 'seq'])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 'seq', E])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('com.microsoft', 1)])
    m.ir_version = 8
    onnx.save(m, os.path.join(out, name + '.onnx'))
build('fused', False)
build('rotary', True)
for i in range(3):
    d = os.path.join(out, 'fcalib', 's%d' % i)
    os.makedirs(d)
    np.save(os.path.join(d, 'x.npy'), rng.standard_normal((1, S, E)).astype(np.float32))
    mask = np.ones((1, S), np.int32)
    mask[0, S - i:] = 0
    np.save(os.path.join(d, 'mask.npy'), mask)
EOF
FC=$T/fcalib
if expect 0 "fused Attention: 3 of 8 heads by ablation" $BIN/skiff-prune "$T/fused.onnx" -o "$T/fused-p.onnx" --calib $FC --heads 3 \
       --report "$T/fused.json" -q; then
    if $PY -c "
import json, math, sys
r = json.load(open(sys.argv[1]))
assert r['score'] == 'ablation' and r['heads_removed'] == 3, r
assert r['compensate'].startswith('auto') and 0 <= r['check_rel_err'] < 1e-3, r
s = [v for l in r['layers'] for v in l['scores']]
assert len(s) == 8 and all(math.isfinite(v) and v > 0 for v in s) and len(set(s)) == 8, s
" "$T/fused.json" 2>"$T/err"; then ok "fused Attention: 8 distinct ablation scores, compensated, checked"
    else bad "fused Attention report: $(tail -1 "$T/err")"; fi
    expect 0 "the pruned fused model runs in skiff-run" $BIN/skiff-run "$T/fused-p.onnx" --input x=$FC/s1/x.npy \
        --input mask=$FC/s1/mask.npy --output-dir "$T/frun" -q
fi
expect 1 "fused Attention with do_rotary is refused" $BIN/skiff-prune "$T/rotary.onnx" -o "$T/rot-p.onnx" --calib $FC --heads 1 &&
    { grep -q "rotary" "$T/err" && [ ! -e "$T/rot-p.onnx" ] && ok "  ... naming rotary embeddings, no output" || bad "do_rotary message: $(cat "$T/err")"; }

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
