// Issue 19, item 3: private_key_jwt (RFC 7523 §2.2) client authentication at
// the token, PAR, revocation and introspection endpoints, and the client
// metadata of sender constraint and client authentication (the six fields:
// dpop_bound_access_tokens, require_pushed_authorization_requests,
// token_endpoint_auth_method "private_key_jwt", jwks, jwks_uri,
// token_endpoint_auth_signing_alg) wherever a client is registered:
// /api/v1/apps, RFC 7591/7592, Client ID Metadata Documents and the
// developer settings page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { SignJWT } from "jose";
import { startServer, Browser, api, registerApp, hidden, authorizeQuery, count, consent, pkcePair, bearer, form, FORM } from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

const ADMIN = "pkjwt-test-admin-token-0123456789abcdefghijklmnop";
let server, docs, alice;

before(async () => {
  docs = await startDocumentServer();
  server = await startServer({
    DCR: "initial_access_token",
    PLATFORM_ADMIN_TOKEN: ADMIN,
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "10000",
    CIMD_FETCHES_PER_HOST_PER_MINUTE: "10000",
  });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await server?.close();
  await docs?.close();
});

const first = (sql, ...p) => server.db.prepare(sql).bind(...p).first();
const appCount = () => count(server, "SELECT COUNT(*) AS n FROM apps");

/** A public JWK (with `kid`) and its private key, of `kind` ec | rsa | ed25519. */
function keyPair(kind = "ec", kid = `k-${Math.random().toString(36).slice(2)}`) {
  const opts = kind === "ec" ? { namedCurve: "P-256" } : kind === "rsa" ? { modulusLength: 2048 } : {};
  const { publicKey, privateKey } = generateKeyPairSync(kind, opts);
  return { jwk: { ...publicKey.export({ format: "jwk" }), kid }, privateKey, privateJwk: { ...privateKey.export({ format: "jwk" }), kid } };
}

const SIX = ["dpop_bound_access_tokens", "require_pushed_authorization_requests", "client_auth_method", "jwks", "jwks_uri", "token_endpoint_auth_signing_alg"];
const columns = (id) => first(`SELECT ${SIX.join(", ")}, client_type, secret_hash FROM apps WHERE id = ?1`, id);

// ---- client metadata: /api/v1/apps -----------------------------------------

test("apps API: the six fields register, are stored, echoed, and patched; a private_key_jwt app gets no secret", async () => {
  const k = keyPair("ec");
  const res = await api(server, "POST", "/api/v1/apps", {
    name: "Bank client",
    redirect_uris: ["https://bank.example/cb"],
    scopes: ["profile:read"],
    token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [k.jwk] },
    token_endpoint_auth_signing_alg: "ES256",
    dpop_bound_access_tokens: true,
    require_pushed_authorization_requests: true,
  });
  assert.equal(res.status, 201, await res.clone().text());
  const app = await res.json();
  assert.equal(app.client_secret, undefined, "private_key_jwt: no secret is made");
  assert.equal(app.token_endpoint_auth_method, "private_key_jwt");
  assert.deepEqual(app.jwks, { keys: [k.jwk] });
  assert.equal(app.jwks_uri, null);
  assert.equal(app.token_endpoint_auth_signing_alg, "ES256");
  assert.equal(app.dpop_bound_access_tokens, true);
  assert.equal(app.require_pushed_authorization_requests, true);
  const row = await columns(app.client_id);
  assert.equal(row.client_type, "confidential");
  assert.equal(row.secret_hash, null);
  assert.equal(row.client_auth_method, "private_key_jwt");
  assert.deepEqual(JSON.parse(row.jwks), { keys: [k.jwk] });
  assert.equal(row.dpop_bound_access_tokens, 1);
  assert.equal(row.require_pushed_authorization_requests, 1);

  const got = await (await api(server, "GET", `/api/v1/apps/${app.client_id}`)).json();
  assert.equal(got.token_endpoint_auth_method, "private_key_jwt");
  assert.equal(got.dpop_bound_access_tokens, true);

  // Patch: keys by URL instead, DPoP no longer required.
  const p = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, {
    version: got.version,
    jwks: null,
    jwks_uri: "https://bank.example/jwks.json",
    dpop_bound_access_tokens: false,
  });
  assert.equal(p.status, 200, await p.clone().text());
  const patched = await p.json();
  assert.equal(patched.jwks, null);
  assert.equal(patched.jwks_uri, "https://bank.example/jwks.json");
  assert.equal(patched.dpop_bound_access_tokens, false);
  assert.equal(patched.require_pushed_authorization_requests, true, "what the patch leaves out stays");
  const after = await columns(app.client_id);
  assert.equal(after.jwks, null);
  assert.equal(after.jwks_uri, "https://bank.example/jwks.json");

  // A secret app keeps its defaults, and says its method.
  const plain = await registerApp(server);
  assert.equal(plain.token_endpoint_auth_method, "client_secret_basic");
  assert.equal(plain.dpop_bound_access_tokens, false);
  assert.equal(plain.require_pushed_authorization_requests, false);
  assert.ok(plain.client_secret);
  const pub = await registerApp(server, { client_type: "public", dpop_bound_access_tokens: true });
  assert.equal(pub.token_endpoint_auth_method, "none");
  assert.equal(pub.dpop_bound_access_tokens, true);
});

