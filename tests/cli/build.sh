#!/bin/sh
# skiff (the dispatcher) and skiff build (the pipeline) from the outside: the
# tool list, running a tool, recipes and flags, the quality gate (exit 3,
# nothing written), bad input (one line, exit 1 or 2, nothing written),
# reproducible packages, progress bars only on a terminal. Runs on the
# committed textkind model, so it needs nothing from ../shared.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/build
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION CMD...: exit code CODE; one line on stderr for 1 and 2
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" != "$want" ]; then bad "$what: exit $got, wanted $want ($(tail -c 300 "$T/err"))"; return 1; fi
    if grep -q -i -E "AddressSanitizer|LeakSanitizer|runtime error|Segmentation" "$T/err"; then bad "$what: sanitizer report"; cat "$T/err"; return 1; fi
    if [ "$want" = 1 ] || [ "$want" = 2 ]; then
        lines=$(grep -v -c '^$' "$T/err")
        if [ "$lines" != 1 ]; then bad "$what: $lines lines on stderr, wanted 1"; cat "$T/err"; return 1; fi
    fi
    ok "$what"
}
expect_fail() {
    code=$1; what=$2; words=$3; shift 3
    expect "$code" "$what" "$@" || return 1
    grep -q -F -- "$words" "$T/err" || { bad "$what: the error does not say '$words': $(cat "$T/err")"; return 1; }
}
nothing_left() { # DIR NAME: no NAME and no hidden leftovers in DIR
    if [ -e "$1/$2" ] || ls -A "$1" | grep -q "^\.$2\."; then bad "$3: something was left in $1: $(ls -A "$1" | tr '\n' ' ')"; else ok "$3: nothing written"; fi
}
json_get() { node -e "const j=JSON.parse(require('fs').readFileSync(0,'utf8')); const v=process.argv[1].split('.').reduce((o,k)=>o==null?o:o[k],j); console.log(typeof v==='object'?JSON.stringify(v):v)" "$1" 2>/dev/null; }

MODEL=examples/textkind/model.onnx
[ -x "$BIN/skiff" ] || { echo "FAIL: $BIN/skiff is not built"; echo "0 passed, 1 failed"; exit 1; }

# ---- the dispatcher ------------------------------------------------------
expect 0 "skiff alone lists the tools" "$BIN/skiff"
for t in build inspect quant prune pack verify keygen; do
    grep -q "^  $t " "$T/out" || bad "skiff's list lacks $t"
done
grep -q "not installed" "$T/out" && bad "skiff lists a tool as not installed: $(grep 'not installed' "$T/out")"
expect 0 "skiff --json lists the tools as JSON" "$BIN/skiff" --json
[ "$(json_get tools.0.name < "$T/out")" = build ] || bad "skiff --json: $(cat "$T/out")"
expect 0 "skiff pack --help runs skiff-pack" "$BIN/skiff" pack --help
head -1 "$T/out" | grep -q "^usage: skiff-pack" || bad "skiff pack --help printed: $(head -1 "$T/out")"
expect 0 "skiff inspect MODEL runs skiff-inspect" "$BIN/skiff" inspect "$MODEL"
expect_fail 2 "skiff with an unknown tool" "is not a skiff tool" "$BIN/skiff" nosuchtool
expect_fail 2 "skiff with a path as tool" "is not a skiff tool" "$BIN/skiff" ../../bin/sh
expect_fail 1 "skiff verify exit codes pass through" "nonexistent" "$BIN/skiff" verify "$T/nonexistent" -p "$T/nonexistent.pub"
expect 0 "skiff --version" "$BIN/skiff" --version
expect 0 "skiff build --help" "$BIN/skiff" build --help
for opt in --prune --quant --calib --eval --labels --max-accuracy-drop --min-cosine --secret-key --json; do
    grep -q -- "$opt" "$T/out" || bad "skiff build --help does not mention $opt"
done

