// OpenID Connect at the authorization endpoint (issue 17 items 6 and 7, the
// consent page of item 4): prompt, max_age, login_hint, request/request_uri,
// the other accepted parameters, a fresh sign-in on our form and on the
// platform's page (delegated, with acr/amr/auth_time), and what the consent
// page says the OpenID scopes share. Every rule is checked by what was
// issued afterwards (codes, sessions), in workerd with local D1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { SignJWT, importJWK } from "jose";
import {
  startServer, Browser, registerApp, authorizeQuery, hidden, hiddenFields, exchange, count, newUser, pkcePair, tokensFor, unescape, testRsaKey,
} from "./support.mjs";

const ADMIN = "adm_oidc_authorize_0123456789abcdefghijklmnopqrstuvwxyz";
const LOGIN_URL = "https://platform.example/login";
let local, delegated, app, dapp, alice;

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const pathOf = (u) => { const x = new URL(u, "http://x.test"); return x.pathname + x.search; };
const codes = (server) => count(server, "SELECT COUNT(*) AS n FROM codes");
const codeRow = (server, code) => server.db.prepare("SELECT * FROM codes WHERE hash = ?").bind(sha256(code)).first();
const sessionOf = (server, browser) =>
  server.db.prepare("SELECT * FROM sessions WHERE hash = ?").bind(sha256(browser.cookies.get("eo_session"))).first();
const errorOf = (res) => {
  assert.ok(res.headers.get("location"), `expected an error redirect, got ${res.status}`);
  return new URL(res.headers.get("location")).searchParams.get("error");
};
/** An ID token's claims, unverified (oidc_tokens checks signatures). */
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

before(async () => {
  [local, delegated] = await Promise.all([
    startServer(),
    startServer({ SIGNIN_MODE: "delegated", LOGIN_URL, PLATFORM_ADMIN_TOKEN: ADMIN, LOGIN_CHALLENGES_PER_SOURCE_PER_MINUTE: "10000" }),
  ]);
  // The OpenID scopes, declared (they are also built in when OPENID=on).
  const scopes = JSON.stringify(["profile:read", "posts:read", "openid", "profile", "email"]);
  app = await registerApp(local);
  dapp = await registerApp(delegated);
  await local.db.prepare("UPDATE apps SET scopes = ? WHERE id = ?").bind(scopes, app.client_id).run();
  await delegated.db.prepare("UPDATE apps SET scopes = ? WHERE id = ?").bind(scopes, dapp.client_id).run();
  alice = new Browser(local);
  await alice.signIn("alice@acme.test", "alice-password");
  // Alice has approved the app once (the install exists from the code's
  // exchange): later authorizations need no consent page.
  await tokensFor(local, alice, app, { scope: "openid profile:read" });
});
after(async () => {
  await local?.close();
  await delegated?.close();
});

