#!/bin/sh
# Brotli shards compressed in parts (docs/format.md section 2): float tensors
# at --float-level, the rest at --level, long stretches split into pieces
# compressed in parallel, joined into one plain Brotli stream per shard.
# Checks that every stream decodes with the stock `brotli` tool and with
# skiff-verify to exactly the tensors of the input model, that packages do
# not depend on the thread count, that the float level pays, and the option
# errors. Also a model with more tensors than skiff-pack's first allocation
# (--external-min 0 moves hundreds of small ones).
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/pack-parts
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION CMD...: exit code CODE, stderr one line when CODE is 1 or 2
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" != "$want" ]; then bad "$what: exit $got, wanted $want ($(head -c 300 "$T/err"))"; return 1; fi
    if [ "$want" != 0 ] && [ "$(wc -l < "$T/err")" != 1 ]; then bad "$what: wanted one line on stderr"; cat "$T/err"; return 1; fi
    if grep -q -i -E "AddressSanitizer|LeakSanitizer|runtime error|Segmentation" "$T/err"; then bad "$what: sanitizer report"; cat "$T/err"; return 1; fi
    ok "$what"
}
PY=/usr/bin/python3
if ! $PY -c "import onnx, numpy" 2>/dev/null; then
    echo "skipped: pack parts tests (/usr/bin/python3 has no onnx or numpy)"; echo "0 passed, 0 failed"; exit 0
