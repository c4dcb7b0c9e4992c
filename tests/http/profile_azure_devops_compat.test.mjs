// Issue 11: the Azure DevOps profile speaks the Azure DevOps document's wire
// format (seeds/003): the document's Express app works against it by changing
// only the hosts it calls; the default profile refuses every one of those
// requests with the standard errors; bad input in the compat form issues
// nothing; replay and reuse revoke as the core does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { profileVars } from "../../scripts/profile-vars.mjs";
import {
  startServer, Browser, registerApp, consent, exchange, tokenRequest, hiddenFields, api, bearer, form, FORM, basic, authorizeQuery, lastLine, count,
} from "./support.mjs";
import { startApp } from "./azure_devops_app.mjs";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CODE_INVALID = "The provided authorization code is invalid or has expired.";
const ASSERTION_INVALID = "The client assertion is invalid.";
const SCOPE_FORBIDDEN = "The access token is not authorized for the requested scope.";
const VSO = ["vso.work", "vso.build", "vso.code", "vso.project", "vso.profile"];
const REDIRECT = "http://localhost:3000/callback";

const sha = (s) => createHash("sha256").update(s).digest("hex");
let ado, std, aliceAdo, aliceStd;

before(async () => {
  ado = await startServer(profileVars("azure-devops"));
  std = await startServer({});
  // The platform's scope catalogue holds the document's scope names.
  for (const s of VSO) {
    await ado.db.prepare("INSERT INTO scopes (name, description) VALUES (?, ?)").bind(s, `Azure DevOps ${s}`).run();
    await ado.db.prepare("INSERT INTO role_permissions (role, permission) VALUES ('owner', ?)").bind(s).run();
  }
  aliceAdo = new Browser(ado);
  await aliceAdo.signIn("alice@acme.test", "alice-password");
  aliceStd = new Browser(std);
  await aliceStd.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await ado?.close();
  await std?.close();
});

/** The document's token request (its exchangeCodeForTokens / refreshAccessToken bodies). */
function assertionRequest(server, fields, { path = "/oauth2/token", headers = {} } = {}) {
  return server.fetch(path, {
    method: "POST",
    headers: { ...FORM, ...headers },
    body: form({ client_assertion_type: ASSERTION_TYPE, redirect_uri: REDIRECT, ...fields }),
  });
}
const exchangeAssertion = (server, code, secret, extra = {}, path = "/oauth2/token") =>
  assertionRequest(server, { client_assertion: secret, grant_type: JWT_BEARER, assertion: code, ...extra }, { path });
const refreshAssertion = (server, refreshToken, secret, extra = {}, path = "/oauth2/token") =>
  assertionRequest(server, { client_assertion: secret, grant_type: "refresh_token", assertion: refreshToken, ...extra }, { path });

/** The document's revokeToken(): the token as bearer and as `token`. */
const revokeAsBearer = (server, token, sent = token) =>
  server.fetch("/oauth2/revoke", {
    method: "POST",
    headers: { ...FORM, authorization: `Bearer ${token}` },
    body: form({ token: sent, token_type_hint: "access_token" }),
  });

/** A code from response_type=Assertion, without PKCE (a confidential app). */
async function assertionCode(app, scope = "profile:read posts:read") {
  const { location } = await consent(aliceAdo, app, { response_type: "Assertion", code_challenge: undefined, scope, prompt: "consent" });
  const code = location?.searchParams.get("code");
  assert.ok(code, `no code: ${location}`);
  return code;
}

