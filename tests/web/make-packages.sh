#!/bin/sh
# Builds the packages the browser tests, the benchmark page and the demo use,
# from the shared BERT classifier, into OUT (default build/web-test):
#   OUT/pubkey          the RW... public key string
#   OUT/fp32/           fp32, 1 MiB shards (several shards)
#   OUT/fp32-old/       the same model, an older version (for the rollback test)
#   OUT/int8/ OUT/int4/ skiff-quant dynamic int8 and int4 (MatMulNBits)
# Packages come from skiff-pack (signed with a skiff-keygen key) when it works,
# else from tests/web/mkpkg.py (same format, a test key). Prints which.
# usage: make-packages.sh [OUT] [B]   (B: the build folder with bin/, default build)
set -e
OUT=${1:-build/web-test}
B=${B:-${2:-build}}
M=../shared/models/bert_bytes_cls
PY=/usr/bin/python3
[ -f "$M/model.onnx" ] || { echo "make-packages: $M/model.onnx is missing" >&2; exit 3; }
mkdir -p "$OUT"
if [ -f "$OUT/.done" ] && [ "$OUT/.done" -nt "$M/model.onnx" ] && [ "$OUT/.done" -nt "$B/bin/skiff-quant" ]; then
    exit 0
fi
rm -rf "$OUT/fp32" "$OUT/fp32-old" "$OUT/int8" "$OUT/int4" "$OUT/q"
mkdir -p "$OUT/q"
"$B/bin/skiff-quant" "$M/model.onnx" -o "$OUT/q/int8.onnx" -q
"$B/bin/skiff-quant" "$M/model.onnx" -o "$OUT/q/int4.onnx" --mode int4 -q

# Versions are creation times (skiff-pack's default, SOURCE_DATE_EPOCH): the
# old fp32 package is older than the other.
OLD=1700000000 NEW=1700000100
packer=""
if [ -x "$B/bin/skiff-pack" ] && [ -x "$B/bin/skiff-keygen" ]; then
    rm -f "$OUT/skiff.pub" "$OUT/skiff.key"
    if "$B/bin/skiff-keygen" --no-password -p "$OUT/skiff.pub" -s "$OUT/skiff.key" -q >/dev/null 2>&1 &&
       SOURCE_DATE_EPOCH=$NEW "$B/bin/skiff-pack" "$M/model.onnx" -o "$OUT/fp32" -s "$OUT/skiff.key" \
           --name bert_bytes_cls --shard-size 1MiB -q >/dev/null 2>&1 &&
       [ -f "$OUT/fp32/manifest.json.sig" ]; then
        packer=skiff-pack
        pk() { SOURCE_DATE_EPOCH=$4 "$B/bin/skiff-pack" "$1" -o "$2" -s "$OUT/skiff.key" --name "$3" -q; }
        sed -n 2p "$OUT/skiff.pub" > "$OUT/pubkey"
    fi
fi
if [ -z "$packer" ]; then
    packer=mkpkg.py
    rm -rf "$OUT/fp32"
    [ -f "$OUT/seed" ] || head -c 32 /dev/urandom > "$OUT/seed"
    pk() { $PY tests/web/mkpkg.py "$1" "$2" --seed-file "$OUT/seed" --name "$3" --version "$4"; }
    $PY tests/web/mkpkg.py "$M/model.onnx" "$OUT/fp32" --seed-file "$OUT/seed" --name bert_bytes_cls --version $NEW \
        --shard-size 1048576
    $PY tests/web/mkpkg.py --pubkey --seed-file "$OUT/seed" > "$OUT/pubkey"
fi
pk "$M/model.onnx" "$OUT/fp32-old" bert_bytes_cls $OLD
pk "$OUT/q/int8.onnx" "$OUT/int8" bert_bytes_cls_int8 $OLD
pk "$OUT/q/int4.onnx" "$OUT/int4" bert_bytes_cls_int4 $OLD
# A model with an operator no runtime has, for UnsupportedOpError (mkpkg.py,
# its own test key).
rm -rf "$OUT/unsupported"
[ -f "$OUT/seed2" ] || head -c 32 /dev/urandom > "$OUT/seed2"
# And tiny/, a valid one (x @ w, w all ones) that the tests re-sign with
# malformed manifests (mkpkg.py --resign).
rm -rf "$OUT/tiny"
$PY - "$OUT/q" <<'PYEOF'
import sys
import numpy as np
from onnx import helper, numpy_helper, TensorProto, save
w = numpy_helper.from_array(np.ones((16, 16), np.float32), 'w')
for name, extra in (('unsupported', True), ('tiny', False)):
    nodes = [helper.make_node('MatMul', ['x', 'w'], ['y' if extra else 'z'], name='mm')]
    if extra:
        nodes.append(helper.make_node('Frobnicate', ['y'], ['z'], name='frob', domain='com.example'))
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info('z', TensorProto.FLOAT, [1, 16])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('com.example', 1)])
    m.ir_version = 8
    save(m, sys.argv[1] + '/' + name + '.onnx')
PYEOF
for t in unsupported tiny; do
    $PY tests/web/mkpkg.py "$OUT/q/$t.onnx" "$OUT/$t" --seed-file "$OUT/seed2" --name $t --version 1
    $PY tests/web/mkpkg.py --pubkey --seed-file "$OUT/seed2" > "$OUT/$t/pubkey"
done
echo "$packer" > "$OUT/packer"
touch "$OUT/.done"
