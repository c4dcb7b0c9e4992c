// Issue 15 (second security review), items 4, 7 (dynamic registration cap),
// 10, 14 (high-S JWT twin), 15 (refresh grace default), 16, 17 and 18: each
// test failed on the code before its fix, for the reason its name gives.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  startServer, Browser, registerApp, authorizeQuery, hiddenFields, tokensFor, tokenRequest, clientRequest,
  bearer, api, testSigningKeys,
} from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

const ADMIN = "issue15-sec-c-admin-token-0123456789abcdefghijkl";
const EVIL = "https://evil.example/cb";
const WK = "/.well-known/oauth-protected-resource";
const sha = (s) => createHash("sha256").update(s).digest("hex");

// `server`: DCR open, CIMD on, opaque tokens with signing keys configured
// (item 18: unused keys). `jwt`: JWT access tokens checked offline.
let server, jwt, docs, alice, jwtAlice;

before(async () => {
  docs = await startDocumentServer();
  server = await startServer({
    DCR: "open",
    DCR_RATE_PER_HOUR: "1000",
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    PLATFORM_ADMIN_TOKEN: ADMIN,
    JWT_SIGNING_KEYS: testSigningKeys("unused"),
  });
  jwt = await startServer({ ACCESS_TOKEN_FORMAT: "jwt", BEARER_MODE: "jwt", JWT_SIGNING_KEYS: testSigningKeys("k15") });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  jwtAlice = new Browser(jwt);
  await jwtAlice.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await server?.close();
  await jwt?.close();
  await docs?.close();
});

const admin = (s, method, path, body) => api(s, method, `/admin/v1${path}`, body, ADMIN);

async function dynamicClient(s, name = "Self-registered", redirect = EVIL) {
  const res = await s.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [redirect], token_endpoint_auth_method: "none", client_name: name, scope: "profile:read" }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

let docN = 0;
function urlClient() {
  const path = `/issue15/client-${++docN}.json`;
  const client_id = docs.url(path);
  docs.route(path, {
    headers: { "cache-control": "max-age=60" },
    body: clientDocument(client_id, { redirect_uris: [EVIL], scope: "profile:read" }),
  });
  return { client_id, redirect_uris: [EVIL] };
}

// ---- item 4: no redirect to an unvetted client's URI before the user acted ----

/** Each authorize error past redirect-URI validation, as query overrides (for a signed-in user unless `anon`). */
const ERRORS = {
  "unsupported_response_type": { q: { response_type: "token" } },
  "invalid_scope": { q: { scope: "no:such-scope" } },
  "invalid_target": { q: { resource: "https://other.example/api" } },
  "invalid_request (no PKCE)": { q: { code_challenge: undefined } },
  "invalid_request (bad prompt)": { q: { prompt: "bogus" } },
  "login_required (prompt=none)": { q: { prompt: "none" }, anon: true },
  "consent_required (prompt=none)": { q: { prompt: "none" } },
};

