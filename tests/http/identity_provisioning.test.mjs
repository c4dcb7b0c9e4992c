// The provisioning API (/admin/v1/, issue 9 §1): the platform pushes its orgs,
// users, memberships, roles, scope catalogue and org API keys by its own ids;
// PUT is an idempotent upsert, PATCH a partial update, DELETE removes with
// everything that hangs on it (in the same batch), GET pages with a cursor;
// bad input is a 4xx that changes nothing; every act is audited; the live-role
// rule holds; and `scripts/provision.mjs` applies fixtures/platform.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  startServer,
  Browser,
  registerApp,
  tokensFor,
  tokenRequest,
  bearer,
  api,
  DEV_API_KEY,
} from "./support.mjs";
import { PLATFORM, ROLE_PERMISSIONS, SCOPES } from "../../scripts/fixtures.mjs";

const run = promisify(execFile);
const root = new URL("../../", import.meta.url).pathname;
const TOKEN = "adm_provisioning_test_" + randomBytes(24).toString("base64url");

let s; // SQL fixtures + admin token
before(async () => {
  s = await startServer({ PLATFORM_ADMIN_TOKEN: TOKEN });
});
const others = [];
after(() => Promise.all([s?.close(), ...others.map((o) => o.close())]));

function admin(server, method, path, body, { ct = "application/json", raw, token = TOKEN } = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined || raw !== undefined) headers["content-type"] = ct;
  return server.fetch("/admin/v1" + path, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
}
async function call(server, method, path, body, opts) {
  const res = await admin(server, method, path, body, opts);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { text };
  }
  return { status: res.status, body: json, headers: res.headers };
}
const rows = async (server, sql, ...params) => (await server.db.prepare(sql).bind(...params).all()).results;
const one = async (server, sql, ...params) => (await rows(server, sql, ...params))[0];

/** Everything provisioning could touch, to show that a refusal changed nothing. */
async function snapshot(server) {
  const q = {
    orgs: "SELECT id, external_id, slug, name FROM orgs ORDER BY id",
    users: "SELECT id, external_id, email, name, password_hash FROM users ORDER BY id",
    memberships: "SELECT * FROM memberships ORDER BY org_id, user_id",
    roles: "SELECT name, description FROM roles ORDER BY name",
    role_permissions: "SELECT * FROM role_permissions ORDER BY role, permission",
    scopes: "SELECT * FROM scopes ORDER BY name",
    api_keys: "SELECT * FROM api_keys ORDER BY hash",
    sessions: "SELECT hash FROM sessions ORDER BY hash",
    grants: "SELECT id, revoked_at FROM grants ORDER BY id",
    installs: "SELECT app_id, org_id, revoked_at FROM installs ORDER BY app_id, org_id",
    audit: "SELECT count(*) AS n FROM audit_events",
    guards: "SELECT * FROM batch_guards",
  };
  const out = {};
  for (const [k, sql] of Object.entries(q)) out[k] = await rows(server, sql);
  return out;
}

test("the provisioning API is off (404) without PLATFORM_ADMIN_TOKEN, and needs the token", async () => {
  const off = await startServer({ PLATFORM_ADMIN_TOKEN: "" });
  others.push(off);
  assert.equal((await admin(off, "GET", "/orgs")).status, 404);
  assert.equal((await admin(off, "PUT", "/orgs/x", { slug: "x", name: "X" })).status, 404);
  const before = await snapshot(s);
  for (const token of ["nope", TOKEN + "x", TOKEN.slice(0, -1)]) {
    assert.equal((await admin(s, "PUT", "/orgs/initech", { slug: "initech", name: "I" }, { token })).status, 401);
  }
  assert.deepEqual(await snapshot(s), before);
  const ok = await admin(s, "GET", "/orgs");
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("access-control-allow-origin"), null);
  assert.equal(ok.headers.get("cache-control"), "no-store");
});

