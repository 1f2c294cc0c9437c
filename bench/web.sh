#!/bin/sh
# The browser benchmark: bench/web/index.html in headless Chromium loads the
# int8 and int4 packages of the BERT classifier in skiff's runtime and, from
# the same verified bytes, in onnxruntime-web (wasm backend, one thread); it
# reports both latencies (batch 1, seq 128, median of RUNS interleaved runs),
# their ratio, and the time to first result on a cold and on a warm cache.
# Writes $B/bench/web.json and $B/bench/web.png. RUNS=30 by default.
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
node bench/web/run.mjs "$B/web-test" "$(cat "$B/web-test/pubkey")" --runs "$RUNS" --pkg "${PKGS:-int8,int4}" \
    --web "$B/web" --json "$B/bench/web.json" --screenshot "$B/bench/web.png"