async function tokensFor(app, scope) {
  const res = await exchangeAssertion(ado, await assertionCode(app, scope), app.client_secret);
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

const tokenCount = (server) => count(server, "SELECT count(*) AS n FROM tokens");
const codeUsed = async (server, code) => (await server.db.prepare("SELECT used_at FROM codes WHERE hash = ?").bind(sha(code)).first()).used_at;
const me = (server, token) => bearer(server, "/api/v1/me", token).then((r) => r.status);
// ---- the document's app, end to end ------------------------------------------

test("the document's Express app: authorize → exchange → API call → refresh → revoke, changing only its hosts", async () => {
  const reg = await registerApp(ado, {
    name: "My DevOps Dashboard",
    redirect_uris: ["http://127.0.0.1:3000/auth/callback"],
    scopes: [...VSO, "posts:read"],
  });
  let clock = Date.now();
  const app = await startApp({
    clientId: reg.client_id,
    clientSecret: reg.client_secret,
    authBase: ado.base,
    apiBase: ado.base,
    scopes: `${VSO.join(" ")} posts:read`,
    now: () => clock,
  });
  const cookies = new Map();
  const visit = async (path) => {
    const res = await fetch(app.base + path, { redirect: "manual", headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  };
  try {
    // Login: the app sends the browser to /oauth2/authorize with response_type=Assertion.
    let res = await visit("/auth/login");
    assert.equal(res.status, 302);
    const authorize = new URL(res.headers.get("location"));
    assert.equal(authorize.origin + authorize.pathname, `${ado.base}/oauth2/authorize`);
    assert.equal(authorize.searchParams.get("response_type"), "Assertion");
    assert.equal(authorize.searchParams.get("code_challenge"), null);
    // The user approves on our consent screen; the browser lands on the app's callback.
    const page = await aliceAdo.fetch(authorize.pathname + authorize.search);
    assert.equal(page.status, 200, await page.clone().text());
    const decision = await aliceAdo.post("/oauth/authorize", { ...hiddenFields(await page.text()), org: "org_acme", decision: "approve" });
    const callback = new URL(decision.headers.get("location"));
    assert.equal(callback.origin, app.base);
    // The callback exchanges the code (the JWT-bearer form) and fetches the profile.
    res = await visit(callback.pathname + callback.search);
    assert.equal(res.status, 302, await res.clone().text());
    assert.equal(res.headers.get("location"), "/dashboard");
    assert.equal(lastLine(ado, "token/jwt_bearer")?.d1, 1, "the exchange is one D1 round trip");
    // The API call.
    res = await visit("/dashboard");
    assert.equal(res.status, 200, await res.clone().text());
    assert.match(await res.text(), /Welcome, alice@acme\.test.*org acme/);
    assert.equal(res.headers.get("x-refreshed"), null);
    // 56 minutes later the app refreshes before the call (expiring within 5 minutes).
    const spent = await count(ado, "SELECT count(*) AS n FROM tokens WHERE kind = 'refresh' AND used_at IS NOT NULL");
    clock += 56 * 60 * 1000;
    res = await visit("/dashboard");
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("x-refreshed"), "1");
    assert.equal(await count(ado, "SELECT count(*) AS n FROM tokens WHERE kind = 'refresh' AND used_at IS NOT NULL"), spent + 1);
    assert.equal(lastLine(ado, "token/assertion_refresh")?.d1, 1, "the refresh is one D1 round trip");
    // Logout revokes the access token and the refresh token with the document's helper.
    res = await visit("/auth/logout");
    const out = await res.json();
    assert.deepEqual([out.access, out.refresh], [200, 200]);
    assert.equal(await me(ado, out.tokens.access_token), 401, "the access token is dead");
    const again = await refreshAssertion(ado, out.tokens.refresh_token, reg.client_secret);
    assert.equal(again.status, 400);
    assert.equal((await again.json()).error, "invalid_grant", "the refresh token is dead");
  } finally {
    await app.close();
  }
});

test("the token response is the document's: JWT access token, token_type jwt, expires_in a string, JWT-shaped refresh token", async () => {
  const app = await registerApp(ado, { name: "Shape" });
  const code = await assertionCode(app);
  const res = await exchangeAssertion(ado, code, app.client_secret);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get("cache-control"), "no-store");
  const t = await res.json();
  assert.deepEqual(Object.keys(t).sort(), ["access_token", "expires_in", "refresh_token", "token_type"]);
  assert.equal(t.token_type, "jwt");
  assert.equal(t.expires_in, "3600", "one hour, as a string like the document's \"3599\"");
  assert.match(t.refresh_token, /^eyJ0eXAi[\w-]*\.[\w-]+\.$/);
  // A resource server verifies the access token from the metadata alone.
  const meta = await (await ado.fetch("/.well-known/oauth-authorization-server")).json();
  const { payload } = await jwtVerify(t.access_token, createRemoteJWKSet(new URL(meta.jwks_uri)), {
    issuer: meta.issuer, audience: `${meta.issuer}/api/v1`, typ: "at+jwt", algorithms: ["ES256"],
  });
  assert.equal(payload.client_id, app.client_id);
  assert.equal(payload.exp - payload.iat, 3600, "access tokens live one hour");
  const row = await ado.db.prepare("SELECT created_at, expires_at FROM codes WHERE hash = ?").bind(sha(code)).first();
  assert.equal(row.expires_at - row.created_at, 900, "codes live 15 minutes");
  assert.equal(await me(ado, t.access_token), 200);
  // The refresh in the document's shape answers the same way.
  const r = await refreshAssertion(ado, t.refresh_token, app.client_secret);
  assert.equal(r.status, 200, await r.clone().text());
  const n = await r.json();
  assert.deepEqual([n.token_type, n.expires_in, typeof n.refresh_token], ["jwt", "3600", "string"]);
  assert.notEqual(n.refresh_token, t.refresh_token);
  // /oauth/token answers the assertion form too (the paths are aliases).
  const viaCore = await exchangeAssertion(ado, await assertionCode(app), app.client_secret, {}, "/oauth/token");
  assert.equal(viaCore.status, 200);
});

test("a code older than 15 minutes gets the document's invalid_grant text; one just inside still works", async () => {
  const app = await registerApp(ado, { name: "Lifetimes" });
  const late = await assertionCode(app);
  await ado.db.prepare("UPDATE codes SET expires_at = ? WHERE hash = ?").bind(Math.floor(Date.now() / 1000) - 1, sha(late)).run();
  const res = await exchangeAssertion(ado, late, app.client_secret);
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { error: "invalid_grant", error_description: CODE_INVALID });
  const inTime = await assertionCode(app);
  // 14 minutes old: 60 seconds left.
  await ado.db.prepare("UPDATE codes SET expires_at = ? WHERE hash = ?").bind(Math.floor(Date.now() / 1000) + 60, sha(inTime)).run();
  assert.equal((await exchangeAssertion(ado, inTime, app.client_secret)).status, 200);
});

