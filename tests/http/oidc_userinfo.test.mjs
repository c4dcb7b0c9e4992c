// OpenID Connect UserInfo, subjects and claims (issue 17 items 3-5): claims
// by scope, pairwise subjects (different across sectors, stable within one,
// the same in UserInfo, introspection, the JWT access token and /api/v1/me),
// RFC 6750 errors, the token in a POST body but never in the query, removed
// members and other tenants, and what the provisioning API sets.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  startServer,
  Browser,
  registerApp,
  tokensFor as approveAndExchange,
  consent,
  exchange,
  clientRequest,
  bearer,
  lastLine,
  newUser,
  FORM,
  form,
  api,
} from "./support.mjs";

const ADMIN = "adm_userinfo_test_" + randomBytes(24).toString("base64url");
const SALT = randomBytes(32).toString("base64url");
const OIDC_SCOPES = ["openid", "profile", "email"];
// The platform's API as a privileged introspection client of the pairwise server.
const PLATFORM_RS = "app_platform_rs";

let s; // public subjects, opaque tokens, strict bearer mode
let pw; // pairwise subjects, JWT access tokens (strict bearer mode)
let offline; // BEARER_MODE=jwt
before(async () => {
  [s, pw, offline] = await Promise.all([
    startServer({ PLATFORM_ADMIN_TOKEN: ADMIN }),
    startServer({ SUBJECT_TYPE: "pairwise", SUBJECT_SALT: SALT, ACCESS_TOKEN_FORMAT: "jwt", INTROSPECTION_CLIENTS: PLATFORM_RS }),
    startServer({ BEARER_MODE: "jwt", ACCESS_TOKEN_FORMAT: "jwt" }),
  ]);
  for (const server of [s, pw, offline]) await openidScopes(server);
});
after(() => Promise.all([s, pw, offline].map((x) => x?.close())));

// `openid profile email` are built-in scopes once ID tokens land (the
// oidc-tokens part); until then a test server lists them in its catalogue
// (before its first request, so no isolate has cached the catalogue yet) and
// the apps declare them. Harmless afterwards.
async function openidScopes(server) {
  for (const name of OIDC_SCOPES)
    await server.db.prepare("INSERT OR IGNORE INTO scopes (name, description) VALUES (?1, ?2)").bind(name, `OpenID ${name}`).run();
}

const oidcApp = (server, body = {}) =>
  registerApp(server, { scopes: ["profile:read", "posts:read", ...OIDC_SCOPES], ...body });

// prompt=consent: always the consent page, even where an earlier consent covers the scopes.
const tokensFor = (server, browser, app, query = {}, choose = {}) =>
  approveAndExchange(server, browser, app, { prompt: "consent", ...query }, choose);

const userinfo = (server, token, init = {}) => bearer(server, "/oauth/userinfo", token, init);

async function signedIn(server, email, password) {
  const b = new Browser(server);
  await b.signIn(email, password);
  return b;
}

const jwtClaims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

const hash = (t) => createHash("sha256").update(t).digest("hex");

test("claims are released by scope: sub and org_id always, profile and email only as granted; one D1 read", async () => {
  const app = await oidcApp(s);
  const alice = await signedIn(s, "alice@acme.test", "alice-password");
  const claims = async (scope) => {
    const t = await tokensFor(s, alice, app, { scope });
    const res = await userinfo(s, t.access_token);
    assert.equal(res.status, 200, scope);
    assert.match(res.headers.get("content-type"), /^application\/json/);
    assert.match(res.headers.get("cache-control") ?? "", /no-store/);
    assert.equal(lastLine(s, "userinfo")?.d1, 1, "one D1 round trip");
    return res.json();
  };
  assert.deepEqual(await claims("openid"), { sub: "usr_alice", org_id: "org_acme" });
  const profile = await claims("openid profile");
  assert.equal(typeof profile.updated_at, "number");
  assert.deepEqual(profile, {
    sub: "usr_alice",
    org_id: "org_acme",
    name: "Alice",
    updated_at: profile.updated_at,
    org_name: "Acme",
    org_slug: "acme",
  });
  // A user this server seeded itself: nothing verified the address.
  assert.deepEqual(await claims("openid email"), {
    sub: "usr_alice",
    org_id: "org_acme",
    email: "alice@acme.test",
    email_verified: false,
  });
  // Platform scopes release nothing more.
  assert.deepEqual(Object.keys(await claims("openid posts:read")).sort(), ["org_id", "sub"]);
});

