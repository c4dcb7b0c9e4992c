// OpenID Connect (issue 17 items 1 and 2): the discovery document, the JWKS
// with RSA and EC keys, and ID tokens at the code exchange and on refresh,
// each checked the way a relying party elsewhere would, with `jose` against
// `jwks_uri` alone; then what must not be issued (no `openid`, the app
// actor, a replayed code) and OPENID=off.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader, decodeJwt } from "jose";
import {
  startServer, Browser, registerApp, consent, exchange, tokenRequest, bearer, lastLine, testSigningKeys, authorizeQuery,
} from "./support.mjs";

let server, alice, meta, jwks;

before(async () => {
  server = await startServer({ JWT_SIGNING_KEYS: testSigningKeys("oidc-ec"), DCR: "open", DCR_RATE_PER_HOUR: "1000" });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  meta = await (await server.fetch("/.well-known/openid-configuration")).json();
  // Left unset when there is no document: each test then fails on its own account.
  if (meta.jwks_uri) jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
});
after(async () => {
  await server?.close();
});

const atHash = (t) => createHash("sha256").update(t).digest().subarray(0, 16).toString("base64url");

/** Alice approves `app` with `query` (scope, nonce, …) and the code is exchanged: the response and its body. */
async function signIn(app, query, choose = {}) {
  const { location } = await consent(alice, app, query, choose);
  const code = location.searchParams.get("code");
  assert.ok(code, `no code: ${location}`);
  const res = await exchange(server, app, code);
  return { res, body: await res.json(), code };
}

function verify(idToken, app, algorithms = ["RS256"]) {
  return jwtVerify(idToken, jwks, { issuer: meta.issuer, audience: app.client_id, algorithms });
}

test("discovery: OpenID Connect Discovery's fields, the same issuer as RFC 8414, every key on jwks_uri", async () => {
  const res = await server.fetch("/.well-known/openid-configuration");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  const oauth = await (await server.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.issuer, server.base);
  assert.equal(meta.issuer, oauth.issuer, "one issuer in both documents");
  for (const k of ["authorization_endpoint", "token_endpoint", "revocation_endpoint", "introspection_endpoint", "registration_endpoint", "jwks_uri"]) {
    assert.equal(meta[k], oauth[k], k);
  }
  assert.equal(meta.userinfo_endpoint, `${server.base}/oauth/userinfo`);
  assert.equal(meta.end_session_endpoint, `${server.base}/oauth/logout`);
  assert.equal(meta.jwks_uri, `${server.base}/.well-known/jwks.json`);
  assert.deepEqual(meta.id_token_signing_alg_values_supported, ["RS256", "ES256"]);
  assert.deepEqual(meta.subject_types_supported, ["public"]);
  assert.deepEqual(meta.response_types_supported, ["code"]);
  assert.deepEqual(meta.response_modes_supported, ["query"]);
  assert.deepEqual(meta.code_challenge_methods_supported, ["S256"]);
  assert.deepEqual(meta.prompt_values_supported, ["none", "login", "consent", "select_account"]);
  assert.deepEqual(oauth.prompt_values_supported, meta.prompt_values_supported, "both documents agree");
  assert.deepEqual(meta.grant_types_supported, oauth.grant_types_supported);
  assert.deepEqual(meta.token_endpoint_auth_methods_supported, oauth.token_endpoint_auth_methods_supported);
  for (const s of ["openid", "profile", "email", "posts:read"]) {
    assert.ok(meta.scopes_supported.includes(s), `scopes_supported has ${s}`);
    assert.ok(oauth.scopes_supported.includes(s), `RFC 8414 scopes_supported has ${s}`);
  }
  for (const c of ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid", "acr", "amr", "org_id", "name", "email", "email_verified"]) {
    assert.ok(meta.claims_supported.includes(c), `claims_supported has ${c}`);
  }
  const flags = {
    backchannel_logout_supported: true, backchannel_logout_session_supported: true, frontchannel_logout_supported: false,
    request_parameter_supported: false, request_uri_parameter_supported: false, claims_parameter_supported: false,
    authorization_response_iss_parameter_supported: true,
  };
  for (const [k, v] of Object.entries(flags)) assert.equal(meta[k], v, k);
  const head = await server.fetch("/.well-known/openid-configuration", { method: "HEAD" });
  assert.equal(head.status, 200);
  // The JWKS: the RSA key and the EC key, public halves with kid, use and alg.
  const { keys } = await (await server.fetch("/.well-known/jwks.json")).json();
  const byKty = Object.fromEntries(keys.map((k) => [k.kty, k]));
  assert.deepEqual(Object.keys(byKty).sort(), ["EC", "RSA"]);
  assert.deepEqual([byKty.RSA.kid, byKty.RSA.use, byKty.RSA.alg], ["test-rsa", "sig", "RS256"]);
  assert.deepEqual([byKty.EC.kid, byKty.EC.use, byKty.EC.alg], ["oidc-ec", "sig", "ES256"]);
  for (const k of keys) for (const p of ["d", "p", "q", "dp", "dq", "qi"]) assert.equal(k[p], undefined, `${k.kty} ${p}`);
});

