#!/bin/sh
# make bench: every benchmark, each against its reference in the same run.
# Speed targets are ratios, read from this output (these machines are shared
# and noisy; no test asserts a time).
set -u
cd "$(dirname "$0")/.."
status=0
for b in bench/model-io.sh bench/engine.sh bench/quant.sh bench/prune.sh bench/pack.sh bench/web.sh; do
    [ -f "$b" ] || continue
    echo "== $b"
    sh "$b" || status=1
done
exit $status
