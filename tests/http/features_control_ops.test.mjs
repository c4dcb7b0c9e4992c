// Users' and admins' revocation, the audit log, webhooks (loopback receiver),
// the cron sweep, structured logs, rate limits, in workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  startServer, Browser, registerApp, tokensFor, tokenRequest, bearer, api, eventually, basic, form, FORM,
} from "./support.mjs";

let server, alice, carol, bob, receiver, received, answer;
before(async () => {
  server = await startServer({ CLIENT_AUTH_MAX_FAILURES: "3", SIGNIN_MAX_FAILURES: "3" });
  alice = new Browser(server);
  carol = new Browser(server);
  bob = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  await carol.signIn("carol@acme.test", "carol-password");
  await bob.signIn("bob@globex.test", "bob-password");
  received = [];
  answer = 200;
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(answer).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
});
after(async () => {
  receiver.close();
  await server.close();
});

const app = (extra = {}) => registerApp(server, { scopes: ["profile:read", "posts:read", "posts:write", "webhooks:manage"], ...extra });

test("a user lists connected apps and revokes one; the others keep working", async () => {
  const a = await app({ name: "A" });
  const b = await app({ name: "B" });
  const ta = await tokensFor(server, alice, a, { scope: "profile:read" });
  const tb = await tokensFor(server, alice, b, { scope: "profile:read" });
  const list = await (await alice.fetch("/api/v1/me/authorizations")).json();
  assert.deepEqual(list.authorizations.map((x) => x.app_name).sort(), ["A", "B"]);
  let res = await alice.fetch(`/api/v1/me/authorizations/${a.client_id}`, { method: "DELETE" });
  assert.equal(res.status, 403, "needs the session's CSRF token");
  res = await alice.fetch(`/api/v1/me/authorizations/${a.client_id}`, { method: "DELETE", headers: { "x-csrf-token": await alice.csrf() } });
  assert.equal(res.status, 204);
  assert.equal((await bearer(server, "/api/v1/me", ta.access_token)).status, 401);
  assert.equal((await (await tokenRequest(server, a, { grant_type: "refresh_token", refresh_token: ta.refresh_token })).json()).error, "invalid_grant");
  assert.equal((await bearer(server, "/api/v1/me", tb.access_token)).status, 200);
});

test("an org admin lists installed apps and removes one; members cannot", async () => {
  const a = await app({ name: "Installed" });
  const t1 = await tokensFor(server, alice, a, { scope: "profile:read" });
  const t2 = await tokensFor(server, carol, a, { scope: "profile:read" });
  const other = await app({ name: "Untouched" });
  const t3 = await tokensFor(server, alice, other, { scope: "profile:read" });
  const inst = await (await api(server, "GET", "/api/v1/orgs/org_acme/installations")).json();
  const row = inst.installations.find((i) => i.app_id === a.client_id);
  assert.equal(row.live_authorizations, 2);
  const csrf = await carol.csrf();
  assert.equal((await carol.fetch(`/api/v1/orgs/org_acme/installations/${a.client_id}`, { method: "DELETE", headers: { "x-csrf-token": csrf } })).status, 403);
  assert.equal((await api(server, "DELETE", `/api/v1/orgs/org_acme/installations/${a.client_id}`)).status, 204);
  for (const t of [t1, t2]) assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
  assert.equal((await bearer(server, "/api/v1/me", t3.access_token)).status, 200);
  assert.equal((await api(server, "GET", "/api/v1/orgs/org_globex/installations")).status, 404, "another org's key");
});

