// JWT access tokens (RFC 9068) and the JWKS, checked the way a resource server
// elsewhere would: with `jose`, from the metadata's `jwks_uri` alone. Then the
// server's own bearer modes (strict still reads D1; jwt reads nothing), the
// attacks a verifier must refuse, and key rotation without a cut-over.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createRemoteJWKSet, jwtVerify, SignJWT, importJWK, decodeProtectedHeader } from "jose";
import { startServer, Browser, registerApp, tokensFor, bearer, tokenRequest, freePort, lastLine, clientRequest, testRsaKey } from "./support.mjs";

const newKey = (kid) => ({ ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }), kid });
const A = newKey("key-a");
const B = newKey("key-b");
// With the RSA key every OPENID=on server needs (it signs ID tokens, not access tokens).
const keys = (...ks) => JSON.stringify({ keys: [...ks, testRsaKey()] });
const ecOnly = (served) => served.filter((k) => k.kty === "EC");

let strict, offline;
const browsers = new Map();

async function signedIn(server) {
  const b = new Browser(server);
  await b.signIn("alice@acme.test", "alice-password");
  browsers.set(server, b);
}

before(async () => {
  strict = await startServer({ ACCESS_TOKEN_FORMAT: "jwt", JWT_SIGNING_KEYS: keys(A) });
  offline = await startServer({ ACCESS_TOKEN_FORMAT: "jwt", JWT_SIGNING_KEYS: keys(A), BEARER_MODE: "jwt" });
  for (const s of [strict, offline]) await signedIn(s);
});
after(async () => {
  for (const s of [strict, offline]) await s?.close();
});

async function issue(server, query = { scope: "profile:read posts:read" }) {
  const app = await registerApp(server, { name: "JWT consumer" });
  const t = await tokensFor(server, browsers.get(server), app, query);
  return { app, ...t };
}

/** What a resource server elsewhere does: discovery → jwks_uri → jose. */
async function verifyElsewhere(server, token) {
  const meta = await (await server.fetch("/.well-known/oauth-authorization-server")).json();
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  return jwtVerify(token, jwks, { issuer: meta.issuer, audience: `${meta.issuer}/api/v1`, typ: "at+jwt", algorithms: ["ES256"] });
}

const revoke = (server, app, token) => clientRequest(server, "/oauth/revoke", app, { token });

const introspect = async (server, app, token) => (await clientRequest(server, "/oauth/introspect", app, { token })).json();

/** Whether an ES256 JWT's signature has s <= n/2 (the only form the server accepts, issue 15). */
const HALF_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n / 2n;
const lowS = (jwt) => BigInt(`0x${Buffer.from(jwt.split(".")[2], "base64url").subarray(32).toString("hex")}`) <= HALF_N;

/**
 * A token minted by the test with a key of its choice (jose), claims like the
 * server's, with a low-S signature as the server signs (jose picks either).
 */
async function mint(server, key, opts) {
  for (;;) {
    const t = await mintAny(server, key, opts);
    if (lowS(t)) return t;
  }
}

async function mintAny(server, key, { header = {}, claims = {} } = {}) {
  const iss = server.base;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ client_id: "app_x", scope: "profile:read", org_id: "org_acme", actor: "self", jti: "j-test", ...claims })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: key.kid, ...header })
    .setIssuer(claims.iss ?? iss)
    .setSubject("usr_alice")
    .setAudience(claims.aud ?? `${iss}/api/v1`)
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 60)
    .sign(await importJWK(key, "ES256"));
}

test("metadata names jwks_uri; the JWKS serves public keys only, cacheable", async () => {
  const meta = await (await strict.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.jwks_uri, `${strict.base}/.well-known/jwks.json`);
  const res = await strict.fetch("/.well-known/jwks.json");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("cache-control"), /public, max-age=\d+/);
  const { keys: all } = await res.json();
  const served = ecOnly(all);
  assert.equal(served.length, 1);
  assert.deepEqual(served[0], { kty: "EC", crv: "P-256", x: A.x, y: A.y, kid: "key-a", use: "sig", alg: "ES256" });
  assert.ok(!JSON.stringify(served).includes(A.d));
});

test("an opaque-format server lists no jwks_uri and serves no JWKS", async () => {
  // OPENID=off: with it on, the JWKS verifies ID tokens (oidc_tokens.test.mjs).
  const plain = await startServer({ OPENID: "off" });
  try {
    const meta = await (await plain.fetch("/.well-known/oauth-authorization-server")).json();
    assert.equal(meta.jwks_uri, undefined);
    assert.equal((await plain.fetch("/.well-known/jwks.json")).status, 404);
  } finally {
    await plain.close();
  }
});

