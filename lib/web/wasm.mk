# The browser runtime: `make wasm` builds build/web/, the folder a web page
# serves: skiff.wasm (engine, model loader, protobuf-c runtime, Brotli decoder,
# lib/web/sk_wasm.c), and the JS of lib/web/ next to it (skiff.mjs,
# skiff-worker.mjs, skiff.d.ts).
#
# Compiler: Debian's emscripten (emcc), wasm32 with SIMD128. What is not
# skiff's own code comes from Debian source packages at build time (never
# committed): protobuf-c's runtime and Brotli's decoder, fetched with
# `apt-get source --download-only` into build/web/src/ (scripts/deps.sh adds
# the deb-src entry). Included by the root Makefile.

# binaryen's optimizer (an emscripten dependency), run once more to a fixed
# point after emcc's link: 2 KB smaller.
WASM_OPT   ?= wasm-opt
WASM_FEATURES := --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
                 --enable-nontrapping-float-to-int
web_comma  := ,
web_space  := $(eval) $(eval)
WEB        := $(B)/web
WEB_SRC    := $(WEB)/src
WEB_OBJ    := $(WEB)/obj
EMCC       ?= emcc
# Size is the budget (400 KiB for wasm + JS): everything is built for size,
# the kernels where inference spends its time with loop and SLP
# vectorization on top (-O3 there costs 35 KB more for no gain we could
# measure on the 2-core machines).
WEB_OPT    ?= -Oz
WEB_FAST_OPT ?= -Os -fvectorize -fslp-vectorize
WEB_FAST   ?= lib/sk_gemm.c lib/sk_qgemm.c lib/sk_ops_quant.c lib/sk_ops_elementwise.c
# Files built with -finline-functions on top (emcc's -Os/-Oz imply
# -fno-inline-functions): the quantization of activations, whose vector
# helpers (qv_min, quantize4) were calls per vector: 14% of the int8 model's
# time in V8 before, 2.3 of its 17.6 ms CPU saved, for 2.5 KB. (sk_qgemm.c
# has its own wasm int8 path, written inline; elementwise would cost 17 KB.)
WEB_INLINE ?= lib/sk_ops_quant.c
# SK_FUSE_VIEWS: Reshape/Squeeze/Unsqueeze/Flatten as views of their input
# (lib/sk_fuse.c leaves them out of wasm by default): 2 KB for 0.6 ms of the
# int8 classifier's 17.6 (no copy, and no zeroing of a fresh output).
WEB_CFLAGS := -msimd128 -std=c11 -D_GNU_SOURCE -DNDEBUG -DSK_VERSION='"$(VERSION)"' -DSK_FUSE_VIEWS=1 \
              -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Wno-unused-command-line-argument \
              -Ilib -Iproto -I$(B)/gen -isystem $(WEB_SRC)/protobuf-c -isystem $(WEB_SRC)/brotli/c/include