// ---- bad input in the compat form: refused, nothing issued --------------------

test("a code from another client: refused as a bad assertion, nothing issued, the code still redeemable by its client", async () => {
  const victim = await registerApp(ado, { name: "Victim" });
  const attacker = await registerApp(ado, { name: "Attacker" });
  const code = await assertionCode(victim);
  const before = await tokenCount(ado);
  const res = await exchangeAssertion(ado, code, attacker.client_secret);
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { error: "invalid_client", error_description: ASSERTION_INVALID });
  assert.equal(await tokenCount(ado), before, "nothing issued");
  assert.equal(await codeUsed(ado, code), null, "the code is not consumed");
  assert.equal((await exchangeAssertion(ado, code, victim.client_secret)).status, 200);
});

test("a wrong, rotated or expired client assertion: invalid_client with the document's text, nothing issued", async () => {
  const app = await registerApp(ado, { name: "Secrets" });
  const code = await assertionCode(app);
  const before = await tokenCount(ado);
  for (const secret of ["sec_wrong", "", app.client_secret + "x"]) {
    const res = await exchangeAssertion(ado, code, secret);
    assert.equal(res.status, 401, secret);
    assert.deepEqual(await res.json(), { error: "invalid_client", error_description: ASSERTION_INVALID });
  }
  assert.equal(await tokenCount(ado), before);
  assert.equal(await codeUsed(ado, code), null);
  const t = await (await exchangeAssertion(ado, code, app.client_secret)).json();
  // Rotated: the old secret dies at once, for the refresh too.
  const rotated = await (await api(ado, "POST", `/api/v1/apps/${app.client_id}/secret`, {})).json();
  const stale = await refreshAssertion(ado, t.refresh_token, app.client_secret);
  assert.equal(stale.status, 401);
  assert.deepEqual(await stale.json(), { error: "invalid_client", error_description: ASSERTION_INVALID });
  const fresh = await refreshAssertion(ado, t.refresh_token, rotated.client_secret);
  assert.equal(fresh.status, 200, "the refresh token survived the refused attempt");
  const next = await fresh.json();
  // Expired (secret_expires_in at registration, Azure DevOps).
  await ado.db.prepare("UPDATE apps SET secret_expires_at = 1 WHERE id = ?").bind(app.client_id).run();
  const expired = await refreshAssertion(ado, next.refresh_token, rotated.client_secret);
  assert.equal(expired.status, 401);
  assert.deepEqual(await expired.json(), { error: "invalid_client", error_description: ASSERTION_INVALID });
  await ado.db.prepare("UPDATE apps SET secret_expires_at = NULL WHERE id = ?").bind(app.client_id).run();
  assert.equal((await refreshAssertion(ado, next.refresh_token, rotated.client_secret)).status, 200, "nothing was spent");
});

