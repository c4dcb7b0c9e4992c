// Issue 10, items 3 and 6: RFC 9728 protected resource metadata (and the
// `resource_metadata` parameter of every RFC 6750 challenge), and CORS for
// the MCP SDK's header and for error answers of CORS routes. Each test failed
// on the code before this change for the reason its name gives (see the
// report of branch mcp-f).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, registerApp, tokensFor, bearer, FORM, form, basic, freePort } from "./support.mjs";

const WK = "/.well-known/oauth-protected-resource";
let server, configured, app, tokens, readOnly;

before(async () => {
  server = await startServer();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  configured = await startServer(
    { RESOURCES: `${origin}/api/v1, ${origin}/mcp  https://api.example.com/v2` },
    { port },
  );
  app = await registerApp(server);
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  tokens = await tokensFor(server, alice, app, { scope: "profile:read posts:read posts:write" });
  readOnly = await tokensFor(server, alice, app, { scope: "profile:read", prompt: "consent" });
});
after(async () => {
  await server?.close();
  await configured?.close();
});

const preflight = (s, path, requestHeaders) =>
  s.fetch(path, {
    method: "OPTIONS",
    headers: {
      origin: "https://mcp-client.example",
      "access-control-request-method": "GET",
      "access-control-request-headers": requestHeaders,
    },
  });

/** The header names a preflight answer allows, lower-cased. */
const allowed = (res) =>
  (res.headers.get("access-control-allow-headers") ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);

/** `name="value"` of a WWW-Authenticate challenge. */
function param(challenge, name) {
  const m = (challenge ?? "").match(new RegExp(`${name}="([^"]*)"`));
  return m?.[1];
}

test("CORS preflight allows the MCP SDK's MCP-Protocol-Version header (with Authorization and Content-Type)", async () => {
  for (const path of ["/api/v1/me", "/oauth/token", "/.well-known/oauth-authorization-server", WK]) {
    const res = await preflight(server, path, "authorization, content-type, mcp-protocol-version");
    assert.equal(res.status, 204, path);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", path);
    for (const h of ["authorization", "content-type", "mcp-protocol-version"]) {
      assert.ok(allowed(res).includes(h), `${path}: ${h} not in ${allowed(res)}`);
    }
  }
});

test("a 404 under /api/ carries CORS, so a browser client sees the 404 instead of a network error", async () => {
  for (const [method, path] of [
    ["GET", "/api/v1/nothing-here"],
    ["POST", "/api/v2/me"],
    ["GET", "/api/v1/apps/x/y/z"],
  ]) {
    const res = await server.fetch(path, { method, headers: { origin: "https://mcp-client.example" } });
    assert.equal(res.status, 404, path);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", `${method} ${path}`);
    assert.equal((await res.json()).error, "not_found");
  }
});

test("API 401/403 answers carry CORS and expose WWW-Authenticate to the browser", async () => {
  const unauth = await server.fetch("/api/v1/me", { headers: { origin: "https://mcp-client.example" } });
  const forbidden = await bearer(server, "/api/v1/posts", readOnly.access_token, { method: "POST" });
  for (const [name, res, status] of [
    ["401", unauth, 401],
    ["403", forbidden, 403],
  ]) {
    assert.equal(res.status, status, name);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", name);
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    assert.match(exposed, /www-authenticate/, name);
  }
});

test("token, revoke and introspect errors carry CORS, also a 413 refused before any endpoint ran", async () => {
  const bad = await server.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) },
    body: form({ grant_type: "authorization_code", code: "code_nope", redirect_uri: app.redirect_uris[0] }),
  });
  const revoke = await server.fetch("/oauth/revoke", { method: "POST", headers: FORM, body: form({}) });
  const introspect = await server.fetch("/oauth/introspect", { method: "POST", headers: FORM, body: form({ token: "x" }) });
  const big = await server.fetch("/oauth/token", { method: "POST", headers: FORM, body: "a=" + "x".repeat(70 * 1024) });
  for (const [name, res] of [
    ["token", bad],
    ["revoke", revoke],
    ["introspect", introspect],
    ["413", big],
  ]) {
    assert.ok(res.status >= 400 && res.status < 500, `${name}: ${res.status}`);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", `${name} ${res.status}`);
  }
  assert.equal(big.status, 413);
});

