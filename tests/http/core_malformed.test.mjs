// Malformed, hostile and oversized input on every endpoint: always a 4xx with
// a reason, never a 5xx, and nothing changes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, registerApp, DEV_API_KEY, basic, FORM } from "./support.mjs";

let server, app, alice, csrf;
before(async () => {
  server = await startServer();
  app = await registerApp(server);
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  csrf = await alice.csrf();
});
after(() => server.close());

const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x7b, 0x22]);
const huge = "a=" + "x".repeat(70 * 1024);
const bodies = [
  ["empty form", FORM, ""],
  ["wrong content type", { "content-type": "text/plain" }, "grant_type=authorization_code"],
  ["json instead of form", { "content-type": "application/json" }, '{"grant_type":"authorization_code"}'],
  ["invalid json", { "content-type": "application/json" }, "{nope"],
  ["binary garbage", { "content-type": "application/x-www-form-urlencoded" }, garbage],
  ["repeated parameters", FORM, "grant_type=authorization_code&grant_type=refresh_token&code=a&code=b"],
  ["over-long values", FORM, `grant_type=refresh_token&refresh_token=rt_${"x".repeat(5000)}&client_id=${"y".repeat(5000)}`],
  ["broken percent-encoding", FORM, "grant_type=%zz&code=%&client_id=%ff%fe"],
  ["oversized body", FORM, huge],
];

async function check(path, extraHeaders = {}, session = false) {
  for (const [name, headers, body] of bodies) {
    const init = { method: "POST", headers: { ...headers, ...extraHeaders }, body };
    const res = session ? await alice.fetch(path, init) : await server.fetch(path, init);
    assert.ok(res.status >= 400 && res.status < 500, `${path} ${name}: ${res.status} ${await res.clone().text()}`);
    if (name === "oversized body") assert.equal(res.status, 413, `${path} oversized`);
  }
}

test("token endpoint: RFC 6749 JSON errors, never 5xx", async () => {
  await check("/oauth/token");
  await check("/oauth/token", { authorization: basic(app.client_id, app.client_secret) });
  const res = await server.fetch("/oauth/token", { method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) }, body: "grant_type=authorization_code&grant_type=refresh_token" });
  assert.equal(res.status, 400);
  const e = await res.json();
  assert.equal(e.error, "invalid_request");
  assert.match(e.error_description, /more than once/);
  const bad = await server.fetch("/oauth/token", { method: "POST", headers: { ...FORM, authorization: "Basic !!!notbase64" }, body: "grant_type=client_credentials" });
  assert.equal(bad.status, 401);
  const both = await server.fetch("/oauth/token", {
    method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) },
    body: `grant_type=client_credentials&client_id=${app.client_id}&client_secret=${app.client_secret}`,
  });
  assert.equal((await both.json()).error, "invalid_request", "two authentication methods at once");
});

test("revoke and introspect: 4xx on malformed input", async () => {
  await check("/oauth/revoke");
  await check("/oauth/introspect");
  await check("/oauth/revoke", { authorization: basic(app.client_id, app.client_secret) });
  await check("/oauth/introspect", { authorization: basic(app.client_id, app.client_secret) });
});

test("sign-in and consent forms: 4xx on malformed input", async () => {
  await check("/signin");
  await check("/oauth/authorize", {}, true);
  await check("/signout", {}, true);
});