# ---- samples -----------------------------------------------------------------
S=$T/samples
node examples/textkind/samples.mjs expand examples/textkind/samples.jsonl "$S" 2>/dev/null || bad "samples.mjs expand failed"
# a small calibration set keeps the sanitizer run short
mkdir -p "$T/calib2"; cp -r "$S/calib/sample_000" "$S/calib/sample_040" "$T/calib2/"
mkdir -p "$T/eval2"; cp -r "$S/eval/batch_000" "$S/eval/batch_005" "$T/eval2/"
mkdir -p "$T/eval1"; cp -r "$S/eval/batch_005" "$T/eval1/"
node -e "
const fs=require('fs'); const b=fs.readFileSync('$S/eval-labels.npy'); const h=b.readUInt16LE(8)+10;
const all=new BigInt64Array(b.buffer.slice(b.byteOffset+h, b.byteOffset+b.length));
const save=(name, pick) => {
  let head=\"{'descr': '<i8', 'fortran_order': False, 'shape': (\"+pick.length+\",), }\"; head+=' '.repeat(128-10-head.length-1)+'\\n';
  const pre=Buffer.from([0x93,0x4e,0x55,0x4d,0x50,0x59,1,0,head.length,0]);
  fs.writeFileSync('$T/'+name, Buffer.concat([pre, Buffer.from(head,'latin1'), Buffer.from(pick.buffer)]));
};
save('labels2.npy', BigInt64Array.from([...all.slice(0,32), ...all.slice(160,192)]));
save('labels1.npy', BigInt64Array.from(all.slice(160,192)));
save('labels10.npy', BigInt64Array.from(all.slice(0,10)));" || bad "labels subset"
"$BIN/skiff-keygen" --no-password -p "$T/k.pub" -s "$T/k.key" -q || bad "keygen"

# ---- flag form -----------------------------------------------------------------
expect 0 "build MODEL: int8, evaluated with labels, signed" \
    "$BIN/skiff" build "$MODEL" -o "$T/pkg" --quant int8 --eval "$T/eval1" --labels "$T/labels1.npy" \
    --max-accuracy-drop 1% --min-cosine 0.99 -s "$T/k.key" --json
[ "$(json_get status < "$T/out")" = ok ] || bad "--json status: $(cat "$T/out")"
[ "$(json_get eval.rows < "$T/out")" = 32 ] || bad "--json eval.rows: $(json_get eval < "$T/out")"
[ "$(json_get eval.labels < "$T/out")" = true ] || bad "--json eval.labels"
[ "$(json_get pack.signed < "$T/out")" = true ] || bad "--json pack.signed"
acc=$(json_get eval.accuracy_original < "$T/out")
node -e "process.exit(+process.argv[1] > 0.5 ? 0 : 1)" "$acc" && ok "original accuracy on the eval rows: $acc" || bad "original accuracy $acc"
expect 0 "skiff-verify accepts the built package" "$BIN/skiff-verify" "$T/pkg" -p "$T/k.pub" --name textkind
ls -A "$T" | grep -q '^\.pkg\.' && bad "hidden leftovers next to the package: $(ls -A "$T")"
expect_fail 1 "build into an existing folder without -f" "already exists" \
    "$BIN/skiff" build "$MODEL" -o "$T/pkg" --quant int8 --unsigned -q
expect 0 "build -f replaces the package" "$BIN/skiff" build "$MODEL" -o "$T/pkg" --quant int4 --unsigned -f -q
grep -q MatMulNBits "$T/pkg/model.onnx" && ok "the replacement is the int4 model" || bad "the package was not replaced"
ls -A "$T" | grep -q '^\.pkg\.' && bad "hidden leftovers after -f: $(ls -A "$T")"

# ---- the quality gate ------------------------------------------------------------
expect_fail 3 "a missed min_cosine exits 3" "below min_cosine" \
    "$BIN/skiff" build "$MODEL" -o "$T/gated" --prune 50% --prune-score activation --compensate bias \
    --calib "$T/calib2" --eval "$T/eval1" --quant int8 --min-cosine 0.9999 -s "$T/k.key"
nothing_left "$T" gated "gate failure"
# without labels the drop is bounded by 1 - top-1 agreement, which 50% pruning makes positive
expect_fail 3 "a missed max_accuracy_drop exits 3" "above max_accuracy_drop" \
    "$BIN/skiff" build "$MODEL" -o "$T/gated" --prune 50% --prune-score activation --compensate bias \
    --calib "$T/calib2" --eval "$T/eval1" --max-accuracy-drop 0 --json --unsigned
[ "$(json_get status < "$T/out")" = gate_failed ] || bad "--json status after a gate failure: $(cat "$T/out")"
nothing_left "$T" gated "accuracy gate failure"

# ---- recipes -------------------------------------------------------------------------
R=$T/repo
mkdir -p "$R"
cp "$MODEL" "$R/model.onnx"
cp -r "$T/calib2" "$R/calib"; cp -r "$T/eval1" "$R/eval"; cp "$T/labels1.npy" "$R/labels.npy"
cat > "$R/skiff.toml" <<'EOF'
# a recipe with every section
model = "model.onnx"
output = "dist/textkind"
name = "textkind"
version = 7

