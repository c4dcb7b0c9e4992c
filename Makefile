# The front door. `make dev` and `make test` install what they need on first use.
SHELL := /bin/bash
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
WRANGLER := npx --no-install wrangler

.PHONY: dev test tools wasm-target build db seed provision check native-test http-test browser-test script-test deploy-check deploy bench bench-smoke bench-writers profile peer fmt clean

tools:
	@bash scripts/tools.sh

wasm-target:
	@bash scripts/tools.sh target

build: tools
	@bash scripts/build.sh >/dev/null
	@for w in build build/back-office; do echo "build: $$w/index_bg.wasm $$(stat -c %s $$w/index_bg.wasm) bytes ($$(gzip -9c $$w/index_bg.wasm | wc -c) gzip)"; done

# Local D1 only (--local): this never touches a remote database. The
# fixtures go in through the provisioning API (`make dev`), not SQL.
db: tools
	@$(WRANGLER) d1 migrations apply DB --local >/dev/null
	@echo "db: migrations applied to the local D1 (.wrangler/state)"

# `make dev PROFILE=featureos` (or fsckmsft, fluxer, azure-devops) runs with
# that platform's lifetimes and prefixes from profiles/. Creates .dev.vars
# with a random PLATFORM_ADMIN_TOKEN if missing, serves, waits for /ready,
# provisions fixtures/platform.json through the API, and keeps serving.
dev: build db
	@node scripts/dev-vars.mjs
	@SIGNIN=$(SIGNIN) bash scripts/dev.sh $(PROFILE)

# Apply a platform document through the provisioning API (idempotent):
# `make provision FILE=platform.json [URL=https://auth.example.com] [DRY_RUN=1]`.
# The token: $$PLATFORM_ADMIN_TOKEN, else .dev.vars.
provision:
	@node scripts/provision.mjs $(if $(URL),--url $(URL)) $(if $(DRY_RUN),--dry-run) $(or $(FILE),fixtures/platform.json)

fmt:
	cargo fmt --all

check: wasm-target
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings

native-test:
	cargo test --all-targets

# --test-force-exit and the timeout: a stuck workerd must fail the run, not hang it.
NODE_TEST := node --test --test-concurrency=1 --test-force-exit --test-timeout=120000

# Three files at a time: each starts its own workerd (the two workers) with
# its own D1, and most of a file's time is spent waiting on it, so three share
# the 2 cores well (4 m 15 s for the suite against the pair, all passing).
# A file's timeout is 300 s here: make test runs this beside the browser
# tests and the bench smoke, and a slow machine must not fail a file that is
# only slow (a hung one still fails).
http-test: build
	$(subst --test-timeout=120000,--test-timeout=300000,$(subst --test-concurrency=1,--test-concurrency=3,$(NODE_TEST))) tests/http/

# The pages in a real headless Chromium (Debian's package, installed once).
browser-test: build
	@bash scripts/browser.sh
	$(NODE_TEST) tests/browser/

deploy-check: build
	@$(WRANGLER) deploy --dry-run --outdir build/dry-run >/dev/null && echo "deploy-check: wrangler deploy --dry-run ok (public worker)"
	@$(WRANGLER) deploy --dry-run --config build/back-office/wrangler.toml --outdir build/dry-run-back-office >/dev/null && echo "deploy-check: wrangler deploy --dry-run ok (back-office worker)"

# From an empty Cloudflare account to a running server (docs/operators.md "Run it for
# your platform"): ISSUER=https://auth.example.com make deploy
deploy: build
	node scripts/deploy.mjs

# The deploy script against a stand-in account (no network), deploy --dry-run.
# A file's own timeout is the guard here: deploy.test.mjs runs twenty real
# `wrangler deploy --dry-run`s, which on a busy 2-core machine (make test runs
# it beside the workerd suite) can pass 120 s.
script-test: build
	$(subst --test-timeout=120000,--test-timeout=360000,$(NODE_TEST)) tests/scripts/

# The benchmark peer (@cloudflare/workers-oauth-provider), bundled like wrangler would.
peer: tools
	@bash bench/peer/build.sh

# Side by side with the peer in workerd, plus the native core benchmark.
# Results: stdout and bench/results/ (git-ignored). BENCH_SECONDS, BENCH_ROUNDS,
# BENCH_CONCURRENCY and BENCH_CASES (comma list) tune it.
bench: build peer
	node bench/run.mjs
	cargo bench --bench core

# Every case once, briefly, so the benchmark cannot rot; no number is checked.
# (`cargo test --all-targets` already runs the native benchmark once, as a test.)
bench-smoke: build peer
	node bench/run.mjs --smoke >/dev/null
	@echo "bench-smoke: every benchmark case ran against both servers"

# Every anonymous writer hammered from one source for a bounded time (issue
# 15 §3): rows written per request, and a failure if any table still grows
# once the budget is spent. Not part of `make test`. BENCH_WRITER_SECONDS,
# BENCH_WRITER_MAX and BENCH_WRITER_TAIL tune it.
bench-writers: build
	node bench/writers.mjs

# Where the worker's CPU goes: `make profile CASE=metadata|bearer|bearer-cache|bearer-jwt|revoke`.
profile: tools peer
	@KEEP_NAMES=1 bash scripts/build.sh >/dev/null
	node bench/profile.mjs $(or $(CASE),metadata)
	@bash scripts/build.sh >/dev/null

# Every step below, side by side where they can be (scripts/test.sh says how).
test:
	@bash scripts/test.sh

clean:
	rm -rf build target .wrangler
