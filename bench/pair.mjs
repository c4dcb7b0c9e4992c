// Our worker as `make bench` runs it: the pair from one crate as deployed (the
// public worker first, the entry, bound to the back office as BACK_OFFICE),
// sharing one D1 database, one KV namespace and the same vars
// (tests/http/support.mjs `workerPair`).
import { existsSync } from "node:fs";
import { startServer, testSigningKeys, workerPair } from "../tests/http/support.mjs";

const root = new URL("../", import.meta.url);
const path = (p) => new URL(p, root).pathname;

// The public worker: its entry (src/worker/entry.mjs), the generated glue, the wasm.
export const PUBLIC = { js: "build/index.js", glue: "build/inner.mjs", wasm: "build/index_bg.wasm" };
export const BACK_OFFICE = { js: "build/back-office/index.js", wasm: "build/back-office/index_bg.wasm" };

/** Whether this build has the back-office worker beside the public one. */
export const hasBackOffice = () => existsSync(path(BACK_OFFICE.js));

/** Miniflare `workers` entries of ours: the public worker "oauth" first, then the back office. */
export function ourWorkers({ bindings, db, kv }) {
  return workerPair({ vars: bindings, d1: db, kv });
}

/** The vars our worker starts with in `make bench`: a signing key set, then `vars` (over wrangler.toml's [vars]). */
export const ourBindings = (vars = {}, kid = "bench") => ({ JWT_SIGNING_KEYS: testSigningKeys(kid), ...vars });

/** Our server for the timed cases: the test suites' `startServer` (fresh D1, migrations, fixtures, the pair). */
export async function startOurs(vars = {}) {
  return Object.assign(await startServer(vars), { pair: true });
}
