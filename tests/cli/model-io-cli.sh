#!/bin/sh
# skiff-inspect and skiff-convert from the outside: exit codes, one-line
# errors, JSON keys, and no output file left behind on failure.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/model-io-cli
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION CMD...: exit code CODE, stderr one line (or empty on 0)
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; got=$?
    lines=$(wc -l < "$T/err")
    if [ "$got" != "$want" ]; then bad "$what: exit $got, wanted $want ($(head -c 300 "$T/err"))"; return; fi
    if [ "$want" = 1 ] && [ "$lines" != 1 ]; then bad "$what: $lines lines on stderr, wanted 1"; cat "$T/err"; return; fi
    if grep -q -i -E "AddressSanitizer|runtime error|Segmentation" "$T/err"; then bad "$what: sanitizer report"; cat "$T/err"; return; fi
    ok "$what"
}
M=/usr/share/libonnx-testdata/data/node/test_add_bcast/model.onnx
BERT=../shared/models/bert_bytes_cls/model.onnx

for tool in skiff-inspect skiff-convert; do
    expect 0 "$tool --help" $BIN/$tool --help
    expect 0 "$tool --version" $BIN/$tool --version
    grep -q "$tool 0" "$T/out" || bad "$tool --version prints its name and version"
    expect 2 "$tool with no argument is a usage error" $BIN/$tool
    expect 2 "$tool with an unknown option is a usage error" $BIN/$tool --frobnicate $M
done
expect 2 "skiff-convert without -o" $BIN/skiff-convert $M
expect 2 "skiff-convert --external-data with --inline" $BIN/skiff-convert $M -o "$T/x.onnx" --external-data w.bin --inline

expect 0 "inspect a node-test model" $BIN/skiff-inspect $M
expect 0 "inspect --json" $BIN/skiff-inspect --json $M
/usr/bin/python3 -c "
import json,sys
d=json.load(open('$T/out'))
for k in ('ir_version','opsets','inputs','outputs','ops','params','bytes'): assert k in d, k
assert d['ops'] == {'Add': 1}, d['ops']
" && ok "inspect --json has the documented keys" || bad "inspect --json keys"
if [ -f "$BERT" ]; then
    $BIN/skiff-inspect --json "$BERT" > "$T/bert.json"
    /usr/bin/python3 -c "
import json
d=json.load(open('$T/bert.json'))
assert d['params'] == 3325585, d['params']
assert d['ops']['MatMul'] == 32 and d['ops']['Constant'] == 144
assert [i['shape'] for i in d['inputs']] == [['batch','seq'],['batch','seq']]
" && ok "inspect --json on the BERT classifier: 3325585 params, symbolic dims" || bad "inspect BERT numbers"
else
    echo "skipped: BERT inspect (../shared/models is absent)"
fi

# bad input: one line, exit 1, no output file
printf 'not a model at all\n' > "$T/text.onnx"
head -c 1000 "$BERT" > "$T/trunc.onnx" 2>/dev/null || head -c 40 $M > "$T/trunc.onnx"
: > "$T/empty.onnx"
for f in text trunc empty; do
    expect 1 "inspect rejects $f.onnx" $BIN/skiff-inspect "$T/$f.onnx"
    grep -q "$f.onnx" "$T/err" || bad "the error names the file ($f.onnx)"
    expect 1 "convert rejects $f.onnx" $BIN/skiff-convert "$T/$f.onnx" -o "$T/out-$f.onnx"
    [ -e "$T/out-$f.onnx" ] && bad "convert left $T/out-$f.onnx behind"
done
expect 1 "a missing file" $BIN/skiff-inspect "$T/nope.onnx"
expect 1 "a folder" $BIN/skiff-inspect "$T"
expect 1 "convert into a missing folder" $BIN/skiff-convert $M -o "$T/no/such/out.onnx"
expect 1 "external data name with a path" $BIN/skiff-convert $M -o "$T/o.onnx" --external-data ../w.bin
[ -e "$T/o.onnx" ] && bad "convert left o.onnx behind"
ls -A "$T" | grep -q '^\.' && bad "temporary files left in $T" || ok "no temporary files left"

# determinism
expect 0 "convert twice" $BIN/skiff-convert $M -o "$T/d1.onnx" --external-data d1.bin --external-min 1
$BIN/skiff-convert $M -o "$T/d2.onnx" --external-data d1.bin --external-min 1 2>/dev/null
mkdir -p "$T/again"; $BIN/skiff-convert $M -o "$T/again/d1.onnx" --external-data d1.bin --external-min 1
cmp -s "$T/d1.onnx" "$T/again/d1.onnx" && cmp -s "$T/d1.bin" "$T/again/d1.bin" && ok "saving is deterministic" || bad "saving is not deterministic"
# sizes with suffixes
expect 0 "--external-min 1KiB" $BIN/skiff-convert $M -o "$T/k.onnx" --external-data k.bin --external-min 1KiB
expect 2 "--external-min nonsense" $BIN/skiff-convert $M -o "$T/k.onnx" --external-data k.bin --external-min 12XB
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
