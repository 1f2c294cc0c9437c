#!/bin/sh
# Packages on a DistilBERT-sized model (66M parameters), int8 and int4 (from
# skiff-quant): skiff-pack's throughput and stored size per codec and level,
# next to plain `brotli -q 11` and `zstd -19` of the whole model file in the
# same run; then the shard-size sweep behind the 4 MiB default
# (docs/format.md section 8), and verify/unpack speed.
# Targets: stored size within 1% of `brotli -q 11` of the whole file; packing
# the 67 MB int8 model under 30 s on a 2-core machine.
# The `brotli -q 11` references take minutes (about 10 for int8, 5 for int4 here).
#   BENCH_QUICK=1   skip the brotli -q 11 references (compare with -q 9)
#   BENCH_SLOW=1    also pack with Brotli 10 and 11 (minutes each)
#   BENCH_MODELS="int8 int4"  which models (default both)
#   BENCH_SWEEP=0   skip the shard-size sweep
#   BASE=DIR        also pack with DIR/skiff-pack's defaults (another build), in the same run
set -eu
B=${B:-build}
BIN=$B/bin
W=$B/bench/pack
SRC=../shared/models/distilbert_base_graph
D=$B/bench/distilbert
if [ ! -f "$SRC/model.onnx" ] && [ ! -f "$D/model.onnx" ]; then echo "skipped: pack bench ($SRC is absent)"; exit 0; fi
for t in brotli zstd; do command -v $t >/dev/null || { echo "skipped: pack bench ($t is not installed: make deps)"; exit 0; }; done
if [ ! -f "$D/model.onnx" ]; then
    mkdir -p "$D/ext"
    cp "$SRC/model.onnx" "$SRC/weights.json" "$D/ext/"
    /usr/bin/python3 ../shared/tools/fill_weights.py "$D/ext" >/dev/null
    "$BIN/skiff-convert" "$D/ext/model.onnx" -o "$D/model.onnx" --inline -q
fi
mkdir -p "$W"
[ -f "$W/int8.onnx" ] || "$BIN/skiff-quant" "$D/model.onnx" -o "$W/int8.onnx" --mode dynamic -q
[ -f "$W/int4.onnx" ] || "$BIN/skiff-quant" "$D/model.onnx" -o "$W/int4.onnx" --mode int4 -q
. bench/lib.sh
QUICK=${BENCH_QUICK:-}
cores=$(nproc)
export SOURCE_DATE_EPOCH=1700000000

