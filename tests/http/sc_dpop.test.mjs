// DPoP (RFC 9449): proofs at the token endpoint for every grant, storage-free
// server nonces, bound tokens (`token_type: DPoP`, `cnf.jkt`), public
// clients' refresh tokens bound to the same key, `dpop_jkt` at authorize,
// the per-client and server-wide requirement, and the bound token at the
// built-in API in every bearer mode. Each refusal asserts that nothing was
// issued or changed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID, createSecretKey } from "node:crypto";
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint, decodeJwt } from "jose";
import { profileVars } from "../../scripts/profile-vars.mjs";
import { startServer, Browser, registerApp, consent, pkcePair, form, FORM, basic, count, lastLine } from "./support.mjs";

let strict, offline, edge, ado;
const browsers = new Map();

before(async () => {
  strict = await startServer({ BEARER_CACHE_TTL_SECONDS: "2" });
  offline = await startServer({ ACCESS_TOKEN_FORMAT: "jwt", BEARER_MODE: "jwt", DPOP_NONCE: "off" });
  edge = await startServer({ BEARER_MODE: "edge", DPOP_REQUIRED: "public" });
  ado = await startServer(profileVars("azure-devops"));
  for (const s of [strict, offline, edge, ado]) {
    const b = new Browser(s);
    await b.signIn("alice@acme.test", "alice-password");
    browsers.set(s, b);
  }
});
after(async () => {
  for (const s of [strict, offline, edge, ado]) await s?.close();
});

