// Revocation (RFC 7009) and introspection (RFC 7662) edge cases, and races on
// refresh rotation, in workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, registerApp, tokensFor, tokenRequest, bearer, basic, form, FORM } from "./support.mjs";

let server, alice, app, other, platform;
before(async () => (server = await startServerWithPlatform()));
after(() => server.close());

// Client ids are random, so register the resource server first and restart
// with its id in INTROSPECTION_CLIENTS, copying its row into the new database.
async function startServerWithPlatform() {
  const first = await startServer();
  const rs = await registerApp(first, { name: "Resource server" });
  const row = await first.db.prepare("SELECT * FROM apps WHERE id = ?").bind(rs.client_id).first();
  await first.close();
  // Grace 0 (the default was 0 before issue 15, now 10 s): the races below
  // pin reuse detection at its strictest.
  const s = await startServer({ INTROSPECTION_CLIENTS: rs.client_id, REFRESH_REUSE_GRACE_SECONDS: "0" });
  const cols = Object.keys(row);
  await s.db.prepare(`INSERT INTO apps (${cols.join(",")}) VALUES (${cols.map(() => "?").join(",")})`).bind(...cols.map((c) => row[c])).run();
  platform = rs;
  alice = new Browser(s);
  await alice.signIn("alice@acme.test", "alice-password");
  app = await registerApp(s, { name: "Owner of the tokens" });
  other = await registerApp(s, { name: "Another app" });
  return s;
}

const post = (path, client, fields) =>
  server.fetch(path, { method: "POST", headers: { ...FORM, authorization: basic(client.client_id, client.client_secret) }, body: form(fields) });

test("introspection: own tokens active, other clients see inactive, the resource server sees all", async () => {
  const t = await tokensFor(server, alice, app, { scope: "profile:read" });
  let r = await (await post("/oauth/introspect", app, { token: t.access_token })).json();
  assert.equal(r.active, true);
  assert.equal(r.token_type, "Bearer");
  assert.equal(r.iss, server.base);
  r = await (await post("/oauth/introspect", app, { token: t.refresh_token })).json();
  assert.equal(r.active, true);
  assert.equal(r.token_type, "refresh_token");
  r = await (await post("/oauth/introspect", other, { token: t.access_token })).json();
  assert.deepEqual(r, { active: false });
  r = await (await post("/oauth/introspect", platform, { token: t.access_token })).json();
  assert.equal(r.active, true);
  assert.equal(r.client_id, app.client_id);
  r = await (await post("/oauth/introspect", app, { token: "at_not_a_token" })).json();
  assert.deepEqual(r, { active: false });
  const pub = await registerApp(server, { client_type: "public" });
  const res = await server.fetch("/oauth/introspect", { method: "POST", headers: FORM, body: form({ token: t.access_token, client_id: pub.client_id }) });
  assert.equal(res.status, 401, "introspection needs a confidential client");
});

test("revocation: another client's token is untouched; unknown tokens are 200; access revocation is per token", async () => {
  const t = await tokensFor(server, alice, app, { scope: "profile:read", prompt: "consent" });
  let res = await post("/oauth/revoke", other, { token: t.access_token });
  assert.equal(res.status, 200);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200, "not the other client's to revoke");
  res = await post("/oauth/revoke", app, { token: "rt_unknown", token_type_hint: "refresh_token" });
  assert.equal(res.status, 200);
  res = await post("/oauth/revoke", app, { token: t.access_token, token_type_hint: "access_token" });
  assert.equal(res.status, 200);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
  const next = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(next.status, 200, "revoking an access token leaves the refresh token");
  res = await server.fetch("/oauth/revoke", { method: "POST", headers: FORM, body: form({ token: t.refresh_token }) });
  assert.equal(res.status, 401, "revocation needs client authentication");
});

test("10 concurrent refreshes of one token: one rotation wins, the rest are reuse and kill the family", async () => {
  const t = await tokensFor(server, alice, app, { scope: "profile:read", prompt: "consent" });
  const results = await Promise.all(
    Array.from({ length: 10 }, () => tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token })),
  );
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, results.map((r) => r.status).join(","));
  const winner = await ok[0].json();
  assert.equal((await bearer(server, "/api/v1/me", winner.access_token)).status, 401, "reuse detected: family revoked");
  const issued = await server.db.prepare("SELECT count(*) AS n FROM tokens WHERE kind = 'refresh' AND rotated_to IS NULL AND grant_id = (SELECT grant_id FROM tokens WHERE rotated_to IS NOT NULL ORDER BY used_at DESC LIMIT 1)").first();
  assert.equal(issued.n, 1, "exactly one successor refresh token was written");
});