fi
size() { du -cb "$1"/* | tail -n 1 | cut -f1; }

# A model with what quantized transformers hold, in first-use order (floats
# under a quarter of the bytes, so they get level 10 by default): float
# runs long and short (block scales, biases), 8-bit and 4-bit codes, float16,
# tensors larger than a shard (the 4.8 MB one is compressed in two pieces),
# and small tensors between them.
$PY - "$T" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
d = sys.argv[1]
rng = np.random.default_rng(5)
def model(path, tensors):
    inits, nodes, outs = [], [], []
    for i, (name, a) in enumerate(tensors):
        inits.append(numpy_helper.from_array(a, name))
        nodes.append(helper.make_node("Identity", [name], ["y%d" % i]))
        outs.append(helper.make_tensor_value_info("y%d" % i, helper.np_dtype_to_tensor_dtype(a.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape))
    g = helper.make_graph(nodes, "parts", [], outs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
scales = lambda n: (np.abs(rng.normal(0, 0.02, n)) + 1e-3).astype(np.float32)
codes = lambda n: rng.integers(0, 16, n, dtype=np.uint8) * 17
t = []
t.append(("emb_codes", rng.integers(100, 156, 300000, dtype=np.uint8)))
t.append(("emb_scales", scales(60000)))
for l in range(3):
    t.append(("l%d_bias" % l, rng.normal(0, 1, 256).astype(np.float32)))
    t.append(("l%d_q" % l, codes(400000 + 4096 * l)))
    t.append(("l%d_scales" % l, scales(25000 + 64 * l)))
    t.append(("l%d_ln" % l, rng.normal(1, 0.1, 300).astype(np.float32)))
t.append(("half", rng.normal(0, 1, 90000).astype(np.float16)))
t.append(("big_float", rng.normal(0, 0.05, 300000).astype(np.float32)))
t.append(("big_codes", codes(4800000)))
t.append(("ids", np.arange(512, dtype=np.int64)))
t.append(("tail_codes", codes(150001)))
model(d + "/mixed.onnx", t)
model(d + "/many.onnx", [("w%03d" % i, rng.normal(0, 1, 3 + i % 7).astype(np.float32)) for i in range(600)])
EOF
[ -f "$T/mixed.onnx" ] || { bad "making the test models"; echo "$pass passed, $fail failed"; exit 1; }

# same NAME REFERENCE UNPACKED: every initializer of UNPACKED equals REFERENCE's
same() {
    if $PY - "$2" "$3" >"$T/cmp" 2>&1 <<'EOF'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
a = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[1]).graph.initializer}
b = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[2]).graph.initializer}
assert a.keys() == b.keys(), "names differ"
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes(), k
EOF
    then ok "$1"; else bad "$1: $(tail -n 1 "$T/cmp")"; fi
}
# roundtrip NAME PKG MODEL: verify, stock brotli decodes every shard to what unpack writes, tensors equal
roundtrip() {
    expect 0 "$1: verify" $BIN/skiff-verify "$2" --unsigned -q
    rm -rf "$2.u"
    expect 0 "$1: unpack" $BIN/skiff-unpack "$2" -o "$2.u" -q
    if command -v brotli >/dev/null; then
        n=0; good=0
        for f in "$2"/*.br; do
            [ -f "$f" ] || continue
            n=$((n + 1))
            r=$(basename "$f" .br)
            brotli -dc "$f" 2>/dev/null | cmp -s - "$2.u/$r" && good=$((good + 1))
        done
        if [ "$good" = "$n" ]; then
            [ "$n" = 0 ] || ok "$1: brotli -d decodes all $n shards"
        else
            bad "$1: brotli -d decodes $good of $n shards"
        fi
    else
        echo "skipped: $1: brotli -d (brotli is not installed)"
    fi
    same "$1: tensors round-trip" "$3" "$2.u/model.onnx"
}

export SOURCE_DATE_EPOCH=1700000000
M=$T/mixed.onnx
expect 0 "pack with the defaults" $BIN/skiff-pack $M -o "$T/d" --json
grep -q '"level": 9, "float_level": 10' "$T/out" && ok "--json reports level 9, float level 10" || bad "--json levels: $(cat "$T/out")"
roundtrip "defaults" "$T/d" $M
expect 0 "pack 1 MiB shards, one thread" $BIN/skiff-pack $M -o "$T/s1" --shard-size 1MiB -T 1 -q
roundtrip "1 MiB shards" "$T/s1" $M
expect 0 "pack 1 MiB shards, three threads" $BIN/skiff-pack $M -o "$T/s3" --shard-size 1MiB -T 3 -q
diff -r "$T/s1" "$T/s3" >/dev/null && ok "the thread count does not change a byte" || bad "packages differ between -T 1 and -T 3"
expect 0 "pack --level 9" $BIN/skiff-pack $M -o "$T/l9" --level 9 -q
d=$(size "$T/d"); l9=$(size "$T/l9")
[ "$d" -lt "$l9" ] && ok "float tensors at level 10 pay: $d < $l9 bytes" || bad "defaults $d bytes, --level 9 $l9 bytes"
expect 0 "pack --level 9 --float-level 9" $BIN/skiff-pack $M -o "$T/l99" -q --level 9 --float-level 9
diff -r "$T/l9" "$T/l99" >/dev/null && ok "an explicit --level applies to float tensors too" || bad "--level 9 differs from --level 9 --float-level 9"
expect 0 "pack --level 5 --float-level 11" $BIN/skiff-pack $M -o "$T/l511" --level 5 --float-level 11 --shard-size 2MiB -q
roundtrip "levels 5 and 11" "$T/l511" $M
expect 0 "pack --level 1 (one stream per shard)" $BIN/skiff-pack $M -o "$T/l1" --level 1 -q
roundtrip "level 1" "$T/l1" $M
expect 0 "pack --codec zstd" $BIN/skiff-pack $M -o "$T/z" --codec zstd --level 3 -q
roundtrip "zstd" "$T/z" $M
expect 0 "pack --codec none" $BIN/skiff-pack $M -o "$T/n" --codec none -q
roundtrip "none" "$T/n" $M

expect 2 "--float-level 12" $BIN/skiff-pack $M -o "$T/x" --float-level 12
expect 2 "--float-level with zstd" $BIN/skiff-pack $M -o "$T/x" --codec zstd --float-level 10
expect 2 "--float-level 10 with --level 1" $BIN/skiff-pack $M -o "$T/x" --level 1 --float-level 10
expect 2 "--float-level 1 with the default level" $BIN/skiff-pack $M -o "$T/x" --float-level 1
[ -e "$T/x" ] && bad "a usage error left $T/x" || ok "usage errors write nothing"

expect 0 "pack 600 small tensors with --external-min 0" $BIN/skiff-pack "$T/many.onnx" -o "$T/many" --external-min 0 --json
grep -q '"tensors": 600' "$T/out" && ok "all 600 tensors moved to shards" || bad "tensors moved: $(cat "$T/out")"
grep -q '"level": 9, "float_level": 9' "$T/out" && ok "a float model gets level 9 throughout by default" || bad "float model levels: $(cat "$T/out")"
roundtrip "600 tensors" "$T/many" "$T/many.onnx"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
