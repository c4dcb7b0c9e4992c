// Two workers from one crate (issue 18): the public worker answers the
// protocol and hands the back office's routes (/admin/v1/, the management API,
// the settings pages) to the back-office worker over its BACK_OFFICE service
// binding; the back office clears the public isolate's bearer cache after a
// revoking act; each refuses the other's routes when reached directly; the cron
// is the back office's; and the public wasm carries no back-office code.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { Miniflare } from "miniflare";
import { startServer, workerPair, sqlStatements, Browser, tokensFor, bearer, registerApp, api, DEV_API_KEY, testSigningKeys } from "./support.mjs";

const ADMIN = "two-workers-admin-token-0123456789abcdefghijklm";
let server;

before(async () => {
  server = await startServer({ PLATFORM_ADMIN_TOKEN: ADMIN, BEARER_CACHE_TTL_SECONDS: "60" });
});
after(async () => {
  await server?.close();
});

/** One worker of the pair alone, on a fresh D1 with the migrations. */
async function alone(worker) {
  const mf = new Miniflare({ workers: [worker], host: "127.0.0.1", port: 0 });
  await mf.ready;
  const db = await mf.getD1Database("DB");
  const dir = new URL("../../migrations/", import.meta.url);
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    for (const stmt of sqlStatements(readFileSync(new URL(f, dir), "utf8"))) await db.prepare(stmt).run();
  }
  return mf;
}

const lines = (s) =>
  s.log.lines.map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);

test("back-office routes answer at the public URL, forwarded; the public log line says so and the back office logs its own", async () => {
  const before = lines(server).length;
  const admin = await api(server, "GET", "/admin/v1/clients", undefined, ADMIN);
  assert.equal(admin.status, 200);
  const apps = await api(server, "GET", "/api/v1/apps");
  assert.equal(apps.status, 200);
  assert.equal(apps.headers.get("cache-control"), "no-store");
  assert.equal(apps.headers.get("access-control-allow-origin"), "*", "CORS of /api/ survives the hop");
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  const page = await alice.fetch("/settings/developer");
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Developer → OAuth apps/);
  const fresh = lines(server).slice(before);
  const forwarded = fresh.filter((l) => l.forwarded === "back-office").map((l) => l.route);
  assert.deepEqual(forwarded, ["admin", "apps_list", "page_developer"]);
  // The back office's own lines, with its storage count: one per forwarded request.
  for (const route of forwarded) assert.ok(fresh.some((l) => l.route === route && l.forwarded === undefined && typeof l.d1 === "number"), route);
  // Public routes are answered by the public worker itself.
  assert.ok(fresh.some((l) => l.route === "signin" && l.forwarded === undefined));
});

test("a revoking act in the back office clears the public isolate's bearer cache; the internal header never reaches the caller", async () => {
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  const app = await registerApp(server, { scopes: ["profile:read"] });
  const t = await tokensFor(server, alice, app, { scope: "profile:read" });
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200); // cached now (60 s)
  const del = await api(server, "DELETE", `/api/v1/apps/${encodeURIComponent(app.client_id)}`);
  assert.ok(del.status === 200 || del.status === 204, `delete: ${del.status}`);
  assert.equal(del.headers.get("x-edge-oauth-revoked"), null);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401, "not the cached verdict");
});

test("the cron is the back office's; a scheduled event at the public worker (make dev's /__scheduled) runs it there", async () => {
  const count = () => lines(server).filter((l) => l.route === "scheduled").length;
  const n = count();
  await server.scheduled();
  assert.equal(count(), n + 1);
  assert.ok(lines(server).filter((l) => l.route === "scheduled").at(-1).swept);
  const pub = await server.mf.getWorker("oauth");
  assert.equal((await pub.scheduled({ cron: "* * * * *" })).outcome, "ok");
  assert.equal(count(), n + 2, "the back office ran it");
});

test("without its BACK_OFFICE binding the public worker serves the protocol and answers the back office's routes 404 with a reason", async () => {
  const [pub] = workerPair({ vars: { PLATFORM_ADMIN_TOKEN: ADMIN, JWT_SIGNING_KEYS: testSigningKeys() } });
  delete pub.serviceBindings;
  const mf = await alone(pub);
  try {
    const base = (await mf.ready).href.replace(/\/$/, "");
    const res = await fetch(`${base}/admin/v1/clients`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(res.status, 404);
    assert.match((await res.json()).error_description, /served by the back-office worker/);
    assert.equal((await fetch(`${base}/api/v1/apps`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } })).status, 404);
    assert.equal((await fetch(`${base}/.well-known/oauth-authorization-server`)).status, 200);
  } finally {
    await mf.dispose();
  }
});

test("the back office reached on its own hostname serves its routes and refuses the protocol's", async () => {
  const [, back] = workerPair({ vars: { ISSUER: "https://auth.example.com", PLATFORM_ADMIN_TOKEN: ADMIN, JWT_SIGNING_KEYS: testSigningKeys() } });
  const mf = await alone(back);
  try {
    const token = await mf.dispatchFetch("https://admin.example.com/oauth/token", { method: "POST", body: "grant_type=client_credentials", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(token.status, 404);
    assert.match((await token.json()).error_description, /served by the public worker/);
    assert.equal((await mf.dispatchFetch("https://admin.example.com/.well-known/oauth-authorization-server")).status, 404);
    // Its own route is there (the token is checked: a wrong one is a 401, not a 404).
    const admin = await mf.dispatchFetch("https://admin.example.com/admin/v1/clients", { headers: { authorization: "Bearer wrong-token-wrong-token-wrong-token-0123" } });
    assert.equal(admin.status, 401);
  } finally {
    await mf.dispose();
  }
});

test("the public wasm carries no back-office code; the back office's carries no protocol endpoint", () => {
  const pub = readFileSync(new URL("../../build/index_bg.wasm", import.meta.url));
  const back = readFileSync(new URL("../../build/back-office/index_bg.wasm", import.meta.url));
  // Text only the settings pages and the provisioning API use.
  for (const marker of ["You belong to no organization", "INSERT INTO orgs"]) {
    assert.ok(back.includes(marker), `back office has ${marker}`);
    assert.ok(!pub.includes(marker), `public has no ${marker}`);
  }
  // Text only the authorization endpoint's consent page uses.
  const consent = "wants access to an organization you belong to";
  assert.ok(pub.includes(consent));
  assert.ok(!back.includes(consent), "the back office has no consent page");
});
