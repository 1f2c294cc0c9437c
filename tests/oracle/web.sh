#!/bin/sh
# no-asan (the browser runtime is WebAssembly in Chromium; nothing native to sanitize)
# The browser runtime in headless Chromium: tests/web/run.sh.
exec tests/web/run.sh