test("apps API: bad client metadata is a 400 naming the field, and nothing is stored", async () => {
  const k = keyPair("ec");
  const rsaSmall = (() => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    return { ...publicKey.export({ format: "jwk" }), kid: "small" };
  })();
  const base = { name: "Bad", redirect_uris: ["https://bad.example/cb"], scopes: ["profile:read"] };
  const pk = { token_endpoint_auth_method: "private_key_jwt" };
  const cases = [
    [{ ...pk }, /jwks/],
    [{ ...pk, jwks: { keys: [k.jwk] }, jwks_uri: "https://bad.example/jwks" }, /jwks_uri/],
    [{ ...pk, jwks: { keys: [keyPair("ec").privateJwk] } }, /private/],
    [{ ...pk, jwks: { keys: [{ kty: "oct", k: "c2VjcmV0", kid: "h" }] } }, /private/],
    [{ ...pk, jwks: { keys: [{ kty: "EC", crv: "P-384", x: "AA", y: "AA", kid: "p384" }] } }, /kty/],
    [{ ...pk, jwks: { keys: [rsaSmall] } }, /2048/],
    [{ ...pk, jwks: { keys: [] } }, /jwks/],
    [{ ...pk, jwks: "not an object" }, /jwks/],
    [{ ...pk, jwks_uri: "http://bad.example/jwks" }, /jwks_uri/],
    [{ ...pk, jwks_uri: "https://10.0.0.1/jwks" }, /jwks_uri/],
    [{ ...pk, jwks: { keys: [k.jwk] }, token_endpoint_auth_signing_alg: "HS256" }, /token_endpoint_auth_signing_alg/],
    [{ ...pk, jwks: { keys: [k.jwk] }, token_endpoint_auth_signing_alg: "none" }, /token_endpoint_auth_signing_alg/],
    [{ jwks: { keys: [k.jwk] } }, /private_key_jwt/],
    [{ token_endpoint_auth_signing_alg: "ES256" }, /private_key_jwt/],
    [{ ...pk, client_type: "public", jwks: { keys: [k.jwk] } }, /public/],
    [{ token_endpoint_auth_method: "client_secret_jwt" }, /token_endpoint_auth_method/],
    [{ dpop_bound_access_tokens: "yes" }, /dpop_bound_access_tokens/],
    [{ require_pushed_authorization_requests: 1 }, /require_pushed_authorization_requests/],
  ];
  const n = await appCount();
  for (const [extra, why] of cases) {
    const res = await api(server, "POST", "/api/v1/apps", { ...base, ...extra });
    const body = await res.json();
    assert.equal(res.status, 400, `${JSON.stringify(extra)} → ${res.status} ${JSON.stringify(body)}`);
    assert.match(body.error_description ?? body.message ?? JSON.stringify(body), why, JSON.stringify(extra));
  }
  assert.equal(await appCount(), n, "nothing was stored");

  // A patch that would break the app changes nothing either.
  const app = await registerApp(server, { ...pk, jwks: { keys: [k.jwk] } });
  const before = await columns(app.client_id);
  const res = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: app.version, jwks: null });
  assert.equal(res.status, 400);
  assert.match(JSON.stringify(await res.json()), /jwks/);
  assert.deepEqual(await columns(app.client_id), before);
});

