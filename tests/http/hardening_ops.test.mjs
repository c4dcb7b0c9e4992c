// Issue 8, operations hardening, in workerd: the audit log fails closed for
// state changes; webhook retries are bounded, concurrent and fair; the
// smaller ones (secret_expires_in bounds, icon schemes, installation rows
// only for the owner org's admins, the authorized-workspace count, webhook
// signing secret rotation with an overlap).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  startServer, Browser, registerApp, tokensFor, bearer, api, eventually, consent, pkcePair, DEV_API_KEY, hidden,
} from "./support.mjs";

let server, alice, carol, bob;
const receivers = [];

// WEBHOOK_TIMEOUT_SECONDS=3 keeps the never-answering receiver's cost small;
// the rule under test is that it is bounded at all.
before(async () => {
  server = await startServer({ WEBHOOK_TIMEOUT_SECONDS: "3" });
  alice = new Browser(server);
  carol = new Browser(server);
  bob = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  await carol.signIn("carol@acme.test", "carol-password");
  await bob.signIn("bob@globex.test", "bob-password");
});
after(async () => {
  for (const r of receivers) {
    r.server.closeAllConnections();
    r.server.close();
  }
  await server.close();
});

/**
 * A loopback webhook receiver; `hang` never answers, and `onAbandoned` runs
 * when the sender gives up on a request (closes the connection unanswered).
 */
