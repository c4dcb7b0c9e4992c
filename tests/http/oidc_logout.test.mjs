// OpenID Connect logout (issue 17 item 8) in workerd: RP-Initiated Logout at
// /oauth/logout (hint, registered post-logout URI, state, the confirmation
// page and its CSRF binding) and Back-Channel Logout: a local relying party
// receives the logout token after each of the three session ends (sign-out,
// the platform's DELETE /admin/v1/users/{id}/sessions, user deletion) and
// validates it with `jose` as Back-Channel Logout §2.6 says; a failing RP is
// retried with the webhooks' backoff.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import { startServer, Browser, registerApp, authorizeQuery, pkcePair, exchange, tokenRequest, newUser, eventually, hiddenFields, testSigningKeys, FORM, form } from "./support.mjs";

const ADMIN = "adm_logout_test_" + randomBytes(24).toString("base64url");
const EVENT = "http://schemas.openid.net/event/backchannel-logout";
const KEYS = testSigningKeys("logout-test");

let server, rp, jwks;
// What the test RP received: { path, contentType, token }.
const received = [];
// The status the RP answers, per path (default 200).
const answers = new Map();

before(async () => {
  server = await startServer({ PLATFORM_ADMIN_TOKEN: ADMIN, JWT_SIGNING_KEYS: KEYS });
  rp = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const token = new URLSearchParams(body).get("logout_token");
      received.push({ path: req.url, method: req.method, contentType: req.headers["content-type"], token });
      res.writeHead(answers.get(req.url) ?? 200).end();
    });
  });
  await new Promise((r) => rp.listen(0, "127.0.0.1", r));
  jwks = createLocalJWKSet(await (await server.fetch("/.well-known/jwks.json")).json());
});
after(async () => {
  await server?.close();
  rp?.close();
});

const rpUrl = (path) => `http://127.0.0.1:${rp.address().port}${path}`;
const admin = (method, path) => server.fetch(path, { method, headers: { authorization: `Bearer ${ADMIN}` } });
const one = (sql, ...p) => server.db.prepare(sql).bind(...p).first();
const all = async (sql, ...p) => (await server.db.prepare(sql).bind(...p).all()).results;
const sessionHash = (browser) => createHash("sha256").update(browser.cookies.get("eo_session")).digest("hex");
// By the hash taken at sign-in: a logout clears the cookie.
const sessionSid = async (browser) => (await one("SELECT sid FROM sessions WHERE hash = ?1", browser.sessionHash))?.sid;
const sessionAlive = async (browser) => (await one("SELECT count(*) AS n FROM sessions WHERE hash = ?1", browser.sessionHash)).n === 1;

/** An app with the OpenID logout fields set directly (registration is another part's). */
let apps = 0;
async function logoutApp({ backchannel = true, sessionRequired = false, postLogout = [], alg = null } = {}) {
  const a = await registerApp(server, { name: `Logout RP ${++apps}` });
  a.bcPath = `/bc/${apps}`;
  a.alg = alg ?? "RS256";
  await server.db
    .prepare("UPDATE apps SET backchannel_logout_uri = ?2, backchannel_logout_session_required = ?3, post_logout_redirect_uris = ?4, id_token_signed_response_alg = ?5 WHERE id = ?1")
    .bind(a.client_id, backchannel ? rpUrl(a.bcPath) : null, sessionRequired ? 1 : 0, JSON.stringify(postLogout), alg)
    .run();
  return a;
}

/** A fresh member of Acme with a platform id, signed in on a new browser. */
async function member() {
  const email = await newUser(server, "lo");
  const id = "u_" + email.split("@")[0];
  const ext = "ext-" + id;
  await server.db.prepare("UPDATE users SET external_id = ?2 WHERE id = ?1").bind(id, ext).run();
  await server.db.prepare("INSERT INTO memberships (org_id, user_id, role) VALUES ('org_acme', ?1, 'member')").bind(id).run();
  return { email, id, ext, browser: await signedIn(email) };
}
async function signedIn(email) {
  const b = new Browser(server);
  await b.signIn(email, "carol-password");
  b.sessionHash = sessionHash(b);
  return b;
}