test("apps API: a secret app switched to private_key_jwt loses its secret; back needs a new secret", async () => {
  const k = keyPair("ec");
  const app = await registerApp(server);
  const res = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, {
    version: app.version,
    token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [k.jwk] },
  });
  assert.equal(res.status, 200, await res.clone().text());
  const row = await columns(app.client_id);
  assert.equal(row.client_auth_method, "private_key_jwt");
  assert.equal(row.secret_hash, null, "the old secret must not keep working");
  const rotate = await api(server, "POST", `/api/v1/apps/${app.client_id}/secret`);
  assert.equal(rotate.status, 400, "a private_key_jwt client has no secret to rotate");
  const back = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, {
    version: (await res.json()).version,
    token_endpoint_auth_method: "client_secret_basic",
  });
  assert.equal(back.status, 200, await back.clone().text());
  const r2 = await columns(app.client_id);
  assert.equal(r2.client_auth_method, null);
  assert.equal(r2.jwks, null);
  assert.equal((await api(server, "POST", `/api/v1/apps/${app.client_id}/secret`)).status, 200);
});

// ---- client metadata: RFC 7591 / 7592 ---------------------------------------

async function initialToken() {
  const res = await api(server, "POST", "/admin/v1/initial-access-tokens", {}, ADMIN);
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).token;
}

function register(body, token) {
  const headers = { "content-type": "application/json", "cf-connecting-ip": `198.51.100.${Math.floor(Math.random() * 250) + 1}` };
  if (token) headers.authorization = `Bearer ${token}`;
  return server.fetch("/oauth/register", { method: "POST", headers, body: JSON.stringify(body) });
}

