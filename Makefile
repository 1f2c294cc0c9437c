# skiff: one non-recursive Makefile. Sources are found by wildcard, so adding a
# file to a module needs no edit here.
#   make            CLIs in build/bin, libskiff in build/lib
#   make test       build and run every test (unit, CLI, oracle)
#   make asan       the whole test suite under ASan+UBSan (build-asan/)
#   make deps       install what the build and tests need (idempotent)
#   make install PREFIX=/usr/local

VERSION   := 0.1.0
PREFIX    ?= /usr/local
B         ?= build
CC        ?= cc
OPT       ?= -O2
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Wformat=2
ifeq ($(CI),true)
WARN      += -Werror
endif
PKGS      := libprotobuf-c libbrotlienc libbrotlidec libzstd libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS    ?= $(OPT) -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -fPIC $(WARN) -I. -Ilib -Iproto -Iquant -Ishard -Isign -Ipipeline -I$(B)/gen $(PKG_CFLAGS) \
             -DSK_VERSION='"$(VERSION)"' $(SANFLAGS)
LDLIBS    += $(PKG_LIBS) -lm -lpthread

ONNX_PROTO ?= /usr/include/onnx/onnx.proto

GEN_C     := $(B)/gen/onnx.pb-c.c
GEN_H     := $(B)/gen/onnx.pb-c.h
LIB_SRC   := $(wildcard lib/*.c proto/*.c quant/*.c shard/*.c sign/*.c pipeline/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/onnx.pb-c.o
CMD_SRC   := $(wildcard cmd/*.c)
CMDS      := $(CMD_SRC:cmd/%.c=$(B)/bin/%)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TESTS     := $(TEST_SRC:tests/unit/%.c=$(B)/tests/%)
TEST_UTIL := $(wildcard tests/unit/util_*.c)
TEST_UOBJ := $(TEST_UTIL:%.c=$(B)/obj/%.o)
LIBA      := $(B)/lib/libskiff.a

.PHONY: all test check asan deps install clean bench
all: $(CMDS) $(LIBA)

$(GEN_C) $(GEN_H): $(ONNX_PROTO)
	@mkdir -p $(B)/gen
	cp $(ONNX_PROTO) $(B)/gen/onnx.proto
	cd $(B)/gen && protoc-c --c_out=. onnx.proto

$(B)/obj/gen/onnx.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(WARN),$(CFLAGS)) -w -c $< -o $@

$(B)/obj/%.o: %.c $(GEN_H) $(wildcard lib/*.h proto/*.h quant/*.h shard/*.h sign/*.h pipeline/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(B)/bin/%: $(B)/obj/cmd/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIBA) $(LDLIBS) -o $@

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(TEST_UOBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(TEST_UOBJ) $(LIBA) $(LDLIBS) -lcmocka -o $@

# The test command of the README: installs what is missing, then unit tests
# (cmocka), CLI tests and ONNX Runtime oracle tests, then the unit and CLI
# tests again under ASan+UBSan. `make check` is the first half alone.
test: deps
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory asan

check: all $(TESTS)
	@B=$(B) tests/run-all.sh

asan:
	$(MAKE) B=build-asan OPT=-O1 SANFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' \
	  LDFLAGS='-fsanitize=address,undefined' all $(patsubst $(B)/%,build-asan/%,$(TESTS))
	@B=build-asan SK_ASAN=1 tests/run-all.sh

deps:
	@scripts/deps.sh

bench: all
	@bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/skiff $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(CMDS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(filter-out %_internal.h,$(wildcard lib/*.h proto/*.h quant/*.h shard/*.h sign/*.h pipeline/*.h)) $(GEN_H) $(DESTDIR)$(PREFIX)/include/skiff/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@PKGS@|$(PKGS)|' skiff.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/skiff.pc
	-install -m 644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build build-asan

# keep objects of the CLIs and tests (make would delete them as intermediates)
.SECONDARY:

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang into build-fuzz/.
# `make fuzz` runs each for FUZZ_TIME seconds from a seed corpus (ONNX's node
# test models and tests/fuzz/corpus-<name>/ when present).
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TIME ?= 60
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
fuzz-build:
	$(MAKE) --no-print-directory B=build-fuzz CC=clang OPT=-O1 SANFLAGS='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' build-fuzz/lib/libskiff.a
	@mkdir -p build-fuzz/fuzz
	for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -Ilib -Iproto -Iquant -Ishard -Isign -Ibuild-fuzz/gen -fsanitize=fuzzer $(FUZZ_SAN) \
	    $$f build-fuzz/lib/libskiff.a $(PKG_LIBS) -lm -lpthread -o build-fuzz/fuzz/$$n || exit 1; done
fuzz: fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh
.PHONY: fuzz fuzz-build

# The browser runtime (WebAssembly build, `make wasm`) and the demo
# (`make demo`) keep their rules beside their sources.
-include lib/web/wasm.mk
-include examples/textkind/demo.mk
