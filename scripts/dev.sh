#!/usr/bin/env bash
# `make dev`: serve locally, then provision the fixtures (fixtures/platform.json)
# through the provisioning API once /ready answers, print the banner, and keep
# serving. `make dev PROFILE=featureos` passes that profile's vars.
set -euo pipefail
cd "$(dirname "$0")/.."
profile_args=()
if [ -n "${1:-}" ]; then
  read -r -a profile_args <<<"$(node scripts/profile-vars.mjs "$1")"
fi
npx --no-install wrangler dev --ip 127.0.0.1 --port 8787 --local --test-scheduled "${profile_args[@]}" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT INT TERM
# The token of .dev.vars, which is what wrangler dev loaded.
PLATFORM_ADMIN_TOKEN= node scripts/provision.mjs --wait --url http://127.0.0.1:8787 fixtures/platform.json
node scripts/dev-banner.mjs
wait "$server"