test("RFC 7591/7592: a private_key_jwt client registers with jwks, gets no secret, reads and replaces its metadata", async () => {
  const k = keyPair("rsa");
  const body = {
    redirect_uris: ["https://rp.example/cb"],
    token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [k.jwk] },
    token_endpoint_auth_signing_alg: "PS256",
    dpop_bound_access_tokens: true,
    require_pushed_authorization_requests: true,
  };
  const res = await register(body, await initialToken());
  assert.equal(res.status, 201, await res.clone().text());
  const c = await res.json();
  assert.equal(c.client_secret, undefined);
  assert.equal(c.client_secret_expires_at, undefined);
  assert.equal(c.token_endpoint_auth_method, "private_key_jwt");
  assert.deepEqual(c.jwks, { keys: [k.jwk] });
  assert.equal(c.token_endpoint_auth_signing_alg, "PS256");
  assert.equal(c.dpop_bound_access_tokens, true);
  assert.equal(c.require_pushed_authorization_requests, true);
  const row = await columns(c.client_id);
  assert.equal(row.client_auth_method, "private_key_jwt");
  assert.equal(row.client_type, "confidential");
  assert.equal(row.secret_hash, null);

  const read = await api(server, "GET", `/oauth/register/${c.client_id}`, undefined, c.registration_access_token);
  const info = await read.json();
  assert.equal(info.token_endpoint_auth_method, "private_key_jwt");
  assert.deepEqual(info.jwks, { keys: [k.jwk] });

  const put = await api(server, "PUT", `/oauth/register/${c.client_id}`, {
    ...body,
    client_id: c.client_id,
    jwks: undefined,
    jwks_uri: "https://rp.example/jwks.json",
    dpop_bound_access_tokens: false,
  }, c.registration_access_token);
  assert.equal(put.status, 200, await put.clone().text());
  const upd = await put.json();
  assert.equal(upd.jwks, undefined);
  assert.equal(upd.jwks_uri, "https://rp.example/jwks.json");
  assert.equal(upd.dpop_bound_access_tokens, false);
  const r2 = await columns(c.client_id);
  assert.equal(r2.jwks, null);
  assert.equal(r2.jwks_uri, "https://rp.example/jwks.json");
  assert.equal(r2.dpop_bound_access_tokens, 0);

  // Refusals name the field; nothing is stored.
  const n = await appCount();
  for (const [bad, why] of [
    [{ ...body, jwks: { keys: [k.privateJwk] } }, /private/],
    [{ ...body, token_endpoint_auth_signing_alg: "HS256" }, /token_endpoint_auth_signing_alg/],
    [{ ...body, dpop_bound_access_tokens: "true" }, /dpop_bound_access_tokens/],
  ]) {
    const r = await register(bad, await initialToken());
    assert.equal(r.status, 400);
    const e = await r.json();
    assert.equal(e.error, "invalid_client_metadata");
    assert.match(e.error_description, why);
  }
  assert.equal(await appCount(), n);
});

// ---- client metadata: Client ID Metadata Documents --------------------------

test("a metadata document's six fields are honoured: private_key_jwt with jwks_uri makes a confidential client", async () => {
  const client_id = docs.url("/pk/client.json");
  docs.route("/pk/client.json", {
    headers: { "cache-control": "max-age=60" },
    body: clientDocument(client_id, {
      token_endpoint_auth_method: "private_key_jwt",
      jwks_uri: docs.url("/pk/jwks.json"),
      token_endpoint_auth_signing_alg: "ES256",
      dpop_bound_access_tokens: true,
      require_pushed_authorization_requests: false,
    }),
  });
  const page = await alice.fetch(`/oauth/authorize?${authorizeQuery({ client_id, redirect_uris: ["http://localhost:3000/callback"] }, { scope: "profile:read" })}`);
  assert.equal(page.status, 200, await page.clone().text());
  const row = await columns(client_id);
  assert.equal(row.client_type, "confidential");
  assert.equal(row.client_auth_method, "private_key_jwt");
  assert.equal(row.jwks_uri, docs.url("/pk/jwks.json"));
  assert.equal(row.dpop_bound_access_tokens, 1);

  // A document with a private key in its set is refused, as a page.
  const bad = docs.url("/pk/bad.json");
  docs.route("/pk/bad.json", {
    body: clientDocument(bad, { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [keyPair("ec").privateJwk] } }),
  });
  const refused = await alice.fetch(`/oauth/authorize?${authorizeQuery({ client_id: bad, redirect_uris: ["http://localhost:3000/callback"] }, { scope: "profile:read" })}`);
  assert.equal(refused.status, 400);
  assert.match(await refused.text(), /private/);
  assert.equal(await count(server, "SELECT COUNT(*) AS n FROM apps WHERE id = ?1", bad), 0);
});

// ---- client metadata: the developer settings page ---------------------------