test("the audit log records API calls as the authorizing user, newest first, paginated", async () => {
  const a = await app({ name: "Audited" });
  const t = await tokensFor(server, alice, a, { scope: "profile:read posts:write" });
  await bearer(server, "/api/v1/me", t.access_token);
  await bearer(server, "/api/v1/posts", t.access_token, { method: "POST" });
  await api(server, "PATCH", `/api/v1/apps/${a.client_id}`, { version: 1, name: "Audited 2" });
  const page = await eventually(async () => {
    const p = await (await api(server, "GET", "/api/v1/orgs/org_acme/audit?limit=200")).json();
    return p.events.some((e) => e.action === "app.updated" && e.app_id === a.client_id) && p;
  });
  const mine = page.events.filter((e) => e.app_id === a.client_id);
  const actions = mine.map((e) => e.action);
  // A successful read is not an action (AUDIT_API_READS=true records those too).
  assert.deepEqual(actions, ["app.updated", "api.posts.create", "authorization.granted", "app.created"]);
  const call = mine.find((e) => e.action === "api.posts.create");
  assert.deepEqual(call.actor, { type: "user", id: "usr_alice" });
  assert.ok(call.at > 0);
  const ids = page.events.map((e) => e.id);
  assert.deepEqual([...ids].sort((x, y) => y - x), ids, "newest first");
  const p1 = await (await api(server, "GET", "/api/v1/orgs/org_acme/audit?limit=2")).json();
  assert.equal(p1.events.length, 2);
  const p2 = await (await api(server, "GET", `/api/v1/orgs/org_acme/audit?limit=2&before=${p1.next_before}`)).json();
  assert.ok(p2.events[0].id < p1.events[1].id);
  assert.equal((await api(server, "GET", "/api/v1/orgs/org_acme/audit?limit=0")).status, 400);
});

function verify(secret, headers, body) {
  const [t, v1] = headers["webhook-signature"].split(",").map((p) => p.split("=")[1]);
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
  return t === headers["webhook-timestamp"] && timingSafeEqual(Buffer.from(v1), Buffer.from(expected));
}

test("webhooks: subscribing needs webhooks:manage; deliveries are signed, retried and recorded", async () => {
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  const a = await app({ name: "Hooked", webhook_url: hookUrl });
  assert.match(a.webhook_signing_secret, /^whsec_/);
  const member = await tokensFor(server, carol, a, { scope: "profile:read webhooks:manage" });
  const sub = (token, events) =>
    bearer(server, "/api/v1/webhooks/subscription", token, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ events }) });
  assert.equal((await sub(member.access_token, ["authorization.revoked"])).status, 403, "carol's role lacks webhooks:manage");
  const bobT = await tokensFor(server, bob, a, { scope: "profile:read webhooks:manage" }, { org: "org_globex" });
  let res = await sub(bobT.access_token, ["app.installed", "authorization.revoked", "secret.rotated", "app.deleted"]);
  assert.equal(res.status, 200);
  assert.deepEqual((await res.json()).events, ["app.deleted", "app.installed", "authorization.revoked", "secret.rotated"]);
  assert.equal((await sub(bobT.access_token, ["nope"])).status, 400);

  // authorization.revoked in Globex, signed.
  received.length = 0;
  assert.equal((await api(server, "POST", `/api/v1/apps/${a.client_id}/secret`)).status, 200);
  const rotated = await eventually(() => received.find((r) => r.headers["webhook-event"] === "secret.rotated"));
  assert.ok(verify(a.webhook_signing_secret, rotated.headers, rotated.body));
  const payload = JSON.parse(rotated.body);
  assert.equal(payload.type, "secret.rotated");
  assert.equal(payload.app_id, a.client_id);
  assert.ok(!verify("whsec_wrong", rotated.headers, rotated.body));

  // A failing receiver: recorded as pending with backoff, retried by cron.
  answer = 500;
  const bobCsrf = await bob.csrf();
  res = await bob.fetch(`/api/v1/me/authorizations/${a.client_id}`, { method: "DELETE", headers: { "x-csrf-token": bobCsrf } });
  assert.equal(res.status, 204);
  const pending = await eventually(async () => {
    const d = await (await api(server, "GET", `/api/v1/apps/${a.client_id}/deliveries`)).json();
    return d.deliveries.find((x) => x.event === "authorization.revoked" && x.attempts === 1) ;
  });
  assert.equal(pending.status, "pending");
  assert.equal(pending.last_status, 500);
  assert.ok(pending.next_attempt_at >= pending.created_at + 60);
  answer = 200;
  await server.db.prepare("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE status = 'pending'").run();
  await server.scheduled();
  const done = await (await api(server, "GET", `/api/v1/apps/${a.client_id}/deliveries`)).json();
  const retried = done.deliveries.find((x) => x.id === pending.id);
  assert.equal(retried.status, "delivered");
  assert.equal(retried.attempts, 2);
  const revoked = received.filter((r) => r.headers["webhook-event"] === "authorization.revoked");
  assert.equal(revoked.length, 2, "first attempt and the retry");
  assert.equal(revoked[0].headers["webhook-id"], revoked[1].headers["webhook-id"], "same id so the receiver can dedupe");
  assert.equal(JSON.parse(revoked[1].body).org_id, "org_globex");
});