const authorize = (browser, query) => browser.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "openid profile:read", ...query })}`);

test("prompt=none without a session: login_required at the callback, nothing issued", async () => {
  const before = await codes(local);
  const res = await authorize(new Browser(local), { prompt: "none", state: "st-none" });
  assert.equal(res.status, 302);
  const to = new URL(res.headers.get("location"));
  assert.equal(`${to.origin}${to.pathname}`, app.redirect_uris[0]);
  assert.equal(to.searchParams.get("error"), "login_required");
  assert.equal(to.searchParams.get("state"), "st-none");
  assert.equal(await codes(local), before);
});

test("prompt values: none with another → invalid_request; unknown → invalid_request; login consent together is fine", async () => {
  const before = await codes(local);
  for (const prompt of ["none login", "none consent", "create", "login bogus"]) {
    const res = await authorize(alice, { prompt });
    assert.equal(res.status, 302, prompt);
    assert.equal(errorOf(res), "invalid_request", prompt);
    assert.match(new URL(res.headers.get("location")).searchParams.get("error_description"), /prompt/);
  }
  assert.equal(await codes(local), before);
});

test("request and request_uri are refused with their Core §6.3 errors; claims, locales, acr_values and display are accepted", async () => {
  const before = await codes(local);
  let res = await authorize(alice, { request: "eyJhbGciOiJub25lIn0.e30." });
  assert.equal(errorOf(res), "request_not_supported");
  res = await authorize(alice, { request_uri: "https://rp.example/req.jwt" });
  assert.equal(errorOf(res), "request_uri_not_supported");
  assert.equal(await codes(local), before);
  res = await authorize(alice, {
    ui_locales: "fr-CA fr en", claims_locales: "fr", acr_values: "urn:mace:incommon:iap:silver", display: "popup",
    claims: JSON.stringify({ userinfo: { email: { essential: true } } }), login_hint: "alice@acme.test",
  });
  assert.equal(res.status, 302);
  assert.ok(new URL(res.headers.get("location")).searchParams.get("code"), "accepted, and the prior consent still covers it");
});

test("every new parameter that appears twice, and oversized or malformed values, are invalid_request", async () => {
  const before = await codes(local);
  const base = authorizeQuery(app, { scope: "openid profile:read" });
  for (const [name, value] of [
    ["max_age", "60"], ["login_hint", "a@b.test"], ["id_token_hint", "x.y.z"], ["ui_locales", "fr"], ["claims_locales", "fr"],
    ["acr_values", "1"], ["display", "page"], ["request", "x"], ["request_uri", "https://rp.example/r"], ["claims", "{}"],
    ["login_proof", "1.a"], ["prompt", "login"], ["nonce", "n"],
  ]) {
    const q = `${base}&${name}=${encodeURIComponent(value)}&${name}=${encodeURIComponent(value)}`;
    const res = await alice.fetch(`/oauth/authorize?${q}`);
    assert.equal(res.status, 302, name);
    assert.equal(errorOf(res), "invalid_request", name);
    assert.match(new URL(res.headers.get("location")).searchParams.get("error_description"), new RegExp(name), name);
  }
  for (const extra of [
    { max_age: "-1" }, { max_age: "1.5" }, { max_age: "99999999999" }, { max_age: "abc" },
    { login_hint: "a".repeat(321) }, { login_hint: "a\nb@x.test" }, { ui_locales: "x".repeat(257) },
    { acr_values: "x".repeat(513) }, { display: "desktop" }, { id_token_hint: "x".repeat(5000) },
  ]) {
    const res = await authorize(alice, extra);
    assert.equal(res.status, 302, JSON.stringify(extra).slice(0, 40));
    assert.equal(errorOf(res), "invalid_request", JSON.stringify(extra).slice(0, 40));
  }
  assert.equal(await codes(local), before);
});

/** Follow a sign-in form through: load it, submit it, return the resumed authorize path. */
async function signInAgain(browser, signinPath, email, password) {
  const page = await browser.fetch(signinPath);
  assert.equal(page.status, 200);
  const html = await page.text();
  const res = await browser.post("/signin", { email, password, return_to: hidden(html, "return_to"), csrf: hidden(html, "csrf") });
  assert.equal(res.status, 303, await res.text());
  return { html, next: res.headers.get("location") };
}

test("prompt=login with a session: our sign-in form (login_hint prefilled), a new session, and the same authorization goes on to a code with the new auth_time", async () => {
  const b = new Browser(local);
  await b.signIn("alice@acme.test", "alice-password");
  // The existing session is an hour old.
  await local.db.prepare("UPDATE sessions SET auth_time = auth_time - 3600 WHERE hash = ?").bind(sha256(b.cookies.get("eo_session"))).run();
  const old = await sessionOf(local, b);
  const before = await codes(local);
  const res = await authorize(b, { prompt: "login", login_hint: "alice@acme.test", nonce: "n-login", state: "st-login" });
  assert.equal(res.status, 302);
  const signin = new URL(res.headers.get("location"), local.base);
  assert.equal(signin.pathname, "/signin", "a sign-in form although signed in");
  assert.equal(await codes(local), before, "no code before the sign-in");
  const { html, next } = await signInAgain(b, signin.pathname + signin.search, "alice@acme.test", "alice-password");
  assert.match(html, /name="email" type="email" autocomplete="username" required value="alice@acme\.test"/);
  const resumed = new URL(next, local.base);
  assert.equal(resumed.pathname, "/oauth/authorize");
  assert.equal(resumed.searchParams.get("prompt"), "login", "the same authorization");
  assert.ok(resumed.searchParams.get("login_proof"));
  const fresh = await sessionOf(local, b);
  assert.notEqual(fresh.sid, old.sid);
  assert.ok(fresh.auth_time > old.auth_time + 3000);
  assert.equal(fresh.amr, '["pwd"]');
  assert.equal(await count(local, "SELECT COUNT(*) AS n FROM sessions WHERE hash = ?", old.hash), 0, "the old session ended");
  // No loop: the resumed authorization issues the code.
  const done = await b.fetch(pathOf(next));
  assert.equal(done.status, 302);
  const cb = new URL(done.headers.get("location"));
  assert.equal(cb.searchParams.get("state"), "st-login");
  const code = cb.searchParams.get("code");
  assert.ok(code, `no code: ${done.headers.get("location")}`);
  const row = await codeRow(local, code);
  assert.equal(row.auth_time, fresh.auth_time);
  assert.equal(row.sid, fresh.sid);
  assert.equal(row.nonce, "n-login");
  // The proof is this session's: in another signed-in browser, or forged, it
  // proves nothing and the sign-in form comes back.
  const other = new Browser(local);
  await other.signIn("alice@acme.test", "alice-password");
  for (const [browser, path] of [[other, pathOf(next)], [b, pathOf(next).replace(/login_proof=\d+/, "login_proof=1")]]) {
    const again = await browser.fetch(path);
    assert.equal(again.status, 302);
    assert.equal(new URL(again.headers.get("location"), local.base).pathname, "/signin");
  }
});

test("login_hint is escaped on the sign-in form", async () => {
  const hint = `"><script>x</script>@evil.test`;
  const page = await new Browser(local).fetch(`/signin?login_hint=${encodeURIComponent(hint)}&return_to=%2F`);
  const html = await page.text();
  assert.ok(!html.includes("<script>x"), "not raw");
  const value = html.match(/id="email" name="email" [^>]*value="([^"]*)"/)[1];
  assert.ok(value.startsWith("&quot;&gt;&lt;script&gt;"), value);
  assert.equal(unescape(value), hint, "the hint itself, as text");
});