async function receiver({ hang = false, onAbandoned = () => {} } = {}) {
  const got = [];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      if (!hang) res.writeHead(200).end();
    });
    res.on("close", () => {
      if (!res.writableEnded) onAbandoned();
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const r = { server: srv, got, url: `http://127.0.0.1:${srv.address().port}/hook` };
  receivers.push(r);
  return r;
}

const app = (extra = {}) =>
  registerApp(server, { scopes: ["profile:read", "posts:read", "posts:write", "webhooks:manage"], ...extra });
const first = (sql, ...p) => server.db.prepare(sql).bind(...p).first();
const run = (sql, ...p) => server.db.prepare(sql).bind(...p).run();
const auditCount = async (appId, action) =>
  (await first("SELECT count(*) AS n FROM audit_events WHERE app_id = ?1 AND action = ?2", appId, action)).n;

// ---- 1.7 the audit log fails closed ---------------------------------------

const AUDIT_DOWN = "audit-log-is-down-marker";
const breakAudit = () =>
  run(`CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, '${AUDIT_DOWN}'); END`);
const fixAudit = () => run("DROP TRIGGER IF EXISTS audit_down");

async function refused(res, what) {
  const text = await res.text();
  assert.ok(res.status >= 500, `${what}: answered ${res.status} although its audit record could not be written`);
  assert.ok(!text.includes(AUDIT_DOWN) && !/D1_ERROR|SQLITE|audit_events/.test(text), `${what}: internal text in ${text}`);
  return text;
}

test("a state change whose audit record cannot be written is refused and does not happen", async (t) => {
  const a = await app({ name: "Audit victim", webhook_url: (await receiver()).url });
  const tAlice = await tokensFor(server, alice, a, { scope: "profile:read posts:write" });
  const tBob = await tokensFor(server, bob, a, { scope: "profile:read webhooks:manage" }, { org: "org_globex" });
  const other = await app({ name: "Audit victim 2" });
  const tOther = await tokensFor(server, alice, other, { scope: "profile:read" });
  const before = await first("SELECT version, status, secret_hash, name FROM apps WHERE id = ?1", a.client_id);
  await breakAudit();
  t.after(fixAudit);

  // Register (API and settings page): no app.
  await refused(await api(server, "POST", "/api/v1/apps", { name: "Never created", redirect_uris: ["https://x.example/cb"], scopes: ["profile:read"] }), "create");
  const page = await alice.fetch("/settings/developer?org=org_acme");
  const csrf = hidden(await page.text(), "csrf");
  await refused(await alice.post("/settings/developer/apps", { csrf, org_id: "org_acme", name: "Never created either", redirect_uris: "https://x.example/cb", scopes: "profile:read", client_type: "confidential", actor_modes: "self" }), "page create");
  assert.equal((await first("SELECT count(*) AS n FROM apps WHERE name LIKE 'Never created%'")).n, 0, "an app was created without its audit record");

  // Update, rotate, deactivate, delete: the app is as it was.
  await refused(await api(server, "PATCH", `/api/v1/apps/${a.client_id}`, { version: before.version, name: "Renamed" }), "update");
  await refused(await api(server, "POST", `/api/v1/apps/${a.client_id}/secret`), "rotate");
  await refused(await api(server, "POST", `/api/v1/apps/${a.client_id}/deactivate`), "deactivate");
  await refused(await api(server, "DELETE", `/api/v1/apps/${a.client_id}`), "delete");
  assert.deepEqual(await first("SELECT version, status, secret_hash, name FROM apps WHERE id = ?1", a.client_id), before);

  // Consent: no code, no consent row.
  const { challenge } = pkcePair();
  const c = await consent(carol, a, { scope: "profile:read", code_challenge: challenge, code_challenge_method: "S256", prompt: "consent" });
  await refused(c.res, "consent");
  assert.equal(c.location, null, "a code was issued");
  assert.equal((await first("SELECT count(*) AS n FROM consents WHERE user_id = 'usr_carol' AND app_id = ?1", a.client_id)).n, 0);

  // Revocations: the tokens keep working.
  const aliceCsrf = await alice.csrf();
  await refused(await alice.fetch(`/api/v1/me/authorizations/${a.client_id}`, { method: "DELETE", headers: { "x-csrf-token": aliceCsrf } }), "user revoke");
  await refused(await api(server, "DELETE", `/api/v1/orgs/org_acme/installations/${other.client_id}`), "admin revoke");
  await refused(await alice.post("/settings/apps/revoke", { csrf: aliceCsrf, app_id: a.client_id, org_id: "org_acme" }), "page revoke");
  assert.equal((await bearer(server, "/api/v1/me", tAlice.access_token)).status, 200);
  assert.equal((await bearer(server, "/api/v1/me", tOther.access_token)).status, 200);

  // Webhook subscription: none.
  await refused(await bearer(server, "/api/v1/webhooks/subscription", tBob.access_token, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: ["app.installed"] }) }), "subscribe");
  assert.equal(await first("SELECT events FROM webhook_subscriptions WHERE app_id = ?1", a.client_id), null);

  // An API action (its only state change is the record).
  await refused(await bearer(server, "/api/v1/posts", tAlice.access_token, { method: "POST" }), "api.posts.create");

  // Webhook secret rotation.
  await refused(await api(server, "POST", `/api/v1/apps/${a.client_id}/webhook-secret`), "webhook secret rotation");
  assert.equal((await first("SELECT webhook_secret FROM apps WHERE id = ?1", a.client_id)).webhook_secret, a.webhook_signing_secret);

  // Audit back: each act works and its record is there when the response is.
  await fixAudit();
  let res = await api(server, "PATCH", `/api/v1/apps/${a.client_id}`, { version: before.version, name: "Renamed" });
  assert.equal(res.status, 200);
  assert.equal(await auditCount(a.client_id, "app.updated"), 1);
  res = await api(server, "POST", "/api/v1/apps", { name: "Created now", redirect_uris: ["https://x.example/cb"], scopes: ["profile:read"] });
  assert.equal(res.status, 201);
  assert.equal(await auditCount((await res.json()).client_id, "app.created"), 1);
  assert.equal((await bearer(server, "/api/v1/posts", tAlice.access_token, { method: "POST" })).status, 201);
  assert.equal(await auditCount(a.client_id, "api.posts.create"), 1);
  res = await bearer(server, "/api/v1/webhooks/subscription", tBob.access_token, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: ["app.installed"] }) });
  assert.equal(res.status, 200);
  assert.equal(await auditCount(a.client_id, "webhooks.subscribed"), 1);
  res = await alice.fetch(`/api/v1/me/authorizations/${a.client_id}`, { method: "DELETE", headers: { "x-csrf-token": aliceCsrf } });
  assert.equal(res.status, 204);
  assert.equal(await auditCount(a.client_id, "authorization.revoked"), 1, "one record per org the grant died in");
  assert.equal((await bearer(server, "/api/v1/me", tAlice.access_token)).status, 401);
});

