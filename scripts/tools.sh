#!/usr/bin/env bash
# Installs what the build needs, once; later runs only check. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock exactly.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "tools: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
# `tools.sh target`: only that (make check needs no more, so make test can
# lint while the rest installs).
[ "${1:-}" = target ] && exit 0
if [ "$(worker-build --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  echo "tools: installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
  echo "tools: installing wasm-bindgen-cli $BINDGEN_VERSION (a few minutes, once)"
  # --locked fails for this crate; the exact version pin is what matters.
  cargo install wasm-bindgen-cli --version "=$BINDGEN_VERSION" --force
fi
# npm ci only when the lockfile changed since the last install. A node_modules
# that is a link to another checkout's packages (a git worktree sharing them)
# is never reinstalled from here: `npm ci` empties the directory first, under
# every checkout that shares it. A fresh worktree's lockfile is newer by
# checkout time alone.
if [ -L node_modules ]; then
  [ package-lock.json -nt node_modules/.package-lock.json ] &&
    echo "tools: node_modules is a link to $(readlink node_modules); run npm ci there if package-lock.json changed" || true
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "tools: npm ci"
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
fi
# The Python relying party (Authlib) of the OpenID Connect journeys, in its own
# venv; reinstalled only when tests/rp/requirements.txt changed since.
RP_VENV=.venv-rp
if [ ! -f "$RP_VENV/.installed" ] || [ tests/rp/requirements.txt -nt "$RP_VENV/.installed" ]; then
  echo "tools: Python venv $RP_VENV (Authlib, tests/rp/requirements.txt)"
  rm -rf "$RP_VENV"
  python3 -m venv "$RP_VENV"
  "$RP_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary=:all: -r tests/rp/requirements.txt
  touch "$RP_VENV/.installed"
fi
