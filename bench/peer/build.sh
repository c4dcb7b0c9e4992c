#!/usr/bin/env bash
# Bundle the benchmark peer Worker with esbuild -> bench/peer/build/index.js
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ESBUILD="${ESBUILD:-$ROOT/node_modules/.bin/esbuild}"
mkdir -p "$HERE/build"
"$ESBUILD" "$HERE/index.js" \
  --bundle \
  --format=esm \
  --platform=neutral \
  --main-fields=module,main \
  --target=es2022 \
  --external:cloudflare:workers \
  '--external:node:*' \
  --minify \
  --legal-comments=none \
  --log-level=warning \
  --outfile="$HERE/build/index.js"
raw=$(wc -c <"$HERE/build/index.js")
gz=$(gzip -9 -c "$HERE/build/index.js" | wc -c)
echo "bench/peer/build/index.js: ${raw} bytes raw, ${gz} bytes gzip -9"