async function newKey(alg = "ES256") {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  const jwk = await exportJWK(publicKey);
  return { alg, privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

const ath = (token) => createHash("sha256").update(token).digest("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** A DPoP proof; `claims` and `header` override or (as `undefined`) remove members. */
async function proof(key, htm, htu, claims = {}, header = {}) {
  const payload = Object.fromEntries(
    Object.entries({ htm, htu, jti: randomUUID(), iat: now(), ...claims }).filter(([, v]) => v !== undefined),
  );
  const h = Object.fromEntries(Object.entries({ alg: key.alg, typ: "dpop+jwt", jwk: key.jwk, ...header }).filter(([, v]) => v !== undefined));
  return new SignJWT(payload).setProtectedHeader(h).sign(key.privateKey);
}

// The last nonce each server handed out (a client keeps the newest one).
const nonces = new Map();

/** A request with a DPoP proof, doing the nonce dance (§8) once if asked to. */
async function dpopFetch(server, key, method, path, init = {}, claims = {}, header = {}) {
  const go = async () => {
    const p = await proof(key, method, server.base + path, { nonce: nonces.get(server), ...claims }, header);
    const res = await server.fetch(path, { method, ...init, headers: { ...(init.headers ?? {}), dpop: p } });
    if (res.headers.get("dpop-nonce")) nonces.set(server, res.headers.get("dpop-nonce"));
    return res;
  };
  const res = await go();
  const challenge = `${res.headers.get("www-authenticate") ?? ""} ${res.status === 400 ? await res.clone().text() : ""}`;
  return challenge.includes("use_dpop_nonce") ? go() : res;
}

/** A token endpoint request as `app` (Basic with its secret, else client_id), with a DPoP proof by `key`. */
function tokenWith(server, key, app, fields, claims = {}, header = {}) {
  const headers = { ...FORM };
  const body = { ...fields };
  if (app.client_secret) headers.authorization = basic(app.client_id, app.client_secret);
  else body.client_id = app.client_id;
  const init = { headers, body: form(body) };
  if (!key) return server.fetch("/oauth/token", { method: "POST", ...init });
  return dpopFetch(server, key, "POST", "/oauth/token", init, claims, header);
}

/** A fresh code for `app` and its verifier. */
async function code(server, app, query = {}, choose = {}) {
  const { verifier, challenge } = pkcePair();
  const { location } = await consent(browsers.get(server), app, { code_challenge: challenge, code_challenge_method: "S256", ...query }, choose);
  return { code: location.searchParams.get("code"), verifier, redirect_uri: app.redirect_uris[0] };
}

const exchangeFields = (c) => ({ grant_type: "authorization_code", code: c.code, code_verifier: c.verifier, redirect_uri: c.redirect_uri });

const publicApp = (server, extra = {}) => registerApp(server, { name: "DPoP SPA", client_type: "public", ...extra });

async function boundTokens(server, key, app) {
  const c = await code(server, app);
  const res = await tokenWith(server, key, app, exchangeFields(c));
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

const tokenRows = (server) => count(server, "SELECT count(*) AS n FROM tokens");

/** Install `bot` with its app actor in org_acme (a code exchange makes the install). */
async function installBot(server, bot) {
  const c = await code(server, bot, { scope: "profile:read" }, { actor: "app" });
  const res = await tokenWith(server, null, bot, exchangeFields(c));
  assert.equal(res.status, 200, await res.text());
}

/** The built-in API with a bound token: `Authorization: DPoP` and a proof carrying `ath`. */
const apiGet = (server, key, token, claims = {}, scheme = "DPoP") =>
  dpopFetch(server, key, "GET", "/api/v1/me", { headers: { authorization: `${scheme} ${token}` } }, { ath: ath(token), ...claims });

test("discovery lists the DPoP algorithms (RFC 9449 §5.1)", async () => {
  for (const s of [strict, offline]) {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const m = await (await s.fetch(path)).json();
      assert.deepEqual(m.dpop_signing_alg_values_supported, ["ES256", "RS256", "PS256", "EdDSA"], path);
    }
  }
});

test("the nonce dance: the first proof is answered use_dpop_nonce and nothing is issued; the retry gets a DPoP-bound token", async () => {
  const app = await publicApp(strict);
  const key = await newKey();
  const c = await code(strict, app);
  const before = await tokenRows(strict);
  const first = await strict.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, dpop: await proof(key, "POST", `${strict.base}/oauth/token`) },
    body: form({ ...exchangeFields(c), client_id: app.client_id }),
  });
  const err = await first.json();
  assert.equal(first.status, 400, JSON.stringify(err));
  assert.equal(err.error, "use_dpop_nonce");
  const nonce = first.headers.get("dpop-nonce");
  assert.ok(nonce && nonce.length >= 16, "a DPoP-Nonce header");
  assert.equal(await tokenRows(strict), before, "nothing issued");
  const retry = await strict.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, dpop: await proof(key, "POST", `${strict.base}/oauth/token`, { nonce }) },
    body: form({ ...exchangeFields(c), client_id: app.client_id }),
  });
  const t = await retry.json();
  assert.equal(retry.status, 200, JSON.stringify(t));
  assert.equal(t.token_type, "DPoP");
  assert.equal(lastLine(strict, "token/authorization_code")?.d1, 1, "code exchange with DPoP stays one D1 round trip");
  const jkts = await strict.db.prepare("SELECT t.kind, t.jkt FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE g.app_id = ?1").bind(app.client_id).all();
  assert.deepEqual(jkts.results.map((r) => [r.kind, r.jkt]).sort(), [["access", key.jkt], ["refresh", key.jkt]]);
});

test("EdDSA, RS256 and PS256 proofs bind too", async () => {
  for (const alg of ["EdDSA", "RS256", "PS256"]) {
    const app = await publicApp(strict);
    const key = await newKey(alg);
    const t = await boundTokens(strict, key, app);
    assert.equal(t.token_type, "DPoP", alg);
    const res = await apiGet(strict, key, t.access_token);
    assert.equal(res.status, 200, `${alg}: ${await res.text()}`);
  }
});