/** The user approves `app` in `browser` and the app redeems the code: its tokens (the grant carries the session's sid). */
async function grant(browser, app, srv = server) {
  const { verifier, challenge } = pkcePair();
  const q = authorizeQuery(app, { scope: "profile:read", code_challenge: challenge, code_challenge_method: "S256" });
  let res = await browser.fetch(`/oauth/authorize?${q}`);
  // A consent already given (the same user, another session) is not asked again.
  if (res.status === 200) {
    res = await browser.post("/oauth/authorize", { ...hiddenFields(await res.text()), org: "org_acme", decision: "approve" });
  }
  const code = new URL(res.headers.get("location")).searchParams.get("code");
  assert.ok(code, `no code: ${res.status} ${res.headers.get("location")}`);
  res = await exchange(srv, app, code, { verifier });
  assert.equal(res.status, 200);
  return res.json();
}

/** Back-Channel Logout §2.6, as an RP validates a logout token. */
async function validate(token, app) {
  const header = decodeProtectedHeader(token);
  const { payload } = await jwtVerify(token, jwks, { issuer: server.base, audience: app.client_id, typ: "logout+jwt", algorithms: [app.alg] });
  assert.ok(header.kid, "kid names the key");
  assert.equal(typeof payload.iat, "number");
  assert.ok(payload.exp > payload.iat && payload.exp - payload.iat <= 120, "exp at most two minutes after iat");
  assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 60, "iat is now");
  assert.match(payload.jti, /^[0-9a-f]{32}$/);
  assert.deepEqual(payload.events, { [EVENT]: {} });
  assert.ok(payload.sub || payload.sid, "sub and/or sid");
  assert.equal(payload.nonce, undefined, "no nonce (§2.4)");
  return payload;
}

const tokensAt = (app) => received.filter((r) => r.path === app.bcPath);
/** Wait for `n` logout tokens at `app`'s back-channel URI. */
async function logoutTokens(app, n = 1) {
  await eventually(() => tokensAt(app).length >= n);
  assert.equal(tokensAt(app).length, n, `logout tokens received at ${app.name}'s backchannel_logout_uri`);
  return tokensAt(app);
}

/** An id_token_hint as this server signs ID tokens, RS256 (the test holds the signing key). */
async function hint(claims, { jwk = JSON.parse(KEYS).keys.find((k) => k.kty === "RSA") } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
    .sign(createPrivateKey({ key: jwk, format: "jwk" }));
}

test("sign-out: the session's clients get a logout token (sub, sid) that validates per §2.6; other sessions' clients do not", async () => {
  const u = await member();
  const a = await logoutApp();
  const quiet = await logoutApp({ backchannel: false });
  const elsewhere = await logoutApp();
  await grant(u.browser, a);
  await grant(u.browser, quiet);
  await grant(await signedIn(u.email), elsewhere);
  const sid = await sessionSid(u.browser);
  assert.match(sid, /^[0-9a-f]{32}$/);

  const res = await u.browser.post("/signout", { csrf: await u.browser.csrf() });
  assert.equal(res.status, 303);
  assert.equal(await sessionAlive(u.browser), false);
  const [got] = await logoutTokens(a);
  assert.equal(got.method, "POST");
  assert.equal(got.contentType, "application/x-www-form-urlencoded");
  const claims = await validate(got.token, a);
  assert.equal(claims.sub, u.id);
  assert.equal(claims.sid, sid);
  const row = await eventually(async () => {
    const d = await one("SELECT status, attempts, event FROM webhook_deliveries WHERE app_id = ?1", a.client_id);
    return d?.status === "delivered" && d;
  });
  assert.deepEqual({ ...row }, { status: "delivered", attempts: 1, event: "oidc.backchannel_logout" });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(tokensAt(elsewhere).length, 0, "a client of another session is not told");
  assert.equal(await one("SELECT count(*) AS n FROM webhook_deliveries WHERE app_id IN (?1, ?2)", quiet.client_id, elsewhere.client_id).then((r) => r.n), 0);
});

