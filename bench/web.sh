#!/bin/sh
# The browser benchmark: bench/web/index.html in headless Chromium loads the
# int8, int4 and fp32 packages of the BERT classifier in skiff's runtime and, from
# the same verified bytes, in onnxruntime-web (wasm backend, one thread); it
# reports both latencies (batch 1, seq 128, median of RUNS interleaved runs),
# their ratio, and the time to first result on a cold and on a warm cache.
# Writes $B/bench/web.json and $B/bench/web.png. RUNS=30 by default.
# Then bench/web/cpu.mjs: the same models' CPU time per run in Node's V8,
# skiff.wasm against onnxruntime-web's wasm, which stays steady when the
# machine is loaded and the wall-clock medians are not (ROUNDS=3).
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
RUNS=${RUNS:-30}
if [ ! -f ../shared/models/bert_bytes_cls/model.onnx ]; then
    echo "skipped: browser benchmark (../shared/models is absent)"; exit 0
fi
make -s --no-print-directory B="$B" all wasm >/dev/null
tests/web/make-packages.sh "$B/web-test" "$B" >/dev/null
mkdir -p "$B/bench"
echo "runtime: $(lib/web/size.sh "$B/web")"
echo "packages: $(cat "$B/web-test/packer")"
node bench/web/run.mjs "$B/web-test" "$(cat "$B/web-test/pubkey")" --runs "$RUNS" --pkg "${PKGS:-int8,int4,fp32}" \
    --web "$B/web" --json "$B/bench/web.json" --screenshot "$B/bench/web.png"
echo
node bench/web/cpu.mjs "$B/web/skiff.wasm" "$B/web-test/q/int8.onnx" "$B/web-test/q/int4.onnx" \
    ../shared/models/bert_bytes_cls/model.onnx --rounds "${ROUNDS:-3}" --runs "$RUNS"