test("refused proofs at the token endpoint issue nothing, and the code stays redeemable", async () => {
  const app = await publicApp(strict);
  const key = await newKey();
  const other = await newKey();
  const c = await code(strict, app);
  const before = await tokenRows(strict);
  const hs = await new SignJWT({ htm: "POST", htu: `${strict.base}/oauth/token`, jti: randomUUID(), iat: now(), nonce: nonces.get(strict) })
    .setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: key.jwk })
    .sign(createSecretKey(Buffer.alloc(32, 7)));
  const unsigned = (p) => `${p.split(".").slice(0, 2).join(".")}.`;
  const withPrivate = { ...(await exportJWK(key.privateKey)) };
  const cases = {
    "another htu": [{ htu: `${strict.base}/oauth/revoke` }, {}],
    "another htm": [{ htm: "GET" }, {}],
    "a stale iat": [{ iat: now() - 600 }, {}],
    "an iat in the future": [{ iat: now() + 600 }, {}],
    "no jti": [{ jti: undefined }, {}],
    "typ JWT": [{}, { typ: "JWT" }],
    "a private key in the header": [{}, { jwk: withPrivate }],
    "another key's signature": [{}, { jwk: other.jwk }],
  };
  for (const [why, [claims, header]] of Object.entries(cases)) {
    const res = await tokenWith(strict, key, app, exchangeFields(c), claims, header);
    const body = await res.json();
    assert.equal(res.status, 400, `${why}: ${JSON.stringify(body)}`);
    assert.equal(body.error, "invalid_dpop_proof", why);
  }
  // A nonce we never issued: the client is asked to use ours (§8), nothing is issued.
  const wrong = await strict.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, dpop: await proof(key, "POST", `${strict.base}/oauth/token`, { nonce: "not-a-nonce-of-ours" }) },
    body: form({ ...exchangeFields(c), client_id: app.client_id }),
  });
  assert.equal(wrong.status, 400);
  assert.equal((await wrong.json()).error, "use_dpop_nonce");
  assert.ok(wrong.headers.get("dpop-nonce"));
  const p = await proof(key, "POST", `${strict.base}/oauth/token`, { nonce: nonces.get(strict) });
  for (const [why, bad] of Object.entries({ "alg none": unsigned(p).replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk: key.jwk })).toString("base64url")), HS256: hs, "two proofs": `${p}, ${p}` })) {
    const res = await strict.fetch("/oauth/token", { method: "POST", headers: { ...FORM, dpop: bad }, body: form({ ...exchangeFields(c), client_id: app.client_id }) });
    const body = await res.json();
    assert.equal(res.status, 400, `${why}: ${JSON.stringify(body)}`);
    assert.equal(body.error, "invalid_dpop_proof", why);
  }
  assert.equal(await tokenRows(strict), before, "nothing issued");
  assert.equal(await count(strict, "SELECT count(*) AS n FROM codes WHERE used_at IS NOT NULL AND redirect_uri = ?1 AND app_id = ?2", c.redirect_uri, app.client_id), 0, "the code is unused");
  const t = await (await tokenWith(strict, key, app, exchangeFields(c))).json();
  assert.equal(t.token_type, "DPoP", "the code still redeems with a good proof");
});

test("a public client's refresh token is bound: another key or none is refused and nothing rotates; the same key refreshes", async () => {
  const app = await publicApp(strict);
  const key = await newKey();
  const t = await boundTokens(strict, key, app);
  const refresh = { grant_type: "refresh_token", refresh_token: t.refresh_token };
  const before = await tokenRows(strict);
  const withOther = await tokenWith(strict, await newKey(), app, refresh);
  const e1 = await withOther.json();
  assert.equal(withOther.status, 400, JSON.stringify(e1));
  assert.equal(e1.error, "invalid_dpop_proof");
  const without = await tokenWith(strict, null, app, refresh);
  const e2 = await without.json();
  assert.equal(without.status, 400, JSON.stringify(e2));
  assert.equal(e2.error, "invalid_dpop_proof");
  assert.equal(await tokenRows(strict), before, "nothing issued");
  assert.equal(await count(strict, "SELECT count(*) AS n FROM tokens WHERE used_at IS NOT NULL AND kind = 'refresh' AND jkt = ?1", key.jkt), 0, "nothing rotated");
  const ok = await tokenWith(strict, key, app, refresh);
  const t2 = await ok.json();
  assert.equal(ok.status, 200, JSON.stringify(t2));
  assert.equal(t2.token_type, "DPoP");
  assert.equal(lastLine(strict, "token/refresh_token")?.d1, 1, "a DPoP refresh stays one D1 round trip");
});