async function tryErrors(app, browser, anon) {
  const out = {};
  for (const [kind, { q, anon: isAnon }] of Object.entries(ERRORS)) {
    const b = isAnon ? anon : browser;
    const res = await b.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "profile:read", ...q })}`);
    out[kind] = { status: res.status, location: res.headers.get("location"), type: res.headers.get("content-type"), body: await res.text() };
  }
  return out;
}

test("item 4: an unvetted client's authorize errors are pages, never a 302 to its redirect URI (self-registered and metadata document)", async () => {
  const anon = new Browser(server);
  const kinds = { "self-registered": await dynamicClient(server), "metadata document": urlClient() };
  for (const [who, c] of Object.entries(kinds)) {
    const app = { client_id: c.client_id, redirect_uris: [EVIL] };
    const results = await tryErrors(app, alice, anon);
    for (const [kind, r] of Object.entries(results)) {
      assert.equal(r.location, null, `${who}, ${kind}: redirected to ${r.location}`);
      assert.equal(r.status, 400, `${who}, ${kind}: ${r.status}`);
      assert.match(r.type, /text\/html/, `${who}, ${kind}`);
      assert.match(r.body, /not sent back to it automatically/, `${who}, ${kind}`);
    }
  }
});

test("item 4: a vetted platform app still gets each error at its redirect URI (302)", async () => {
  const anon = new Browser(server);
  const app = await registerApp(server, { name: "Vetted", redirect_uris: [EVIL], scopes: ["profile:read"] });
  const results = await tryErrors(app, alice, anon);
  const expected = {
    "unsupported_response_type": "unsupported_response_type",
    "invalid_scope": "invalid_scope",
    "invalid_target": "invalid_target",
    "invalid_request (no PKCE)": "invalid_request",
    "invalid_request (bad prompt)": "invalid_request",
    "login_required (prompt=none)": "login_required",
    "consent_required (prompt=none)": "consent_required",
  };
  for (const [kind, r] of Object.entries(results)) {
    assert.equal(r.status, 302, `${kind}: ${r.status} ${r.body.slice(0, 200)}`);
    const to = new URL(r.location);
    assert.equal(`${to.origin}${to.pathname}`, EVIL, kind);
    assert.equal(to.searchParams.get("error"), expected[kind], kind);
  }
});

test("item 4: after the user denies on consent, an unvetted client gets access_denied at its redirect URI", async () => {
  const c = await dynamicClient(server, "Denied");
  const app = { client_id: c.client_id, redirect_uris: [EVIL] };
  const page = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "profile:read", prompt: "consent" })}`);
  assert.equal(page.status, 200);
  const res = await alice.post("/oauth/authorize", { ...hiddenFields(await page.text()), org: "org_acme", decision: "deny" });
  assert.equal(res.status, 303);
  const to = new URL(res.headers.get("location"));
  assert.equal(`${to.origin}${to.pathname}`, EVIL);
  assert.equal(to.searchParams.get("error"), "access_denied");
});

// ---- item 10: RFC 7592 management by a suspended or deleted client --------

test("item 10: a suspended or deleted dynamic client cannot read or change its registration (RFC 7592 §2: 401)", async () => {
  const c = await dynamicClient(server, "Managed", "https://client.example/cb");
  const uri = new URL(c.registration_client_uri).pathname;
  const rat = c.registration_access_token;
  const manage = (method, body) => api(server, method, uri, body, rat);
  const swap = { client_id: c.client_id, redirect_uris: [EVIL], token_endpoint_auth_method: "none", client_name: "Managed" };
  assert.equal((await manage("GET")).status, 200, "the control: an active client reads itself");
  assert.equal((await admin(server, "PATCH", `/clients/${c.client_id}`, { status: "suspended" })).status, 200);
  const read = await manage("GET");
  assert.equal(read.status, 401, `suspended: GET ${read.status}`);
  assert.match(read.headers.get("www-authenticate") ?? "", /invalid_token/);
  assert.equal((await manage("PUT", swap)).status, 401, "suspended: PUT");
  assert.equal((await manage("DELETE")).status, 401, "suspended: DELETE");
  const row = await server.db.prepare("SELECT redirect_uris FROM apps WHERE id = ?").bind(c.client_id).first();
  assert.deepEqual(JSON.parse(row.redirect_uris), ["https://client.example/cb"], "no redirect URI swapped while suspended");
  assert.equal((await admin(server, "PATCH", `/clients/${c.client_id}`, { status: "active" })).status, 200);
  assert.equal((await manage("GET")).status, 200, "reactivated: manages itself again");
  assert.equal((await admin(server, "DELETE", `/clients/${c.client_id}`)).status, 204);
  assert.equal((await manage("GET")).status, 401, "deleted: GET");
  assert.equal((await manage("PUT", swap)).status, 401, "deleted: PUT");
});

// ---- item 7 (DCR half): the dynamic registration cap ------------------------