# What of lib/ and proto/ the browser needs: everything but the CLI plumbing,
# files, saving and editing (dropped at link time anyway when unused; these
# also use Linux-only calls).
WEB_LIB_SRC := $(filter-out lib/sk_cli.c lib/sk_atomic.c proto/sk_save.c proto/sk_fp16.c proto/sk_stats.c, \
                 $(wildcard lib/*.c proto/*.c)) lib/web/sk_wasm.c
WEB_OBJS    := $(WEB_LIB_SRC:%.c=$(WEB_OBJ)/%.o) $(WEB_OBJ)/gen/onnx.pb-c.o $(WEB_OBJ)/ext/protobuf-c.o
BROTLI_DEC  := bit_reader decode huffman state
BROTLI_COM  := constants context dictionary platform transform
WEB_OBJS    += $(BROTLI_DEC:%=$(WEB_OBJ)/ext/brotli-dec-%.o) $(BROTLI_COM:%=$(WEB_OBJ)/ext/brotli-common-%.o) \
               $(WEB_OBJ)/ext/brotli-dict-br.o
WEB_JS      := $(wildcard lib/web/*.mjs lib/web/*.d.ts)
WEB_EXPORTS := skw_error_msg skw_dict_init skw_alloc skw_free skw_brotli_decode skw_model_create skw_model_attach \
               skw_model_ready skw_input_count skw_input_name skw_input_info skw_output_count skw_output_name \
               skw_input_alloc skw_input_nbytes skw_inputs_clear skw_run skw_output_info skw_output_data \
               skw_output_nbytes skw_model_external skw_model_free skw_profile
# emmalloc, 8 KB smaller than dlmalloc (emcc's default); it once made the
# int8 model 40% slower, when its kernels packed B into fresh scratch at every
# call. Now weights are packed once: same speed, and the heap stays at 21 MiB
# over 200 runs of the int8 classifier as with dlmalloc.
WEB_LDFLAGS := -sSTANDALONE_WASM=1 --no-entry -sMALLOC=emmalloc -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=16777216 \
               -sMAXIMUM_MEMORY=4294967296 -sFILESYSTEM=0 -sERROR_ON_UNDEFINED_SYMBOLS=1 \
               -sEXPORTED_FUNCTIONS=$(subst $(web_space),$(web_comma),$(strip $(WEB_EXPORTS:%=_%)))

.PHONY: wasm wasm-src
# The size budget is reported here and enforced by the tests
# (tests/web/run.sh), so that a runtime over budget still builds.
wasm: $(WEB)/skiff.wasm $(WEB_JS:lib/web/%=$(WEB)/%)
	@lib/web/size.sh $(WEB) || echo "make wasm: the runtime is over its size budget" >&2

# Third-party sources: Debian's protobuf-c and brotli source packages.
$(WEB_SRC)/.stamp:
	@command -v $(EMCC) >/dev/null || { echo "make wasm: emcc not found (apt-get install emscripten, or make deps)" >&2; exit 1; }
	@rm -rf $(WEB_SRC) && mkdir -p $(WEB_SRC)/dl
	@cd $(WEB_SRC)/dl && apt-get source --download-only protobuf-c brotli >/dev/null 2>&1 || { \
	  echo "make wasm: 'apt-get source protobuf-c brotli' failed: run make deps (it enables Debian's deb-src)" >&2; exit 1; }
	@mkdir -p $(WEB_SRC)/protobuf-c $(WEB_SRC)/brotli
	@tar -xzf $(WEB_SRC)/dl/protobuf-c_*.orig.tar.gz -C $(WEB_SRC)/protobuf-c --strip-components=1
	@tar -xzf $(WEB_SRC)/dl/brotli_*.orig.tar.gz -C $(WEB_SRC)/brotli --strip-components=1
	@touch $@
wasm-src: $(WEB_SRC)/.stamp

$(WEB_OBJ)/%.o: %.c $(GEN_H) $(WEB_SRC)/.stamp $(wildcard lib/*.h proto/*.h) lib/web/wasm.mk
	@mkdir -p $(dir $@)
	$(EMCC) $(if $(filter $<,$(WEB_FAST)),$(WEB_FAST_OPT),$(WEB_OPT)) $(if $(filter $<,$(WEB_INLINE)),-finline-functions) \
	  $(WEB_CFLAGS) -c $< -o $@

# protobuf-c's generated descriptors, with every string literal emptied: the
# names of messages, fields and enum values serve only lookups by name and
# text output, which the runtime never does (unpacking goes by field number);
# 2.4 KB.
$(WEB_OBJ)/gen/onnx.pb-c.o: $(GEN_C) $(WEB_SRC)/.stamp lib/web/wasm.mk
	@mkdir -p $(dir $@)
	sed -e '/^#include/!s/"[^"]*"/""/g' $< > $(WEB_OBJ)/gen/onnx-web.pb-c.c
	$(EMCC) $(WEB_OPT) $(filter-out -W%,$(WEB_CFLAGS)) -w -c $(WEB_OBJ)/gen/onnx-web.pb-c.c -o $@

$(WEB_OBJ)/ext/protobuf-c.o: $(WEB_SRC)/.stamp
	@mkdir -p $(dir $@)
	$(EMCC) $(WEB_OPT) $(filter-out -W%,$(WEB_CFLAGS)) -w -c $(WEB_SRC)/protobuf-c/protobuf-c/protobuf-c.c -o $@

$(WEB_OBJ)/ext/brotli-dec-%.o: $(WEB_SRC)/.stamp
	@mkdir -p $(dir $@)
	$(EMCC) $(WEB_OPT) $(filter-out -W%,$(WEB_CFLAGS)) -w -c $(WEB_SRC)/brotli/c/dec/$*.c -o $@

$(WEB_OBJ)/ext/brotli-common-%.o: $(WEB_SRC)/.stamp
	@mkdir -p $(dir $@)
	$(EMCC) $(WEB_OPT) $(filter-out -W%,$(WEB_CFLAGS)) -DBROTLI_EXTERNAL_DICTIONARY_DATA -w -c $(WEB_SRC)/brotli/c/common/$*.c -o $@

# Brotli's static dictionary, Brotli-compressed into the wasm's data (51.7 KB
# instead of 123 KB, 58.9 with gzip -9): brotli-dict dumps it from Debian's
# source, brotli-dict-pack compresses it so that it decodes without itself
# (checked there) and skw_dict_init decodes it at start-up.
$(WEB_OBJ)/ext/brotli-dict-br.c: lib/web/brotli-dict.c lib/web/brotli-dict-pack.c $(WEB_SRC)/.stamp
	@mkdir -p $(dir $@)
	cc -O1 -I$(WEB_SRC)/brotli/c/include -I$(WEB_SRC)/brotli/c/common lib/web/brotli-dict.c \
	  $(WEB_SRC)/brotli/c/common/dictionary.c -o $(WEB_OBJ)/ext/brotli-dict
	cc -O2 -w -DBROTLI_EXTERNAL_DICTIONARY_DATA -I$(WEB_SRC)/brotli/c/include lib/web/brotli-dict-pack.c \
	  $(wildcard $(WEB_SRC)/brotli/c/enc/*.c $(WEB_SRC)/brotli/c/dec/*.c $(WEB_SRC)/brotli/c/common/*.c) -lm \
	  -o $(WEB_OBJ)/ext/brotli-dict-pack
	$(WEB_OBJ)/ext/brotli-dict | $(WEB_OBJ)/ext/brotli-dict-pack > $(WEB_OBJ)/ext/brotli-dict.br
	{ echo '/* generated by lib/web/wasm.mk: Brotli'"'"'s static dictionary, Brotli-compressed */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const unsigned char skw_dict_br_data[] = {'; \
	  od -An -v -tu1 $(WEB_OBJ)/ext/brotli-dict.br | awk '{ for (i = 1; i <= NF; i++) printf "%s,", $$i; print "" }'; \
	  echo '};'; \
	  echo "const size_t skw_dict_br_size = sizeof skw_dict_br_data;"; } > $@.tmp && mv $@.tmp $@

$(WEB_OBJ)/ext/brotli-dict-br.o: $(WEB_OBJ)/ext/brotli-dict-br.c
	$(EMCC) $(WEB_OPT) $(filter-out -W%,$(WEB_CFLAGS)) -w -c $< -o $@

$(WEB)/skiff.wasm: $(WEB_OBJS) lib/web/wasm.mk
	$(EMCC) $(WEB_OPT) -msimd128 $(WEB_LDFLAGS) $(WEB_OBJS) -o $(WEB)/skiff.tmp.wasm && \
	  $(WASM_OPT) -Oz --converge $(WASM_FEATURES) $(WEB)/skiff.tmp.wasm -o $(WEB)/skiff.tmp.wasm && \
	  mv $(WEB)/skiff.tmp.wasm $@ || { rm -f $(WEB)/skiff.tmp.wasm; exit 1; }

# The JS is minified with npm's terser (make deps installs it; the readable
# source is lib/web/), or, without it, copied without comment lines and
# indentation; skiff.d.ts as is.
TERSER ?= node_modules/.bin/terser
$(WEB)/%.mjs: lib/web/%.mjs
	@mkdir -p $(dir $@)
	@if [ -x $(TERSER) ]; then echo "terser $< > $@"; \
	  $(TERSER) $< --module --ecma 2022 --compress --mangle -o $@.tmp; \
	else echo "strip $< > $@ (no terser: make deps)"; \
	  sed -e '/^[[:space:]]*\/\//d' -e '/^[[:space:]]*\/\*\*.*\*\/[[:space:]]*$$/d' -e 's/^[[:space:]]*//' -e '/^$$/d' $< > $@.tmp; \
	fi && mv $@.tmp $@

$(WEB)/%.d.ts: lib/web/%.d.ts
	@mkdir -p $(dir $@)
	cp $< $@