test("a confidential client's access token is bound, its refresh token is not (§5, §5.0): client_credentials binds too", async () => {
  const app = await registerApp(strict, { name: "DPoP bot", actor_modes: ["app", "self"] });
  await installBot(strict, app);
  const key = await newKey();
  const t = await boundTokens(strict, key, app);
  const other = await newKey();
  const refreshed = await tokenWith(strict, other, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  const r = await refreshed.json();
  assert.equal(refreshed.status, 200, JSON.stringify(r));
  assert.equal(r.token_type, "DPoP");
  assert.equal((await apiGet(strict, other, r.access_token)).status, 200, "bound to the key of the refresh");
  const cc = await tokenWith(strict, key, app, { grant_type: "client_credentials" });
  const ct = await cc.json();
  assert.equal(cc.status, 200, JSON.stringify(ct));
  assert.equal(ct.token_type, "DPoP");
  assert.equal((await apiGet(strict, key, ct.access_token)).status, 200);
  const plain = await (await tokenWith(strict, null, app, { grant_type: "client_credentials" })).json();
  assert.equal(plain.token_type, "Bearer", "without a proof, a Bearer token as before");
});

test("the built-in API takes a bound token only as DPoP with a valid proof for it (strict, then the isolate cache)", async () => {
  const app = await publicApp(strict);
  const key = await newKey();
  const t = await boundTokens(strict, key, app);
  for (let round = 0; round < 2; round++) {
    const ok = await apiGet(strict, key, t.access_token);
    assert.equal(ok.status, 200, await ok.text());
    if (round === 0) assert.equal(lastLine(strict, "me")?.d1, 1, "a DPoP API call stays one D1 round trip");
    const asBearer = await strict.fetch("/api/v1/me", { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(asBearer.status, 401);
    const www = asBearer.headers.get("www-authenticate");
    assert.match(www, /^DPoP /);
    assert.match(www, /algs="ES256 RS256 PS256 EdDSA"/);
    assert.match(www, /error="invalid_token"/);
    for (const [why, res] of Object.entries({
      "another key": await apiGet(strict, await newKey(), t.access_token),
      "no ath": await apiGet(strict, key, t.access_token, { ath: undefined }),
      "another token's ath": await apiGet(strict, key, t.access_token, { ath: ath("x") }),
      "another htu": await dpopFetch(strict, key, "GET", "/api/v1/me", { headers: { authorization: `DPoP ${t.access_token}` } }, { ath: ath(t.access_token), htu: `${strict.base}/api/v1/posts` }),
      "no proof": await strict.fetch("/api/v1/me", { headers: { authorization: `DPoP ${t.access_token}` } }),
    })) {
      assert.equal(res.status, 401, why);
      assert.match(res.headers.get("www-authenticate") ?? "", /^DPoP .*error="(invalid_dpop_proof|invalid_token)"/, why);
    }
  }
});

test("introspection returns cnf.jkt and token_type DPoP (RFC 9449 §6.2)", async () => {
  const app = await registerApp(strict, { name: "DPoP confidential" });
  const key = await newKey();
  const t = await boundTokens(strict, key, app);
  const own = await strict.fetch("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) }, body: form({ token: t.access_token }) });
  const o = await own.json();
  assert.equal(o.active, true, JSON.stringify(o));
  assert.deepEqual(o.cnf, { jkt: key.jkt });
  assert.equal(o.token_type, "DPoP");
});

test("dpop_jkt at authorize binds the code (§10): another key is refused and the code stays redeemable", async () => {
  const app = await publicApp(strict);
  const key = await newKey();
  const c = await code(strict, app, { dpop_jkt: key.jkt });
  const before = await tokenRows(strict);
  for (const k of [await newKey(), null]) {
    const res = await tokenWith(strict, k, app, exchangeFields(c));
    const body = await res.json();
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(body.error, "invalid_dpop_proof");
  }
  assert.equal(await tokenRows(strict), before, "nothing issued");
  const ok = await tokenWith(strict, key, app, exchangeFields(c));
  assert.equal(ok.status, 200, await ok.text());
});

test("dpop_bound_access_tokens makes DPoP mandatory for that client", async () => {
  const app = await publicApp(strict);
  await strict.db.prepare("UPDATE apps SET dpop_bound_access_tokens = 1 WHERE id = ?1").bind(app.client_id).run();
  const c = await code(strict, app);
  const before = await tokenRows(strict);
  const res = await tokenWith(strict, null, app, exchangeFields(c));
  const body = await res.json();
  assert.equal(res.status, 400, JSON.stringify(body));
  assert.equal(body.error, "invalid_dpop_proof");
  assert.equal(await tokenRows(strict), before, "nothing issued");
  const ok = await tokenWith(strict, await newKey(), app, exchangeFields(c));
  assert.equal(ok.status, 200, await ok.text());
});

test("DPOP_REQUIRED=public: a public client must send a proof, a confidential one need not; edge mode checks the proof", async () => {
  const app = await publicApp(edge);
  const c = await code(edge, app);
  const before = await tokenRows(edge);
  const res = await tokenWith(edge, null, app, exchangeFields(c));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_dpop_proof");
  assert.equal(await tokenRows(edge), before);
  const key = await newKey();
  const t = await (await tokenWith(edge, key, app, exchangeFields(c))).json();
  assert.equal(t.token_type, "DPoP");
  const conf = await registerApp(edge, { name: "Confidential" });
  const c2 = await code(edge, conf);
  assert.equal((await (await tokenWith(edge, null, conf, exchangeFields(c2))).json()).token_type, "Bearer");
  for (let i = 0; i < 2; i++) {
    assert.equal((await apiGet(edge, key, t.access_token)).status, 200);
    assert.equal((await edge.fetch("/api/v1/me", { headers: { authorization: `Bearer ${t.access_token}` } })).status, 401);
    assert.equal((await apiGet(edge, await newKey(), t.access_token)).status, 401);
  }
});

test("JWT access tokens carry cnf.jkt; BEARER_MODE=jwt takes them only with a proof; without nonces a replayed proof is refused at the token endpoint", async () => {
  const app = await publicApp(offline);
  const key = await newKey();
  const t = await boundTokens(offline, key, app);
  assert.deepEqual(decodeJwt(t.access_token).cnf, { jkt: key.jkt });
  assert.equal((await apiGet(offline, key, t.access_token)).status, 200);
  assert.equal(lastLine(offline, "me")?.d1 ?? 0, 0, "jwt mode reads nothing");
  const asBearer = await offline.fetch("/api/v1/me", { headers: { authorization: `Bearer ${t.access_token}` } });
  assert.equal(asBearer.status, 401);
  assert.match(asBearer.headers.get("www-authenticate"), /^DPoP /);
  assert.equal((await apiGet(offline, await newKey(), t.access_token)).status, 401);

  const bot = await registerApp(offline, { name: "DPoP bot", scopes: ["profile:read"], actor_modes: ["app", "self"] });
  await installBot(offline, bot);
  const p = await proof(key, "POST", `${offline.base}/oauth/token`);
  const send = () => offline.fetch("/oauth/token", { method: "POST", headers: { ...FORM, authorization: basic(bot.client_id, bot.client_secret), dpop: p }, body: form({ grant_type: "client_credentials" }) });
  const first = await send();
  assert.equal(first.status, 200, await first.text());
  const before = await tokenRows(offline);
  const replay = await (await send()).json();
  assert.equal(replay.error, "invalid_dpop_proof", JSON.stringify(replay));
  assert.equal(await tokenRows(offline), before, "nothing issued");
});

test("UserInfo takes a bound token only as DPoP with a proof by its key", async () => {
  const app = await publicApp(strict);
  const key = await newKey();
  const c = await code(strict, app, { scope: "openid profile:read" });
  const t = await (await tokenWith(strict, key, app, exchangeFields(c))).json();
  assert.equal(t.token_type, "DPoP", JSON.stringify(t));
  const asBearer = await strict.fetch("/oauth/userinfo", { headers: { authorization: `Bearer ${t.access_token}` } });
  assert.equal(asBearer.status, 401);
  assert.match(asBearer.headers.get("www-authenticate") ?? "", /^DPoP /);
  const other = await dpopFetch(strict, await newKey(), "GET", "/oauth/userinfo", { headers: { authorization: `DPoP ${t.access_token}` } }, { ath: ath(t.access_token) });
  assert.equal(other.status, 401);
  const ok = await dpopFetch(strict, key, "GET", "/oauth/userinfo", { headers: { authorization: `DPoP ${t.access_token}` } }, { ath: ath(t.access_token) });
  const claims = await ok.json();
  assert.equal(ok.status, 200, JSON.stringify(claims));
  assert.ok(claims.sub);
});

test("the Azure DevOps assertion grants bind when a DPoP header is present; a bound refresh token needs no key for a confidential client", async () => {
  const app = await registerApp(ado, { name: "ADO DPoP" });
  const key = await newKey();
  const { location } = await consent(browsers.get(ado), app, { response_type: "Assertion", code_challenge: undefined, prompt: "consent" });
  const assertion = (fields) => ({
    headers: { ...FORM },
    body: form({ client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", redirect_uri: app.redirect_uris[0], client_assertion: app.client_secret, ...fields }),
  });
  const res = await dpopFetch(ado, key, "POST", "/oauth2/token", assertion({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: location.searchParams.get("code") }));
  const t = await res.json();
  assert.equal(res.status, 200, JSON.stringify(t));
  assert.equal(t.token_type, "DPoP");
  assert.deepEqual(decodeJwt(t.access_token).cnf, { jkt: key.jkt });
  assert.equal((await ado.fetch("/api/v1/me", { headers: { authorization: `Bearer ${t.access_token}` } })).status, 401);
  assert.equal((await apiGet(ado, key, t.access_token)).status, 200);
  const r = await dpopFetch(ado, key, "POST", "/oauth2/token", assertion({ grant_type: "refresh_token", assertion: t.refresh_token }));
  const t2 = await r.json();
  assert.equal(r.status, 200, JSON.stringify(t2));
  assert.equal(t2.token_type, "DPoP");
  assert.deepEqual(decodeJwt(t2.access_token).cnf, { jkt: key.jkt });
});

test("a code exchange replayed whole (same code, same proof) is refused and still revokes what the code issued (RFC 9700 §4.5)", async () => {
  const app = await publicApp(offline);
  const key = await newKey();
  const c = await code(offline, app);
  const p = await proof(key, "POST", `${offline.base}/oauth/token`);
  const send = () => offline.fetch("/oauth/token", { method: "POST", headers: { ...FORM, dpop: p }, body: form({ ...exchangeFields(c), client_id: app.client_id }) });
  const first = await (await send()).json();
  assert.equal(first.token_type, "DPoP", JSON.stringify(first));
  const replay = await (await send()).json();
  assert.equal(replay.error, "invalid_dpop_proof", JSON.stringify(replay));
  const revoked = await count(offline, "SELECT count(*) AS n FROM grants WHERE app_id = ?1 AND revoked_at IS NOT NULL", app.client_id);
  assert.equal(revoked, 1, "the grant of the replayed code is revoked");
});

test("browser clients may send DPoP and read DPoP-Nonce (CORS)", async () => {
  const pre = await strict.fetch("/oauth/token", { method: "OPTIONS", headers: { origin: "https://spa.example", "access-control-request-method": "POST", "access-control-request-headers": "dpop" } });
  assert.match(pre.headers.get("access-control-allow-headers") ?? "", /\bDPoP\b/);
  const res = await strict.fetch("/oauth/token", { method: "POST", headers: { ...FORM, origin: "https://spa.example", dpop: await proof(await newKey(), "POST", `${strict.base}/oauth/token`) }, body: form({ grant_type: "client_credentials", client_id: "nobody" }) });
  assert.match(res.headers.get("access-control-expose-headers") ?? "", /\bDPoP-Nonce\b/);
  assert.ok(res.headers.get("dpop-nonce"));
});