test("item 7: deleted dynamic clients free DCR_MAX_CLIENTS; the back office shows the cap's use (GET /admin/v1/client-caps)", async () => {
  const s = await startServer({ DCR: "open", DCR_MAX_CLIENTS: "2", DCR_RATE_PER_HOUR: "1000", PLATFORM_ADMIN_TOKEN: ADMIN });
  try {
    const register = () =>
      s.fetch("/oauth/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["https://squat.example/cb"], token_endpoint_auth_method: "none", scope: "profile:read" }),
      });
    const squatters = [await (await register()).json(), await (await register()).json()];
    assert.equal((await register()).status, 429, "the control: the cap holds");
    for (const q of squatters) assert.equal((await admin(s, "DELETE", `/clients/${q.client_id}`)).status, 204);
    const fresh = await register();
    assert.equal(fresh.status, 201, `after the operator deleted every squatter: ${fresh.status} ${await fresh.clone().text()}`);
    const client = await fresh.json();
    // "Used" means a code was issued: only then is the client counted as used.
    const caps = async () => {
      const res = await admin(s, "GET", "/client-caps");
      assert.equal(res.status, 200, `GET /admin/v1/client-caps: ${res.status}`);
      return (await res.json()).dynamic;
    };
    let d = await caps();
    assert.deepEqual([d.max_clients, d.clients, d.used, d.never_used], [2, 1, 0, 1]);
    assert.equal(typeof d.oldest_unused_at, "number");
    const b = new Browser(s);
    await b.signIn("alice@acme.test", "alice-password");
    await tokensFor(s, b, { client_id: client.client_id, redirect_uris: ["https://squat.example/cb"] }, { scope: "profile:read" });
    d = await caps();
    assert.deepEqual([d.clients, d.used, d.never_used, d.oldest_unused_at], [1, 1, 0, null]);
    assert.equal((await s.fetch("/admin/v1/client-caps")).status, 401, "the admin token is needed");
  } finally {
    await s.close();
  }
});

// ---- item 14: the high-S twin of our own JWT -------------------------------

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The same JWT with s' = n - s: a second valid ECDSA signature of the same bytes. */
function highSTwin(token) {
  const [h, p, sig] = token.split(".");
  const raw = Buffer.from(sig, "base64url");
  assert.equal(raw.length, 64);
  const s = BigInt(`0x${raw.subarray(32).toString("hex")}`);
  const twin = Buffer.concat([raw.subarray(0, 32), Buffer.from((N - s).toString(16).padStart(64, "0"), "hex")]);
  return `${h}.${p}.${twin.toString("base64url")}`;
}

test("item 14: the high-S twin of a valid access token is refused in jwt bearer mode and at introspection", async () => {
  const app = await registerApp(jwt, { name: "Twin", scopes: ["profile:read"] });
  const t = await tokensFor(jwt, jwtAlice, app, { scope: "profile:read" });
  const twin = highSTwin(t.access_token);
  assert.notEqual(twin, t.access_token);
  assert.equal((await bearer(jwt, "/api/v1/me", t.access_token)).status, 200, "the control: the token itself");
  const info = await (await clientRequest(jwt, "/oauth/introspect", app, { token: t.access_token })).json();
  assert.equal(info.active, true, "the control at introspection");
  const res = await bearer(jwt, "/api/v1/me", twin);
  assert.equal(res.status, 401, `the twin at /api/v1/me: ${res.status}`);
  assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
  const twinInfo = await (await clientRequest(jwt, "/oauth/introspect", app, { token: twin })).json();
  assert.equal(twinInfo.active, false, "the twin at introspection");
});

// ---- item 15: the refresh reuse grace by default ----------------------------

test("item 15: with the shipped defaults, two concurrent refreshes of one token both succeed and the grant lives", async () => {
  const app = await registerApp(server, { name: "Concurrent", scopes: ["profile:read"] });
  const t = await tokensFor(server, alice, app, { scope: "profile:read" });
  const refresh = () => tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  const [a, b] = await Promise.all([refresh(), refresh()]);
  assert.deepEqual([a.status, b.status], [200, 200], `${await a.clone().text()} ${await b.clone().text()}`);
  for (const r of [await a.json(), await b.json()]) assert.equal((await bearer(server, "/api/v1/me", r.access_token)).status, 200);
});

test("item 15: a reuse outside the grace window still revokes the whole family", async () => {
  const app = await registerApp(server, { name: "Late reuse", scopes: ["profile:read"] });
  const t = await tokensFor(server, alice, app, { scope: "profile:read" });
  const refresh = (rt) => tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: rt });
  const next = await (await refresh(t.refresh_token)).json();
  // The window is anchored at the first rotation: move it 11 s into the past.
  await server.db.prepare("UPDATE tokens SET used_at = used_at - 11 WHERE hash = ?").bind(sha(t.refresh_token)).run();
  const late = await refresh(t.refresh_token);
  assert.equal(late.status, 400);
  assert.equal((await late.json()).error, "invalid_grant");
  assert.equal((await bearer(server, "/api/v1/me", next.access_token)).status, 401, "the family is revoked");
  assert.equal((await refresh(next.refresh_token)).status, 400);
});

