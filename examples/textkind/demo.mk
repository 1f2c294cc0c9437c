# The demo (examples/textkind/): `make demo` builds the runtime (make wasm)
# and the int8 package of the text-kind classifier, then serves the page on
# http://127.0.0.1:$(DEMO_PORT)/ until interrupted. DEMO_SERVE=0 builds only.
# Included by the root Makefile.
DEMO       := $(B)/demo
DEMO_MODEL ?= $(firstword $(wildcard examples/textkind/model.onnx ../shared/models/bert_bytes_cls/model.onnx) \
                ../shared/models/bert_bytes_cls/model.onnx)
DEMO_SERVE ?= 1
DEMO_PORT  ?= 8080

.PHONY: demo
demo: deps wasm $(B)/bin/skiff-quant $(B)/bin/skiff-pack $(B)/bin/skiff-keygen
	@examples/textkind/build.sh $(DEMO_MODEL) $(DEMO) $(B)
ifneq ($(DEMO_SERVE),0)
	@echo "demo: open http://127.0.0.1:$(DEMO_PORT)/ (Ctrl-C stops)"
	@node tests/web/server.mjs /web/=$(B)/web /model/=$(DEMO)/pkg /config/=$(DEMO) /=examples/textkind --port $(DEMO_PORT)
endif
