#!/bin/sh
# no-asan (the Makefile example, not memory safety: skiff build itself is tested under ASan by its own tests)
# examples/Makefile.model-repo in a throw-away model repository: the text-kind
# classifier (examples/textkind/model.onnx), a recipe, calibration and
# evaluation samples cut from this repository's own files (C from lib/, data
# from package.json, prose from docs/, Python from tests/oracle/), a key pair
# whose secret half lives outside the repository. Runs
#   make -f examples/Makefile.model-repo package verify publish SKIFF=$B/bin/skiff
# in it and checks what it made, then the failure paths: a missed quality
# threshold, a tampered package, a republished version with other bytes.
# Run from the repository root with B=build.
set -u
B=${B:-build}
ROOT=$(pwd)
SKIFF=$ROOT/$B/bin/skiff
MK=$ROOT/examples/Makefile.model-repo
PY=/usr/bin/python3
T=$ROOT/$B/test-tmp/examples
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
skip_all() { echo "skipped: examples/Makefile.model-repo ($*)"; echo "0 passed, 0 failed"; exit 0; }

[ -x "$SKIFF" ] || skip_all "$B/bin/skiff is not built yet"
[ -f examples/textkind/model.onnx ] || skip_all "examples/textkind/model.onnx is missing"
command -v make >/dev/null 2>&1 || skip_all "make is not installed"
$PY -c 'import numpy' 2>/dev/null || skip_all "$PY has no numpy (make deps)"

rm -rf "$T"; mkdir -p "$T/repo" "$T/secret"
R=$T/repo
cp examples/textkind/model.onnx "$R/model.onnx"

# Samples: 128-byte snippets of this repository's files, raw bytes as ids
# (mask 1 for real bytes, 0 for padding), one folder per sample, and the labels
# (0 C, 1 data/config, 2 prose, 3 Python) in folder order.
$PY - "$ROOT" "$R" <<'PY' || { bad "generating the samples"; echo "$pass passed, $fail failed"; exit 1; }
import glob, os, sys
import numpy as np
root, repo = sys.argv[1], sys.argv[2]
kinds = [
    (0, sorted(glob.glob(os.path.join(root, 'lib/*.c')))),
    (1, [os.path.join(root, 'package.json'), os.path.join(root, 'package-lock.json')]),
    (2, sorted(glob.glob(os.path.join(root, 'docs/*.md')))),
    (3, sorted(glob.glob(os.path.join(root, 'tests/oracle/*.py')))),
]
def snippets(files, skip, n):
    got = []
    for f in files:
        data = open(f, 'rb').read()
        for off in range(skip * 128, max(len(data) - 128, 1), 1024):
            chunk = data[off:off + 128]
            if len(chunk.strip()) >= 64:
                got.append(chunk)
    step = max(len(got) // n, 1)
    return got[::step][:n]
def write(folder, per, skip):
    labels, i = [], 0
    for cls, files in kinds:
        for s in snippets(files, skip, per):
            d = os.path.join(folder, '%04d' % i)
            os.makedirs(d)
            ids = np.zeros((1, 128), np.int64)
            mask = np.zeros((1, 128), np.int64)
            b = np.frombuffer(s, np.uint8)
            ids[0, :len(b)] = b
            mask[0, :len(b)] = 1
            np.save(os.path.join(d, 'input_ids.npy'), ids)
            np.save(os.path.join(d, 'attention_mask.npy'), mask)
            labels.append(cls)
            i += 1
    if len(set(labels)) != 4:
        sys.exit('not every class got samples')
    np.save(os.path.join(folder, 'labels.npy'), np.array(labels, np.int64))
write(os.path.join(repo, 'calib'), 4, 0)
write(os.path.join(repo, 'eval'), 8, 3)
PY

cat > "$R/skiff.toml" <<'EOF'
# skiff.toml: how this repository's model becomes a package
model = "model.onnx"
output = "dist/textkind"
name = "textkind"

[quant]
mode = "int8"

[eval]
samples = "eval"
labels = "eval/labels.npy"
output = "logits"
max_accuracy_drop = 0.05
min_cosine = 0.99
EOF
"$ROOT/$B/bin/skiff-keygen" -W -p "$R/skiff.pub" -s "$T/secret/skiff.key" -q >/dev/null 2>&1 \
    && ok "a key pair: the public half in the repository, the secret half outside" || bad "skiff-keygen"

# mk TARGETS... [VAR=VALUE...]: make in the repository, output in $T/out
mk() { (cd "$R" && make -f "$MK" SKIFF="$SKIFF" KEY="$T/secret/skiff.key" PKG=dist/textkind "$@") >"$T/out" 2>&1; }
show() { sed 's/^/    | /' "$T/out" | tail -n 15; }

if mk package verify publish; then ok "make package verify publish"; else bad "make package verify publish: exit $?"; show; fi
"$ROOT/$B/bin/skiff-verify" "$R/dist/textkind" -p "$R/skiff.pub" --name textkind -q \
    && ok "dist/textkind verifies with the committed public key" || bad "dist/textkind does not verify"
version=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['version'])" "$R/dist/textkind/manifest.json" 2>/dev/null)
pub=$R/public/models/textkind/$version
if [ -n "$version" ] && [ -d "$pub" ] && diff -r "$R/dist/textkind" "$pub" >/dev/null; then
    ok "published to public/models/textkind/$version/, identical to the package"