test("a 503 from a storage failure on a CORS route keeps the CORS headers", async () => {
  await server.db.prepare("ALTER TABLE apps RENAME TO apps_gone").run();
  let res, page;
  try {
    res = await bearer(server, "/api/v1/me", tokens.access_token);
    page = await server.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code`);
  } finally {
    await server.db.prepare("ALTER TABLE apps_gone RENAME TO apps").run();
  }
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(page.status, 503);
  assert.equal(page.headers.get("access-control-allow-origin"), null);
});

test("RFC 9728: GET /.well-known/oauth-protected-resource/api/v1 serves the demo API's metadata by default", async () => {
  // Issue 15 item 16: at its path form only (RFC 9728 §3.1); the root is 404.
  assert.equal((await server.fetch(WK)).status, 404);
  const res = await server.fetch(`${WK}/api/v1`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /application\/json/);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  // ISSUER is unset here (derived from a loopback request): not cacheable.
  assert.equal(res.headers.get("cache-control"), "no-store");
  const doc = await res.json();
  assert.equal(doc.resource, `${server.base}/api/v1`);
  assert.deepEqual(doc.authorization_servers, [server.base]);
  assert.deepEqual(doc.bearer_methods_supported, ["header"]);
  for (const s of ["profile:read", "posts:read", "posts:write", "webhooks:manage"]) {
    assert.ok(doc.scopes_supported.includes(s), s);
  }
  // The AS metadata's issuer is the one listed.
  const as = await (await server.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(as.issuer, doc.authorization_servers[0]);
});

test("RFC 9728 §3.1: the path-suffixed form serves the resource whose identifier has that path", async () => {
  const res = await server.fetch(`${WK}/api/v1`);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).resource, `${server.base}/api/v1`);
  // Configured resources: each at its own path-suffixed URL; the root form
  // describes none of them (issue 15 item 16: only a bare-origin resource).
  for (const path of ["/api/v1", "/mcp"]) {
    const r = await configured.fetch(`${WK}${path}`);
    assert.equal(r.status, 200, path);
    const doc = await r.json();
    assert.equal(doc.resource, `${configured.base}${path}`);
    assert.deepEqual(doc.authorization_servers, [configured.base]);
  }
  assert.equal((await configured.fetch(WK)).status, 404);
});

test("RFC 9728: an unknown resource path is a 404, with CORS (the metadata route is a CORS route)", async () => {
  for (const [s, path] of [
    [server, `${WK}/api/v2`],
    [server, `${WK}/mcp`],
    [server, `${WK}/api`],
    [server, `${WK}/api/v1/me`],
    [configured, `${WK}/v2`],
    [configured, `${WK}/api/v1x`],
  ]) {
    const res = await s.fetch(path);
    assert.equal(res.status, 404, path);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", path);
  }
});

test("RFC 9728 §5.1: every Bearer challenge of the API names its resource_metadata URL", async () => {
  const expected = `${server.base}${WK}/api/v1`;
  const none = await server.fetch("/api/v1/me");
  const invalid = await bearer(server, "/api/v1/me", "at_not-a-real-token");
  const scope = await bearer(server, "/api/v1/posts", readOnly.access_token, { method: "POST" });
  const webhooks = await bearer(server, "/api/v1/webhooks/subscription", readOnly.access_token);
  const current = await server.fetch("/api/v1/apps/@me");
  for (const [name, res, status] of [
    ["no token", none, 401],
    ["invalid token", invalid, 401],
    ["insufficient scope", scope, 403],
    ["webhooks scope", webhooks, 403],
    ["apps/@me", current, 401],
  ]) {
    assert.equal(res.status, status, name);
    const challenge = res.headers.get("www-authenticate");
    assert.match(challenge ?? "", /^Bearer /, name);
    assert.equal(param(challenge, "resource_metadata"), expected, `${name}: ${challenge}`);
  }
  assert.equal(param(invalid.headers.get("www-authenticate"), "error"), "invalid_token");
  assert.equal(param(scope.headers.get("www-authenticate"), "scope"), "posts:write");
  // The URL it names serves the document for that resource.
  const doc = await (await fetch(expected)).json();
  assert.equal(doc.resource, `${server.base}/api/v1`);
  // And a valid token still works.
  assert.equal((await bearer(server, "/api/v1/me", tokens.access_token)).status, 200);
});

test("RFC 9728 §5.1: with RESOURCES configured, the challenge names the configured resource's document", async () => {
  const res = await configured.fetch("/api/v1/me");
  assert.equal(res.status, 401);
  assert.equal(
    param(res.headers.get("www-authenticate"), "resource_metadata"),
    `${configured.base}${WK}/api/v1`,
  );
});

test("CORS never appears on authorize, consent, sign-in, settings pages or the /admin/v1/ back office", async () => {
  const o = { origin: "https://evil.example" };
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  const answers = [
    ["GET /oauth/authorize", await alice.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code`, { headers: o })],
    ["POST /oauth/authorize", await server.fetch("/oauth/authorize", { method: "POST", headers: { ...FORM, ...o }, body: "" })],
    ["GET /signin", await server.fetch("/signin", { headers: o })],
    ["POST /signin", await server.fetch("/signin", { method: "POST", headers: { ...FORM, ...o }, body: "" })],
    ["GET /settings/apps", await alice.fetch("/settings/apps", { headers: o })],
    ["GET /settings/developer", await alice.fetch("/settings/developer", { headers: o })],
    ["GET /admin/v1/users", await server.fetch("/admin/v1/users", { headers: o })],
    ["GET /settings/nothing", await server.fetch("/settings/nothing", { headers: o })],
  ];
  for (const path of ["/oauth/authorize", "/signin", "/settings/apps", "/admin/v1/users", "/admin/v1/nothing"]) {
    answers.push([`OPTIONS ${path}`, await preflight(server, path, "authorization, mcp-protocol-version")]);
  }
  for (const [name, res] of answers) {
    assert.equal(res.headers.get("access-control-allow-origin"), null, `${name} (${res.status})`);
    assert.equal(res.headers.get("access-control-allow-headers"), null, name);
  }
});