test("code exchange: an RS256 ID token with every claim, the nonce echoed exactly; still one D1 round trip", async () => {
  // Declares none of OpenID's scopes: they are built in.
  const app = await registerApp(server, { scopes: ["posts:read"] });
  const nonce = "n-0S6_WzA2Mj ~!*'();:@&=+$,/?#[] üñí 🙂";
  const before = Math.floor(Date.now() / 1000);
  const { res, body } = await signIn(app, { scope: "openid profile email posts:read", nonce });
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(lastLine(server, "token/authorization_code")?.d1, 1, "the exchange stays one D1 round trip");
  assert.equal(body.scope, "email openid posts:read profile");
  const { payload, protectedHeader } = await verify(body.id_token, app);
  assert.deepEqual(protectedHeader, { alg: "RS256", typ: "JWT", kid: "test-rsa" });
  assert.equal(payload.sub, "usr_alice");
  assert.equal(payload.aud, app.client_id);
  assert.equal(payload.azp, app.client_id);
  assert.equal(payload.nonce, nonce, "nonce echoed exactly");
  assert.equal(payload.at_hash, atHash(body.access_token));
  assert.equal(payload.org_id, "org_acme");
  assert.equal(payload.exp - payload.iat, 3600, "ID_TOKEN_TTL_SECONDS");
  assert.ok(payload.iat >= before - 1 && payload.iat <= before + 60);
  assert.ok(Number.isInteger(payload.auth_time) && payload.auth_time <= payload.iat, "auth_time: when alice signed in");
  assert.match(payload.sid, /^\S+$/, "the session's sid");
  assert.equal(payload.email, undefined, "claims of profile/email are UserInfo's, not the ID token's");
});

test("refresh: a new ID token, same sub and auth_time, no nonce, at_hash of the new access token", async () => {
  const app = await registerApp(server, { scopes: ["posts:read"] });
  const { body: first } = await signIn(app, { scope: "openid posts:read", nonce: "first-nonce" });
  const a = decodeJwt(first.id_token);
  await new Promise((r) => setTimeout(r, 1100));
  const res = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: first.refresh_token });
  const next = await res.json();
  assert.equal(res.status, 200, JSON.stringify(next));
  assert.equal(lastLine(server, "token/refresh_token")?.d1, 1, "refresh stays one D1 round trip");
  const { payload: b } = await verify(next.id_token, app);
  assert.equal(b.sub, a.sub);
  assert.equal(b.auth_time, a.auth_time);
  assert.equal(b.sid, a.sid);
  assert.equal(b.nonce, undefined, "no nonce on refresh (OIDC Core §12.2)");
  assert.equal(b.at_hash, atHash(next.access_token));
  assert.ok(b.iat > a.iat);
  // Narrowed to a scope without openid: no ID token.
  const narrowed = await (await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: next.refresh_token, scope: "posts:read" })).json();
  assert.ok(narrowed.access_token, JSON.stringify(narrowed));
  assert.equal(narrowed.id_token, undefined);
});

test("an ES256 client gets an ES256 ID token signed with the EC key", async () => {
  const app = await registerApp(server, { scopes: ["posts:read"] });
  // Direct registration of the client metadata (its API is another part of issue 17).
  await server.db.prepare("UPDATE apps SET id_token_signed_response_alg = 'ES256' WHERE id = ?1").bind(app.client_id).run();
  const { body } = await signIn(app, { scope: "openid", nonce: "es" });
  assert.deepEqual(decodeProtectedHeader(body.id_token), { alg: "ES256", typ: "JWT", kid: "oidc-ec" });
  await assert.rejects(verify(body.id_token, app, ["RS256"]), "not accepted as RS256");
  const { payload } = await verify(body.id_token, app, ["ES256"]);
  assert.equal(payload.nonce, "es");
  assert.equal(payload.at_hash, atHash(body.access_token));
  const refreshed = await (await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: body.refresh_token })).json();
  assert.equal(decodeProtectedHeader(refreshed.id_token).alg, "ES256");
  await verify(refreshed.id_token, app, ["ES256"]);
});