[prune]
heads = 2                  # a count
calib = "calib"
score = 'activation'
compensate = "bias"

[quant]
mode = "int8"
exclude = ["/classifier/*", "does-not-match"]

[eval]
samples = "eval"
labels = "labels.npy"
output = "logits"
max_accuracy_drop = "10%"
min_cosine = 0.9

[pack]
shard_size = "1MiB"
codec = "brotli"
level = 5

[sign]
key = "../k.key"
EOF
expect 0 "build RECIPE (paths relative to the recipe's folder)" "$BIN/skiff" build "$R/skiff.toml" --json
[ "$(json_get prune.heads_removed < "$T/out")" = 2 ] || bad "recipe: heads removed $(json_get prune < "$T/out")"
[ "$(json_get pack.version < "$T/out")" = 7 ] || bad "recipe: version $(json_get pack.version < "$T/out")"
[ "$(json_get pack.signed < "$T/out")" = true ] || bad "recipe: [sign] key not used"
[ "$(json_get pack.shards < "$T/out")" -ge 2 ] || bad "recipe: shard_size not used ($(json_get pack.shards < "$T/out") shards)"
expect 0 "the recipe's package verifies" "$BIN/skiff-verify" "$R/dist/textkind" -p "$T/k.pub" --name textkind
expect 0 "flags override the recipe" "$BIN/skiff" build "$R/skiff.toml" -f --version 8 --quant none -o "$T/over" --json --unsigned
[ "$(json_get pack.version < "$T/out")" = 8 ] || bad "override: version $(json_get pack.version < "$T/out")"
[ "$(json_get quant < "$T/out")" = undefined ] || bad "override: --quant none still quantized"
[ -f "$T/over/manifest.json" ] && [ ! -f "$T/over/manifest.json.sig" ] && ok "override: -o and --unsigned used" || bad "override: -o/--unsigned"

# reproducible: same inputs, key and SOURCE_DATE_EPOCH give the same bytes
SOURCE_DATE_EPOCH=1700000000 "$BIN/skiff" build "$R/skiff.toml" -o "$T/r1" -q 2>"$T/err" || bad "reproducible build 1: $(cat "$T/err")"
SOURCE_DATE_EPOCH=1700000000 "$BIN/skiff" build "$R/skiff.toml" -o "$T/r2" -q 2>"$T/err" || bad "reproducible build 2: $(cat "$T/err")"
if diff -r "$T/r1" "$T/r2" >/dev/null 2>&1; then ok "two builds give byte-identical packages"; else bad "builds differ: $(diff -r "$T/r1" "$T/r2" | head -3)"; fi

# ---- bad input: one line, nothing written ------------------------------------------------
bad_recipe() { # WHAT WORDS LINE...
    what=$1; words=$2; shift 2
    printf '%s\n' "$@" > "$R/bad.toml"
    expect_fail 1 "recipe: $what" "$words" "$BIN/skiff" build "$R/bad.toml" -o "$T/never" --unsigned
}
bad_recipe "unknown key" "unknown key 'quant.bits'" 'model = "model.onnx"' '[quant]' 'bits = 4'
bad_recipe "unknown section" "unknown section [train]" 'model = "model.onnx"' '[train]'
bad_recipe "a key set twice" "bad.toml:2: model is set twice" 'model = "model.onnx"' 'model = "other.onnx"'
bad_recipe "a section twice" "appears twice" '[quant]' 'mode = "int8"' '[quant]'
bad_recipe "a wrong type" "quant.mode must be a string" 'model = "model.onnx"' '[quant]' 'mode = 8'
bad_recipe "a bad mode" "quant.mode must be" 'model = "model.onnx"' '[quant]' 'mode = "int3"'
bad_recipe "an unclosed string" "bad.toml:1: a string is not closed" 'model = "model.onnx'
bad_recipe "text after a value" "unexpected text after the value" 'model = "model.onnx" extra'
bad_recipe "no '='" "expected '=' after 'model'" 'model "model.onnx"'
bad_recipe "heads 100%" "prune.heads must be" 'model = "model.onnx"' '[prune]' 'heads = "100%"'
bad_recipe "prune without heads" "[prune] needs heads" 'model = "model.onnx"' '[prune]' 'calib = "calib"'
bad_recipe "a bad escape" "unknown escape" 'model = "model\q.onnx"'
bad_recipe "a bad shard size" "pack.shard_size must be" 'model = "model.onnx"' '[pack]' 'shard_size = "4 parsecs"'
bad_recipe "a missing model file" "model.onnx" 'model = "nope/model.onnx"'
bad_recipe "a missing calibration folder" "nope" 'model = "model.onnx"' '[prune]' 'heads = 2' 'calib = "nope"'
printf 'model = "model.onnx"\n\0\n' > "$R/nul.toml"
expect_fail 1 "recipe: a NUL byte" "NUL" "$BIN/skiff" build "$R/nul.toml" -o "$T/never" --unsigned
head -c 2000000 /dev/zero | tr '\0' '#' > "$R/huge.toml"
expect_fail 1 "recipe: 2 MB" "not a recipe" "$BIN/skiff" build "$R/huge.toml" -o "$T/never" --unsigned
expect_fail 1 "recipe: missing file" "nope.toml" "$BIN/skiff" build "$R/nope.toml" -o "$T/never"
expect_fail 1 "labels that do not match the rows" "labels for" \
    "$BIN/skiff" build "$MODEL" -o "$T/never" --quant int8 --eval "$T/eval2" --labels "$T/labels10.npy" --unsigned
