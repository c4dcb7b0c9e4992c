#!/usr/bin/env bash
# `make dev`: serve locally, then provision the fixtures (fixtures/platform.json)
# through the provisioning API once /ready answers, print the banner, and keep
# serving. `make dev PROFILE=featureos` passes that profile's vars;
# `make dev SIGNIN=delegated` signs in through a stand-in platform login page
# (scripts/stand-in-platform.mjs on :8788) instead of the password form.
set -euo pipefail
cd "$(dirname "$0")/.."
profile_args=()
if [ -n "${1:-}" ]; then
  read -r -a profile_args <<<"$(node scripts/profile-vars.mjs "$1")"
fi
signin_args=()
if [ "${SIGNIN:-password}" = delegated ]; then
  signin_args=(--var SIGNIN_MODE:delegated --var LOGIN_URL:http://127.0.0.1:8788/login)
fi
# Both workers in one session (the public one first: it owns the port and
# hands the back office's routes over its BACK_OFFICE binding), one local D1.
npx --no-install wrangler dev -c wrangler.toml -c build/back-office/wrangler.toml \
  --ip 127.0.0.1 --port 8787 --local --persist-to .wrangler/state --test-scheduled "${profile_args[@]}" "${signin_args[@]}" &
server=$!
platform=
trap 'kill "$server" $platform 2>/dev/null || true' EXIT INT TERM
if [ "${SIGNIN:-password}" = delegated ]; then
  PLATFORM_ADMIN_TOKEN= node scripts/stand-in-platform.mjs --server http://127.0.0.1:8787 --port 8788 &
  platform=$!
fi
# The token of .dev.vars, which is what wrangler dev loaded.
PLATFORM_ADMIN_TOKEN= node scripts/provision.mjs --wait --url http://127.0.0.1:8787 fixtures/platform.json
node scripts/dev-banner.mjs
wait "$server"