test("max_age: 0 always signs in again, the new auth_time reaches the code (and the ID token); a recent sign-in satisfies max_age, an old one does not", async () => {
  const b = new Browser(local);
  await b.signIn("alice@acme.test", "alice-password");
  const s0 = await sessionOf(local, b);
  // max_age=3600 with a sign-in just now: a code at once.
  let res = await authorize(b, { max_age: "3600" });
  assert.ok(new URL(res.headers.get("location")).searchParams.get("code"), "recent enough");
  // max_age=0: a sign-in even seconds after one.
  const { verifier, challenge } = pkcePair();
  res = await authorize(b, { max_age: "0", nonce: "n-max", code_challenge: challenge, code_challenge_method: "S256" });
  assert.equal(new URL(res.headers.get("location"), local.base).pathname, "/signin");
  const started = Math.floor(Date.now() / 1000);
  const { next } = await signInAgain(b, pathOf(res.headers.get("location")), "alice@acme.test", "alice-password");
  const done = await b.fetch(pathOf(next));
  const code = new URL(done.headers.get("location")).searchParams.get("code");
  assert.ok(code, "no loop after the fresh sign-in");
  const s1 = await sessionOf(local, b);
  assert.notEqual(s1.sid, s0.sid);
  assert.ok(s1.auth_time >= started);
  assert.equal((await codeRow(local, code)).auth_time, s1.auth_time);
  const tok = await exchange(local, app, code, { verifier });
  assert.equal(tok.status, 200);
  const body = await tok.json();
  assert.ok(body.id_token, "an ID token for the openid scope");
  const claims = claimsOf(body.id_token);
  assert.equal(claims.auth_time, s1.auth_time);
  assert.equal(claims.nonce, "n-max");
  assert.equal(claims.sid, s1.sid);
  // An hour-old sign-in and max_age=600: sign in again; prompt=none: login_required.
  await local.db.prepare("UPDATE sessions SET auth_time = auth_time - 3600 WHERE hash = ?").bind(s1.hash).run();
  res = await authorize(b, { max_age: "600" });
  assert.equal(new URL(res.headers.get("location"), local.base).pathname, "/signin");
  const before = await codes(local);
  res = await authorize(b, { max_age: "600", prompt: "none" });
  assert.equal(errorOf(res), "login_required");
  assert.equal(await codes(local), before);
});