test("management API: bad JSON, wrong types, unknown fields, bad keys", async () => {
  await check("/api/v1/apps", { authorization: `Bearer ${DEV_API_KEY}` });
  const post = (body, key = DEV_API_KEY) =>
    server.fetch("/api/v1/apps", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });
  for (const body of [
    "[]", "null", '{"name": 5}', '{"name":"a","redirect_uris":"https://a.example","scopes":["posts:read"]}',
    '{"name":"a","redirect_uri":["https://a.example/cb"],"scopes":["posts:read"]}',
    JSON.stringify({ name: "x".repeat(101), redirect_uris: ["https://a.example/cb"], scopes: ["posts:read"] }),
    JSON.stringify({ name: "a", description: "d".repeat(401), redirect_uris: ["https://a.example/cb"], scopes: ["posts:read"] }),
    JSON.stringify({ name: "a", redirect_uris: ["http://a.example/cb"], scopes: ["posts:read"] }),
    JSON.stringify({ name: "a", redirect_uris: ["https://*.example/cb"], scopes: ["posts:read"] }),
    JSON.stringify({ name: "a", redirect_uris: ["https://a.example/cb#frag"], scopes: ["posts:read"] }),
    JSON.stringify({ name: "a", redirect_uris: ["https://a.example/cb"], scopes: ["admin:everything"] }),
    JSON.stringify({ name: "a", redirect_uris: ["https://a.example/cb"], scopes: ["posts:read"], homepage_url: "javascript:alert(1)" }),
    JSON.stringify({ name: "a", redirect_uris: ["https://a.example/cb"], scopes: ["posts:read"], client_type: "spa" }),
    JSON.stringify({ name: "a", redirect_uris: ["https://a.example/cb"], scopes: ["posts:read"], actor_modes: ["root"] }),
  ]) {
    const res = await post(body);
    assert.equal(res.status, 400, body);
    const e = await res.json();
    assert.equal(e.error, "invalid_request");
    assert.ok(e.error_description.length > 5);
  }
  assert.equal((await post("{}", "key_not_a_real_key")).status, 401);
  assert.equal((await post("{}", "garbage")).status, 401);
  const noAuth = await server.fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(noAuth.status, 401);
  const apps = await (await server.fetch("/api/v1/apps", { headers: { authorization: `Bearer ${DEV_API_KEY}` } })).json();
  assert.equal(apps.apps.length, 1, "nothing was created by bad input");
});

test("session-authenticated API calls need the CSRF header", async () => {
  const body = JSON.stringify({ name: "x", redirect_uris: ["https://a.example/cb"], scopes: ["posts:read"], org_id: "org_acme" });
  let res = await alice.fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json" }, body });
  assert.equal(res.status, 403);
  res = await alice.fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body });
  assert.equal(res.status, 201);
});

test("resource routes: malformed bearer headers are 401, never 5xx", async () => {
  for (const h of ["Bearer", "Bearer ", "Basic abc", "Bearer at_" + "x".repeat(5000), "Bearer at_\u00e9", "bearer  at_zzz"]) {
    for (const [method, path] of [["GET", "/api/v1/me"], ["GET", "/api/v1/posts"], ["POST", "/api/v1/posts"]]) {
      const res = await server.fetch(path, { method, headers: { authorization: h } });
      assert.equal(res.status, 401, `${method} ${path} ${h.slice(0, 20)}`);
      assert.match(res.headers.get("www-authenticate"), /^Bearer realm="api"/);
    }
  }
  const big = await server.fetch("/api/v1/posts", { method: "POST", headers: { authorization: "Bearer at_x" }, body: "x".repeat(70 * 1024) });
  assert.equal(big.status, 413);
});

test("authorize: hostile query strings get a page or an error redirect, never 5xx", async () => {
  for (const q of [
    "", "client_id=", `client_id=${app.client_id}&client_id=app_other`, "client_id=%ff%fe%00",
    `client_id=${app.client_id}&redirect_uri=%zz`, `client_id=${"a".repeat(10000)}`,
    `client_id=${app.client_id}&response_type=code&state=${"s".repeat(2000)}`,
    `client_id=${app.client_id}&response_type=code&scope=${encodeURIComponent('posts:read "x"')}`,
    `client_id=${app.client_id}&response_type=code&prompt=login`,
  ]) {
    const res = await alice.fetch(`/oauth/authorize?${q}`);
    assert.ok(res.status === 400 || res.status === 302, `${q.slice(0, 40)}: ${res.status}`);
    if (res.status === 302) assert.ok(new URL(res.headers.get("location")).searchParams.get("error"));
  }
});

test("unknown routes and methods are 404 JSON, OPTIONS preflight only where CORS applies", async () => {
  assert.equal((await server.fetch("/nope")).status, 404);
  assert.equal((await server.fetch("/oauth/token")).status, 404, "GET token");
  const pre = await server.fetch("/oauth/token", { method: "OPTIONS" });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  const noPre = await server.fetch("/oauth/authorize", { method: "OPTIONS" });
  assert.equal(noPre.headers.get("access-control-allow-origin"), null);
});