test("a stale update or a no-op leaves no audit record of something that did not happen", async () => {
  const a = await app({ name: "Stale" });
  assert.equal((await api(server, "PATCH", `/api/v1/apps/${a.client_id}`, { version: 1, name: "Stale 2" })).status, 200);
  assert.equal((await api(server, "PATCH", `/api/v1/apps/${a.client_id}`, { version: 1, name: "Stale 3" })).status, 409);
  assert.equal(await auditCount(a.client_id, "app.updated"), 1);
  assert.equal((await api(server, "DELETE", `/api/v1/orgs/org_acme/installations/${a.client_id}`)).status, 404);
  assert.equal(await auditCount(a.client_id, "authorization.revoked"), 0);
});

// ---- 1.9 webhook retries: bounded, concurrent, fair ------------------------

test("a receiver that never answers times out and does not stall the other apps' retries", async () => {
  // What the live receivers had got when the sender first gave up on the
  // dead one: one at a time, nothing; concurrently, everything.
  let deliveredBeforeFirstTimeout;
  const fast = [];
  const slow = await receiver({
    hang: true,
    onAbandoned: () => (deliveredBeforeFirstTimeout ??= fast.reduce((n, f) => n + f.got.length, 0)),
  });
  for (let i = 0; i < 4; i++) fast.push(await receiver());
  const slowApp = await app({ name: "Dead receiver", webhook_url: slow.url });
  const fastApps = [];
  for (const [i, f] of fast.entries()) fastApps.push(await app({ name: `Live receiver ${i}`, webhook_url: f.url }));
  // The dead receiver's backlog is the oldest: first in line for a naive cron.
  const insert = (id, a, url, due) =>
    run(
      "INSERT INTO webhook_deliveries (id, app_id, org_id, event, url, payload, status, attempts, next_attempt_at, created_at, updated_at) \
       VALUES (?1, ?2, NULL, 'app.deleted', ?3, ?4, 'pending', 1, ?5, ?5, ?5)",
      id, a.client_id, url, JSON.stringify({ id, type: "app.deleted" }), due,
    );
  for (let i = 0; i < 6; i++) await insert(`whd_slow_${i}`, slowApp, slow.url, 1 + i);
  for (const [i, a] of fastApps.entries()) await insert(`whd_fast_${i}`, a, fast[i].url, 100 + i);

  // Liveness, not timing: a stalled run never returns at all.
  const finished = await Promise.race([
    server.scheduled().then(() => true),
    new Promise((r) => setTimeout(() => r(false), 60_000)),
  ]);
  assert.ok(finished, "the cron run did not finish: one receiver stalls every app's deliveries");
  await eventually(() => deliveredBeforeFirstTimeout !== undefined);
  assert.equal(deliveredBeforeFirstTimeout, 4, "the live receivers waited behind the dead one");

  for (const [i, f] of fast.entries()) {
    assert.equal(f.got.length, 1, `live receiver ${i} got its delivery in this run`);
    const d = await first("SELECT status, attempts FROM webhook_deliveries WHERE id = ?1", `whd_fast_${i}`);
    assert.deepEqual({ ...d }, { status: "delivered", attempts: 2 });
  }
  const rows = (await server.db.prepare("SELECT id, status, attempts, last_error, next_attempt_at, updated_at FROM webhook_deliveries WHERE app_id = ?1 ORDER BY id").bind(slowApp.client_id).all()).results;
  const tried = rows.filter((r) => r.attempts === 2);
  assert.ok(tried.length >= 1, "the dead receiver's deliveries were attempted");
  assert.ok(tried.length < rows.length, "one app's backlog may not take the whole run");
  assert.equal(slow.got.length, tried.length);
  for (const r of tried) {
    assert.equal(r.status, "pending", "retried later");
    assert.match(r.last_error, /timed out/);
    assert.ok(r.next_attempt_at > r.updated_at, "a retry is scheduled");
  }
});

// ---- 1.10 the smaller ones -------------------------------------------------

