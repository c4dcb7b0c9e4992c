// Issue 8: a database outage is a 503 with Retry-After and no internal text,
// readiness reports the database, an unset ISSUER is never taken from a Host
// header, and per-caller API answers are never cached.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, Browser, registerApp, tokensFor, bearer, api, basic, form, FORM, authorizeQuery, DEV_API_KEY,
} from "./support.mjs";

let server, alice, app, tokens;
before(async () => {
  server = await startServer();
  app = await registerApp(server);
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  tokens = await tokensFor(server, alice, app);
});
after(() => server.close());

const INTERNAL = /D1_ERROR|SQLITE|no such table|storage error/i;

/** Run `fn` while the named table is missing (as after a failed migration). */
async function withoutTable(table, fn) {
  await server.db.prepare(`ALTER TABLE ${table} RENAME TO ${table}_gone`).run();
  try {
    await fn();
  } finally {
    await server.db.prepare(`ALTER TABLE ${table}_gone RENAME TO ${table}`).run();
  }
}

test("a database failure answers 503 with Retry-After and no internal text, on every kind of route", async () => {
  await withoutTable("apps", async () => {
    const token = await server.fetch("/oauth/token", {
      method: "POST",
      headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) },
      body: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }),
    });
    const api1 = await api(server, "GET", "/api/v1/apps");
    const page = await alice.fetch(`/oauth/authorize?${authorizeQuery(app)}`);
    for (const [name, res, type] of [
      ["token", token, /json/],
      ["management API", api1, /json/],
      ["authorize page", page, /text\/html/],
    ]) {
      const body = await res.text();
      assert.equal(res.status, 503, `${name}: ${res.status} ${body}`);
      assert.match(res.headers.get("retry-after") ?? "", /^\d+$/, name);
      assert.match(res.headers.get("content-type"), type, name);
      assert.doesNotMatch(body, INTERNAL, name);
    }
    assert.equal(JSON.parse(await (await api(server, "GET", "/api/v1/apps")).text()).error, "temporarily_unavailable");
  });
  // The text went to the log line, for the operator.
  assert.ok(server.log.lines.some((l) => l.includes('"status":503') && /no such table/.test(l)));
  // And the outage changed nothing: the refresh token still works afterwards.
  const res = await server.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) },
    body: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }),
  });
  assert.equal(res.status, 200);
});

test("a bearer check during an outage is 503, not a 401 that tells the app its token is dead", async () => {
  const fresh = await tokensFor(server, alice, app, { prompt: "consent" });
  await withoutTable("grants", async () => {
    const res = await bearer(server, "/api/v1/me", fresh.access_token);
    assert.equal(res.status, 503, await res.clone().text());
    assert.doesNotMatch(await res.text(), INTERNAL);
  });
  assert.equal((await bearer(server, "/api/v1/me", fresh.access_token)).status, 200);
});

test("/ready reports the database; /health stays a liveness check", async () => {
  let res = await server.fetch("/ready");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, database: "ok" });
  await withoutTable("tokens", async () => {
    res = await server.fetch("/ready");
    assert.equal(res.status, 503);
    assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
    const body = await res.text();
    assert.deepEqual(JSON.parse(body), { ok: false, database: "unavailable" });
    assert.equal((await server.fetch("/health")).status, 200);
  });
});

test("per-caller API answers carry Cache-Control: no-store", async () => {
  const fresh = await tokensFor(server, alice, app, { prompt: "consent" });
  const me = await bearer(server, "/api/v1/me", fresh.access_token);
  assert.equal(me.status, 200);
  assert.match(me.headers.get("cache-control") ?? "", /no-store/);
  for (const [path, res] of [
    ["/api/v1/me/authorizations", await alice.fetch("/api/v1/me/authorizations")],
    ["/api/v1/orgs/org_acme/audit", await api(server, "GET", "/api/v1/orgs/org_acme/audit")],
    [`/api/v1/apps/${app.client_id}/deliveries`, await api(server, "GET", `/api/v1/apps/${app.client_id}/deliveries`)],
  ]) {
    assert.equal(res.status, 200, `${path}: ${res.status} ${await res.clone().text()}`);
    assert.match(res.headers.get("cache-control") ?? "", /no-store/, path);
  }
});

test("CORS preflight allows PUT for PUT /api/v1/webhooks/subscription", async () => {
  const res = await server.fetch("/api/v1/webhooks/subscription", {
    method: "OPTIONS",
    headers: { origin: "https://app.example", "access-control-request-method": "PUT" },
  });
  assert.equal(res.status, 204);
  assert.match(res.headers.get("access-control-allow-methods") ?? "", /\bPUT\b/);
});

test("without ISSUER the issuer is never taken from a non-loopback Host; metadata from a derived issuer is not cached", async () => {
  // Loopback (development): the request origin is the issuer, not cacheable.
  let res = await server.fetch("/.well-known/oauth-authorization-server");
  assert.equal(res.status, 200);
  assert.equal((await res.json()).issuer, server.base);
  assert.match(res.headers.get("cache-control") ?? "", /no-store/);
  // Any other host: refused as a configuration error, nothing served or cached.
  res = await server.mf.dispatchFetch("https://attacker.example/.well-known/oauth-authorization-server");
  const body = await res.text();
  assert.equal(res.status, 500, body);
  assert.doesNotMatch(body, /attacker\.example/);
  assert.equal(res.headers.get("cache-control")?.includes("public") ?? false, false);
});

test("with ISSUER set, metadata names it whatever the Host, and is cacheable", async () => {
  const s = await startServer({ ISSUER: "https://auth.example.com" });
  try {
    const res = await s.mf.dispatchFetch("https://other.example/.well-known/oauth-authorization-server");
    assert.equal(res.status, 200);
    assert.equal((await res.json()).issuer, "https://auth.example.com");
    assert.match(res.headers.get("cache-control"), /public/);
  } finally {
    await s.close();
  }
});

test("a malformed ISSUER is a configuration error", async () => {
  const s = await startServer({ ISSUER: "auth.example.com/path?x" });
  try {
    const res = await s.fetch("/health");
    assert.equal(res.status, 500);
    assert.ok(s.log.lines.some((l) => l.includes("bad configuration") && l.includes("ISSUER")));
  } finally {
    await s.close();
  }
});