else
    bad "public/models/textkind/$version is missing or differs: $(ls -R "$R/public" 2>&1 | head -5)"
fi
"$ROOT/$B/bin/skiff-verify" "$pub" -p "$R/skiff.pub" -q && ok "the published copy verifies" || bad "the published copy does not verify"
ls -A "$R/public/models/textkind" | grep -q '^\.' && bad "a temporary folder was left in public/" || ok "no temporary folder left in public/"
$PY - "$R/build-report.json" "$R/dist/textkind/manifest.json" <<'PY' && ok "build-report.json: int8, evaluated with labels, gate passed, signed" || bad "build-report.json: $(head -c 300 "$R/build-report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
assert r['status'] == 'ok', r
assert r['eval']['labels'] is True and r['eval']['samples'] == 32, r['eval']
assert r['eval']['accuracy_drop'] <= 0.05 and r['eval']['cosine_mean'] >= 0.99, r['eval']
assert r['pack']['signed'] is True and r['pack']['version'] == m['version'], r['pack']
assert sum(f['size'] for f in m['files']) < 6_000_000, 'an int8 package of a 13 MB model should be under 6 MB'
PY
grep -q '"path": "shard-00000.bin.br"' "$R/dist/textkind/manifest.json" && ok "shards are Brotli-compressed" || bad "no .br shard"

# Nothing changed: make has nothing to rebuild.
before=$(stat -c %Y "$R/dist/textkind/manifest.json")
mk package && [ "$(stat -c %Y "$R/dist/textkind/manifest.json")" = "$before" ] \
    && ok "make package again: up to date, nothing rebuilt" || { bad "make package rebuilt an up-to-date package"; show; }
mk publish && grep -q "already published" "$T/out" && ok "make publish again: already published" || { bad "make publish again"; show; }

# A missed threshold: make fails, skiff build says which, the old package stays.
touch "$R/skiff.toml"
cp -R "$R/dist/textkind" "$T/before"
if mk package SKIFF_FLAGS="--min-cosine 0.9999999"; then bad "make package with an impossible --min-cosine succeeded"; show
else
    grep -q "below min_cosine" "$T/out" && ok "a missed min_cosine fails make package, naming the threshold" || { bad "gate message"; show; }
fi
diff -r "$T/before" "$R/dist/textkind" >/dev/null && ok "the previous package is untouched" || bad "a failed build changed dist/textkind"
ls -A "$R/dist" | grep -q '^\.' && bad "a failed build left a hidden folder in dist/" || ok "no hidden folder left in dist/"

# A tampered package: verify and publish refuse it.
touch -d '1 hour ago' "$R/skiff.toml"    # up to date again, so make does not rebuild it
$PY -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" \
    "$R/dist/textkind/shard-00000.bin.br"
if mk verify; then bad "make verify accepted a tampered shard"; else
    grep -q "shard-00000.bin.br" "$T/out" && ok "make verify refuses a tampered shard, naming it" || { bad "make verify message"; show; }
fi
mk publish && bad "make publish published a tampered package" || ok "make publish refuses it too"

# Another key's package: make verify refuses it.
"$ROOT/$B/bin/skiff-keygen" -W -p "$T/other.pub" -s "$T/other.key" -q >/dev/null 2>&1
mk package KEY="$T/other.key" SKIFF_FLAGS=-q -B >/dev/null 2>&1
mk verify && bad "make verify accepted a package signed with another key" || ok "make verify refuses a package signed with another key"

# A published version never changes: other bytes under the same version fail.
mk package SKIFF_FLAGS="--version $version --level 5" -B
if mk publish; then bad "publish replaced version $version with other bytes"; show
else
    grep -q "other content" "$T/out" && ok "publishing other bytes as version $version is refused" || { bad "republish message"; show; }
fi
diff -r "$T/before" "$pub" >/dev/null && ok "the published version is unchanged" || bad "public/models/textkind/$version changed"

mk clean && [ ! -e "$R/dist/textkind" ] && [ ! -e "$R/build-report.json" ] && [ -d "$pub" ] \
    && ok "make clean removes the package and the report, keeps public/" || { bad "make clean"; show; }

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