test("issued access tokens verify with jose from the jwks_uri alone, with RFC 9068 claims; refresh tokens stay opaque", async () => {
  const { app, access_token, refresh_token } = await issue(strict);
  const { payload, protectedHeader } = await verifyElsewhere(strict, access_token);
  assert.deepEqual(protectedHeader, { alg: "ES256", typ: "at+jwt", kid: "key-a" });
  assert.equal(payload.iss, strict.base);
  assert.equal(payload.aud, `${strict.base}/api/v1`);
  assert.equal(payload.sub, "usr_alice", "actor self: sub is the user");
  assert.equal(payload.client_id, app.client_id);
  assert.deepEqual(payload.scope.split(" ").sort(), ["posts:read", "profile:read"]);
  assert.equal(payload.org_id, "org_acme");
  assert.equal(payload.actor, "self");
  assert.ok(payload.jti && payload.exp > payload.iat);
  assert.ok(refresh_token.startsWith("rt_"), "refresh tokens are opaque");
  const refreshed = await (await tokenRequest(strict, app, { grant_type: "refresh_token", refresh_token })).json();
  const again = await verifyElsewhere(strict, refreshed.access_token);
  assert.equal(again.payload.sub, "usr_alice");
  assert.equal(again.payload.org_id, "org_acme");
  assert.notEqual(again.payload.jti, payload.jti);
  assert.equal(lastLine(strict, "token/refresh_token")?.d1, 1, "refresh stays one D1 round trip");
});

test("the app actor's token names the client as sub (RFC 9068 §2.2), by code and by client_credentials", async () => {
  const app = await registerApp(strict, { name: "JWT bot", scopes: ["profile:read"], actor_modes: ["app", "self"] });
  const coded = await tokensFor(strict, browsers.get(strict), app, { scope: "profile:read" }, { actor: "app" });
  const res = await tokenRequest(strict, app, { grant_type: "client_credentials" });
  const cc = await res.json();
  assert.equal(res.status, 200, JSON.stringify(cc));
  for (const token of [coded.access_token, cc.access_token]) {
    const { payload } = await verifyElsewhere(strict, token);
    assert.equal(payload.actor, "app");
    assert.equal(payload.sub, app.client_id);
    assert.equal(payload.org_id, "org_acme");
  }
});

test("strict mode reads D1 for a JWT: introspection, revocation and the 401 after it", async () => {
  const { app, access_token } = await issue(strict);
  assert.equal((await bearer(strict, "/api/v1/me", access_token)).status, 200);
  assert.equal(lastLine(strict, "me")?.d1, 1, "strict: one D1 read");
  const info = await introspect(strict, app, access_token);
  assert.equal(info.active, true);
  assert.equal(info.sub, "usr_alice");
  assert.equal(lastLine(strict, "introspect")?.d1, 1);
  assert.equal((await revoke(strict, app, access_token)).status, 200);
  assert.equal(lastLine(strict, "revoke")?.d1, 1);
  assert.equal((await bearer(strict, "/api/v1/me", access_token)).status, 401, "revoked JWT: 401 in strict mode");
  assert.equal((await introspect(strict, app, access_token)).active, false);
  await verifyElsewhere(strict, access_token); // still a valid signature: that is the offline trade-off
});

test("a forged JWT carrying a real jti is not looked up", async () => {
  const { app, access_token } = await issue(strict);
  const { payload } = await verifyElsewhere(strict, access_token);
  const forged = await mint(strict, newKey("key-a"), { claims: { jti: payload.jti, client_id: app.client_id } });
  assert.equal((await bearer(strict, "/api/v1/me", forged)).status, 401);
  assert.equal((await introspect(strict, app, forged)).active, false);
});

test("jwt bearer mode: a valid token is accepted with no storage read; permissions are its scope", async () => {
  const { access_token } = await issue(offline, { scope: "profile:read" });
  const res = await bearer(offline, "/api/v1/me", access_token);
  assert.equal(res.status, 200);
  const me = await res.json();
  assert.equal(me.org.id, "org_acme");
  assert.equal(me.actor, "self");
  assert.deepEqual(me.permissions, ["profile:read"]);
  assert.equal(lastLine(offline, "me")?.d1, 0, "no D1 read");
  assert.equal((await bearer(offline, "/api/v1/posts", access_token)).status, 403, "scope still decides");
});