test("the cron sweep deletes what expired, bounded and idempotent", async () => {
  const a = await app({ name: "Swept" });
  await tokensFor(server, alice, a, { scope: "profile:read" });
  const count = async (sql) => (await server.db.prepare(sql).first()).n;
  await server.db.prepare("UPDATE codes SET expires_at = 0").run();
  await server.db.prepare("INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES ('deadbeef', 'usr_alice', 0, 1)").run();
  await server.db.prepare("UPDATE tokens SET expires_at = 0 WHERE kind = 'access'").run();
  const liveSessions = await count("SELECT count(*) AS n FROM sessions WHERE expires_at > 1");
  await server.scheduled();
  assert.equal(await count("SELECT count(*) AS n FROM codes"), 0);
  assert.equal(await count("SELECT count(*) AS n FROM sessions WHERE hash = 'deadbeef'"), 0);
  assert.equal(await count("SELECT count(*) AS n FROM tokens WHERE kind = 'access'"), 0);
  assert.equal(await count("SELECT count(*) AS n FROM sessions"), liveSessions, "live sessions stay");
  assert.ok(await count("SELECT count(*) AS n FROM tokens WHERE kind = 'refresh'") > 0, "live refresh tokens stay");
  await server.scheduled();
  assert.equal(await count("SELECT count(*) AS n FROM sessions"), liveSessions, "idempotent");
});

test("rate limits: failed client secrets and failed sign-ins get 429 with Retry-After", async () => {
  const a = await app({ name: "Limited" });
  const bad = { ...a, client_secret: "sec_guess" };
  for (let i = 0; i < 3; i++) assert.equal((await tokenRequest(server, bad, { grant_type: "client_credentials" })).status, 401);
  let res = await tokenRequest(server, bad, { grant_type: "client_credentials" });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "900");
  const b = new Browser(server);
  for (let i = 0; i < 3; i++) assert.equal((await b.post("/signin", { email: "bob@globex.test", password: "guess" })).status, 401);
  res = await b.post("/signin", { email: "bob@globex.test", password: "bob-password" });
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get("retry-after")) > 0);
});

test("one JSON log line per request, never a secret, code or token", async () => {
  const before = server.log.lines.length;
  const a = await app({ name: "Logged" });
  const b = new Browser(server);
  await b.signIn("carol@acme.test", "carol-password");
  const t = await tokensFor(server, b, a, { scope: "profile:read" });
  const t2 = await (await tokenRequest(server, a, { grant_type: "refresh_token", refresh_token: t.refresh_token })).json();
  await bearer(server, "/api/v1/me", t2.access_token);
  await server.fetch("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: basic(a.client_id, a.client_secret) }, body: form({ token: t2.access_token }) });
  await server.fetch("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: basic(a.client_id, a.client_secret) }, body: form({ token: t.refresh_token }) });
  const lines = server.log.lines.slice(before).filter((l) => l.trim().startsWith("{"));
  assert.ok(lines.length >= 6);
  const parsed = lines.map((l) => JSON.parse(l));
  for (const p of parsed) for (const k of ["route", "method", "status", "ms"]) assert.ok(k in p, k);
  assert.ok(parsed.some((p) => p.route === "token/authorization_code" && p.app === a.client_id && p.org === "org_acme"));
  // The hot paths' D1 round trips are in the line: one batch per exchange and per refresh.
  assert.equal(parsed.find((p) => p.route === "token/authorization_code").d1, 1);
  assert.equal(parsed.find((p) => p.route === "token/refresh_token").d1, 1);
  assert.equal(parsed.find((p) => p.route === "me").d1, 1);
  assert.equal(parsed.find((p) => p.route === "revoke").d1, 1);
  assert.equal(parsed.find((p) => p.route === "introspect").d1, 1);
  const all = lines.join("\n");
  for (const secret of [a.client_secret, t.access_token, t.refresh_token, t2.access_token, t2.refresh_token, "carol-password", b.cookies.get("eo_session")]) {
    assert.ok(!all.includes(secret), "a secret leaked into the logs");
  }
  assert.ok(!/code_[A-Za-z0-9_-]{20}/.test(all) && !/ses_[A-Za-z0-9_-]{20}/.test(all));
});