test("prompt=consent survives the sign-in it needed: the consent page, not a silent code", async () => {
  const res = await authorize(new Browser(local), { prompt: "consent" });
  const signin = new URL(res.headers.get("location"), local.base);
  assert.equal(signin.pathname, "/signin");
  const b = new Browser(local);
  const { next } = await signInAgain(b, signin.pathname + signin.search, "alice@acme.test", "alice-password");
  assert.equal(new URL(next, local.base).pathname, "/oauth/authorize");
  const page = await b.fetch(pathOf(next));
  assert.equal(page.status, 200, "alice approved this app before, but prompt=consent asks again");
  assert.match(await page.text(), /name="decision" value="approve"/);
  // The control: without prompt=consent the same signed-in browser gets a code at once.
  const silent = await authorize(b, {});
  assert.ok(new URL(silent.headers.get("location")).searchParams.get("code"), "the prior consent covers it");
});

test("the consent page says in plain words what the OpenID scopes share, escaped", async () => {
  const email = await newUser(local, "oidcconsent");
  const b = new Browser(local);
  await b.signIn(email, "carol-password");
  const id = (await local.db.prepare("SELECT id FROM users WHERE email = ?").bind(email).first()).id;
  await local.db.prepare("INSERT INTO memberships (org_id, user_id, role) VALUES ('org_acme', ?, 'member')").bind(id).run();
  await local.db.prepare("UPDATE users SET email = ? WHERE id = ?").bind(`x<b>"y@acme.test`, id).run();
  let html = await (await authorize(b, { scope: "openid profile email posts:read" })).text();
  assert.match(html, /id="identity-claims"/);
  assert.match(html, /an identifier for your account, the same each time you sign in to this app/);
  assert.match(html, /Your name and username, and the name of the organization you choose/);
  assert.match(html, /Your email address \(x&lt;b&gt;&quot;y@acme\.test\) and whether it is verified/);
  assert.ok(!html.includes("x<b>"));
  assert.match(html, /It will be able to/, "the catalogue scope is still listed");
  // Only the OpenID scope: no empty "able to" list, and nothing about email.
  html = await (await authorize(b, { scope: "openid" })).text();
  assert.match(html, /an identifier for your account/);
  assert.ok(!/It will be able to/.test(html));
  assert.ok(!/email address/.test(html));
  // No OpenID scope: no such section.
  html = await (await authorize(b, { scope: "posts:read" })).text();
  assert.ok(!html.includes("identity-claims"));
});

