#!/bin/sh
# Runs every fuzz target in build-fuzz/fuzz/ for FUZZ_TIME seconds. Seeds:
# tests/fuzz/seeds-<target>.sh prints seed file paths if present, else the
# ONNX node-test models for fuzz_model.
set -u
T=${FUZZ_TIME:-60}
status=0
for f in build-fuzz/fuzz/fuzz_*; do
    n=$(basename "$f")
    c=build-fuzz/corpus/$n
    mkdir -p "$c"
    if [ -f "tests/fuzz/seeds-$n.sh" ]; then
        sh "tests/fuzz/seeds-$n.sh" | while read -r s; do cp "$s" "$c/$(echo "$s" | md5sum | cut -c1-16)" 2>/dev/null; done
    elif [ "$n" = fuzz_model ] && [ -d /usr/share/libonnx-testdata/data/node ]; then
        for d in /usr/share/libonnx-testdata/data/node/*/; do cp "$d/model.onnx" "$c/$(basename "$d").onnx"; done
    fi
    echo "== $n for ${T}s"
    "$f" -artifact_prefix=build-fuzz/ -max_total_time="$T" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$c" 2>&1 | tail -n 12 || status=1
done
exit $status