test("the provisioning API sets preferred_username and email_verified; a changed profile bumps updated_at", async () => {
  const admin = async (method, path, body) => {
    const res = await s.fetch("/admin/v1" + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  let r = await admin("PUT", "/users/dora", {
    email: "dora@acme.test",
    name: "Dora",
    password: "dora-password",
    preferred_username: "dora.d",
    email_verified: true,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.preferred_username, "dora.d");
  assert.equal(r.body.email_verified, true);
  assert.equal((await admin("PUT", "/orgs/acme/memberships/dora", { role: "member" })).status, 201);
  const app = await oidcApp(s);
  const dora = await signedIn(s, "dora@acme.test", "dora-password");
  const t = await tokensFor(s, dora, app, { scope: "openid profile email" });
  const read = async () => (await userinfo(s, t.access_token)).json();
  let c = await read();
  assert.equal(c.preferred_username, "dora.d");
  assert.equal(c.email_verified, true);
  assert.equal(c.name, "Dora");
  const id = c.sub;

  // A password change is not a profile change; a name change is.
  await s.db.prepare("UPDATE users SET updated_at = 1000 WHERE id = ?1").bind(id).run();
  assert.equal((await admin("PATCH", "/users/dora", { password: "dora-password-2" })).status, 200);
  assert.equal((await read()).updated_at, 1000);
  assert.equal((await admin("PATCH", "/users/dora", { name: "Dora D." })).status, 200);
  c = await read();
  assert.equal(c.name, "Dora D.");
  assert.ok(c.updated_at > Date.now() / 1000 - 60, `updated_at moved: ${c.updated_at}`);

  // A new address is not verified unless the platform says so.
  await s.db.prepare("UPDATE users SET updated_at = 1000 WHERE id = ?1").bind(id).run();
  r = await admin("PATCH", "/users/dora", { email: "dora@new.test" });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.changes?.email_verified, { from: true, to: false });
  c = await read();
  assert.equal(c.email, "dora@new.test");
  assert.equal(c.email_verified, false);
  assert.ok(c.updated_at > 1000);
  // `null` removes the username: the claim is then absent.
  assert.equal((await admin("PATCH", "/users/dora", { preferred_username: null, email_verified: true })).status, 200);
  c = await read();
  assert.equal("preferred_username" in c, false);
  assert.equal(c.email_verified, true);

  // Bad values: 400 with a reason, nothing changed.
  const before = await s.db.prepare("SELECT * FROM users WHERE id = ?1").bind(id).first();
  for (const bad of [{ preferred_username: "" }, { preferred_username: "x".repeat(101) }, { email_verified: "yes" }]) {
    r = await admin("PATCH", "/users/dora", bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.ok(r.body.error_description, "a reason");
  }
  assert.deepEqual(await s.db.prepare("SELECT * FROM users WHERE id = ?1").bind(id).first(), before);
});

test("pairwise: sub differs across sectors, is stable within one, and is the same in UserInfo, introspection, the JWT access token and /api/v1/me", async () => {
  const one = await oidcApp(pw, { redirect_uris: ["https://one.example/cb"] });
  const oneToo = await oidcApp(pw, { redirect_uris: ["https://one.example/other", "https://ONE.example:8443/cb"] });
  const two = await oidcApp(pw, { redirect_uris: ["https://two.example/cb"] });
  // Loopback redirect URIs name no sector (every native app shares them).
  const nativeA = await oidcApp(pw);
  const nativeB = await oidcApp(pw);
  const alice = await signedIn(pw, "alice@acme.test", "alice-password");
  const subOf = async (app, browser = alice, org = "org_acme") => {
    const t = await tokensFor(pw, browser, app, { scope: "openid profile" }, { org });
    const info = await (await userinfo(pw, t.access_token)).json();
    const jwt = jwtClaims(t.access_token);
    const intro = await (await clientRequest(pw, "/oauth/introspect", app, { token: t.access_token })).json();
    const me = await (await bearer(pw, "/api/v1/me", t.access_token)).json();
    assert.equal(intro.active, true);
    assert.equal(jwt.sub, info.sub, "JWT access token and UserInfo");
    assert.equal(intro.sub, info.sub, "introspection and UserInfo");
    assert.equal(me.user.id, info.sub, "/api/v1/me and UserInfo");
    // No claim an app can read carries the internal user id.
    for (const doc of [info, jwt, intro, me]) assert.ok(!JSON.stringify(doc).includes("usr_alice"), JSON.stringify(doc));
    assert.equal(info.org_id, org);
    return info.sub;
  };
  const a = await subOf(one);
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(await subOf(one), a, "stable for the same client");
  assert.equal(await subOf(oneToo), a, "the same sector (host), the same sub");
  const b = await subOf(two);
  assert.notEqual(b, a, "another sector, another sub");
  const [na, nb] = [await subOf(nativeA), await subOf(nativeB)];
  assert.notEqual(na, nb, "loopback redirect URIs are no shared sector");
  assert.ok(![a, b].includes(na));
  // The platform's API (INTROSPECTION_CLIENTS) also gets the user id, to find the user; no app does.
  const rs = await registerApp(pw, { name: "Platform API" });
  await pw.db.prepare("UPDATE apps SET id = ?1 WHERE id = ?2").bind(PLATFORM_RS, rs.client_id).run();
  const t = await tokensFor(pw, alice, one, { scope: "openid" });
  const privileged = await (
    await clientRequest(pw, "/oauth/introspect", { ...rs, client_id: PLATFORM_RS }, { token: t.access_token })
  ).json();
  assert.deepEqual([privileged.active, privileged.sub, privileged.user_id], [true, a, "usr_alice"]);
  const own = await (await clientRequest(pw, "/oauth/introspect", one, { token: t.access_token })).json();
  assert.deepEqual([own.active, own.sub, "user_id" in own], [true, a, false]);
  // Another user in the same sector: another sub.
  const bob = await signedIn(pw, "bob@globex.test", "bob-password");
  const bobs = await subOf(one, bob, "org_globex");
  assert.notEqual(bobs, a);
});

test("pairwise: the app's developers see who installed it as the app's sub, never the internal user id; the org's own admins see their users", async () => {
  const app = await oidcApp(pw, { redirect_uris: ["https://installs.example/cb"] });
  const alice = await signedIn(pw, "alice@acme.test", "alice-password");
  const t = await tokensFor(pw, alice, app, { scope: "openid profile:read" });
  const sub = (await (await userinfo(pw, t.access_token)).json()).sub;
  const dev = await (await api(pw, "GET", `/api/v1/apps/${app.client_id}/installations`)).json();
  const row = dev.installations.find((i) => i.org_id === "org_acme");
  assert.equal(row.installed_by, sub, "the developer view names the user as the app does");
  assert.ok(!JSON.stringify(dev).includes("usr_alice"), JSON.stringify(dev));
  const org = await (await api(pw, "GET", "/api/v1/orgs/org_acme/installations")).json();
  assert.equal(org.installations.find((i) => i.app_id === app.client_id).installed_by, "usr_alice", "the org's own view");
});

test("a token without openid gets 403 insufficient_scope; unknown, expired and revoked tokens get 401 invalid_token", async () => {
  const app = await oidcApp(s);
  const alice = await signedIn(s, "alice@acme.test", "alice-password");
  const plain = await tokensFor(s, alice, app, { scope: "profile:read" });
  let res = await userinfo(s, plain.access_token);
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error, "insufficient_scope");
  const challenge = res.headers.get("www-authenticate");
  assert.match(challenge, /^Bearer /);
  assert.match(challenge, /error="insufficient_scope"/);
  assert.match(challenge, /scope="openid"/);

  res = await s.fetch("/oauth/userinfo");
  assert.equal(res.status, 401);
  assert.doesNotMatch(res.headers.get("www-authenticate"), /error=/, "no error code when no token was sent (RFC 6750 §3.1)");

  const refused = async (token, why) => {
    const r = await userinfo(s, token);
    assert.equal(r.status, 401, why);
    assert.equal((await r.json()).error, "invalid_token", why);
    assert.match(r.headers.get("www-authenticate"), /error="invalid_token"/, why);
  };
  await refused("at_" + randomBytes(32).toString("base64url"), "unknown");
  await refused("not-a-token", "malformed");
  await refused("x".repeat(5000), "oversized");
  const expiring = await tokensFor(s, alice, app, { scope: "openid" });
  assert.equal((await userinfo(s, expiring.access_token)).status, 200);
  await s.db.prepare("UPDATE tokens SET expires_at = 1 WHERE hash = ?1").bind(hash(expiring.access_token)).run();
  await refused(expiring.access_token, "expired");
  const revoking = await tokensFor(s, alice, app, { scope: "openid" });
  assert.equal((await clientRequest(s, "/oauth/revoke", app, { token: revoking.access_token })).status, 200);
  await refused(revoking.access_token, "revoked");
  // The refresh token is no access token.
  await refused(revoking.refresh_token ?? "rt_x", "refresh token");
});

test("the token may come in a POST form body, once; never in the query", async () => {
  const app = await oidcApp(s);
  const alice = await signedIn(s, "alice@acme.test", "alice-password");
  const t = (await tokensFor(s, alice, app, { scope: "openid email" })).access_token;
  const viaGet = await (await userinfo(s, t)).json();
  let res = await s.fetch("/oauth/userinfo", { method: "POST", headers: FORM, body: form({ access_token: t }) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), viaGet);
  res = await userinfo(s, t, { method: "POST" });
  assert.equal(res.status, 200, "POST with the header");
  assert.deepEqual(await res.json(), viaGet);

  const malformed = async (init, path, why) => {
    const r = await s.fetch(path ?? "/oauth/userinfo", init);
    assert.equal(r.status, 400, why);
    assert.equal((await r.json()).error, "invalid_request", why);
    assert.match(r.headers.get("www-authenticate"), /error="invalid_request"/, why);
  };
  await malformed({}, `/oauth/userinfo?access_token=${t}`, "query");
  await malformed({ headers: { authorization: `Bearer ${t}` } }, `/oauth/userinfo?access_token=${t}`, "query and header");
  await malformed(
    { method: "POST", headers: { ...FORM, authorization: `Bearer ${t}` }, body: form({ access_token: t }) },
    null,
    "header and body",
  );
  await malformed(
    { method: "POST", headers: FORM, body: `access_token=${t}&access_token=${t}` },
    null,
    "twice in the body",
  );
  await malformed({ headers: { authorization: "Basic " + Buffer.from("a:b").toString("base64") } }, null, "not Bearer");
  // A JSON body is not RFC 6750 §2.2's form: no token was sent.
  res = await s.fetch("/oauth/userinfo", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ access_token: t }),
  });
  assert.equal(res.status, 401);
});

