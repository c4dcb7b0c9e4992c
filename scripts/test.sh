#!/usr/bin/env bash
# `make test`: every step of the suite, side by side where they do not share
# a build directory, so a 2-core machine stays busy through the single-core
# parts (the release build's LTO and wasm-opt, links, waits on workerd).
#   1. check, then native-test      (target/debug)
#   2. tools, then build            (target/…/release, build/), alongside 1
#   3. http-test                    after 2, alongside 1 and 4
#   4. browser-test, script-test, deploy-check, bench-smoke, one after another, after 2
# Each step's output goes to target/test-logs/STEP.log and is printed whole
# when the step ends; the first failure fails the run (the others finish).
set -uo pipefail
cd "$(dirname "$0")/.."
logs=target/test-logs
mkdir -p "$logs"
rm -f "$logs"/*.log

step() {
  local name=$1 log="$logs/$1.log" t0=$SECONDS rc
  make --no-print-directory "$name" >"$log" 2>&1
  rc=$?
  {
    flock 9
    if [ $rc = 0 ]; then echo "=== $name: ok ($((SECONDS - t0)) s)"; else echo "=== $name: FAILED ($((SECONDS - t0)) s)"; fi
    cat "$log"
    echo "=== end of $name"
  } 9>"$logs/.print"
  return $rc
}

start=$SECONDS
bash scripts/tools.sh target || exit 1
# Lint and native tests need no more than the wasm target: they start while
# the rest installs (cargo install of worker-build and wasm-bindgen-cli on a
# fresh machine, npm ci).
(step check && step native-test) &
native=$!
if ! { step tools && step build; }; then
  wait $native
  exit 1
fi
step http-test &
http=$!
(step browser-test; a=$?; step script-test; b=$?; step deploy-check; c=$?; step bench-smoke; d=$?
  [ $a = 0 ] && [ $b = 0 ] && [ $c = 0 ] && [ $d = 0 ]) &
rest=$!
status=0
wait $native || status=1
wait $http || status=1
wait $rest || status=1
echo "=== make test: $([ $status = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s (logs in $logs/)"
exit $status