test("a replayed code: the document's invalid_grant, and what the first redemption issued is revoked", async () => {
  const app = await registerApp(ado, { name: "Replay" });
  const code = await assertionCode(app);
  const first = await (await exchangeAssertion(ado, code, app.client_secret)).json();
  assert.equal(await me(ado, first.access_token), 200);
  const before = await tokenCount(ado);
  const replay = await exchangeAssertion(ado, code, app.client_secret);
  assert.equal(replay.status, 400);
  assert.deepEqual(await replay.json(), { error: "invalid_grant", error_description: CODE_INVALID });
  assert.equal(await tokenCount(ado), before, "nothing issued");
  assert.equal(await me(ado, first.access_token), 401, "the first access token is revoked");
  assert.equal((await refreshAssertion(ado, first.refresh_token, app.client_secret)).status, 400);
});

test("a refresh token used as a code, and a code used as a refresh token: refused, both still good", async () => {
  const app = await registerApp(ado, { name: "Swap" });
  const t = await tokensFor(app);
  const code = await assertionCode(app);
  const before = await tokenCount(ado);
  const asCode = await exchangeAssertion(ado, t.refresh_token, app.client_secret);
  assert.equal(asCode.status, 400);
  assert.deepEqual(await asCode.json(), { error: "invalid_grant", error_description: CODE_INVALID });
  const asRefresh = await refreshAssertion(ado, code, app.client_secret);
  assert.equal(asRefresh.status, 400);
  assert.equal((await asRefresh.json()).error, "invalid_grant");
  // The inner opaque refresh token, unwrapped by hand, is not a code either.
  const inner = JSON.parse(Buffer.from(t.refresh_token.split(".")[1], "base64url")).rt;
  assert.equal((await exchangeAssertion(ado, inner, app.client_secret)).status, 400);
  // An access token is neither.
  assert.equal((await exchangeAssertion(ado, t.access_token, app.client_secret)).status, 400);
  assert.equal((await refreshAssertion(ado, t.access_token, app.client_secret)).status, 400);
  assert.equal(await tokenCount(ado), before, "nothing issued");
  assert.equal(await codeUsed(ado, code), null);
  assert.equal((await exchangeAssertion(ado, code, app.client_secret)).status, 200, "the code still redeems");
  assert.equal((await refreshAssertion(ado, t.refresh_token, app.client_secret)).status, 200, "the refresh token still rotates");
});

test("a reused refresh token in the compat form revokes its family, as the core does", async () => {
  const app = await registerApp(ado, { name: "Reuse" });
  const t = await tokensFor(app);
  const next = await (await refreshAssertion(ado, t.refresh_token, app.client_secret)).json();
  // Outside the default reuse grace (10 s since issue 15), anchored at the rotation.
  // (The compat form wraps the refresh token, so the rotated one is found by its app.)
  await ado.db.prepare("UPDATE tokens SET used_at = used_at - 11 WHERE kind = 'refresh' AND used_at IS NOT NULL AND grant_id IN (SELECT id FROM grants WHERE app_id = ?)").bind(app.client_id).run();
  const reuse = await refreshAssertion(ado, t.refresh_token, app.client_secret);
  assert.equal(reuse.status, 400);
  assert.equal((await reuse.json()).error, "invalid_grant");
  assert.equal(await me(ado, next.access_token), 401, "the family is revoked");
  assert.equal((await refreshAssertion(ado, next.refresh_token, app.client_secret)).status, 400);
});