// ---- item 16: RFC 9728 §3.1 paths ------------------------------------------

test("item 16: the root protected-resource document exists only for a bare-origin resource; /api/v1 is at its path form", async () => {
  const root = await server.fetch(WK);
  assert.equal(root.status, 404, `GET ${WK}: ${root.status} ${await root.clone().text()}`);
  const res = await bearer(server, "/api/v1/me", "at_nonsense");
  assert.equal(res.status, 401);
  const named = (res.headers.get("www-authenticate") ?? "").match(/resource_metadata="([^"]*)"/)?.[1];
  assert.equal(named, `${server.base}${WK}/api/v1`);
  const doc = await (await server.fetch(new URL(named).pathname)).json();
  assert.equal(doc.resource, `${server.base}/api/v1`);
  // A resource that is the bare origin is described at the root.
  const s = await startServer({ ISSUER: "https://auth.example.com", RESOURCES: "https://auth.example.com, https://auth.example.com/api/v1" });
  try {
    const bare = await s.mf.dispatchFetch(`https://auth.example.com${WK}`);
    assert.equal(bare.status, 200);
    assert.equal((await bare.json()).resource, "https://auth.example.com");
  } finally {
    await s.close();
  }
});

// ---- items 17 and 18: discovery documents -----------------------------------

const DOCS = ["/.well-known/oauth-authorization-server", "/.well-known/jwks.json", `${WK}/api/v1`];

test("item 17: every discovery document answers the CORS preflight and HEAD", async () => {
  for (const path of DOCS) {
    const pre = await jwt.fetch(path, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET", "access-control-request-headers": "mcp-protocol-version" },
    });
    assert.equal(pre.status, 204, `OPTIONS ${path}: ${pre.status}`);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*", `OPTIONS ${path}`);
    const get = await jwt.fetch(path);
    assert.equal(get.status, 200, `GET ${path}`);
    assert.equal(get.headers.get("access-control-allow-origin"), "*", `GET ${path}`);
    const head = await jwt.fetch(path, { method: "HEAD" });
    assert.equal(head.status, 200, `HEAD ${path}: ${head.status}`);
    assert.match(head.headers.get("content-type") ?? "", /application\/json/, `HEAD ${path}`);
    assert.equal(head.headers.get("access-control-allow-origin"), "*", `HEAD ${path}`);
    assert.equal((await head.arrayBuffer()).byteLength, 0, `HEAD ${path}: no body`);
  }
  // Not every route answers HEAD: the token endpoint is not a document.
  assert.equal((await jwt.fetch("/oauth/token", { method: "HEAD" })).status, 404);
});

test("item 18: jwks_uri is advertised and the JWKS served only while access tokens are JWTs", async () => {
  // Without OpenID (whose ID tokens the JWKS verifies): keys that sign nothing stay unpublished.
  const unused = await startServer({ OPENID: "off", JWT_SIGNING_KEYS: testSigningKeys("unused") });
  try {
    const opaque = await (await unused.fetch("/.well-known/oauth-authorization-server")).json();
    assert.equal(opaque.jwks_uri, undefined, `opaque tokens, keys configured: jwks_uri ${opaque.jwks_uri}`);
    const none = await unused.fetch("/.well-known/jwks.json");
    assert.equal(none.status, 404);
    assert.equal(none.headers.get("access-control-allow-origin"), "*", "the 404 carries CORS too");
    const meta = await (await jwt.fetch("/.well-known/oauth-authorization-server")).json();
    assert.equal(meta.jwks_uri, `${jwt.base}/.well-known/jwks.json`);
    const { keys } = await (await jwt.fetch(meta.jwks_uri.slice(jwt.base.length))).json();
    assert.deepEqual(keys.filter((k) => k.kty === "EC").map((k) => k.kid), ["k15"]);
  } finally {
    await unused.close();
  }
});