test("the platform's DELETE /admin/v1/users/{id}/sessions tells the clients of every live grant, one token per session; the grants stay", async () => {
  const u = await member();
  const second = await signedIn(u.email);
  const a = await logoutApp({ sessionRequired: true });
  const b = await logoutApp({ alg: "ES256" });
  const aTokens = await grant(u.browser, a);
  await grant(second, a);
  await grant(second, b);
  const sids = [await sessionSid(u.browser), await sessionSid(second)].sort();

  const res = await admin("DELETE", `/admin/v1/users/${u.ext}/sessions`);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).ended, 2);
  const atA = await logoutTokens(a, 2);
  const claimsA = await Promise.all(atA.map((r) => validate(r.token, a)));
  assert.deepEqual(claimsA.map((c) => c.sid).sort(), sids, "one token per ended session, each with its sid");
  assert.ok(claimsA.every((c) => c.sub === u.id));
  const [atB] = await logoutTokens(b);
  assert.equal(decodeProtectedHeader(atB.token).alg, "ES256", "the client's id_token_signed_response_alg");
  assert.equal(decodeProtectedHeader(atA[0].token).alg, "RS256", "RS256 when the client chose none");
  assert.equal((await validate(atB.token, b)).sid, await one("SELECT sid FROM grants WHERE app_id = ?1", b.client_id).then((r) => r.sid));
  // Ending sessions keeps the user's grants (offline access stays).
  const refreshed = await tokenRequest(server, a, { grant_type: "refresh_token", refresh_token: aTokens.refresh_token });
  assert.equal(refreshed.status, 200);
});

test("user deletion tells the clients of the user's live grants before revoking them", async () => {
  const u = await member();
  const a = await logoutApp();
  const revokedApp = await logoutApp();
  await grant(u.browser, a);
  await grant(u.browser, revokedApp);
  await server.db.prepare("UPDATE grants SET revoked_at = 1 WHERE app_id = ?1").bind(revokedApp.client_id).run();
  const sid = await sessionSid(u.browser);

  const res = await admin("DELETE", `/admin/v1/users/${u.ext}`);
  assert.equal(res.status, 200);
  const [got] = await logoutTokens(a);
  const claims = await validate(got.token, a);
  assert.equal(claims.sub, u.id);
  assert.equal(claims.sid, sid);
  assert.equal((await one("SELECT count(*) AS n FROM grants WHERE user_id = ?1 AND revoked_at IS NULL", u.id)).n, 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(tokensAt(revokedApp).length, 0, "a revoked grant's client is not told");
});

test("a failing RP is retried with backoff and gets a freshly signed token with the same jti", async () => {
  const u = await member();
  const a = await logoutApp();
  answers.set(a.bcPath, 500);
  await grant(u.browser, a);
  assert.equal((await u.browser.post("/signout", { csrf: await u.browser.csrf() })).status, 303);
  const pending = await eventually(async () => {
    const d = await one("SELECT * FROM webhook_deliveries WHERE app_id = ?1", a.client_id);
    return d?.attempts === 1 && d;
  });
  assert.equal(pending.status, "pending");
  assert.equal(pending.last_status, 500);
  assert.ok(pending.next_attempt_at >= pending.created_at + 60, "backoff");
  await server.scheduled();
  assert.equal(tokensAt(a).length, 1, "not due yet: the cron leaves it");

  answers.set(a.bcPath, 204);
  // A second later, so the retry's iat shows it was signed at its own attempt.
  await new Promise((r) => setTimeout(r, 1100));
  await server.db.prepare("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE id = ?1").bind(pending.id).run();
  await server.scheduled();
  const d = await one("SELECT status, attempts FROM webhook_deliveries WHERE id = ?1", pending.id);
  assert.deepEqual({ ...d }, { status: "delivered", attempts: 2 });
  const [first, second] = tokensAt(a);
  const [c1, c2] = [await validate(first.token, a), await validate(second.token, a)];
  assert.ok(c2.iat > c1.iat, "the retry is signed at its attempt, with a fresh exp");
  assert.equal(c1.jti, c2.jti, "one logout event, one jti");
});

test("RP-initiated logout with a hint for the signed-in user: session ended, back-channel sent, redirected with state", async () => {
  const u = await member();
  const a = await logoutApp({ postLogout: ["https://rp.example/bye"] });
  await grant(u.browser, a);
  const sid = await sessionSid(u.browser);
  const idToken = await hint({ iss: server.base, sub: u.id, aud: a.client_id, sid });
  const q = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: "https://rp.example/bye", state: "s t&1" });
  const res = await u.browser.fetch(`/oauth/logout?${q}`, { crossSite: true });
  assert.equal(res.status, 303);
  const to = new URL(res.headers.get("location"));
  assert.equal(to.origin + to.pathname, "https://rp.example/bye");
  assert.equal(to.searchParams.get("state"), "s t&1");
  assert.match(res.headers.get("set-cookie"), /eo_session=;.*Max-Age=0/);
  assert.equal(await sessionAlive(u.browser), false);
  const [got] = await logoutTokens(a);
  assert.equal((await validate(got.token, a)).sid, sid);
});