test("a removed member gets nothing; a token releases only the org it was granted for (cross-tenant)", async () => {
  const email = await newUser(s, "ui");
  const id = "u_" + email.split("@")[0];
  for (const org of ["org_acme", "org_globex"])
    await s.db.prepare("INSERT INTO memberships (org_id, user_id, role) VALUES (?1, ?2, 'member')").bind(org, id).run();
  const app = await oidcApp(s);
  const user = await signedIn(s, email, "carol-password");
  const acme = (await tokensFor(s, user, app, { scope: "openid profile" }, { org: "org_acme" })).access_token;
  const globex = (await tokensFor(s, user, app, { scope: "openid profile" }, { org: "org_globex" })).access_token;
  const a = await (await userinfo(s, acme)).json();
  const g = await (await userinfo(s, globex)).json();
  assert.deepEqual([a.org_id, a.org_slug, a.org_name], ["org_acme", "acme", "Acme"]);
  assert.deepEqual([g.org_id, g.org_slug, g.org_name], ["org_globex", "globex", "Globex"]);
  assert.equal(a.sub, g.sub, "one user, one client: one sub");

  await s.db.prepare("DELETE FROM memberships WHERE org_id = 'org_globex' AND user_id = ?1").bind(id).run();
  const res = await userinfo(s, globex);
  assert.equal(res.status, 401, "removed from globex: its token releases nothing");
  assert.equal((await res.json()).error, "invalid_token");
  assert.equal((await userinfo(s, acme)).status, 200, "still a member of acme");
});