const rawCreate = (json) =>
  server.fetch("/api/v1/apps", { method: "POST", headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" }, body: json });

test("secret_expires_in is bounded: an overflowing lifetime is 400 with a reason and nothing is stored", async () => {
  const appsBefore = (await first("SELECT count(*) AS n FROM apps")).n;
  for (const v of ["9223372036854775807", "315360001", "0", "-1"]) {
    const res = await rawCreate(`{"name":"Overflow","redirect_uris":["https://x.example/cb"],"scopes":["profile:read"],"secret_expires_in":${v}}`);
    assert.equal(res.status, 400, `secret_expires_in ${v}`);
    assert.match((await res.json()).error_description, /secret_expires_in/);
  }
  assert.equal((await first("SELECT count(*) AS n FROM apps")).n, appsBefore);
  const ok = await rawCreate(`{"name":"Ten years","redirect_uris":["https://x.example/cb"],"scopes":["profile:read"],"secret_expires_in":315360000}`);
  assert.equal(ok.status, 201);
  const created = await ok.json();
  assert.ok(created.secret_expires_at > Date.now() / 1000);

  const a = await app({ name: "Rotated overflow" });
  const hash = (await first("SELECT secret_hash FROM apps WHERE id = ?1", a.client_id)).secret_hash;
  const res = await server.fetch(`/api/v1/apps/${a.client_id}/secret`, {
    method: "POST", headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" }, body: `{"secret_expires_in":9223372036854775807}`,
  });
  assert.equal(res.status, 400);
  assert.equal((await first("SELECT secret_hash FROM apps WHERE id = ?1", a.client_id)).secret_hash, hash, "the secret was rotated anyway");
});

test("icon: only https URLs and base64 PNG/GIF/JPEG/WebP data URLs", async () => {
  for (const icon of ["javascript:alert(document.domain)", " javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+", "http://cdn.example/i.png", "vbscript:x"]) {
    const res = await api(server, "POST", "/api/v1/apps", { name: "Iconic", redirect_uris: ["https://x.example/cb"], scopes: ["profile:read"], icon });
    assert.equal(res.status, 400, icon);
    assert.match((await res.json()).error_description, /icon/);
  }
  const a = await app({ name: "Iconic", icon: "https://cdn.example/icon.png" });
  assert.equal(a.icon, "https://cdn.example/icon.png");
  const png = await app({ name: "Iconic png", icon: "data:image/png;base64,iVBORw0KGgo=" });
  assert.equal(png.icon, "data:image/png;base64,iVBORw0KGgo=");
  const res = await api(server, "PATCH", `/api/v1/apps/${a.client_id}`, { version: 1, icon: "javascript:alert(1)" });
  assert.equal(res.status, 400);
  assert.equal((await first("SELECT icon FROM apps WHERE id = ?1", a.client_id)).icon, "https://cdn.example/icon.png");
});

test("installation rows (other tenants, who installed) only for the owner org's admins; members get counts", async () => {
  const a = await app({ name: "Installed widely" });
  await tokensFor(server, alice, a, { scope: "profile:read" });
  await tokensFor(server, bob, a, { scope: "profile:read" }, { org: "org_globex" });
  const asMember = await carol.fetch(`/api/v1/apps/${a.client_id}/installations`);
  assert.equal(asMember.status, 200);
  const text = await asMember.text();
  assert.ok(!text.includes("usr_bob") && !text.includes("org_globex"), `a member sees another tenant's installation: ${text}`);
  const counts = JSON.parse(text);
  assert.equal(counts.count, 2);
  assert.equal(counts.installations, undefined);
  const asAdmin = await (await api(server, "GET", `/api/v1/apps/${a.client_id}/installations`)).json();
  assert.equal(asAdmin.count, 2);
  assert.deepEqual(asAdmin.installations.map((i) => i.org_id).sort(), ["org_acme", "org_globex"]);
  assert.equal(asAdmin.installations.find((i) => i.org_id === "org_globex").installed_by, "usr_bob");
  assert.equal((await bob.fetch(`/api/v1/apps/${a.client_id}/installations`)).status, 404, "not in the owner org");
});

test("the count of authorized workspaces drops when the only user of a workspace revokes (fsckmsft)", async () => {
  const a = await app({ name: "Counted" });
  await tokensFor(server, alice, a, { scope: "profile:read" });
  await tokensFor(server, bob, a, { scope: "profile:read" }, { org: "org_globex" });
  const count = async () => (await (await api(server, "GET", `/api/v1/apps/${a.client_id}/installations`)).json()).count;
  assert.equal(await count(), 2);
  const res = await bob.fetch(`/api/v1/me/authorizations/${a.client_id}`, { method: "DELETE", headers: { "x-csrf-token": await bob.csrf() } });
  assert.equal(res.status, 204);
  assert.equal(await count(), 1, "Globex has no live authorization left");
  // A bot (actor app) install counts while it lives, whoever has revoked.
  const botApp = await app({ name: "Counted bot", actor_modes: ["app", "self"] });
  await tokensFor(server, bob, botApp, { scope: "profile:read" }, { org: "org_globex", actor: "app" });
  await run("UPDATE grants SET revoked_at = 1 WHERE app_id = ?1", botApp.client_id);
  assert.equal((await (await api(server, "GET", `/api/v1/apps/${botApp.client_id}/installations`)).json()).count, 1);
});

function signatures(headers) {
  const parts = headers["webhook-signature"].split(",").map((p) => p.split("="));
  return { t: parts.find(([k]) => k === "t")[1], v1: parts.filter(([k]) => k === "v1").map(([, v]) => v) };
}
const sign = (secret, t, body) => createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
const matches = (a, b) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

test("the webhook signing secret rotates, and both secrets sign during the overlap", async () => {
  const r = await receiver();
  const a = await app({ name: "Rotating hooks", webhook_url: r.url });
  const old = a.webhook_signing_secret;
  const t = await tokensFor(server, bob, a, { scope: "profile:read webhooks:manage" }, { org: "org_globex" });
  const sub = await bearer(server, "/api/v1/webhooks/subscription", t.access_token, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: ["secret.rotated"] }) });
  assert.equal(sub.status, 200);

  for (const bad of [{ overlap_seconds: -1 }, { overlap_seconds: 604801 }, { overlap: 5 }]) {
    assert.equal((await api(server, "POST", `/api/v1/apps/${a.client_id}/webhook-secret`, bad)).status, 400, JSON.stringify(bad));
  }
  assert.equal((await first("SELECT webhook_secret FROM apps WHERE id = ?1", a.client_id)).webhook_secret, old);
  const carolCsrf = await carol.csrf();
  assert.equal((await carol.fetch(`/api/v1/apps/${a.client_id}/webhook-secret`, { method: "POST", headers: { "x-csrf-token": carolCsrf } })).status, 403, "a member cannot rotate");

  let res = await api(server, "POST", `/api/v1/apps/${a.client_id}/webhook-secret`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("cache-control") ?? "", /no-store/);
  const rotated = await res.json();
  const fresh = rotated.webhook_signing_secret;
  assert.match(fresh, /^whsec_/);
  assert.notEqual(fresh, old);
  assert.ok(rotated.previous_secret_valid_until > Date.now() / 1000);
  assert.equal(await auditCount(a.client_id, "app.webhook_secret_rotated"), 1);

  // During the overlap: one signature per secret, the new one first.
  const d1 = await eventually(() => r.got.find((x) => x.headers["webhook-event"] === "secret.rotated"));
  let s = signatures(d1.headers);
  assert.equal(s.v1.length, 2);
  assert.ok(matches(s.v1[0], sign(fresh, s.t, d1.body)), "signed with the new secret");
  assert.ok(matches(s.v1[1], sign(old, s.t, d1.body)), "and with the previous one");

  // After the overlap: the new one only.
  await run("UPDATE webhook_secret_previous SET expires_at = 1 WHERE app_id = ?1", a.client_id);
  r.got.length = 0;
  assert.equal((await api(server, "POST", `/api/v1/apps/${a.client_id}/secret`)).status, 200);
  const d2 = await eventually(() => r.got.find((x) => x.headers["webhook-event"] === "secret.rotated"));
  s = signatures(d2.headers);
  assert.equal(s.v1.length, 1);
  assert.ok(matches(s.v1[0], sign(fresh, s.t, d2.body)));

  // overlap_seconds 0: the previous secret stops at once.
  res = await api(server, "POST", `/api/v1/apps/${a.client_id}/webhook-secret`, { overlap_seconds: 0 });
  assert.equal(res.status, 200);
  const third = (await res.json()).webhook_signing_secret;
  r.got.length = 0;
  assert.equal((await api(server, "POST", `/api/v1/apps/${a.client_id}/secret`)).status, 200);
  const d3 = await eventually(() => r.got.find((x) => x.headers["webhook-event"] === "secret.rotated" && JSON.parse(x.body).data.secret === undefined));
  s = signatures(d3.headers);
  assert.deepEqual(s.v1.length, 1);
  assert.ok(matches(s.v1[0], sign(third, s.t, d3.body)));
});