test("an expired hint is accepted (RP-Initiated Logout §2); POST works like GET", async () => {
  const u = await member();
  const a = await logoutApp({ postLogout: ["https://rp.example/bye"] });
  const now = Math.floor(Date.now() / 1000);
  const idToken = await hint({ iss: server.base, sub: u.id, aud: a.client_id, iat: now - 7200, exp: now - 3600 });
  const res = await u.browser.fetch("/oauth/logout", { method: "POST", headers: FORM, body: form({ id_token_hint: idToken, post_logout_redirect_uri: "https://rp.example/bye" }) });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "https://rp.example/bye");
  assert.equal(await sessionAlive(u.browser), false);
});

test("refused with an error page and no redirect: another client's hint, an unregistered or unattributed post_logout_redirect_uri, a foreign or tampered hint", async () => {
  const u = await member();
  const a = await logoutApp({ postLogout: ["https://rp.example/bye"] });
  const other = await logoutApp({ postLogout: ["https://evil.example/bye"] });
  const otherHint = await hint({ iss: server.base, sub: u.id, aud: other.client_id });
  // Another RSA key under our key's kid.
  const impostor = { ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), kid: "test-rsa" };
  const foreign = await hint({ iss: server.base, sub: u.id, aud: a.client_id }, { jwk: impostor });
  const good = await hint({ iss: server.base, sub: u.id, aud: a.client_id });
  const wrongIss = await hint({ iss: "https://elsewhere.example", sub: u.id, aud: a.client_id });
  const cases = [
    ["hint of another client", { id_token_hint: otherHint, client_id: a.client_id, post_logout_redirect_uri: "https://rp.example/bye" }, /not issued to this client_id/],
    ["another client's URI with its hint", { id_token_hint: otherHint, post_logout_redirect_uri: "https://rp.example/bye" }, /not registered/],
    ["unregistered URI", { client_id: a.client_id, post_logout_redirect_uri: "https://rp.example/elsewhere" }, /not registered/],
    ["URI with no client", { post_logout_redirect_uri: "https://rp.example/bye" }, /needs an id_token_hint or a client_id/],
    ["hint signed by another key", { id_token_hint: foreign, post_logout_redirect_uri: "https://rp.example/bye" }, /not an ID token this server issued/],
    ["tampered hint", { id_token_hint: good.slice(0, -4) + (good.endsWith("AAAA") ? "BBBB" : "AAAA") }, /not an ID token this server issued/],
    ["another issuer", { id_token_hint: wrongIss }, /not an ID token this server issued/],
    ["unknown client", { client_id: "app_nope", post_logout_redirect_uri: "https://rp.example/bye" }, /not registered/],
  ];
  for (const [name, params, why] of cases) {
    const res = await u.browser.fetch(`/oauth/logout?${new URLSearchParams(params)}`, { crossSite: true });
    assert.equal(res.status, 400, name);
    assert.equal(res.headers.get("location"), null, name);
    assert.match(await res.text(), why, name);
    assert.equal(await sessionAlive(u.browser), true, `${name}: nothing ended`);
  }
  const repeated = await u.browser.fetch(`/oauth/logout?state=a&state=b`);
  assert.equal(repeated.status, 400);
  const big = await u.browser.fetch(`/oauth/logout?id_token_hint=${"a".repeat(9000)}`);
  assert.equal(big.status, 400);
  assert.equal(await sessionAlive(u.browser), true);
  assert.equal((await one("SELECT count(*) AS n FROM webhook_deliveries WHERE app_id IN (?1, ?2)", a.client_id, other.client_id)).n, 0);
});

