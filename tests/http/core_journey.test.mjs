// The authorization-code journey as a browser and an app do it, in workerd
// against a local D1: discovery, sign-in, consent, code, token, API, refresh,
// introspection, revocation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, Browser, registerApp, pkcePair, hiddenFields, unescape, exchange, tokenRequest, bearer, basic, form, FORM,
} from "./support.mjs";

let server;
before(async () => (server = await startServer()));
after(() => server.close());

test("metadata lists every endpoint and the supported methods (RFC 8414)", async () => {
  const res = await server.fetch("/.well-known/oauth-authorization-server");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  const m = await res.json();
  assert.equal(m.issuer, server.base);
  for (const [k, path] of [
    ["authorization_endpoint", "/oauth/authorize"],
    ["token_endpoint", "/oauth/token"],
    ["revocation_endpoint", "/oauth/revoke"],
    ["introspection_endpoint", "/oauth/introspect"],
  ]) assert.equal(m[k], server.base + path);
  assert.deepEqual(m.response_types_supported, ["code"]);
  assert.deepEqual(m.code_challenge_methods_supported, ["S256"]);
  assert.deepEqual(m.grant_types_supported, [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
  ]);
  assert.deepEqual(m.token_endpoint_auth_methods_supported, ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]);
  assert.equal(m.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(m.scopes_supported, ["posts:read", "posts:write", "profile:read", "webhooks:manage", "openid", "profile", "email"]);
});

test("full journey: sign-in form, consent form, code, token, API, refresh, introspect, revoke", async () => {
  const app = await registerApp(server, { name: "Journey", homepage_url: "https://journey.example" });
  assert.match(app.client_id, /^app_[A-Za-z0-9_-]{43}$/);
  assert.match(app.client_secret, /^sec_[A-Za-z0-9_-]{43}$/);
  const browser = new Browser(server);
  const { verifier, challenge } = pkcePair();
  const q = new URLSearchParams({
    client_id: app.client_id, redirect_uri: app.redirect_uris[0], response_type: "code",
    scope: "profile:read posts:write", state: "s-123", code_challenge: challenge, code_challenge_method: "S256",
  });

  // Not signed in: to the sign-in page, which returns to authorize.
  let res = await browser.fetch(`/oauth/authorize?${q}`);
  assert.equal(res.status, 302);
  const signinUrl = new URL(res.headers.get("location"), server.base);
  assert.equal(signinUrl.pathname, "/signin");
  const signinPage = await (await browser.fetch(signinUrl.pathname + signinUrl.search)).text();
  const returnTo = hiddenFields(signinPage).return_to;
  const carried = new URL(returnTo, server.base);
  assert.equal(carried.pathname, "/oauth/authorize");
  for (const k of ["client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"])
    assert.equal(carried.searchParams.get(k), q.get(k), k);
  res = await browser.post("/signin", { email: "alice@acme.test", password: "alice-password", return_to: returnTo });
  assert.equal(res.status, 303);
  const cookie = res.headers.getSetCookie()[0];
  assert.match(cookie, /^eo_session=ses_/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Lax/);
  assert.doesNotMatch(cookie, /Secure/, "no Secure on http loopback in development");
  assert.equal(res.headers.get("location"), returnTo);

  // Consent page.
  res = await browser.fetch(returnTo);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), null, "no CORS on consent");
  assert.match(res.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  const page = await res.text();
  assert.match(page, /<span id="app-name">Journey<\/span>/);
  assert.match(page, /by <strong>Acme<\/strong>/);
  assert.match(unescape(page), /href="https:\/\/journey\.example"/);
  assert.match(page, /<code>posts:write<\/code> — Create and edit posts in the organization/);
  assert.match(page, /<option value="org_acme">Acme \(owner\)<\/option>/);

  // Approve: 303 back with code, state, iss.
  res = await browser.post("/oauth/authorize", { ...hiddenFields(page), org: "org_acme", actor: "self", decision: "approve" });
  assert.equal(res.status, 303);
  const cb = new URL(res.headers.get("location"));
  assert.equal(cb.origin + cb.pathname, "http://localhost:3000/callback");
  assert.equal(cb.searchParams.get("state"), "s-123");
  assert.equal(cb.searchParams.get("iss"), server.base);
  const code = cb.searchParams.get("code");
  assert.match(code, /^code_/);

  // Token exchange.
  res = await exchange(server, app, code, { verifier });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  const t = await res.json();
  assert.equal(t.token_type, "Bearer");
  assert.equal(t.expires_in, 3600);
  assert.equal(t.scope, "posts:write profile:read");
  assert.match(t.access_token, /^at_/);
  assert.match(t.refresh_token, /^rt_/);

  // Only hashes are stored.
  const stored = await server.db.prepare("SELECT hash FROM tokens").all();
  assert.ok(stored.results.every((r) => /^[0-9a-f]{64}$/.test(r.hash)));
  assert.ok(!JSON.stringify(stored.results).includes(t.access_token));

  // The API resolves org, user, actor and permissions from the token alone.
  res = await bearer(server, "/api/v1/me", t.access_token);
  assert.equal(res.status, 200);
  const me = await res.json();
  assert.deepEqual(me.org, { id: "org_acme", slug: "acme" });
  assert.equal(me.user.email, "alice@acme.test");
  assert.equal(me.actor, "self");
  assert.deepEqual(me.permissions, ["posts:write", "profile:read"]);
  assert.equal((await bearer(server, "/api/v1/posts", t.access_token, { method: "POST" })).status, 201);
  const denied = await bearer(server, "/api/v1/posts", t.access_token);
  assert.equal(denied.status, 403, "posts:read was not granted");
  assert.match(denied.headers.get("www-authenticate"), /error="insufficient_scope"/);

  // Introspection (client-authenticated).
  res = await server.fetch("/oauth/introspect", {
    method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) }, body: form({ token: t.access_token }),
  });
  const intro = await res.json();
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, app.client_id);
  assert.equal(intro.sub, "usr_alice");
  assert.equal(intro.org_id, "org_acme");

  // Refresh rotates both; the narrowed scope sticks.
  res = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token, scope: "profile:read" });
  assert.equal(res.status, 200);
  const t2 = await res.json();
  assert.equal(t2.scope, "profile:read");
  assert.notEqual(t2.refresh_token, t.refresh_token);
  assert.equal((await bearer(server, "/api/v1/posts", t2.access_token, { method: "POST" })).status, 403);
  res = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t2.refresh_token, scope: "profile:read posts:write" });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_scope", "scope can only shrink");

  // Revoke the refresh token: the whole grant dies.
  res = await server.fetch("/oauth/revoke", {
    method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) }, body: form({ token: t2.refresh_token }),
  });
  assert.equal(res.status, 200);
  res = await bearer(server, "/api/v1/me", t2.access_token);
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate"), /error="invalid_token"/);
  res = await server.fetch("/oauth/introspect", {
    method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) }, body: form({ token: t2.access_token }),
  });
  assert.deepEqual(await res.json(), { active: false });
});

