#!/usr/bin/env bash
# Release build of the worker into build/ with local tools only: worker-build
# would otherwise download wasm-bindgen, esbuild and wasm-opt from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/@esbuild/linux-x64/bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/binaryen/bin/wasm-opt}"
worker-build --release
# worker-build keeps the name section (function names for stack traces);
# dropping it saves ~170 KB of the upload and of every cold start.
# KEEP_NAMES=1 keeps them for `make profile`.
if [ -z "${KEEP_NAMES:-}" ]; then
  "$WASM_OPT_BIN" --strip-debug --strip-producers build/index_bg.wasm -o build/index_bg.wasm
fi