test("jwt bearer mode refuses alg none, an unknown kid, an expired exp, a foreign signature, another audience or issuer, a wrong typ", async () => {
  const { access_token } = await issue(offline);
  const [, payload] = access_token.split(".");
  const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt", kid: "key-a" })).toString("base64url")}.${payload}.`;
  const bad = {
    "alg none": none,
    "unknown kid": await mint(offline, { ...A, kid: "key-z" }),
    "expired exp": await mint(offline, A, { claims: { exp: Math.floor(Date.now() / 1000) - 5 } }),
    "unknown key's signature": await mint(offline, newKey("key-a")),
    "another audience": await mint(offline, A, { claims: { aud: "https://other.example/api" } }),
    "another issuer": await mint(offline, A, { claims: { iss: "https://evil.example" } }),
    "typ JWT": await mint(offline, A, { header: { typ: "JWT" } }),
  };
  // The control: the test's own mint with the real key is accepted.
  assert.equal((await bearer(offline, "/api/v1/me", await mint(offline, A))).status, 200);
  for (const [why, token] of Object.entries(bad)) {
    const res = await bearer(offline, "/api/v1/me", token);
    assert.equal(res.status, 401, why);
    assert.match(res.headers.get("www-authenticate"), /invalid_token/, why);
  }
  assert.deepEqual(decodeProtectedHeader(bad["unknown kid"]).kid, "key-z");
});

test("jwt bearer mode: revocation takes effect at expiry (the documented trade-off)", async () => {
  const { app, access_token } = await issue(offline);
  assert.equal((await revoke(offline, app, access_token)).status, 200);
  assert.equal((await introspect(offline, app, access_token)).active, false, "introspection reads storage");
  assert.equal((await bearer(offline, "/api/v1/me", access_token)).status, 200, "offline check: live until exp");
});

test("key rotation: [A] then [B, A]: old tokens verify until they expire, new ones are signed with B", async () => {
  // The same port keeps the same (loopback-derived) issuer across the restart.
  const port = await freePort();
  const vars = { ACCESS_TOKEN_FORMAT: "jwt", BEARER_MODE: "jwt" };
  let s = await startServer({ ...vars, JWT_SIGNING_KEYS: keys(A) }, { port });
  await signedIn(s);
  const { access_token: t1 } = await issue(s);
  await s.close();
  s = await startServer({ ...vars, JWT_SIGNING_KEYS: keys(B, A) }, { port });
  try {
    await signedIn(s);
    const served = ecOnly((await (await s.fetch("/.well-known/jwks.json")).json()).keys).map((k) => k.kid);
    assert.deepEqual(served, ["key-b", "key-a"]);
    assert.equal((await verifyElsewhere(s, t1)).protectedHeader.kid, "key-a", "t1 verifies via the JWKS");
    assert.equal((await bearer(s, "/api/v1/me", t1)).status, 200, "t1 accepted by jwt bearer mode");
    const { access_token: t2 } = await issue(s);
    assert.equal(decodeProtectedHeader(t2).kid, "key-b");
    await verifyElsewhere(s, t2);
  } finally {
    await s.close();
  }
});

test("jwt bearer mode with the per-isolate cache: a cached token still answers from its claims; a tampered copy is still refused", async () => {
  const s = await startServer({ ACCESS_TOKEN_FORMAT: "jwt", JWT_SIGNING_KEYS: keys(A), BEARER_MODE: "jwt", BEARER_CACHE_TTL_SECONDS: "30" });
  try {
    await signedIn(s);
    const { access_token } = await issue(s, { scope: "profile:read" });
    for (let i = 0; i < 2; i++) {
      const me = await (await bearer(s, "/api/v1/me", access_token)).json();
      assert.deepEqual(me.permissions, ["profile:read"]);
      assert.equal(lastLine(s, "me")?.d1, 0);
    }
    const [h, p, sig] = access_token.split(".");
    const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.at(-2) === "A" ? "B" : "A"}${sig.at(-1)}`;
    assert.equal((await bearer(s, "/api/v1/me", flipped)).status, 401);
  } finally {
    await s.close();
  }
});

test("the token's audience is the configured protected resource (RESOURCES), and the API accepts it", async () => {
  const s = await startServer({
    ACCESS_TOKEN_FORMAT: "jwt", JWT_SIGNING_KEYS: keys(A), BEARER_MODE: "jwt", RESOURCES: "https://api.example.com/v1",
  });
  try {
    await signedIn(s);
    const { access_token } = await issue(s);
    const meta = await (await s.fetch("/.well-known/oauth-authorization-server")).json();
    assert.deepEqual(meta.protected_resources, ["https://api.example.com/v1"]);
    const { payload } = await jwtVerify(access_token, createRemoteJWKSet(new URL(meta.jwks_uri)), {
      issuer: meta.issuer, audience: "https://api.example.com/v1", typ: "at+jwt", algorithms: ["ES256"],
    });
    assert.equal(payload.aud, "https://api.example.com/v1");
    assert.equal((await bearer(s, "/api/v1/me", access_token)).status, 200);
  } finally {
    await s.close();
  }
});
