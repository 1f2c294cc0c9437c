#!/bin/sh
# The browser runtime's tests: builds build/web (make wasm, size budget
# included), checks the wasm kernels in node (tests/web/kernels.c), builds
# the test packages (tests/web/make-packages.sh), then runs
# tests/web/browser.test.mjs and the demo's test in headless Chromium.
# Prints ok:/FAIL:/skipped: lines and ends with "N passed, M failed".
# SKIFF_WEB_EVAL=N limits the eval samples compared (default all 464).
set -u
B=${B:-build}
export B
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }
count() { # adds the "N passed, M failed" of a sub-run's output file $1
    grep -v '^[0-9]* passed, [0-9]* failed$' "$1"
    set -- $(tail -n 1 "$1" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    if [ $# = 2 ]; then pass=$((pass + $1)); fail=$((fail + $2)); else bad "no result line"; fi
}

for t in emcc node; do command -v $t >/dev/null || { bad "$t is not installed (make deps)"; finish; }; done
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { bad "chromium is not installed (make deps)"; finish; }
[ -d node_modules/playwright-core ] || { bad "playwright-core is not installed (make deps)"; finish; }

if out=$(make -s --no-print-directory B="$B" wasm 2>&1); then
    ok "make wasm"
else
    bad "make wasm: $(echo "$out" | tail -n 5)"; finish
fi
if out=$(lib/web/size.sh "$B/web" 2>&1); then ok "$out"; else bad "$out"; fi

# The wasm kernels against the reference ones in node (tests/web/kernels.c),
# compiled with the flags make wasm uses for them.
kt=$B/web-test/kernels
mkdir -p "$kt"
flags=$(MAKEFLAGS= make -s --no-print-directory -f Makefile -f - B="$B" print-web-flags <<'MK'
print-web-flags: ; @echo $(WEB_FAST_OPT) $(filter-out -W% -DSK_VERSION=%,$(WEB_CFLAGS))
MK
)
kobjs=""
for f in tests/web/kernels.c lib/sk_gemm.c lib/sk_qgemm.c lib/sk_error.c; do
    o=$kt/$(basename "$f" .c).o
    emcc $flags -Wall -Wextra -c "$f" -o "$o" 2>"$kt/cc.log" || { bad "kernel test: emcc $f: $(head -n 3 "$kt/cc.log")"; o=""; }
    kobjs="$kobjs $o"
done
if emcc -O0 $kobjs -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH=1 -o "$kt/kernels.js" 2>"$kt/cc.log"; then
    node --no-experimental-fetch "$kt/kernels.js" > "$kt/out.log" 2>&1
    st=$?
    while IFS= read -r line; do
        case $line in ok:*) ok "${line#ok: }";; FAIL:*) bad "${line#FAIL: }";; *) echo "$line";; esac
    done < "$kt/out.log"
    grep -q '^FAIL' "$kt/out.log" || [ "$st" = 0 ] || bad "kernel test exited with $st"
else
    bad "kernel test: link: $(head -n 3 "$kt/cc.log")"
fi

if [ ! -f ../shared/models/bert_bytes_cls/model.onnx ]; then
    echo "skipped: browser tests with the BERT classifier (../shared/models is absent)"
    finish
fi
if ! out=$(tests/web/make-packages.sh "$B/web-test" "$B" 2>&1); then
    bad "make-packages.sh: $out"; finish
fi
echo "packages made with $(cat "$B/web-test/packer")"

log=$B/web-test/browser.log
node tests/web/browser.test.mjs "$B/web-test" ${SKIFF_WEB_EVAL:+--eval $SKIFF_WEB_EVAL} > "$log" 2>&1
count "$log"

if [ -f examples/textkind/test.mjs ]; then
    log=$B/web-test/demo.log
    if make -s --no-print-directory B="$B" DEMO_SERVE=0 demo > "$log" 2>&1; then
        node examples/textkind/test.mjs "$B" > "$log" 2>&1
        count "$log"
    else
        bad "make demo DEMO_SERVE=0: $(tail -n 5 "$log")"
    fi
fi
finish