test("orgs: PUT creates (201) then says unchanged, PATCH updates part, GET reads, DELETE removes", async () => {
  let r = await call(s, "PUT", "/orgs/initech", { slug: "initech", name: "Initech" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.created, true);
  assert.equal(r.body.changed, true);
  assert.match(r.body.id, /^org_/);
  const id = r.body.id;
  r = await call(s, "PUT", "/orgs/initech", { slug: "initech", name: "Initech" });
  assert.deepEqual([r.status, r.body.created, r.body.changed, r.body.id], [200, false, false, id]);
  r = await call(s, "PATCH", "/orgs/initech", { name: "Initech Corp" });
  assert.equal(r.status, 200);
  assert.equal(r.body.changed, true);
  assert.deepEqual(r.body.changes, { name: { from: "Initech", to: "Initech Corp" } });
  assert.equal(r.body.slug, "initech");
  r = await call(s, "PATCH", "/orgs/initech", { name: "Initech Corp" });
  assert.equal(r.body.changed, false);
  // dry_run reports and writes nothing.
  r = await call(s, "PUT", "/orgs/initech?dry_run=true", { slug: "initech", name: "Other" });
  assert.deepEqual([r.status, r.body.dry_run, r.body.changed], [200, true, true]);
  r = await call(s, "GET", "/orgs/initech");
  assert.deepEqual(r.body, { external_id: "initech", id, slug: "initech", name: "Initech Corp", created_at: r.body.created_at });
  assert.equal((await one(s, "SELECT name FROM orgs WHERE id = ?", id)).name, "Initech Corp");
  r = await call(s, "DELETE", "/orgs/initech");
  assert.equal(r.status, 200);
  assert.equal(r.body.deleted, true);
  assert.equal((await call(s, "GET", "/orgs/initech")).status, 404);
  assert.equal((await call(s, "DELETE", "/orgs/initech")).status, 404);
  assert.equal(await one(s, "SELECT id FROM orgs WHERE id = ?", id), undefined);
});

test("users: password set, verified idempotently, removed (no password sign-in), email is unique", async () => {
  let r = await call(s, "PUT", "/users/dave", { email: "dave@acme.test", name: "Dave", password: "dave-password" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.has_password, true);
  assert.match(r.body.id, /^usr_/);
  assert.equal(r.body.password, undefined);
  const stored = (await one(s, "SELECT password_hash FROM users WHERE external_id = 'dave'")).password_hash;
  assert.match(stored, /^pbkdf2-sha256\$100000\$/);
  // The same body again: the password is checked against the stored hash, not re-hashed.
  r = await call(s, "PUT", "/users/dave", { email: "dave@acme.test", name: "Dave", password: "dave-password" });
  assert.deepEqual([r.status, r.body.changed], [200, false]);
  assert.equal((await one(s, "SELECT password_hash FROM users WHERE external_id = 'dave'")).password_hash, stored);
  const b = new Browser(s);
  await b.signIn("dave@acme.test", "dave-password");
  // Absent password: kept. null: removed, and the built-in sign-in refuses.
  r = await call(s, "PUT", "/users/dave", { email: "dave@acme.test", name: "Dave D." });
  assert.deepEqual(r.body.changes, { name: { from: "Dave", to: "Dave D." } });
  assert.equal(r.body.has_password, true);
  r = await call(s, "PATCH", "/users/dave", { password: null });
  assert.equal(r.body.changed, true);
  assert.equal(r.body.has_password, false);
  assert.equal((await one(s, "SELECT password_hash FROM users WHERE external_id = 'dave'")).password_hash, "");
  const res = await new Browser(s).post("/signin", { email: "dave@acme.test", password: "dave-password", return_to: "/" });
  assert.equal(res.status, 401);
  r = await call(s, "PATCH", "/users/dave", { password: null });
  assert.equal(r.body.changed, false);
  r = await call(s, "GET", "/users/dave");
  assert.equal(r.body.email, "dave@acme.test");
  // Email comparison ignores case.
  r = await call(s, "PATCH", "/users/dave", { email: "DAVE@acme.test" });
  assert.equal(r.status, 200);
  r = await call(s, "DELETE", "/users/dave");
  assert.equal(r.status, 200);
  assert.equal((await call(s, "GET", "/users/dave")).status, 404);
});

test("memberships, roles, scopes: upsert, idempotency, patch, lists, delete", async () => {
  // A scope, a role built on it, a role with no permissions at all.
  let r = await call(s, "PUT", "/scopes/billing:read", { description: "Read invoices" });
  assert.equal(r.status, 201);
  assert.equal((await call(s, "PUT", "/scopes/billing:read", { description: "Read invoices" })).body.changed, false);
  r = await call(s, "PATCH", "/scopes/billing:read", { description: "Read the invoices" });
  assert.deepEqual(r.body.changes, { description: { from: "Read invoices", to: "Read the invoices" } });
  r = await call(s, "PUT", "/roles/billing", { permissions: ["billing:read", "profile:read", "billing:read"], description: "Billing" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual(r.body.permissions, ["billing:read", "profile:read"]);
  r = await call(s, "PUT", "/roles/billing", { permissions: ["profile:read", "billing:read"], description: "Billing" });
  assert.equal(r.body.changed, false, "order and repeats are not changes");
  r = await call(s, "PUT", "/roles/viewer", { permissions: [] });
  assert.deepEqual([r.status, r.body.permissions], [201, []]);
  r = await call(s, "PATCH", "/roles/billing", { permissions: ["billing:read"] });
  assert.deepEqual(r.body.changes.permissions, { from: ["billing:read", "profile:read"], to: ["billing:read"] });
  assert.deepEqual(
    (await rows(s, "SELECT permission FROM role_permissions WHERE role = 'billing'")).map((x) => x.permission),
    ["billing:read"],
  );
  // Memberships.
  await call(s, "PUT", "/users/erin", { email: "erin@acme.test", name: "Erin" });
  r = await call(s, "PUT", "/orgs/acme/memberships/erin", { role: "viewer" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual([r.body.org, r.body.user, r.body.role, r.body.org_id], ["acme", "erin", "viewer", "org_acme"]);
  assert.equal((await call(s, "PUT", "/orgs/acme/memberships/erin", { role: "viewer" })).body.changed, false);
  r = await call(s, "PATCH", "/orgs/acme/memberships/erin", { role: "billing" });
  assert.deepEqual(r.body.changes, { role: { from: "viewer", to: "billing" } });
  assert.equal((await call(s, "GET", "/orgs/acme/memberships/erin")).body.role, "billing");
  r = await call(s, "GET", "/orgs/acme/memberships");
  assert.deepEqual(r.body.items.map((m) => `${m.user}:${m.role}`), ["alice:owner", "carol:member", "erin:billing"]);
  r = await call(s, "GET", "/users/erin/memberships");
  assert.deepEqual(r.body.items.map((m) => m.org), ["acme"]);
  // Delete in dependency order; each is gone after.
  assert.equal((await call(s, "DELETE", "/orgs/acme/memberships/erin")).status, 200);
  assert.equal((await call(s, "GET", "/orgs/acme/memberships/erin")).status, 404);
  assert.equal((await call(s, "DELETE", "/roles/billing")).status, 200);
  assert.equal((await call(s, "DELETE", "/roles/viewer")).status, 200);
  assert.equal((await call(s, "GET", "/roles/billing")).status, 404);
  assert.equal((await call(s, "DELETE", "/scopes/billing:read")).status, 200);
  assert.equal((await call(s, "GET", "/scopes/billing:read")).status, 404);
  assert.equal((await call(s, "DELETE", "/users/erin")).status, 200);
  r = await call(s, "GET", "/roles");
  assert.deepEqual(r.body.items.map((x) => x.name), ["admin", "member", "owner"]);
  r = await call(s, "GET", "/scopes");
  assert.deepEqual(r.body.items.map((x) => x.name), SCOPES.map(([n]) => n).sort());
});

test("org API keys: the secret is shown once and works, PUT again changes nothing, revoke ends it", async () => {
  let r = await call(s, "PUT", "/orgs/globex/api-keys/ci", { role: "admin" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const secret = r.body.secret;
  assert.match(secret, /^key_[A-Za-z0-9_-]{43}$/);
  assert.equal((await api(s, "GET", "/api/v1/apps", undefined, secret)).status, 200);
  const stored = await one(s, "SELECT hash FROM api_keys WHERE name = 'ci'");
  assert.notEqual(stored.hash, secret);
  assert.equal(stored.hash.length, 64);
  r = await call(s, "PUT", "/orgs/globex/api-keys/ci", { role: "admin" });
  assert.deepEqual([r.status, r.body.changed, r.body.secret], [200, false, undefined]);
  r = await call(s, "GET", "/orgs/globex/api-keys/ci");
  assert.deepEqual([r.body.name, r.body.role, r.body.secret], ["ci", "admin", undefined]);
  r = await call(s, "PATCH", "/orgs/globex/api-keys/ci", { role: "member" });
  assert.deepEqual(r.body.changes, { role: { from: "admin", to: "member" } });
  // An imported secret (a key the platform already handed out).
  const imported = "key_imported_" + randomBytes(32).toString("base64url");
  r = await call(s, "PUT", "/orgs/globex/api-keys/legacy", { role: "admin", secret: imported });
  assert.deepEqual([r.status, r.body.secret], [201, undefined]);
  assert.equal((await call(s, "PUT", "/orgs/globex/api-keys/legacy", { role: "admin", secret: imported })).body.changed, false);
  assert.equal((await api(s, "GET", "/api/v1/apps", undefined, imported)).status, 200);
  r = await call(s, "GET", "/orgs/globex/api-keys");
  assert.deepEqual(r.body.items.map((k) => k.name), ["ci", "legacy"]);
  assert.equal((await call(s, "DELETE", "/orgs/globex/api-keys/ci")).status, 200);
  assert.equal((await call(s, "DELETE", "/orgs/globex/api-keys/legacy")).status, 200);
  assert.equal((await api(s, "GET", "/api/v1/apps", undefined, secret)).status, 401);
  assert.equal((await api(s, "GET", "/api/v1/apps", undefined, imported)).status, 401);
});

test("lists page with a cursor: every item once, in order, then next_cursor null", async () => {
  const ids = Array.from({ length: 7 }, (_, i) => `pg-${i}`);
  for (const id of ids) assert.equal((await call(s, "PUT", `/orgs/${id}`, { slug: id, name: id })).status, 201);
  const all = (await call(s, "GET", "/orgs?limit=200")).body;
  assert.equal(all.next_cursor, null);
  const seen = [];
  let cursor;
  let pages = 0;
  do {
    const r = await call(s, "GET", `/orgs?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.items.length <= 2);
    seen.push(...r.body.items.map((o) => o.external_id));
    cursor = r.body.next_cursor;
    pages++;
  } while (cursor);
  assert.deepEqual(seen, all.items.map((o) => o.external_id));
  assert.deepEqual(seen, [...seen].sort());
  assert.ok(ids.every((id) => seen.includes(id)));
  assert.equal(pages, Math.ceil(seen.length / 2));
  for (const q of ["limit=0", "limit=201", "limit=x", "cursor=%%%", "cursor=" + "A".repeat(400)]) {
    assert.equal((await call(s, "GET", `/orgs?${q}`)).status, 400, q);
  }
  for (const id of ids) assert.equal((await call(s, "DELETE", `/orgs/${id}`)).status, 200);
});

test("bad input gets a 4xx with a reason and changes nothing", async () => {
  const big = Array.from({ length: 101 }, () => "profile:read");
  const cases = [
    ["unknown role (membership)", "PUT", "/orgs/acme/memberships/bob", { role: "emperor" }, 400, /unknown role/],
    ["unknown role (API key)", "PUT", "/orgs/acme/api-keys/x", { role: "emperor" }, 400, /unknown role/],
    ["unknown permission", "PUT", "/roles/editor", { permissions: ["posts:read", "posts:delete"] }, 400, /unknown permission.*posts:delete/],
    ["role still used by memberships", "DELETE", "/roles/member", undefined, 409, /used by 1 membership/],
    ["scope still granted by roles", "DELETE", "/scopes/posts:read", undefined, 409, /still granted/],
    ["duplicate email (any case)", "PUT", "/users/dave", { email: "ALICE@acme.test", name: "Dave" }, 409, /belongs to another user/],
    ["duplicate email by PATCH", "PATCH", "/users/carol", { email: "bob@globex.test" }, 409, /belongs to another user/],
    ["removing the last owner", "DELETE", "/orgs/acme/memberships/alice", undefined, 409, /last owner/],
    ["demoting the last owner", "PUT", "/orgs/acme/memberships/alice", { role: "member" }, 409, /last owner/],
    ["deleting the last owner", "DELETE", "/users/alice", undefined, 409, /last owner of acme/],
    ["a role losing org.admin orphans an org", "PATCH", "/roles/owner", { permissions: ["profile:read"] }, 409, /without an owner/],
    ["slug of another org", "PUT", "/orgs/initech", { slug: "acme", name: "X" }, 409, /belongs to another org/],
    ["secret of another key", "PUT", "/orgs/globex/api-keys/y", { role: "admin", secret: DEV_API_KEY }, 409, /another API key/],
    ["unknown field", "PUT", "/orgs/initech", { slug: "initech", name: "Initech", plan: "gold" }, 400, /unknown field `plan`/],
    ["unknown field in PATCH", "PATCH", "/users/carol", { nickname: "c" }, 400, /unknown field/],
    ["missing field", "PUT", "/users/dave", { email: "dave@acme.test" }, 400, /missing field `name`/],
    ["wrong type", "PUT", "/orgs/initech", { slug: 5, name: "Initech" }, 400, /invalid type/],
    ["oversized list", "PUT", "/roles/big", { permissions: big }, 400, /at most 100/],
    ["oversized string", "PUT", "/orgs/initech", { slug: "initech", name: "x".repeat(201) }, 400, /1 to 200/],
    ["oversized id", "PUT", `/orgs/${"i".repeat(129)}`, { slug: "initech", name: "I" }, 400, /1 to 128/],
    ["bad slug", "PUT", "/orgs/initech", { slug: "Init Tech", name: "I" }, 400, /slug/],
    ["bad email", "PUT", "/users/dave", { email: "not-an-email", name: "Dave" }, 400, /email/],
    ["short password", "PUT", "/users/dave", { email: "dave@acme.test", name: "Dave", password: "short" }, 400, /password/],
    ["scope named like a platform permission", "PUT", "/scopes/org.admin", { description: "x" }, 400, /platform permission/],
    ["scope name with a space", "PUT", "/scopes/a%20b", { description: "x" }, 400, /scope name/],
    ["imported secret without the prefix", "PUT", "/orgs/acme/api-keys/x", { role: "admin", secret: "nope_" + "a".repeat(40) }, 400, /starts with "key_"/],
    ["member of an unknown user", "PUT", "/orgs/acme/memberships/nobody", { role: "member" }, 404, /no user/],
    ["bad dry_run", "PUT", "/orgs/initech?dry_run=maybe", { slug: "initech", name: "I" }, 400, /dry_run/],
  ];
  for (const [why, method, path, body, status, reason] of cases) {
    const before = await snapshot(s);
    const r = await call(s, method, path, body);
    assert.equal(r.status, status, `${why}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error_description ?? "", reason, why);
    assert.deepEqual(await snapshot(s), before, `${why} changed something`);
  }
  const raw = [
    ["malformed JSON", { raw: '{"slug": "initech",' }, 400],
    ["wrong content type", { raw: JSON.stringify({ slug: "initech", name: "I" }), ct: "text/plain" }, 415],
    ["form body", { raw: "slug=initech&name=I", ct: "application/x-www-form-urlencoded" }, 415],
    ["no body", { raw: "" }, 400],
    ["body too large", { raw: JSON.stringify({ slug: "initech", name: "x".repeat(70 * 1024) }) }, 413],
  ];
  for (const [why, opts, status] of raw) {
    const before = await snapshot(s);
    const r = await call(s, "PUT", "/orgs/initech", undefined, opts);
    assert.equal(r.status, status, `${why}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.error_description, why);
    assert.deepEqual(await snapshot(s), before, `${why} changed something`);
  }
});

test("live role: a role change narrows every token of the user on the next call; removal ends them for good", async () => {
  const app = await registerApp(s, { name: "Live Role App" });
  assert.equal((await call(s, "PUT", "/orgs/acme/memberships/carol", { role: "admin" })).body.changed, true);
  const carol = new Browser(s);
  await carol.signIn("carol@acme.test", "carol-password");
  const t = await tokensFor(s, carol, app, { scope: "profile:read posts:read posts:write" });
  let me = await (await bearer(s, "/api/v1/me", t.access_token)).json();
  assert.ok(me.permissions.includes("posts:write"), JSON.stringify(me));
  assert.equal((await bearer(s, "/api/v1/posts", t.access_token, { method: "POST" })).status, 201);
  // Demoted through the API: the very next call is narrower.
  assert.equal((await call(s, "PUT", "/orgs/acme/memberships/carol", { role: "member" })).status, 200);
  me = await (await bearer(s, "/api/v1/me", t.access_token)).json();
  assert.deepEqual(me.permissions.sort(), ["posts:read", "profile:read"]);
  assert.equal((await bearer(s, "/api/v1/posts", t.access_token, { method: "POST" })).status, 403);
  // A role narrowed for everyone: the next call again.
  assert.equal((await call(s, "PATCH", "/roles/member", { permissions: ["profile:read"] })).status, 200);
  me = await (await bearer(s, "/api/v1/me", t.access_token)).json();
  assert.deepEqual(me.permissions, ["profile:read"]);
  assert.equal((await bearer(s, "/api/v1/posts", t.access_token)).status, 403);
  assert.equal((await call(s, "PATCH", "/roles/member", { permissions: ["profile:read", "posts:read"] })).status, 200);
  // Removed from the org: 401 at once, refresh refused, and re-adding her does not revive the tokens.
  assert.equal((await call(s, "DELETE", "/orgs/acme/memberships/carol")).status, 200);
  assert.equal((await bearer(s, "/api/v1/me", t.access_token)).status, 401);
  const refreshed = await tokenRequest(s, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(refreshed.status, 400);
  assert.equal((await call(s, "PUT", "/orgs/acme/memberships/carol", { role: "member" })).status, 201);
  assert.equal((await bearer(s, "/api/v1/me", t.access_token)).status, 401);
  const g = await rows(s, "SELECT revoked_at FROM grants WHERE user_id = 'usr_carol' AND org_id = 'org_acme'");
  assert.ok(g.length > 0 && g.every((x) => x.revoked_at !== null));
});

test("deleting a user ends their sessions, grants and tokens, and frees the email", async () => {
  const app = await registerApp(s, { name: "User Deletion App" });
  // Globex keeps an owner when bob goes.
  await call(s, "PUT", "/users/gina", { email: "gina@globex.test", name: "Gina" });
  assert.equal((await call(s, "PUT", "/orgs/globex/memberships/gina", { role: "admin" })).status, 201);
  const bob = new Browser(s);
  await bob.signIn("bob@globex.test", "bob-password");
  const t = await tokensFor(s, bob, app, {}, { org: "org_globex" });
  assert.equal((await bearer(s, "/api/v1/me", t.access_token)).status, 200);
  assert.equal((await one(s, "SELECT count(*) AS n FROM sessions WHERE user_id = 'usr_bob'")).n, 1);
  // Password sign-in left a device cookie row (it references the user).
  assert.equal((await one(s, "SELECT count(*) AS n FROM signin_devices WHERE user_id = 'usr_bob'")).n, 1);
  const r = await call(s, "DELETE", "/users/bob");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await bearer(s, "/api/v1/me", t.access_token)).status, 401);
  const refreshed = await tokenRequest(s, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(refreshed.status, 400);
  assert.equal((await one(s, "SELECT count(*) AS n FROM sessions WHERE user_id = 'usr_bob'")).n, 0);
  assert.equal((await one(s, "SELECT count(*) AS n FROM signin_devices WHERE user_id = 'usr_bob'")).n, 0);
  assert.equal((await bob.fetch("/settings/apps")).status, 302, "the browser session is gone");
  assert.equal((await one(s, "SELECT count(*) AS n FROM grants WHERE user_id = 'usr_bob' AND revoked_at IS NULL")).n, 0);
  assert.equal((await one(s, "SELECT count(*) AS n FROM memberships WHERE user_id = 'usr_bob'")).n, 0);
  // In the same batch as the delete: the audit rows are there at once.
  assert.ok(await one(s, "SELECT 1 AS y FROM audit_events WHERE actor_type = 'platform' AND action = 'user.deleted' AND detail LIKE '%usr_bob%'"));
  assert.ok(await one(s, "SELECT 1 AS y FROM audit_events WHERE org_id = 'org_globex' AND action = 'membership.deleted' AND detail LIKE '%user deleted%'"));
  // The email is free again.
  assert.equal((await call(s, "PUT", "/users/bob2", { email: "bob@globex.test", name: "Bob" })).status, 201);
});

test("deleting an org revokes its grants, installs, keys and memberships, and deletes the apps it owns", async () => {
  const s2 = await startServer({ PLATFORM_ADMIN_TOKEN: TOKEN });
  others.push(s2);
  const key = (await call(s2, "PUT", "/orgs/globex/api-keys/ops", { role: "admin" })).body.secret;
  const res = await api(s2, "POST", "/api/v1/apps", { name: "Globex App", redirect_uris: ["http://localhost:3000/callback"], scopes: ["profile:read", "posts:read"] }, key);
  assert.equal(res.status, 201);
  const globexApp = await res.json();
  const acmeApp = await registerApp(s2, { name: "Acme App" });
  const alice = new Browser(s2);
  await alice.signIn("alice@acme.test", "alice-password");
  const bob = new Browser(s2);
  await bob.signIn("bob@globex.test", "bob-password");
  const inAcme = await tokensFor(s2, alice, globexApp); // Globex's app in Acme
  const acmeInAcme = await tokensFor(s2, alice, acmeApp); // untouched
  const inGlobex = await tokensFor(s2, bob, acmeApp, {}, { org: "org_globex" }); // Acme's app in Globex
  for (const t of [inAcme, acmeInAcme, inGlobex]) assert.equal((await bearer(s2, "/api/v1/me", t.access_token)).status, 200);
  const r = await call(s2, "DELETE", "/orgs/globex");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.revoked.apps_deleted, 1);
  assert.equal(r.body.revoked.installs, 1);
  assert.equal((await bearer(s2, "/api/v1/me", inAcme.access_token)).status, 401, "the org's own app is gone everywhere");
  assert.equal((await bearer(s2, "/api/v1/me", inGlobex.access_token)).status, 401, "tokens in the org are dead");
  assert.equal((await bearer(s2, "/api/v1/me", acmeInAcme.access_token)).status, 200, "other orgs' tokens live on");
  assert.equal((await api(s2, "GET", "/api/v1/apps", undefined, key)).status, 401, "the org's API keys are revoked");
  assert.equal((await one(s2, "SELECT revoked_at FROM installs WHERE app_id = ? AND org_id = 'org_globex'", acmeApp.client_id)).revoked_at !== null, true);
  assert.equal((await one(s2, "SELECT revoked_at FROM installs WHERE app_id = ? AND org_id = 'org_acme'", globexApp.client_id)).revoked_at !== null, true);
  assert.equal(await one(s2, "SELECT id FROM apps WHERE id = ?", globexApp.client_id), undefined);
  assert.equal((await one(s2, "SELECT count(*) AS n FROM memberships WHERE org_id = 'org_globex'")).n, 0);
  assert.equal((await one(s2, "SELECT count(*) AS n FROM grants WHERE org_id = 'org_globex' AND revoked_at IS NULL")).n, 0);
  assert.equal((await call(s2, "GET", "/orgs/globex")).status, 404);
  assert.equal((await call(s2, "GET", "/users/bob")).status, 200, "users outlive their orgs");
  assert.ok(await one(s2, "SELECT 1 AS y FROM audit_events WHERE org_id = 'org_globex' AND actor_type = 'platform' AND action = 'org.deleted'"));
  // The slug is free again.
  assert.equal((await call(s2, "PUT", "/orgs/globex2", { slug: "globex", name: "Globex" })).status, 201);
});

test("every provisioning act is in the audit log, written with the act, and listed at /admin/v1/audit", async () => {
  const n0 = (await one(s, "SELECT count(*) AS n FROM audit_events WHERE actor_type = 'platform'")).n;
  await call(s, "PUT", "/orgs/audited", { slug: "audited", name: "Audited" });
  await call(s, "PUT", "/orgs/audited", { slug: "audited", name: "Audited" }); // no change, no record
  await call(s, "PUT", "/scopes/audit:read", { description: "Read" });
  await call(s, "PUT", "/roles/auditor", { permissions: ["audit:read"] });
  await call(s, "PUT", "/users/ivy", { email: "ivy@audited.test", name: "Ivy" });
  await call(s, "PUT", "/orgs/audited/memberships/ivy", { role: "auditor" });
  await call(s, "PUT", "/orgs/audited/api-keys/k", { role: "auditor" });
  await call(s, "DELETE", "/orgs/audited/api-keys/k");
  await call(s, "DELETE", "/orgs/audited/memberships/ivy");
  await call(s, "DELETE", "/users/ivy");
  await call(s, "DELETE", "/roles/auditor");
  await call(s, "DELETE", "/scopes/audit:read");
  await call(s, "DELETE", "/orgs/audited");
  // No polling: the records were written in the same batch as each change.
  const got = await rows(s, "SELECT action, actor_type, actor_id FROM audit_events WHERE actor_type = 'platform' ORDER BY id");
  const actions = got.slice(n0).map((x) => x.action);
  assert.deepEqual(actions, [
    "org.created",
    "scope.created",
    "role.created",
    "user.created",
    "membership.created",
    "api_key.created",
    "api_key.revoked",
    "membership.deleted",
    "user.deleted",
    "role.deleted",
    "scope.deleted",
    "org.deleted",
  ]);
  assert.ok(got.every((x) => x.actor_id === "platform_admin"));
  const listed = await call(s, "GET", "/audit?limit=3");
  assert.deepEqual(listed.body.items.map((x) => x.action), ["org.deleted", "scope.deleted", "role.deleted"]);
  const next = await call(s, "GET", `/audit?limit=3&cursor=${listed.body.next_cursor}`);
  assert.deepEqual(next.body.items.map((x) => x.action), ["user.deleted", "membership.deleted", "api_key.revoked"]);
});

test("make provision: fixtures/platform.json goes in through the API, a second run changes nothing, --dry-run writes nothing", async () => {
  const p = await startServer({ PLATFORM_ADMIN_TOKEN: TOKEN }, { fixtures: false });
  others.push(p);
  const cli = (...args) =>
    run("node", ["scripts/provision.mjs", "--url", p.base, ...args], { cwd: root, env: { ...process.env, PLATFORM_ADMIN_TOKEN: TOKEN } });
  const empty = await snapshot(p);
  assert.equal(empty.orgs.length, 0);
  // Dry run against an empty server: the whole diff, nothing written.
  let out = (await cli("--dry-run", "fixtures/platform.json")).stdout;
  assert.match(out, /\+ org acme/);
  assert.match(out, /\+ membership acme\/alice/);
  assert.match(out, /would create 16/);
  assert.deepEqual(await snapshot(p), empty);
  // Apply.
  out = (await cli("fixtures/platform.json")).stdout;
  assert.match(out, /\+ scope profile:read/);
  assert.match(out, /\+ api key acme\/acme-dev-admin/);
  assert.doesNotMatch(out, /secret:/, "the imported dev key is not echoed");
  assert.match(out, /16 created, 0 updated/);
  const applied = await snapshot(p);
  // Second run: no changes, and nothing written (not even audit rows).
  out = (await cli("fixtures/platform.json")).stdout;
  assert.match(out, /^no changes$/m);
  assert.deepEqual(await snapshot(p), applied);
  // The same platform the SQL fixtures give the other suites.
  const alice = new Browser(p);
  await alice.signIn("alice@acme.test", "alice-password");
  assert.equal((await api(p, "GET", "/api/v1/apps")).status, 200, "the README's dev API key works");
  for (const [role, perms] of Object.entries(ROLE_PERMISSIONS)) {
    const got = (await rows(p, "SELECT permission FROM role_permissions WHERE role = ? ORDER BY permission", role)).map((x) => x.permission);
    assert.deepEqual(got, [...perms].sort(), role);
  }
  assert.deepEqual(applied.scopes.map((x) => [x.name, x.description]), [...SCOPES].sort());
  const members = await rows(p, "SELECT o.slug, u.email, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id ORDER BY o.slug, u.email");
  assert.deepEqual(members.map((m) => `${m.slug}/${m.email}/${m.role}`), ["acme/alice@acme.test/owner", "acme/carol@acme.test/member", "globex/bob@globex.test/admin"]);
  const app = await registerApp(p, { name: "Provisioned App" });
  const t = await tokensFor(p, alice, app, {}, { org: applied.orgs.find((o) => o.slug === "acme").id });
  assert.equal((await bearer(p, "/api/v1/me", t.access_token)).status, 200);
  // A changed document: the dry run shows the diff and writes nothing; applying it, one update.
  const dir = mkdtempSync(join(tmpdir(), "provision-"));
  const doc = JSON.parse(readFileSync(new URL("../../fixtures/platform.json", import.meta.url), "utf8"));
  doc.orgs[0].name = "Acme Inc";
  doc.memberships[1].role = "admin";
  const file = join(dir, "platform.json");
  writeFileSync(file, JSON.stringify(doc));
  const before = await snapshot(p);
  out = (await cli("--dry-run", file)).stdout;
  assert.match(out, /~ org acme {2}name: "Acme" -> "Acme Inc"/);
  assert.match(out, /~ membership acme\/carol {2}role: "member" -> "admin"/);
  assert.match(out, /would create 0, update 2/);
  assert.deepEqual(await snapshot(p), before);
  out = (await cli(file)).stdout;
  assert.match(out, /0 created, 2 updated/);
  // A refused item stops the run with the server's reason (exit 1).
  doc.memberships.push({ org: "acme", user: "alice", role: "emperor" });
  writeFileSync(file, JSON.stringify(doc));
  await assert.rejects(cli(file), (e) => e.code === 1 && /unknown role/.test(e.stderr));
  assert.equal(PLATFORM.orgs.length, 2);
});