test("developer settings page: register and edit a private_key_jwt app with DPoP and PAR required", async () => {
  const k = keyPair("ed25519");
  const page = await alice.fetch("/settings/developer?org=org_acme");
  const html = await page.text();
  for (const f of ["token_endpoint_auth_method", "jwks", "jwks_uri", "token_endpoint_auth_signing_alg", "dpop_bound_access_tokens", "require_pushed_authorization_requests"]) {
    assert.match(html, new RegExp(`name="${f}"`), `the form has ${f}`);
  }
  const csrf = hidden(html, "csrf");
  const res = await alice.post("/settings/developer/apps", {
    csrf, org_id: "org_acme", name: "Page PKJWT", redirect_uris: "https://page.example/cb", scopes: "profile:read",
    client_type: "confidential", actor_modes: "self", token_endpoint_auth_method: "private_key_jwt",
    jwks: JSON.stringify({ keys: [k.jwk] }), jwks_uri: "", token_endpoint_auth_signing_alg: "EdDSA",
    dpop_bound_access_tokens: "on", require_pushed_authorization_requests: "on",
  });
  const out = await res.text();
  assert.equal(res.status, 200, out);
  assert.doesNotMatch(out, /client-secret/, "no secret shown");
  const row = await first(`SELECT id, ${SIX.join(", ")}, secret_hash FROM apps WHERE name = 'Page PKJWT'`);
  assert.equal(row.client_auth_method, "private_key_jwt");
  assert.deepEqual(JSON.parse(row.jwks), { keys: [k.jwk] });
  assert.equal(row.token_endpoint_auth_signing_alg, "EdDSA");
  assert.equal(row.dpop_bound_access_tokens, 1);
  assert.equal(row.require_pushed_authorization_requests, 1);
  assert.equal(row.secret_hash, null);

  // The edit page shows them; saving without the boxes clears the two flags.
  const edit = await (await alice.fetch(`/settings/developer/apps/${row.id}`)).text();
  assert.match(edit, /name="dpop_bound_access_tokens"[^>]*checked/);
  assert.match(edit, /private_key_jwt/);
  const version = hidden(edit, "version");
  const saved = await alice.post(`/settings/developer/apps/${row.id}`, {
    csrf: hidden(edit, "csrf"), version, name: "Page PKJWT", description: "", homepage_url: "",
    redirect_uris: "https://page.example/cb", scopes: "profile:read", token_endpoint_auth_method: "private_key_jwt",
    jwks: JSON.stringify({ keys: [k.jwk] }), jwks_uri: "", token_endpoint_auth_signing_alg: "",
  });
  assert.equal(saved.status, 303, await saved.clone().text());
  const r2 = await first(`SELECT ${SIX.join(", ")} FROM apps WHERE id = ?1`, row.id);
  assert.equal(r2.dpop_bound_access_tokens, 0);
  assert.equal(r2.require_pushed_authorization_requests, 0);
  assert.equal(r2.token_endpoint_auth_signing_alg, null);

  // A private key pasted in is refused with the reason, nothing stored.
  const bad = await alice.post("/settings/developer/apps", {
    csrf, org_id: "org_acme", name: "Page bad keys", redirect_uris: "https://page.example/cb", scopes: "profile:read",
    client_type: "confidential", actor_modes: "self", token_endpoint_auth_method: "private_key_jwt",
    jwks: JSON.stringify({ keys: [k.privateJwk] }),
  });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /private/);
  assert.equal(await count(server, "SELECT COUNT(*) AS n FROM apps WHERE name = 'Page bad keys'"), 0);
});

// ---- private_key_jwt: client assertions --------------------------------------

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
let issuer;
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** A client assertion by `client_id`, signed with `key` (from keyPair) unless `sign` says how. */
async function assertion(client_id, key, { alg = key?.alg ?? "ES256", kid = key?.jwk.kid, claims = {}, header = {}, sign } = {}) {
  issuer ??= (await (await server.fetch("/.well-known/oauth-authorization-server")).json()).issuer;
  const t = now();
  const payload = { iss: client_id, sub: client_id, aud: issuer, iat: t, exp: t + 30, jti: crypto.randomUUID(), ...claims };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  const h = { alg, kid, ...header };
  if (sign) return sign(h, payload);
  return new SignJWT(payload).setProtectedHeader(h).sign(key.privateKey);
}

