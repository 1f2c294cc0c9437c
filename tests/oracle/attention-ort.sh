#!/bin/sh
# The com.microsoft Attention and MultiHeadAttention kernels (lib/sk_ops_attention.c)
# against onnxruntime-node: small generated models (tests/oracle/make-attention-models.py)
# covering every mask form, unidirectional, scale, mask_filter_value, attention_bias,
# qkv_hidden_sizes, past/present, odd sizes and MultiHeadAttention's layouts; skiff-run's
# outputs (present states included) must match ONNX Runtime's within 1e-4 relative.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/attention-ort
PY=/usr/bin/python3
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
if [ ! -d node_modules/onnxruntime-node ]; then
    echo "skipped: onnxruntime-node is not installed (make deps)"; exit 1
fi
rm -rf "$T"; mkdir -p "$T"
if ! $PY tests/oracle/make-attention-models.py "$T" >"$T/gen.log" 2>&1; then
    bad "generating the models:"; sed 's/^/    /' "$T/gen.log" | head -5
    echo "$pass passed, $fail failed"; exit 1
fi
n=0
while read -r name rest; do
    n=$((n + 1))
    set --
    for w in $rest; do set -- "$@" --input "$w"; done
    log=$T/$name.log
    if node tests/oracle/ort-run.mjs "$T/$name.onnx" "$@" --output-dir "$T/ort-$name" --quiet >"$log" 2>&1 &&
       $BIN/skiff-run "$T/$name.onnx" "$@" --output-dir "$T/skiff-$name" -q >>"$log" 2>&1 &&
       node tests/oracle/compare.mjs "$T/skiff-$name" "$T/ort-$name" --rtol 1e-4 --atol 1e-5 >>"$log" 2>&1; then
        ok "$name: skiff-run equals ONNX Runtime ($(ls "$T/ort-$name" | tr '\n' ' ' | sed 's/ $//'))"
    else
        bad "$name:"; sed 's/^/    /' "$log" | head -8
    fi
done < "$T/cases.txt"
[ "$n" -ge 20 ] && ok "$n generated cases" || bad "only $n cases were generated"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
