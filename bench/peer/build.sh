#!/usr/bin/env bash
# Bundle the peer the way wrangler would (esbuild, ESM, minified).
set -euo pipefail
cd "$(dirname "$0")/../.."
node_modules/.bin/esbuild bench/peer/index.js --bundle --format=esm --platform=neutral \
  --main-fields=module,main --external:cloudflare:workers --external:node:* --minify \
  --outfile=bench/peer/build/index.js --log-level=warning