test("a malformed RESOURCES value is a configuration error (500 on every request, logged), not ignored", async () => {
  for (const bad of ["http://api.example.com/v1", "api.example.com", "https://api.example.com/v1?x=1"]) {
    const s = await startServer({ RESOURCES: bad });
    try {
      const res = await s.fetch("/health");
      assert.equal(res.status, 500, bad);
      assert.ok(s.log.lines.some((l) => l.includes("bad configuration") && l.includes("RESOURCES")), bad);
    } finally {
      await s.close();
    }
  }
});

test("with ISSUER set: documents are cacheable, and a resource on another host is described when that host routes here", async () => {
  const s = await startServer({
    ISSUER: "https://auth.example.com",
    RESOURCES: "https://auth.example.com/api/v1 https://api.example.com/v2",
  });
  try {
    const own = await s.mf.dispatchFetch(`https://auth.example.com${WK}/api/v1`);
    assert.equal(own.status, 200);
    assert.match(own.headers.get("cache-control"), /public/);
    const doc = await own.json();
    assert.equal(doc.resource, "https://auth.example.com/api/v1");
    assert.deepEqual(doc.authorization_servers, ["https://auth.example.com"]);
    const other = await s.mf.dispatchFetch(`https://api.example.com${WK}/v2`);
    assert.equal(other.status, 200);
    assert.equal((await other.json()).resource, "https://api.example.com/v2");
    // Not on this origin: the other host's resource is not described here.
    assert.equal((await s.mf.dispatchFetch(`https://auth.example.com${WK}/v2`)).status, 404);
    const challenge = (await s.mf.dispatchFetch("https://auth.example.com/api/v1/me")).headers.get("www-authenticate");
    assert.equal(param(challenge, "resource_metadata"), `https://auth.example.com${WK}/api/v1`);
  } finally {
    await s.close();
  }
});

test("when RESOURCES does not list the demo API, its challenge names no document rather than a wrong one", async () => {
  const s = await startServer({ ISSUER: "https://auth.example.com", RESOURCES: "https://api.example.com/v2" });
  try {
    const res = await s.mf.dispatchFetch("https://auth.example.com/api/v1/me");
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="api"');
    assert.equal((await s.mf.dispatchFetch(`https://auth.example.com${WK}`)).status, 404);
  } finally {
    await s.close();
  }
});

test("the authorization server metadata lists its protected resources (RFC 9728 §4)", async () => {
  const meta = await (await server.fetch("/.well-known/oauth-authorization-server")).json();
  assert.deepEqual(meta.protected_resources, [`${server.base}/api/v1`]);
});