/** A POST to `path` authenticated with `jwt` (a client assertion), with `fields`. */
function withAssertion(path, jwt, fields = {}, extra = {}) {
  return server.fetch(path, {
    method: "POST",
    headers: { ...FORM, ...(extra.headers ?? {}) },
    body: form({ ...fields, client_assertion_type: JWT_BEARER, client_assertion: jwt }),
  });
}

async function codeFor(app) {
  const { verifier, challenge } = pkcePair();
  const { location } = await consent(alice, app, { scope: "profile:read", code_challenge: challenge, code_challenge_method: "S256", prompt: "consent" });
  const code = location?.searchParams.get("code");
  assert.ok(code, `a code: ${location}`);
  return { code, verifier, fields: { grant_type: "authorization_code", code, redirect_uri: app.redirect_uris[0], code_verifier: verifier } };
}

const tokensOf = (appId) =>
  count(server, "SELECT COUNT(*) AS n FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE g.app_id = ?1", appId);

async function pkApp(extra = {}) {
  const k = keyPair("ec");
  k.alg = "ES256";
  const app = await registerApp(server, { scopes: ["profile:read"], token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [k.jwk] }, ...extra });
  return { app, k };
}

test("private_key_jwt at the token endpoint: a code and a refresh, each with a fresh assertion; the same assertion twice is refused", async () => {
  const { app, k } = await pkApp();
  const { fields } = await codeFor(app);
  const before = server.log.lines.length;
  const a1 = await assertion(app.client_id, k);
  const res = await withAssertion("/oauth/token", a1, fields);
  assert.equal(res.status, 200, await res.clone().text());
  const t = await res.json();
  assert.ok(t.access_token && t.refresh_token);
  const line = server.log.lines.slice(before).map((l) => { try { return JSON.parse(l); } catch { return null; } })
    .find((p) => p?.route === "token/authorization_code");
  assert.equal(line?.d1, 3, "private_key_jwt: the client's read, the jti, then the grant's own round trip");
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);

  const r = await withAssertion("/oauth/token", await assertion(app.client_id, k), { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(r.status, 200, await r.clone().text());
  const t2 = await r.json();

  // The first assertion again (a replay), on the new refresh token: refused, nothing rotated.
  const n = await tokensOf(app.client_id);
  const replay = await withAssertion("/oauth/token", a1, { grant_type: "refresh_token", refresh_token: t2.refresh_token });
  assert.equal(replay.status, 401);
  const e = await replay.json();
  assert.equal(e.error, "invalid_client");
  assert.match(e.error_description, /already used/);
  assert.equal(await tokensOf(app.client_id), n, "nothing issued");
  const ok = await withAssertion("/oauth/token", await assertion(app.client_id, k), { grant_type: "refresh_token", refresh_token: t2.refresh_token });
  assert.equal(ok.status, 200, "the refresh token was not spent by the replay");
});

test("private_key_jwt refusals: expired, too long-lived, wrong aud, another key, alg none, HS256, iss ≠ sub, no jti, a secret or nothing: nothing issued, the code still good", async () => {
  const { app, k } = await pkApp();
  const other = keyPair("ec");
  other.alg = "ES256";
  const { fields } = await codeFor(app);
  const t = now();
  const id = app.client_id;
  const cases = [
    ["expired", await assertion(id, k, { claims: { iat: t - 120, exp: t - 60 } }), /expired/],
    ["lives over 60 s", await assertion(id, k, { claims: { exp: t + 300 } }), /60 seconds/],
    ["wrong aud", await assertion(id, k, { claims: { aud: "https://other-as.example" } }), /aud/],
    ["another key", await assertion(id, other, { kid: k.jwk.kid }), /signature/],
    ["alg none", await assertion(id, k, { alg: "none", sign: (h, p) => `${b64(h)}.${b64(p)}.` }), /ES256, RS256, PS256 or EdDSA/],
    ["HS256", await assertion(id, k, { alg: "HS256", sign: (h, p) => new SignJWT(p).setProtectedHeader(h).sign(new TextEncoder().encode("x".repeat(32))) }), /ES256, RS256, PS256 or EdDSA/],
    ["iss is another client", await assertion(id, k, { claims: { iss: "app_someone_else" } }), /iss and sub/],
    ["no jti", await assertion(id, k, { claims: { jti: undefined } }), /jti/],
  ];
  for (const [what, jwt, why] of cases) {
    const res = await withAssertion("/oauth/token", jwt, fields);
    const body = await res.json();
    assert.equal(res.status, 401, `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.error, "invalid_client", what);
    assert.match(body.error_description, why, what);
  }
  // client_id beside the assertion naming someone else; a wrong assertion type.
  const mismatch = await withAssertion("/oauth/token", await assertion(id, k), { ...fields, client_id: "app_someone_else" });
  assert.equal(mismatch.status, 401);
  const wrongType = await server.fetch("/oauth/token", { method: "POST", headers: FORM, body: form({ ...fields, client_assertion_type: "urn:x", client_assertion: await assertion(id, k) }) });
  assert.equal(wrongType.status, 400);
  // The app has no secret, and `none` is not enough.
  const none = await server.fetch("/oauth/token", { method: "POST", headers: FORM, body: form({ ...fields, client_id: id }) });
  assert.equal(none.status, 401);
  assert.match((await none.json()).error_description, /private_key_jwt/);
  assert.equal(await tokensOf(id), 0, "nothing issued");
  assert.equal(await count(server, "SELECT COUNT(*) AS n FROM client_assertion_jtis WHERE app_id = ?1", id), 0, "no jti stored for a refused assertion");

  const good = await withAssertion("/oauth/token", await assertion(id, k), fields);
  assert.equal(good.status, 200, `the code was not spent by the refusals: ${await good.clone().text()}`);
});

test("private_key_jwt at revocation and introspection; alg none refused there too", async () => {
  const { app, k } = await pkApp();
  const { fields } = await codeFor(app);
  const t = await (await withAssertion("/oauth/token", await assertion(app.client_id, k), fields)).json();
  const intro = await withAssertion("/oauth/introspect", await assertion(app.client_id, k), { token: t.access_token });
  assert.equal(intro.status, 200, await intro.clone().text());
  assert.equal((await intro.json()).active, true);
  const none = await assertion(app.client_id, k, { alg: "none", sign: (h, p) => `${b64(h)}.${b64(p)}.` });
  const hs = await assertion(app.client_id, k, { alg: "HS256", sign: (h, p) => new SignJWT(p).setProtectedHeader(h).sign(new TextEncoder().encode("x".repeat(32))) });
  for (const path of ["/oauth/introspect", "/oauth/revoke"]) {
    for (const jwt of [none, hs]) {
      const r = await withAssertion(path, jwt, { token: t.access_token });
      assert.equal(r.status, 401, path);
      assert.equal((await r.json()).error, "invalid_client", path);
    }
  }
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200, "a refused revocation revoked nothing");
  const rev = await withAssertion("/oauth/revoke", await assertion(app.client_id, k, { claims: { aud: `${issuer}/oauth/revoke` } }), { token: t.refresh_token });
  assert.equal(rev.status, 200, await rev.clone().text());
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401, "the grant is revoked");
});

test("private_key_jwt with jwks_uri: fetched once and cached, fetched again for an unknown kid after a minute; RS256 and PS256", async () => {
  const k1 = keyPair("rsa");
  const k2 = keyPair("rsa");
  docs.route("/keys/set.json", { headers: { "cache-control": "max-age=300" }, body: { keys: [k1.jwk] } });
  const app = await registerApp(server, { scopes: ["profile:read"], token_endpoint_auth_method: "private_key_jwt", jwks_uri: docs.url("/keys/set.json") });
  for (const alg of ["RS256", "PS256"]) {
    const { fields } = await codeFor(app);
    const res = await withAssertion("/oauth/token", await assertion(app.client_id, k1, { alg }), fields);
    assert.equal(res.status, 200, `${alg}: ${await res.clone().text()}`);
  }
  assert.equal(docs.hits("/keys/set.json"), 1, "cached");

  // The client rotates to k2: a fresh cache is not refetched at once (a
  // stranger's unknown kid cannot make this server fetch at will)...
  docs.route("/keys/set.json", { headers: { "cache-control": "max-age=300" }, body: { keys: [k2.jwk] } });
  const { fields } = await codeFor(app);
  const early = await withAssertion("/oauth/token", await assertion(app.client_id, k2, { alg: "RS256" }), fields);
  assert.equal(early.status, 401);
  assert.equal(docs.hits("/keys/set.json"), 1);
  // ...but once the set is a minute old, an unknown kid fetches it again.
  await server.db.prepare("UPDATE client_jwks SET fetched_at = fetched_at - 120 WHERE uri = ?1").bind(docs.url("/keys/set.json")).run();
  const later = await withAssertion("/oauth/token", await assertion(app.client_id, k2, { alg: "RS256" }), fields);
  assert.equal(later.status, 200, await later.clone().text());
  assert.equal(docs.hits("/keys/set.json"), 2);

  // A set that cannot be fetched: refused, and not fetched again within the minute.
  docs.route("/keys/gone.json", { status: 404 });
  const gone = await registerApp(server, { scopes: ["profile:read"], token_endpoint_auth_method: "private_key_jwt", jwks_uri: docs.url("/keys/gone.json") });
  const g = await codeFor(gone);
  for (let i = 0; i < 2; i++) {
    const r = await withAssertion("/oauth/token", await assertion(gone.client_id, k1, { alg: "RS256" }), g.fields);
    assert.equal(r.status, 401);
    assert.match((await r.json()).error_description, /JWK set/);
  }
  assert.equal(docs.hits("/keys/gone.json"), 1, "a failure is remembered for a minute");
});

test("discovery (RFC 8414 and OpenID): private_key_jwt and its algorithms at the token, revocation and introspection endpoints", async () => {
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    const m = await (await server.fetch(path)).json();
    for (const ep of ["token_endpoint", "revocation_endpoint", "introspection_endpoint"]) {
      assert.ok(m[`${ep}_auth_methods_supported`]?.includes("private_key_jwt"), `${path} ${ep}`);
      assert.deepEqual(m[`${ep}_auth_signing_alg_values_supported`], ["ES256", "RS256", "PS256", "EdDSA"], `${path} ${ep}`);
    }
  }
});

test("private_key_jwt with EdDSA (Ed25519, WebCrypto in the worker); a registered token_endpoint_auth_signing_alg refuses any other", async () => {
  const ed = keyPair("ed25519");
  ed.alg = "EdDSA";
  const ec = keyPair("ec");
  ec.alg = "ES256";
  const app = await registerApp(server, {
    scopes: ["profile:read"], token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [ed.jwk, ec.jwk] }, token_endpoint_auth_signing_alg: "EdDSA",
  });
  const { fields } = await codeFor(app);
  const es = await withAssertion("/oauth/token", await assertion(app.client_id, ec), fields);
  assert.equal(es.status, 401);
  assert.match((await es.json()).error_description, /token_endpoint_auth_signing_alg/);
  const res = await withAssertion("/oauth/token", await assertion(app.client_id, ed), fields);
  assert.equal(res.status, 200, await res.clone().text());
});

test("private_key_jwt at the client_credentials grant (the app actor)", async () => {
  const { app, k } = await pkApp({ actor_modes: ["app"] });
  const res = await withAssertion("/oauth/token", await assertion(app.client_id, k), { grant_type: "client_credentials", scope: "profile:read" });
  assert.equal(res.status, 200, await res.clone().text());
  assert.ok((await res.json()).access_token);
});