# seconds of one run of a command (its output discarded)
once() { RUNS=1 measure "$@"; echo "$T_MEDIAN"; }
pkg_size() { du -cb "$1"/* | tail -n 1 | cut -f1; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.2f%%", (a / b - 1) * 100}'; }

MODELS=${BENCH_MODELS:-int8 int4}
for q in $MODELS; do
    M=$W/$q.onnx
    size=$(wc -c < "$M")
    echo "model: $q, $M, $(fmt_mb "$size") MB, $cores cores"
    # the references: the whole file, one stream, single-threaded as the tools are
    if [ -z "$QUICK" ]; then
        t=$(once sh -c "brotli -q 11 -c '$M' > '$W/ref.br'"); br11=$(wc -c < "$W/ref.br")
        echo "  brotli -q 11 (whole file)   $br11 B  $(fmt_mb "$br11") MB  ratio $(ratio "$br11" "$size")  $(fmt_s "$t") s"
    fi
    t=$(once sh -c "brotli -q 9 -c '$M' > '$W/ref.br'"); br9=$(wc -c < "$W/ref.br")
    echo "  brotli -q 9  (whole file)   $br9 B  $(fmt_mb "$br9") MB  ratio $(ratio "$br9" "$size")  $(fmt_s "$t") s"
    t=$(once sh -c "zstd -q -19 -c '$M' > '$W/ref.zst'"); z19=$(wc -c < "$W/ref.zst")
    echo "  zstd -19     (whole file)   $z19 B  $(fmt_mb "$z19") MB  ratio $(ratio "$z19" "$size")  $(fmt_s "$t") s"
    rm -f "$W/ref.br" "$W/ref.zst"
    ref=${br11:-$br9}; refname=$([ -n "$QUICK" ] && echo "brotli -q 9" || echo "brotli -q 11")
    # codec:level[:float level]; "default" is skiff-pack without options
    # (Brotli 9, float tensors at 10); an explicit --level applies to every tensor
    levels="default brotli:1 brotli:5 brotli:9 brotli:5:10 zstd:3 zstd:9 zstd:19 none:0"
    [ -n "${BENCH_SLOW:-}" ] && levels="$levels brotli:9:11 brotli:10 brotli:11"
    [ -n "${BASE:-}" ] && levels="base $levels"
    for cl in $levels; do
        c=${cl%%:*}; rest=${cl#*:}; l=${rest%%:*}; fl=${rest#*:}; [ "$fl" = "$rest" ] && fl=""
        args="--codec $c --level $l"
        [ "$c" = none ] && args="--codec none"
        [ -n "$fl" ] && args="$args --float-level $fl"
        [ "$c" = default ] || [ "$c" = base ] && args=""
        runs=$([ "$c" = default ] || [ "$c" = base ] && echo 3 || echo 1)
        RUNS=$runs measure "$([ "$c" = base ] && echo "$BASE" || echo "$BIN")/skiff-pack" "$M" -o "$W/p" $args -f -q
        st=$(pkg_size "$W/p")
        note=""
        [ "$runs" = 3 ] && note="  (median of 3, peak $(fmt_mb "$T_RSS") MB)"
        case $c in default) label="default 9/10" ;; base) label="BASE default" ;; none) label=none ;; *) label="$c $l${fl:+/$fl}" ;; esac
        printf '  skiff-pack %-12s  %10s B  %s MB  ratio %s  %s vs %s  %s s = %s MB/s%s\n' "$label" "$st" \
            "$(fmt_mb "$st")" "$(ratio "$st" "$size")" "$(pct "$st" "$ref")" "$refname" "$(fmt_s "$T_MEDIAN")" "$(fmt_rate "$size" "$T_MEDIAN")" "$note"
    done
    "$BIN/skiff-pack" "$M" -o "$W/p" -f -q
    measure "$BIN/skiff-verify" "$W/p" --unsigned -q
    echo "  skiff-verify (hashes, decode, raw hashes)  $(fmt_s "$T_MEDIAN") s = $(fmt_rate "$size" "$T_MEDIAN") MB/s"
    rm -rf "$W/u"
    t=$(once "$BIN/skiff-unpack" "$W/p" -o "$W/u" -q)
    echo "  skiff-unpack                               $(fmt_s "$t") s = $(fmt_rate "$size" "$t") MB/s"
    rm -rf "$W/u"
done

# shard size: stored size and pack time (the default codec and level)
[ "${BENCH_SWEEP:-1}" = 0 ] && exit 0
echo "shard size sweep (defaults): stored bytes, vs 4MiB, shards (oversized), pack s"
for q in $MODELS; do
    "$BIN/skiff-pack" "$W/$q.onnx" -o "$W/p" -f -q
    base=$(pkg_size "$W/p")
    for s in 1MiB 2MiB 4MiB 8MiB 16MiB 32MiB; do
        RUNS=1 measure "$BIN/skiff-pack" "$W/$q.onnx" -o "$W/p" --shard-size $s -f -q
        "$BIN/skiff-pack" "$W/$q.onnx" -o "$W/p" --shard-size $s -f -q --json > "$W/p.json"
        n=$(/usr/bin/python3 -c "import json; d=json.load(open('$W/p.json')); print(d['shards'], '(%d)' % d['oversized_shards'])")
        st=$(pkg_size "$W/p")
        printf '  %s %-6s  %s  %s  %-8s  %s s\n' "$q" "$s" "$st" "$(pct "$st" "$base")" "$n" "$(fmt_s "$T_MEDIAN")"
    done
done
rm -rf "$W/p" "$W/p.json"