test("no ID token without openid, nor for the app actor", async () => {
  const app = await registerApp(server, { scopes: ["posts:read", "profile:read"], actor_modes: ["self", "app"] });
  const { body } = await signIn(app, { scope: "profile profile:read", nonce: "x" });
  assert.ok(body.access_token);
  assert.equal(body.id_token, undefined, "profile without openid");
  const refreshed = await (await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: body.refresh_token })).json();
  assert.ok(refreshed.access_token);
  assert.equal(refreshed.id_token, undefined);
  // The app's own identity in the org speaks for no signed-in user.
  const { body: bot } = await signIn(app, { scope: "openid profile:read", prompt: "consent" }, { actor: "app" });
  assert.ok(bot.access_token, JSON.stringify(bot));
  assert.equal(bot.id_token, undefined, "app actor");
});

test("a replayed code: invalid_grant, no ID token, and the first exchange's tokens revoked", async () => {
  const app = await registerApp(server, { scopes: ["posts:read"] });
  const { body, code } = await signIn(app, { scope: "openid posts:read", nonce: "once" });
  assert.ok(body.id_token);
  assert.equal((await bearer(server, "/api/v1/me", body.access_token)).status, 200);
  const again = await exchange(server, app, code);
  const err = await again.json();
  assert.equal(again.status, 400);
  assert.equal(err.error, "invalid_grant");
  assert.equal(err.id_token, undefined);
  assert.equal((await bearer(server, "/api/v1/me", body.access_token)).status, 401, "access token revoked");
  const refresh = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: body.refresh_token });
  assert.equal(refresh.status, 400, "refresh token revoked");
  assert.equal((await refresh.json()).id_token, undefined);
});

test("another client's code gets no ID token", async () => {
  const a = await registerApp(server, { scopes: ["posts:read"] });
  const b = await registerApp(server, { scopes: ["posts:read"] });
  const { location } = await consent(alice, a, { scope: "openid", nonce: "a" });
  const res = await exchange(server, b, location.searchParams.get("code"));
  const body = await res.json();
  assert.equal(res.status, 400);
  assert.equal(body.error, "invalid_grant");
  assert.equal(body.id_token, undefined);
});

test("built-in scopes: asked for without declaration at authorize and at dynamic registration; other undeclared scopes still refused", async () => {
  const app = await registerApp(server, { scopes: ["posts:read"] });
  const ok = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "openid profile email" })}`);
  assert.equal(ok.status, 200, "the consent page");
  const bad = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "openid posts:write" })}`);
  assert.equal(new URL(bad.headers.get("location")).searchParams.get("error"), "invalid_scope");
  const reg = await server.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: ["https://rp.example/cb"], token_endpoint_auth_method: "none", scope: "openid email posts:read" }),
  });
  const client = await reg.json();
  assert.equal(reg.status, 201, JSON.stringify(client));
  assert.equal(client.scope, "posts:read", "OpenID's scopes are built in, not stored");
});

test("OPENID=off: no discovery document, no ID token, openid an ordinary undeclared scope", async () => {
  const off = await startServer({ OPENID: "off" });
  try {
    const doc = await off.fetch("/.well-known/openid-configuration");
    assert.equal(doc.status, 404);
    assert.equal(doc.headers.get("access-control-allow-origin"), "*");
    const oauth = await (await off.fetch("/.well-known/oauth-authorization-server")).json();
    assert.ok(!oauth.scopes_supported.includes("openid"));
    assert.equal(oauth.jwks_uri, undefined, "opaque access tokens and no ID tokens: no JWKS");
    const b = new Browser(off);
    await b.signIn("alice@acme.test", "alice-password");
    const app = await registerApp(off, { scopes: ["posts:read"] });
    const res = await b.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "openid posts:read" })}`);
    assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "invalid_scope");
    // Declared by the app, openid is just a scope: still no ID token.
    const declared = await registerApp(off, { scopes: ["posts:read"] });
    await off.db.prepare(`UPDATE apps SET scopes = '["openid","posts:read"]' WHERE id = ?1`).bind(declared.client_id).run();
    const { location } = await consent(b, declared, { scope: "openid posts:read", nonce: "n" });
    const body = await (await exchange(off, declared, location.searchParams.get("code"))).json();
    assert.ok(body.access_token, JSON.stringify(body));
    assert.equal(body.id_token, undefined);
  } finally {
    await off.close();
  }
});

test("OPENID=on without an RSA key: the worker refuses to start, naming the fix", async () => {
  const { generateKeyPairSync } = await import("node:crypto");
  const ec = { ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }), kid: "ec-only" };
  const s = await startServer({ JWT_SIGNING_KEYS: JSON.stringify({ keys: [ec] }) });
  try {
    const res = await s.fetch("/health");
    assert.equal(res.status, 500);
    assert.equal(await res.text(), "server misconfigured");
    const line = s.log.lines.find((l) => l.includes("bad configuration"));
    assert.match(line ?? "", /OPENID=on needs an RSA key in JWT_SIGNING_KEYS/);
    assert.match(line, /make dev/);
    assert.match(line, /wrangler secret put/);
  } finally {
    await s.close();
  }
});