test("prompt=none: consent never given, or an earlier choice of actor the user may no longer make → consent_required, no code", async () => {
  const bot = await registerApp(local, { actor_modes: ["app", "self"] });
  const email = await newUser(local, "oidcnone");
  const id = (await local.db.prepare("SELECT id FROM users WHERE email = ?").bind(email).first()).id;
  await local.db.prepare("INSERT INTO memberships (org_id, user_id, role) VALUES ('org_acme', ?, 'admin')").bind(id).run();
  const b = new Browser(local);
  await b.signIn(email, "carol-password");
  const q = (extra) => `/oauth/authorize?${authorizeQuery(bot, { scope: "profile:read", ...extra })}`;
  assert.equal(errorOf(await b.fetch(q({ prompt: "none" }))), "consent_required");
  await tokensFor(local, b, bot, { scope: "profile:read" }, { actor: "app" });
  let res = await b.fetch(q({ prompt: "none" }));
  assert.ok(new URL(res.headers.get("location")).searchParams.get("code"), "the consent covers it");
  await local.db.prepare("UPDATE memberships SET role = 'member' WHERE user_id = ?").bind(id).run();
  const before = await codes(local);
  res = await b.fetch(q({ prompt: "none" }));
  assert.equal(errorOf(res), "consent_required");
  assert.match(new URL(res.headers.get("location")).searchParams.get("error_description"), /approve again/);
  assert.equal(await codes(local), before);
});

/** An ID token as this server signs them (the test RSA key), or as `key` does. */
async function idToken(claims, { key = testRsaKey(), server = local } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: server.base, aud: app.client_id, iat: now, exp: now + 300, auth_time: now, ...claims })
    .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" })
    .sign(await importJWK(key, "RS256"));
}

test("id_token_hint: ours for this client (even expired) is accepted; another client's, a foreign key's or another issuer's → invalid_request; a hint naming someone else → login_required with prompt=none, else a fresh sign-in", async () => {
  const before = await codes(local);
  const expired = await idToken({ sub: "usr_alice", exp: 1000, iat: 900 });
  let res = await authorize(alice, { id_token_hint: expired, prompt: "none" });
  assert.ok(new URL(res.headers.get("location")).searchParams.get("code"), "alice is who the hint names");
  const foreign = { ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), kid: "test-rsa" };
  for (const [hint, why] of [
    [await idToken({ sub: "usr_alice", aud: "app_someone_else" }), /not issued to this client/],
    [await idToken({ sub: "usr_alice" }, { key: foreign }), /not an ID token this server issued/],
    [await idToken({ sub: "usr_alice", iss: "https://elsewhere.example" }), /not an ID token this server issued/],
    ["not.a.jwt", /not an ID token this server issued/],
  ]) {
    res = await authorize(alice, { id_token_hint: hint });
    assert.equal(errorOf(res), "invalid_request");
    assert.match(new URL(res.headers.get("location")).searchParams.get("error_description"), why);
  }
  assert.equal(await codes(local), before + 1, "only the accepted hint's code");
  const carolsHint = await idToken({ sub: "usr_carol" });
  res = await authorize(alice, { id_token_hint: carolsHint, prompt: "none" });
  assert.equal(errorOf(res), "login_required");
  assert.match(new URL(res.headers.get("location")).searchParams.get("error_description"), /id_token_hint/);
  // Without prompt=none: sign in (again); whoever then signs in goes on.
  const b = new Browser(local);
  await b.signIn("alice@acme.test", "alice-password");
  res = await authorize(b, { id_token_hint: carolsHint });
  const signin = new URL(res.headers.get("location"), local.base);
  assert.equal(signin.pathname, "/signin");
  const { next } = await signInAgain(b, signin.pathname + signin.search, "alice@acme.test", "alice-password");
  const done = await b.fetch(pathOf(next));
  assert.ok(new URL(done.headers.get("location")).searchParams.get("code"), "no loop after the sign-in");
  assert.equal(await codes(local), before + 2);
});

// ---- Delegated sign-in (SIGNIN_MODE=delegated) ----