test("no hint: a confirmation page, nothing ended until its POST; a POST without the session's CSRF token is refused", async () => {
  const u = await member();
  const a = await logoutApp({ postLogout: ["https://rp.example/bye"] });
  await grant(u.browser, a);
  const q = new URLSearchParams({ client_id: a.client_id, post_logout_redirect_uri: "https://rp.example/bye", state: "xyz" });
  const page = await u.browser.fetch(`/oauth/logout?${q}`, { crossSite: true });
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /Sign out\?/);
  assert.match(html, new RegExp(a.name));
  assert.equal(page.headers.get("x-frame-options"), "DENY");
  assert.equal(await sessionAlive(u.browser), true, "showing the page ends nothing");
  const fields = hiddenFields(html);
  assert.equal(fields.state, "xyz");

  // A cross-site form cannot know the token: no token, or a wrong one, is refused.
  const { csrf, ...rest } = fields;
  for (const bad of [rest, { ...rest, csrf: "x".repeat(csrf.length) }]) {
    const res = await u.browser.fetch("/oauth/logout", { method: "POST", headers: FORM, body: form(bad) });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("location"), null);
  }
  // Another user's session token does not fit this session.
  const mallory = await member();
  const res403 = await u.browser.fetch("/oauth/logout", { method: "POST", headers: FORM, body: form({ ...rest, csrf: await mallory.browser.csrf() }) });
  assert.equal(res403.status, 403);
  assert.equal(await sessionAlive(u.browser), true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(tokensAt(a).length, 0);

  const res = await u.browser.fetch("/oauth/logout", { method: "POST", headers: FORM, body: form(fields) });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "https://rp.example/bye?state=xyz");
  assert.equal(await sessionAlive(u.browser), false);
  await logoutTokens(a);
});

test("a hint naming another user than the signed-in one asks for confirmation", async () => {
  const u = await member();
  const other = await member();
  const a = await logoutApp();
  const idToken = await hint({ iss: server.base, sub: other.id, aud: a.client_id });
  const page = await u.browser.fetch(`/oauth/logout?id_token_hint=${idToken}`, { crossSite: true });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Sign out\?/);
  assert.equal(await sessionAlive(u.browser), true);
});

test("no session: straight to the registered URI, or a signed-out page", async () => {
  const a = await logoutApp({ postLogout: ["https://rp.example/bye"] });
  const anon = new Browser(server);
  let res = await anon.fetch(`/oauth/logout?${new URLSearchParams({ client_id: a.client_id, post_logout_redirect_uri: "https://rp.example/bye", state: "z" })}`);
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "https://rp.example/bye?state=z");
  res = await anon.fetch("/oauth/logout");
  assert.equal(res.status, 200);
  assert.match(await res.text(), /signed out/);
  // The no-session answer still refuses an unregistered URI.
  res = await anon.fetch(`/oauth/logout?${new URLSearchParams({ client_id: a.client_id, post_logout_redirect_uri: "https://evil.example/" })}`);
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("location"), null);
});

test("a cross-site POST, which carries no SameSite=Lax cookie, is answered with the same request as a top-level GET", async () => {
  const u = await member();
  const a = await logoutApp({ postLogout: ["https://rp.example/bye"] });
  const idToken = await hint({ iss: server.base, sub: u.id, aud: a.client_id });
  const body = form({ id_token_hint: idToken, post_logout_redirect_uri: "https://rp.example/bye", state: "p" });
  const res = await u.browser.fetch("/oauth/logout", { method: "POST", crossSite: true, headers: FORM, body });
  assert.equal(res.status, 303);
  const next = res.headers.get("location");
  assert.ok(next.startsWith("/oauth/logout?"), next);
  assert.equal(await sessionAlive(u.browser), true);
  const done = await u.browser.fetch(next, { crossSite: true });
  assert.equal(done.status, 303);
  assert.equal(done.headers.get("location"), "https://rp.example/bye?state=p");
  assert.equal(await sessionAlive(u.browser), false);
});

test("OPENID=off: no end_session_endpoint, and a sign-out queues no logout token", async () => {
  const off = await startServer({ OPENID: "off" });
  try {
    const a = await registerApp(off, { name: "Off RP" });
    await off.db.prepare("UPDATE apps SET backchannel_logout_uri = ?2 WHERE id = ?1").bind(a.client_id, rpUrl("/bc/off")).run();
    const b = new Browser(off);
    await b.signIn("carol@acme.test", "carol-password");
    await grant(b, a, off);
    assert.equal((await off.db.prepare("SELECT count(*) AS n FROM grants WHERE sid IS NOT NULL").first()).n, 1);
    assert.equal((await b.fetch("/oauth/logout")).status, 404);
    assert.equal((await b.post("/signout", { csrf: await b.csrf() })).status, 303);
    assert.equal((await off.db.prepare("SELECT count(*) AS n FROM sessions").first()).n, 0);
    assert.equal((await off.db.prepare("SELECT count(*) AS n FROM webhook_deliveries").first()).n, 0);
  } finally {
    await off.close();
  }
});