test("the compat form names its client only by the assertion: client_id, Basic or a wrong assertion type are refused", async () => {
  const app = await registerApp(ado, { name: "Strict form" });
  const code = await assertionCode(app);
  const before = await tokenCount(ado);
  for (const [extra, headers] of [
    [{ client_id: app.client_id }, {}],
    [{}, { authorization: basic(app.client_id, app.client_secret) }],
    [{ client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer" }, {}],
    [{ assertion: [code, code] }, {}],
  ]) {
    const body = new URLSearchParams({ client_assertion_type: ASSERTION_TYPE, redirect_uri: REDIRECT, client_assertion: app.client_secret, grant_type: JWT_BEARER });
    for (const [k, v] of Object.entries(extra)) {
      body.delete(k);
      for (const x of [v].flat()) body.append(k, x);
    }
    if (!("assertion" in extra)) body.set("assertion", code);
    const res = await ado.fetch("/oauth2/token", { method: "POST", headers: { ...FORM, ...headers }, body: body.toString() });
    assert.equal(res.status, 400, JSON.stringify(extra));
    assert.equal((await res.json()).error, "invalid_request");
  }
  // A redirect_uri other than the authorization request's.
  const res = await exchangeAssertion(ado, code, app.client_secret, { redirect_uri: "http://localhost:3000/other" });
  assert.equal(res.status, 400);
  assert.equal(await tokenCount(ado), before);
  assert.equal(await codeUsed(ado, code), null);
});

test("guessing the assertion is rate limited per client and source, in the redeeming batch too: the right secret then redeems nothing", async () => {
  const limited = await startServer({ ...profileVars("azure-devops"), CLIENT_AUTH_MAX_FAILURES: "3" });
  try {
    const alice = new Browser(limited);
    await alice.signIn("alice@acme.test", "alice-password");
    const app = await registerApp(limited, { name: "Guessed" });
    const { location } = await consent(alice, app, { response_type: "Assertion", code_challenge: undefined, scope: "profile:read" });
    const code = location.searchParams.get("code");
    for (let i = 0; i < 3; i++) assert.equal((await exchangeAssertion(limited, code, `sec_guess${i}`)).status, 401);
    const right = await exchangeAssertion(limited, code, app.client_secret);
    assert.equal(right.status, 429, await right.clone().text());
    assert.equal(await codeUsed(limited, code), null, "the SQL guard counted the same failures: nothing redeemed");
    assert.equal(await tokenCount(limited), 0);
  } finally {
    await limited.close();
  }
});

test("the authorize errors in the document's words: an unregistered reply URL (AADSTS50011) and Deny", async () => {
  const app = await registerApp(ado, { name: "Authorize texts" });
  const bad = await aliceAdo.fetch(`/oauth2/authorize?client_id=${app.client_id}&response_type=Assertion&scope=profile:read&state=s&redirect_uri=${encodeURIComponent("http://localhost:3000/callback/")}`);
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /AADSTS50011: The reply URL specified in the request does not match the reply URLs configured for the application/);
  const { location } = await consent(aliceAdo, app, { response_type: "Assertion", code_challenge: undefined, prompt: "consent" }, { decision: "deny" });
  assert.equal(location.searchParams.get("error"), "access_denied");
  assert.equal(location.searchParams.get("error_description"), "User did not authorize the request");
  const stdApp = await registerApp(std, { name: "Authorize texts" });
  const stdBad = await aliceStd.fetch(`/oauth/authorize?${authorizeQuery(stdApp, { redirect_uri: "http://localhost:3000/callback/" })}`);
  assert.equal(stdBad.status, 400);
  assert.doesNotMatch(await stdBad.text(), /AADSTS/, "the default profile keeps its own words");
  const denied = await consent(aliceStd, stdApp, { prompt: "consent" }, { decision: "deny" });
  assert.equal(denied.location.searchParams.get("error_description"), "the user denied the request");
});

// ---- revocation and the API -------------------------------------------------

test("a bearer revokes itself without client credentials, never another token", async () => {
  const app = await registerApp(ado, { name: "Self revoke" });
  const mine = await tokensFor(app);
  const other = await tokensFor(app);
  // Another token in `token`: refused, both alive.
  const cross = await revokeAsBearer(ado, mine.access_token, other.access_token);
  assert.equal(cross.status, 400);
  assert.equal((await cross.json()).error, "invalid_request");
  assert.equal(await me(ado, other.access_token), 200);
  assert.equal(await me(ado, mine.access_token), 200);
  // Its own refresh token as `token` is another token too.
  assert.equal((await revokeAsBearer(ado, mine.access_token, mine.refresh_token)).status, 400);
  assert.equal((await refreshAssertion(ado, mine.refresh_token, app.client_secret)).status, 200);
  // Itself: revoked, and only itself.
  const self = await revokeAsBearer(ado, other.access_token);
  assert.equal(self.status, 200);
  assert.equal(lastLine(ado, "revoke/bearer")?.d1, 1);
  assert.equal(await me(ado, other.access_token), 401);
  assert.equal((await refreshAssertion(ado, other.refresh_token, app.client_secret)).status, 200, "an access token ends only itself");
  // A forged or unknown bearer: 200 as RFC 7009 answers unknown tokens, nothing changed.
  const before = await count(ado, "SELECT count(*) AS n FROM tokens WHERE revoked_at IS NOT NULL");
  assert.equal((await revokeAsBearer(ado, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA")).status, 200);
  assert.equal(await count(ado, "SELECT count(*) AS n FROM tokens WHERE revoked_at IS NOT NULL"), before);
});

test("the core's client-authenticated introspection and revocation know the JWT-shaped refresh token", async () => {
  const app = await registerApp(ado, { name: "Core revoke" });
  const t = await tokensFor(app);
  const auth = { ...FORM, authorization: basic(app.client_id, app.client_secret) };
  const info = await (await ado.fetch("/oauth/introspect", { method: "POST", headers: auth, body: form({ token: t.refresh_token }) })).json();
  assert.equal(info.active, true, JSON.stringify(info));
  assert.equal((await ado.fetch("/oauth/revoke", { method: "POST", headers: auth, body: form({ token: t.refresh_token }) })).status, 200);
  assert.equal(await me(ado, t.access_token), 401, "revoking the refresh token ended its grant");
  assert.equal((await refreshAssertion(ado, t.refresh_token, app.client_secret)).status, 400);
});

test("a missing scope on the API: 403 with the document's JSON message", async () => {
  const app = await registerApp(ado, { name: "Narrow", scopes: ["profile:read"] });
  const t = await tokensFor(app, "profile:read");
  const res = await bearer(ado, "/api/v1/posts", t.access_token);
  assert.equal(res.status, 403);
  assert.deepEqual(await res.json(), { message: SCOPE_FORBIDDEN });
  assert.match(res.headers.get("www-authenticate"), /error="insufficient_scope"/);
});

// ---- the default profile stays strict OAuth 2.1 ---------------------------------

test("default profile: response_type=Assertion is unsupported_response_type", async () => {
  const app = await registerApp(std, { name: "Std authorize" });
  const res = await aliceStd.fetch(`/oauth/authorize?${authorizeQuery(app, { response_type: "Assertion", prompt: "consent" })}`);
  assert.equal(res.status, 302);
  const location = new URL(res.headers.get("location"));
  assert.equal(location.searchParams.get("error"), "unsupported_response_type");
  assert.equal(location.searchParams.get("code"), null);
  assert.equal((await std.fetch("/oauth2/authorize?client_id=x")).status, 404, "no /oauth2 paths");
});

test("default profile: the JWT-bearer exchange is refused (no client authentication), the code unconsumed", async () => {
  const app = await registerApp(std, { name: "Std exchange" });
  const { location } = await consent(aliceStd, app, { prompt: "consent" });
  const code = location.searchParams.get("code");
  const before = await tokenCount(std);
  const res = await exchangeAssertion(std, code, app.client_secret, {}, "/oauth/token");
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.error, "invalid_client");
  assert.notEqual(body.error_description, ASSERTION_INVALID);
  assert.equal(await tokenCount(std), before);
  assert.equal(await codeUsed(std, code), null);
  assert.equal((await std.fetch("/oauth2/token", { method: "POST", headers: FORM, body: "" })).status, 404);
  assert.equal((await exchange(std, app, code)).status, 200, "the standard exchange still redeems it");
});

test("default profile: the refresh in the assertion shape is refused, the refresh token unspent", async () => {
  const app = await registerApp(std, { name: "Std refresh" });
  const { location } = await consent(aliceStd, app, { prompt: "consent" });
  const t = await (await exchange(std, app, location.searchParams.get("code"))).json();
  const res = await refreshAssertion(std, t.refresh_token, app.client_secret, {}, "/oauth/token");
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, "invalid_client");
  const ok = await tokenRequest(std, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(ok.status, 200);
  const n = await ok.json();
  assert.equal(n.token_type, "Bearer");
  assert.equal(typeof n.expires_in, "number");
});

test("default profile: a bearer cannot revoke itself without client credentials", async () => {
  const app = await registerApp(std, { name: "Std revoke" });
  const { location } = await consent(aliceStd, app, { prompt: "consent" });
  const t = await (await exchange(std, app, location.searchParams.get("code"))).json();
  const res = await std.fetch("/oauth/revoke", {
    method: "POST",
    headers: { ...FORM, authorization: `Bearer ${t.access_token}` },
    body: form({ token: t.access_token, token_type_hint: "access_token" }),
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, "invalid_client");
  assert.equal(await me(std, t.access_token), 200, "still alive");
});

test("default profile: a missing scope is the RFC 6750 403 body", async () => {
  const app = await registerApp(std, { name: "Std 403", scopes: ["profile:read"] });
  const { location } = await consent(aliceStd, app, { scope: "profile:read", prompt: "consent" });
  const t = await (await exchange(std, app, location.searchParams.get("code"))).json();
  const res = await bearer(std, "/api/v1/posts", t.access_token);
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.equal(body.error, "insufficient_scope");
  assert.equal(body.message, undefined);
});
