#!/bin/sh
# no-asan (about two minutes: ONNX Runtime and skiff-run over the whole eval set)
# The quality bars of skiff-quant, measured with ONNX Runtime as the oracle:
#  - BERT classifier (464 labelled samples, fp32 accuracy 0.9224):
#      dynamic int8 >= 0.917 and <= 0.28x the file; static int8 (calibrated on
#      its calib/ folder) >= 0.912; int4 block 32 >= 0.905 and <= 0.20x;
#      each through onnxruntime-node, onnxruntime-web (wasm, in Node) and
#      skiff-run (the same accuracy as onnxruntime-node for dynamic and int4;
#      static QDQ within one sample, see docs/quality.md);
#  - GPT-2 and LLaMA exports (causal masks, Gemm, tied embeddings): every mode
#      keeps the logits' cosine with fp32 >= 0.99 (int4: 0.98) on
#      test_data_set_0, in onnxruntime-node and -web.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/quant-quality
SH=${SK_SHARED_MODELS:-../shared/models}
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
PY=/usr/bin/python3
BERT=$SH/bert_bytes_cls
if [ ! -f "$BERT/model.onnx" ]; then
    echo "skipped: quant-ort ($SH is absent)"
    echo "0 passed, 0 failed"
    exit 0
fi

# eval set as one batch for skiff-run
$PY -c "
import numpy as np
ids = np.load('$BERT/eval_input_ids.npy')
np.save('$T/input_ids.npy', ids); np.save('$T/attention_mask.npy', np.ones_like(ids))
"
acc_ort() { # model [--web] -> accuracy
    node tests/oracle/bert-accuracy.mjs "$@" 2>"$T/ort.err" | awk '{print $2}'
}
acc_skiff() { # model -> accuracy
    rm -rf "$T/sk"
    "$BIN/skiff-run" "$1" --input input_ids="$T/input_ids.npy" --input attention_mask="$T/attention_mask.npy" \
        --output-dir "$T/sk" --threads 2 -q 2>"$T/sk.err" || { echo "error"; return; }
    $PY -c "
import numpy as np
l = np.load('$T/sk/logits.npy'); y = np.load('$BERT/eval_labels.npy')
print('%.4f' % (l.argmax(1) == y).mean())"
}
ratio_of() { # json line -> ratio
    $PY -c "import json,sys; print(json.load(open('$1'))['ratio'])"
}
check_bert() { # name bar maxratio same(1: skiff must equal ORT) quant-args...
    name=$1; bar=$2; maxr=$3; same=$4; shift 4
    if ! "$BIN/skiff-quant" "$BERT/model.onnx" -o "$T/$name.onnx" --json "$@" >"$T/$name.json" 2>"$T/q.err"; then
        bad "$name: skiff-quant failed: $(cat "$T/q.err")"; return
    fi
    r=$(ratio_of "$T/$name.json")
    if [ "$maxr" != - ]; then
        ge "$maxr" "$r" && ok "$name: file ratio $r <= $maxr" || bad "$name: file ratio $r > $maxr"
    else
        echo "info: $name: file ratio $r"
    fi
    a_node=$(acc_ort "$T/$name.onnx")
    ge "$a_node" "$bar" && ok "$name: onnxruntime-node accuracy $a_node >= $bar" || bad "$name: onnxruntime-node accuracy '$a_node' < $bar $(cat "$T/ort.err")"
    a_web=$(acc_ort "$T/$name.onnx" --web)
    ge "$a_web" "$bar" && ok "$name: onnxruntime-web accuracy $a_web >= $bar" || bad "$name: onnxruntime-web accuracy '$a_web' < $bar $(cat "$T/ort.err")"
    a_sk=$(acc_skiff "$T/$name.onnx")
    if [ "$a_sk" = error ]; then bad "$name: skiff-run failed: $(head -c 300 "$T/sk.err")"; return; fi
    ge "$a_sk" "$bar" && ok "$name: skiff-run accuracy $a_sk >= $bar" || bad "$name: skiff-run accuracy $a_sk < $bar"
    d=$(awk -v a="$a_sk" -v b="$a_node" 'BEGIN { d = a - b; if (d < 0) d = -d; print d }')
    if [ "$same" = 1 ]; then
        [ "$a_sk" = "$a_node" ] && ok "$name: skiff-run and onnxruntime-node agree ($a_sk)" || bad "$name: skiff-run $a_sk, onnxruntime-node $a_node"
    else
        ge 0.0022 "$d" && ok "$name: skiff-run $a_sk within one sample of onnxruntime-node $a_node" || bad "$name: skiff-run $a_sk vs onnxruntime-node $a_node"
    fi
}
check_bert dynamic 0.917 0.28 1
check_bert static 0.912 - 0 --mode static --calib "$BERT/calib"
check_bert int4 0.905 0.20 1 --mode int4 --block 32

# GPT-2 and LLaMA exports: cosine of logits with fp32 through ONNX Runtime
cosine() { # a-dir b-dir -> cosine of the first tensor
    node tests/oracle/compare.mjs "$1" "$2" --rtol 1e9 --atol 1e9 2>/dev/null | sed -n 's/.*cosine \([0-9.e+-]*\).*/\1/p' | head -1
}
for m in gpt2_dynamo llama_dynamo; do
    D=$SH/exports/$m
    [ -f "$D/model.onnx" ] || { echo "skipped: $m (absent)"; continue; }
    set --
    for f in "$D"/test_data_set_0/input_*.pb; do set -- "$@" --input "$f"; done
    for rt in node web; do
        w=; [ $rt = web ] && w=--web
        node tests/oracle/ort-run.mjs "$D/model.onnx" "$@" --output-dir "$T/$m-ref-$rt" $w --quiet >/dev/null 2>&1 || bad "$m: fp32 run ($rt)"
    done
    i=0
    for mode in "dynamic" "static --calib $D/test_data_set_0" "static --calib $D/test_data_set_0 --calibrator minmax --op-types MatMul,Gemm,Gather,Add,Softmax" \
                "int4" "int4 --format qdq" "int4 --asym --embed int4 --calib $D/test_data_set_0"; do
        i=$((i + 1))
        case $mode in int4*) bar=0.98 ;; *) bar=0.99 ;; esac
        # shellcheck disable=SC2086
        if ! "$BIN/skiff-quant" "$D/model.onnx" -o "$T/$m-$i.onnx" --mode $mode -q 2>"$T/q.err"; then
            bad "$m --mode $mode: $(cat "$T/q.err")"; continue
        fi
        for rt in node web; do
            w=; [ $rt = web ] && w=--web
            rm -rf "$T/out"
            if ! node tests/oracle/ort-run.mjs "$T/$m-$i.onnx" "$@" --output-dir "$T/out" $w --quiet >/dev/null 2>"$T/ort.err"; then
                bad "$m --mode $mode: onnxruntime-$rt cannot run it: $(head -c 300 "$T/ort.err")"; continue
            fi
            c=$(cosine "$T/out" "$T/$m-ref-$rt")
            ge "$c" "$bar" && ok "$m --mode $mode ($rt): cosine $c >= $bar" || bad "$m --mode $mode ($rt): cosine '$c' < $bar"
        done
    done
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
