#!/usr/bin/env bash
# Release build of both workers into build/ with local tools only: worker-build
# would otherwise download wasm-bindgen, esbuild and wasm-opt from GitHub.
#   build/               the public worker (cargo feature `public`)
#   build/back-office/   the back-office worker (cargo feature `back-office`),
#                        with its wrangler config made from wrangler.toml
set -euo pipefail
cd "$(dirname "$0")/.."
# Nothing changed since the last build of both: keep it (make test's targets
# each depend on `build`, and worker-build re-runs wasm-bindgen and wasm-opt).
stamp=build/.built
if [ -z "${KEEP_NAMES:-}" ] && [ -e "$stamp" ] && [ -e build/back-office/index_bg.wasm ] &&
  [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh -newer "$stamp" -print -quit)" ]; then
  node scripts/back-office-config.mjs
  exit 0
fi
rm -f "$stamp"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/@esbuild/linux-x64/bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/binaryen/bin/wasm-opt}"
# Both workers at once, each into its own directory (worker-build empties its
# output directory, and build/back-office/ is inside build/). They share one
# target directory: the second cargo waits for the first's lock, so the
# dependencies compile once, then compiles its own feature set while the
# first runs wasm-bindgen and wasm-opt.
back_out=target/worker-back-office
rm -rf "$back_out"
mkdir -p target
worker-build --release --out-dir build --no-default-features --features public >target/build-public.log 2>&1 &
public=$!
worker-build --release --out-dir "$back_out" --no-default-features --features back-office >target/build-back-office.log 2>&1 &
back=$!
status=0
wait $public || { status=1; echo "build: the public worker failed:" >&2; cat target/build-public.log >&2; }
wait $back || { status=1; echo "build: the back-office worker failed:" >&2; cat target/build-back-office.log >&2; }
[ $status = 0 ] || exit 1
# The public worker's entry answers discovery documents from a per-isolate
# copy before wasm (src/worker/entry.mjs); the generated one becomes inner.mjs.
mv build/index.js build/inner.mjs
cp src/worker/entry.mjs build/index.js
rm -rf build/back-office
mv "$back_out" build/back-office
# worker-build keeps the name section (function names for stack traces);
# dropping it saves ~170 KB of the upload and of every cold start.
# KEEP_NAMES=1 keeps them for `make profile`.
if [ -z "${KEEP_NAMES:-}" ]; then
  for w in build build/back-office; do
    "$WASM_OPT_BIN" --strip-debug --strip-producers "$w/index_bg.wasm" -o "$w/index_bg.wasm"
  done
fi
node scripts/back-office-config.mjs
# A names-kept build (make profile) is not the release: the next build redoes it.
if [ -z "${KEEP_NAMES:-}" ]; then
  touch "$stamp"
fi