const admin = (method, path, body) =>
  delegated.fetch(path, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
const dAuthorize = (browser, query) =>
  browser.fetch(`/oauth/authorize?${authorizeQuery(dapp, { scope: "openid profile:read", ...query })}`);

/** Authorize → LOGIN_URL: the challenge and the forwarded parameters. */
async function toPlatform(browser, query) {
  const res = await dAuthorize(browser, query);
  assert.equal(res.status, 302, await res.text());
  const to = new URL(res.headers.get("location"));
  assert.equal(`${to.origin}${to.pathname}`, LOGIN_URL);
  return to;
}

/** The platform accepts `challenge` with `extra`; the browser lands; the resumed authorize path. */
async function acceptAndLand(browser, challenge, extra = {}) {
  const acc = await admin("PUT", `/admin/v1/login/accept?login_challenge=${challenge}`, { external_id: "alice", ...extra });
  assert.equal(acc.status, 200, await acc.clone().text());
  const landing = await browser.fetch(pathOf((await acc.json()).redirect_to));
  assert.equal(landing.status, 302, await landing.text());
  return pathOf(landing.headers.get("location"));
}

test("delegated: prompt=login and max_age send a signed-in browser to LOGIN_URL (prompt, max_age, login_hint forwarded); the accept's acr/amr/auth_time reach the session and the code", async () => {
  const b = new Browser(delegated);
  // First sign-in: no session yet.
  const firstPkce = pkcePair();
  let to = await toPlatform(b, { code_challenge: firstPkce.challenge, code_challenge_method: "S256" });
  let next = await acceptAndLand(b, to.searchParams.get("login_challenge"));
  const page = await b.fetch(next);
  assert.equal(page.status, 200, "consent page");
  const fields = hiddenFields(await page.text());
  const approved = await b.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  const firstCode = new URL(approved.headers.get("location")).searchParams.get("code");
  assert.equal((await exchange(delegated, dapp, firstCode, { verifier: firstPkce.verifier })).status, 200, "installed");
  const first = await sessionOf(delegated, b);

  // Signed in and approved: prompt=login still goes to the platform.
  to = await toPlatform(b, { prompt: "login", login_hint: "alice@acme.test", max_age: "300", ui_locales: "fr", acr_values: "mfa", nonce: "n-d" });
  assert.equal(to.searchParams.get("prompt"), "login");
  assert.equal(to.searchParams.get("max_age"), "300");
  assert.equal(to.searchParams.get("login_hint"), "alice@acme.test");
  assert.equal(to.searchParams.get("ui_locales"), "fr");
  assert.equal(to.searchParams.get("acr_values"), "mfa");
  const challenge = to.searchParams.get("login_challenge");
  const info = await (await admin("GET", `/admin/v1/login?login_challenge=${challenge}`)).json();
  assert.equal(info.prompt, "login");
  assert.equal(info.max_age, 300);
  assert.ok(info.auth_time_min >= info.requested_at, "a fresh sign-in: nothing from before the challenge");
  const authTime = Math.floor(Date.now() / 1000) - 1;
  next = await acceptAndLand(b, challenge, { acr: "urn:example:loa:2", amr: ["pwd", "otp"], auth_time: Math.max(authTime, info.requested_at) });
  assert.ok(new URL(next, delegated.base).searchParams.get("login_proof"));
  const s = await sessionOf(delegated, b);
  assert.notEqual(s.sid, first.sid);
  assert.equal(s.acr, "urn:example:loa:2");
  assert.equal(s.amr, '["pwd","otp"]');
  assert.equal(s.auth_time, Math.max(authTime, info.requested_at));
  assert.equal(await count(delegated, "SELECT COUNT(*) AS n FROM sessions WHERE hash = ?", first.hash), 0, "the old session ended");
  const done = await b.fetch(next);
  assert.equal(done.status, 302, "no loop back to the platform");
  const code = new URL(done.headers.get("location")).searchParams.get("code");
  assert.ok(code, done.headers.get("location"));
  const row = await codeRow(delegated, code);
  assert.equal(row.acr, "urn:example:loa:2");
  assert.equal(row.amr, '["pwd","otp"]');
  assert.equal(row.auth_time, s.auth_time);
  assert.equal(row.sid, s.sid);
  assert.equal(row.nonce, "n-d", "the nonce survives the platform's page");

  // An id_token_hint naming someone else: back to the platform, told to sign in afresh.
  const hint = await idToken({ sub: "usr_carol", aud: dapp.client_id }, { server: delegated });
  to = await toPlatform(b, { id_token_hint: hint });
  assert.equal(to.searchParams.get("prompt"), "login");
  // ... and the hint naming alice herself: a code, no platform.
  const own = await dAuthorize(b, { id_token_hint: await idToken({ sub: "usr_alice", aud: dapp.client_id }, { server: delegated }) });
  assert.ok(new URL(own.headers.get("location")).searchParams.get("code"));

  // max_age alone, with a session older than it: back to the platform.
  await delegated.db.prepare("UPDATE sessions SET auth_time = auth_time - 3600 WHERE hash = ?").bind(s.hash).run();
  to = await toPlatform(b, { max_age: "600" });
  assert.equal(to.searchParams.get("max_age"), "600");
  assert.equal(to.searchParams.get("prompt"), null);
  // prompt=none with that stale session: login_required, no challenge.
  const challenges = await count(delegated, "SELECT COUNT(*) AS n FROM login_challenges");
  const res = await dAuthorize(b, { max_age: "600", prompt: "none" });
  assert.equal(errorOf(res), "login_required");
  assert.equal(await count(delegated, "SELECT COUNT(*) AS n FROM login_challenges"), challenges);
});

test("delegated accept: bad acr, amr or auth_time → 400 with a reason, and nothing changes", async () => {
  const b = new Browser(delegated);
  const to = await toPlatform(b, { prompt: "login" });
  const challenge = to.searchParams.get("login_challenge");
  const now = Math.floor(Date.now() / 1000);
  const usersBefore = await count(delegated, "SELECT COUNT(*) AS n FROM users");
  for (const [extra, reason] of [
    [{ auth_time: now + 3600 }, /auth_time is in the future/],
    [{ auth_time: now - 3600 }, /auth_time is older than this sign-in allows/],
    [{ auth_time: "yesterday" }, /invalid JSON body/],
    [{ acr: "" }, /acr must be/],
    [{ acr: "x".repeat(256) }, /acr must be/],
    [{ acr: "a\nb" }, /acr must be/],
    [{ amr: "pwd" }, /invalid JSON body/],
    [{ amr: [] }, /amr must be/],
    [{ amr: Array(11).fill("pwd") }, /amr must be/],
    [{ amr: ["has space"] }, /amr must be/],
    [{ amr: ["x".repeat(33)] }, /amr must be/],
    [{ acr: "ok", amr: ["pwd"], auth_time: now - 3600, user: { email: "new-oidc@acme.test" }, external_id: "new-oidc" }, /auth_time/],
  ]) {
    const res = await admin("PUT", `/admin/v1/login/accept?login_challenge=${challenge}`, { external_id: "alice", ...extra });
    assert.equal(res.status, 400, JSON.stringify(extra).slice(0, 60));
    const body = await res.json();
    assert.match(body.error_description ?? body.error, reason, JSON.stringify(extra).slice(0, 60));
  }
  const info = await (await admin("GET", `/admin/v1/login?login_challenge=${challenge}`)).json();
  assert.equal(info.status, "pending", "still open");
  assert.equal(await count(delegated, "SELECT COUNT(*) AS n FROM users"), usersBefore, "no user created");
  // A slightly fast platform clock is recorded as now; then the landing works.
  const next = await acceptAndLand(b, challenge, { auth_time: now + 30 });
  const s = await sessionOf(delegated, b);
  assert.ok(s.auth_time <= Math.floor(Date.now() / 1000));
  assert.ok(s.auth_time >= now);
  assert.equal(s.acr, null);
  assert.equal(s.amr, null);
  const done = await b.fetch(next);
  assert.ok(new URL(done.headers.get("location")).searchParams.get("code"), "alice approved this app earlier: a code");
});