test("deny returns access_denied with state and iss", async () => {
  const app = await registerApp(server);
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  const page = await (await browser.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code&state=zz&scope=profile:read&code_challenge=${pkcePair().challenge}&code_challenge_method=S256`)).text();
  const res = await browser.post("/oauth/authorize", { ...hiddenFields(page), org: "org_acme", decision: "deny" });
  assert.equal(res.status, 303);
  const cb = new URL(res.headers.get("location"));
  assert.equal(cb.searchParams.get("error"), "access_denied");
  assert.equal(cb.searchParams.get("state"), "zz");
  assert.equal(cb.searchParams.get("iss"), server.base);
  assert.equal(cb.searchParams.get("code"), null);
});

test("public client: PKCE required, auth method none works, a secret is refused", async () => {
  const app = await registerApp(server, { client_type: "public" });
  assert.equal(app.client_secret, undefined);
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  let res = await browser.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code&scope=profile:read`);
  assert.equal(res.status, 302);
  assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "invalid_request");
  const { verifier, challenge } = pkcePair();
  const page = await (await browser.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code&scope=profile:read&code_challenge=${challenge}&code_challenge_method=S256`)).text();
  res = await browser.post("/oauth/authorize", { ...hiddenFields(page), org: "org_acme", decision: "approve" });
  const code = new URL(res.headers.get("location")).searchParams.get("code");
  res = await server.fetch("/oauth/token", { method: "POST", headers: FORM, body: form({ grant_type: "authorization_code", code, client_id: app.client_id }) });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_request", "public client without verifier");
  res = await server.fetch("/oauth/token", {
    method: "POST", headers: FORM,
    body: form({ grant_type: "authorization_code", code, client_id: app.client_id, client_secret: "sec_made_up", code_verifier: verifier }),
  });
  assert.equal(res.status, 401);
  res = await server.fetch("/oauth/token", {
    method: "POST", headers: FORM, body: form({ grant_type: "authorization_code", code, client_id: app.client_id, code_verifier: verifier }),
  });
  assert.equal(res.status, 200);
});

test("client_secret_post works as well as Basic", async () => {
  const app = await registerApp(server);
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  const { verifier, challenge } = pkcePair();
  const page = await (await browser.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code&scope=profile:read&code_challenge=${challenge}&code_challenge_method=S256`)).text();
  const res0 = await browser.post("/oauth/authorize", { ...hiddenFields(page), org: "org_acme", decision: "approve" });
  const code = new URL(res0.headers.get("location")).searchParams.get("code");
  const res = await server.fetch("/oauth/token", {
    method: "POST", headers: FORM,
    body: form({ grant_type: "authorization_code", code, client_id: app.client_id, client_secret: app.client_secret, code_verifier: verifier }),
  });
  assert.equal(res.status, 200, await res.clone().text());
});

test("sign-out needs the session's CSRF token, ends the session and clears the cookie", async () => {
  const app = await registerApp(server);
  const b = new Browser(server);
  await b.signIn("carol@acme.test", "carol-password");
  const csrf = await b.csrf();
  let res = await b.post("/signout", { csrf: "forged" });
  assert.equal(res.status, 403);
  assert.equal((await b.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code&scope=profile:read&code_challenge=${pkcePair().challenge}&code_challenge_method=S256`)).status, 200);
  const before = (await server.db.prepare("SELECT count(*) AS n FROM sessions").first()).n;
  res = await b.post("/signout", { csrf });
  assert.equal(res.status, 303);
  assert.match(res.headers.getSetCookie()[0], /^eo_session=;.*Max-Age=0/);
  assert.equal((await server.db.prepare("SELECT count(*) AS n FROM sessions").first()).n, before - 1);
  res = await b.fetch(`/oauth/authorize?client_id=${app.client_id}&response_type=code&scope=profile:read&code_challenge=${pkcePair().challenge}&code_challenge_method=S256`);
  assert.equal(res.status, 302);
  assert.match(res.headers.get("location"), /^\/signin\?/);
});
