// Bearer validation modes in workerd, each held to its documented guarantee:
// strict (D1 every call), edge (KV copy, evicted on change), and the
// per-isolate cache (stale for at most its TTL).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startServer, Browser, registerApp, tokensFor, bearer, eventually, clientRequest } from "./support.mjs";

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
let strict, edge, cached;
const browsers = new Map();

before(async () => {
  strict = await startServer();
  edge = await startServer({ BEARER_MODE: "edge" });
  cached = await startServer({ BEARER_CACHE_TTL_SECONDS: "2" });
  for (const s of [strict, edge, cached]) {
    const b = new Browser(s);
    await b.signIn("alice@acme.test", "alice-password");
    browsers.set(s, b);
  }
});
after(async () => {
  for (const s of [strict, edge, cached]) await s?.close();
});

async function issue(server) {
  const app = await registerApp(server, { name: "Modes" });
  const t = await tokensFor(server, browsers.get(server), app, { scope: "profile:read posts:read" });
  return { app, ...t };
}

const revoke = (server, app, token) => clientRequest(server, "/oauth/revoke", app, { token });

const permissions = async (server, token) => (await (await bearer(server, "/api/v1/me", token)).json()).permissions;

test("strict: revocation and role changes apply to the very next call; KV is never used", async () => {
  const { app, access_token } = await issue(strict);
  assert.equal((await bearer(strict, "/api/v1/me", access_token)).status, 200);
  await strict.db.prepare("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_alice' AND org_id = 'org_acme'").run();
  await strict.db.prepare("DELETE FROM role_permissions WHERE role = 'member' AND permission = 'posts:read'").run();
  assert.deepEqual(await permissions(strict, access_token), ["profile:read"], "narrowed role, next call");
  await strict.db.prepare("INSERT INTO role_permissions VALUES ('member', 'posts:read')").run();
  await strict.db.prepare("UPDATE memberships SET role = 'owner' WHERE user_id = 'usr_alice' AND org_id = 'org_acme'").run();
  assert.equal((await revoke(strict, app, access_token)).status, 200);
  assert.equal((await bearer(strict, "/api/v1/me", access_token)).status, 401, "revoke then call: 401 at once");
  assert.deepEqual(await strict.db.kvKeys(), []);
});

test("edge: the access token's record goes to KV (hash key, no plaintext); codes and refresh tokens never do", async () => {
  const { access_token, refresh_token } = await issue(edge);
  const key = sha256(access_token);
  await eventually(async () => (await edge.db.kvKeys()).includes(key));
  const keys = await edge.db.kvKeys();
  assert.ok(!keys.includes(sha256(refresh_token)));
  const codes = (await edge.db.prepare("SELECT hash FROM codes").all()).results.map((r) => r.hash);
  assert.ok(codes.length > 0 && codes.every((h) => !keys.includes(h)), "no code hash in KV");
  const access = (await edge.db.prepare("SELECT hash FROM tokens WHERE kind = 'access'").all()).results.map((r) => r.hash);
  assert.ok(keys.every((k) => access.includes(k)), "only access-token hashes");
  const value = await edge.db.kvGet(key);
  assert.ok(!value.includes(access_token) && !value.includes(refresh_token));
  assert.equal(JSON.parse(value).org_id, "org_acme");
});

test("edge: KV answers first; a miss falls back to D1, never a wrong 401", async () => {
  const { access_token } = await issue(edge);
  await eventually(async () => (await edge.db.kvKeys()).includes(sha256(access_token)));
  // The org's slug is not watched by the eviction triggers: the old value proves KV answered.
  await edge.db.prepare("UPDATE orgs SET slug = 'acme-edge' WHERE id = 'org_acme'").run();
  const me = await (await bearer(edge, "/api/v1/me", access_token)).json();
  assert.equal(me.org.slug, "acme");
  await edge.db.prepare("UPDATE orgs SET slug = 'acme' WHERE id = 'org_acme'").run();
  // A token whose copy is missing (not yet propagated, evicted) is served from D1.
  await edge.db.kvDelete(sha256(access_token));
  const again = await (await bearer(edge, "/api/v1/me", access_token)).json();
  assert.equal(again.org.slug, "acme");
  assert.equal((await bearer(edge, "/api/v1/me", "at_" + "x".repeat(43))).status, 401);
});

test("edge: revoking deletes the KV copy right after the request; then 401", async () => {
  const { app, access_token } = await issue(edge);
  const key = sha256(access_token);
  await eventually(async () => (await edge.db.kvKeys()).includes(key));
  assert.equal((await revoke(edge, app, access_token)).status, 200);
  await eventually(async () => !(await edge.db.kvKeys()).includes(key));
  assert.equal((await bearer(edge, "/api/v1/me", access_token)).status, 401);
  const queued = await edge.db.prepare("SELECT count(*) AS n FROM bearer_evictions").first();
  assert.equal(queued.n, 0);
});

test("edge: a role change made outside the worker is queued by D1 triggers and evicted by the cron", async () => {
  const { access_token } = await issue(edge);
  const key = sha256(access_token);
  await eventually(async () => (await edge.db.kvKeys()).includes(key));
  assert.deepEqual(await permissions(edge, access_token), ["posts:read", "profile:read"]);
  await edge.db.prepare("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_alice' AND org_id = 'org_acme'").run();
  await edge.db.prepare("DELETE FROM role_permissions WHERE role = 'member' AND permission = 'posts:read'").run();
  const queued = await edge.db.prepare("SELECT count(*) AS n FROM bearer_evictions WHERE hash = ?").bind(key).first();
  assert.equal(queued.n, 1);
  await edge.scheduled();
  assert.ok(!(await edge.db.kvKeys()).includes(key), "evicted by the cron");
  assert.deepEqual(await permissions(edge, access_token), ["profile:read"], "the narrowed role, from D1");
  await edge.db.prepare("INSERT INTO role_permissions VALUES ('member', 'posts:read')").run();
  await edge.db.prepare("UPDATE memberships SET role = 'owner' WHERE user_id = 'usr_alice' AND org_id = 'org_acme'").run();
});

test("isolate cache: a revocation elsewhere shows within the TTL; one handled here shows at once", async () => {
  const a = await issue(cached);
  assert.equal((await bearer(cached, "/api/v1/me", a.access_token)).status, 200);
  // Revoked behind the worker's back, as another isolate or an operator would.
  await cached.db.prepare("UPDATE tokens SET revoked_at = 1 WHERE hash = ?").bind(sha256(a.access_token)).run();
  assert.equal((await bearer(cached, "/api/v1/me", a.access_token)).status, 200, "the cached verdict");
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal((await bearer(cached, "/api/v1/me", a.access_token)).status, 401, "gone once the TTL passed");
  const b = await issue(cached);
  assert.equal((await bearer(cached, "/api/v1/me", b.access_token)).status, 200);
  assert.equal((await revoke(cached, b.app, b.access_token)).status, 200);
  assert.equal((await bearer(cached, "/api/v1/me", b.access_token)).status, 401);
});
