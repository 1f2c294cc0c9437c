#!/bin/sh
# Kernel microbenchmark (bench/web/kernels.c), natively and as WebAssembly in
# node (V8, the engine of Chromium), with the flags `make wasm` uses for the
# kernels. usage: bench/web/kernels.sh [M]   (rows: batch x seq, default 128)
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
M=${1:-128}
T=$B/bench/kernels
mkdir -p "$T"
FLAST=$(MAKEFLAGS= make -s --no-print-directory -f Makefile -f - B="$B" print-web-fast <<'MK'
print-web-fast: ; @echo $(WEB_FAST_OPT)
MK
)
INLINE=$(MAKEFLAGS= make -s --no-print-directory -f Makefile -f - B="$B" print-web-inline <<'MK'
print-web-inline: ; @echo $(WEB_INLINE)
MK
)
SRC="lib/sk_gemm.c lib/sk_qgemm.c lib/sk_error.c"
cc -O2 -std=c11 -D_GNU_SOURCE -Ilib bench/web/kernels.c $SRC -lpthread -lm -o "$T/kernels"
rm -f "$T"/*.o
for f in bench/web/kernels.c $SRC; do
    inl=""; case " $INLINE " in *" $f "*) inl=-finline-functions;; esac
    emcc $FLAST $inl -msimd128 -std=c11 -D_GNU_SOURCE -DNDEBUG -Ilib -w -c "$f" -o "$T/$(basename "$f" .c).o"
done
emcc -O0 "$T"/*.o -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH=1 -o "$T/kernels.js"
echo "== native (cc -O2, one thread)"
"$T/kernels" "$M"
echo "== wasm SIMD128 in node $(node --version) ($FLAST)"
node --no-experimental-fetch "$T/kernels.js" "$M"