test("the app actor's token names no user: 403 even with openid", async () => {
  const app = await oidcApp(s, { actor_modes: ["app", "self"] });
  const alice = await signedIn(s, "alice@acme.test", "alice-password");
  const { location } = await consent(alice, app, { scope: "openid posts:read" }, { actor: "app" });
  const code = location?.searchParams.get("code");
  assert.ok(code, `a code for the app actor: ${location}`);
  const res = await exchange(s, app, code);
  assert.equal(res.status, 200);
  const r = await userinfo(s, (await res.json()).access_token);
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error, "insufficient_scope");
});

test("CORS on every answer and on the preflight", async () => {
  const app = await oidcApp(s);
  const alice = await signedIn(s, "alice@acme.test", "alice-password");
  const t = (await tokensFor(s, alice, app, { scope: "openid" })).access_token;
  const origin = { origin: "https://spa.example" };
  for (const res of [await userinfo(s, t, { headers: origin }), await s.fetch("/oauth/userinfo", { headers: origin })]) {
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-expose-headers") ?? "", /WWW-Authenticate/i);
  }
  const pre = await s.fetch("/oauth/userinfo", {
    method: "OPTIONS",
    headers: { ...origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
  });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get("access-control-allow-headers"), /Authorization/);
});

test("BEARER_MODE=jwt: UserInfo still reads the token's row (one D1 read), so a revoked JWT gets nothing at once", async () => {
  const app = await oidcApp(offline);
  const alice = await signedIn(offline, "alice@acme.test", "alice-password");
  const t = await tokensFor(offline, alice, app, { scope: "openid email" });
  let res = await userinfo(offline, t.access_token);
  assert.equal(res.status, 200);
  const c = await res.json();
  assert.equal(c.sub, jwtClaims(t.access_token).sub);
  assert.equal(c.sub, "usr_alice");
  assert.equal(lastLine(offline, "userinfo")?.d1, 1);
  assert.equal((await clientRequest(offline, "/oauth/revoke", app, { token: t.access_token })).status, 200);
  res = await userinfo(offline, t.access_token);
  assert.equal(res.status, 401);
});

test("OPENID=off: no UserInfo (404)", async () => {
  const off = await startServer({ OPENID: "off" });
  try {
    const res = await off.fetch("/oauth/userinfo", { headers: { authorization: "Bearer at_x" } });
    assert.equal(res.status, 404);
    assert.equal((await off.fetch("/oauth/userinfo", { method: "POST" })).status, 404);
  } finally {
    await off.close();
  }
});
