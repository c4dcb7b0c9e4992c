// Our worker as `make bench` runs it: the public worker alone, or, once the
// build has a back office (build/back-office/), the pair from one crate (the
// public worker first, the entry, bound to the back office as BACK_OFFICE),
// sharing one D1 database, one KV namespace and the same vars.
import { existsSync } from "node:fs";
import { startServer, testSigningKeys, wranglerFlags, wranglerVars } from "../tests/http/support.mjs";

const root = new URL("../", import.meta.url);
const path = (p) => new URL(p, root).pathname;

export const PUBLIC = { js: "build/index.js", wasm: "build/index_bg.wasm" };
export const BACK_OFFICE = { js: "build/back-office/index.js", wasm: "build/back-office/index_bg.wasm" };

/** Whether this build has the back-office worker beside the public one. */
export const hasBackOffice = () => existsSync(path(BACK_OFFICE.js));

/**
 * Miniflare `workers` entries of ours: the public worker "oauth" (first, so
 * it is the entry), and the back office "back-office" when built, with the
 * same D1 database, KV namespace and `bindings`.
 */
export function ourWorkers({ bindings, db, kv }) {
  const common = {
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-20",
    compatibilityFlags: wranglerFlags(),
    d1Databases: { DB: db },
    kvNamespaces: { BEARER_KV: kv },
    bindings,
  };
  if (!hasBackOffice()) return [{ name: "oauth", scriptPath: path(PUBLIC.js), ...common }];
  return [
    { name: "oauth", scriptPath: path(PUBLIC.js), serviceBindings: { BACK_OFFICE: "back-office" }, ...common },
    { name: "back-office", scriptPath: path(BACK_OFFICE.js), ...common },
  ];
}

/** The vars our worker starts with in `make bench`: wrangler.toml's [vars], a signing key set, then `vars`. */
export const ourBindings = (vars = {}, kid = "bench") => ({ ...wranglerVars(), JWT_SIGNING_KEYS: testSigningKeys(kid), ...vars });

/** Whether a Miniflare instance has a worker of that name (no proxy started). */
async function runsWorker(mf, name) {
  try {
    await mf.unsafeGetDirectURL(name);
    return true;
  } catch (e) {
    // Any other complaint (no direct socket configured) means it exists.
    return !/worker not found/.test(String(e?.message));
  }
}

// The test suites' SQL endpoint, for the one case below where the bench runs
// the pair itself: the same protocol as tests/http/support.mjs's.
const SQL_WORKER = `
export default {
  async fetch(req, env) {
    const { sql, params = [], mode = "run", kv } = await req.json();
    try {
      if (kv === "list") return Response.json({ ok: true, out: (await env.BEARER_KV.list()).keys.map((k) => k.name) });
      if (kv === "get") return Response.json({ ok: true, out: await env.BEARER_KV.get(params[0]) });
      if (kv === "delete") return Response.json({ ok: true, out: await env.BEARER_KV.delete(params[0]) });
      const stmt = env.DB.prepare(sql).bind(...params);
      const out = mode === "first" ? await stmt.first() : mode === "all" ? await stmt.all() : await stmt.run();
      return Response.json({ ok: true, out });
    } catch (e) {
      return Response.json({ ok: false, error: String(e) });
    }
  },
};`;

/**
 * Our server for the timed cases: the test suites' `startServer` (fresh D1,
 * migrations, fixtures). If the build has a back office that `startServer`
 * does not run yet, it is started again with the pair given here, so the
 * bench always measures what would be deployed. `server.pair` says which ran.
 */
export async function startOurs(vars = {}) {
  const server = await startServer(vars);
  if (!hasBackOffice() || (await runsWorker(server.mf, "back-office"))) return Object.assign(server, { pair: hasBackOffice() });
  await server.close();
  const db = "oauth-test-db";
  const kv = "bearer-kv";
  const pair = await startServer(vars, {
    workers: [
      ...ourWorkers({ bindings: ourBindings(vars), db, kv }),
      {
        name: "sql",
        modules: true,
        script: SQL_WORKER,
        compatibilityDate: "2026-04-20",
        d1Databases: { DB: db },
        kvNamespaces: { BEARER_KV: kv },
        routes: ["sql.test/*"],
      },
    ],
  });
  return Object.assign(pair, { pair: true });
}
