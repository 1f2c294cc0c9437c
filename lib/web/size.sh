#!/bin/sh
# Prints the size of the browser runtime in DIR (skiff.wasm and the JS a page
# loads, uncompressed, and with Brotli when the brotli tool is there) and fails
# if it exceeds the budget of 400 KB (409600 bytes).
set -e
dir=${1:-build/web}
budget=409600
total=0; brtotal=0
for f in skiff.wasm skiff.mjs skiff-worker.mjs; do
    [ -f "$dir/$f" ] || { echo "size: $dir/$f is missing" >&2; exit 1; }
    n=$(wc -c < "$dir/$f")
    total=$((total + n))
    if command -v brotli >/dev/null; then
        b=$(brotli -c -q 11 "$dir/$f" | wc -c); brtotal=$((brtotal + b))
    fi
done
echo "runtime size: $total bytes (wasm + JS, uncompressed), $brtotal with brotli; budget $budget"
[ "$total" -le "$budget" ] || { echo "size: over budget" >&2; exit 1; }