expect_fail 1 "more labels than rows" "labels for" \
    "$BIN/skiff" build "$MODEL" -o "$T/never" --quant int8 --eval "$T/eval1" --labels "$T/labels2.npy" --unsigned
printf 'not a key\n' > "$T/bad.key"
expect_fail 1 "a bad key file" "bad.key" "$BIN/skiff" build "$MODEL" -o "$T/never" --quant int8 -s "$T/bad.key"
expect_fail 1 "a key file given as the recipe" "k.pub:1:" "$BIN/skiff" build "$T/k.pub" -o "$T/never"
printf 'garbage' > "$T/garbage.onnx"
expect_fail 1 "a garbage .onnx" "garbage.onnx" "$BIN/skiff" build "$T/garbage.onnx" -o "$T/never" --unsigned
expect_fail 2 "no arguments" "no recipe or model" "$BIN/skiff" build
expect_fail 2 "an unknown option" "unknown option '--fast'" "$BIN/skiff" build "$MODEL" -o "$T/never" --fast
expect_fail 2 "a bad --prune" "--prune" "$BIN/skiff" build "$MODEL" -o "$T/never" --prune lots
expect_fail 2 "--prune 100%" "--prune" "$BIN/skiff" build "$MODEL" -o "$T/never" --prune 100%
expect_fail 2 "pruning without samples" "pruning needs calibration samples" "$BIN/skiff" build "$MODEL" -o "$T/never" --prune 25%
expect_fail 2 "a bad --quant" "--quant" "$BIN/skiff" build "$MODEL" -o "$T/never" --quant int3
expect_fail 2 "-s with --unsigned" "contradict" "$BIN/skiff" build "$MODEL" -o "$T/never" -s "$T/k.key" --unsigned
expect_fail 2 "no output folder" "no package folder" "$BIN/skiff" build "$MODEL"
expect_fail 1 "a threshold without samples" "need evaluation samples" \
    "$BIN/skiff" build "$MODEL" -o "$T/never" --quant int8 --min-cosine 0.9 --unsigned
nothing_left "$T" never "bad input"

# ---- unsigned packages warn; progress only on a terminal ------------------------------------
"$BIN/skiff" build "$MODEL" -o "$T/u" --quant int8 2>"$T/err" >/dev/null || bad "unsigned build: $(cat "$T/err")"
grep -q "warning: no signing key" "$T/err" && ok "an unsigned build warns" || bad "no warning for an unsigned build"
if grep -q "$(printf '\r')" "$T/err"; then bad "a progress bar was drawn into a pipe"; else ok "no progress bar when stderr is not a terminal"; fi
if command -v script >/dev/null 2>&1; then
    TERM=xterm script -qec "$BIN/skiff build $MODEL -o $T/tty --prune 2 --calib $T/calib2 --quant int8 --unsigned" /dev/null > "$T/tty.log" 2>&1
    if grep -q "scoring heads \[" "$T/tty.log" && grep -q "compressing \[" "$T/tty.log"; then
        ok "progress bars on a terminal (scoring, compressing)"
    else
        bad "no progress bar on a terminal: $(tr '\r' '\n' < "$T/tty.log" | head -5)"
    fi
else
    echo "skipped: progress on a terminal: no script(1)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
