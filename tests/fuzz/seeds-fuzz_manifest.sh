#!/bin/sh
# Seeds for fuzz_manifest: the manifests of the packages the tests made.
ls build/test-tmp/pack/*/manifest.json build/test-tmp/pack-ort/*/pkg/manifest.json 2>/dev/null
