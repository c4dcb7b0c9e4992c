// Installs, actor modes, one live token set, live permissions,
// client_credentials, the app lifecycle and prompt handling, in workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, Browser, registerApp, consent, tokensFor, tokenRequest, bearer, api, authorizeQuery, basic, form, FORM,
} from "./support.mjs";

let server, alice, carol, bob;
before(async () => {
  server = await startServer();
  alice = new Browser(server);
  carol = new Browser(server);
  bob = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  await carol.signIn("carol@acme.test", "carol-password");
  await bob.signIn("bob@globex.test", "bob-password");
});
after(() => server.close());

const botApp = (extra = {}) =>
  registerApp(server, { scopes: ["profile:read", "posts:read", "posts:write"], actor_modes: ["app", "self"], ...extra });

test("a token acts in exactly the target org chosen on consent", async () => {
  const app = await botApp();
  const t = await tokensFor(server, bob, app, { scope: "profile:read" }, { org: "org_globex", actor: "self" });
  const me = await (await bearer(server, "/api/v1/me", t.access_token)).json();
  assert.deepEqual(me.org, { id: "org_globex", slug: "globex" });
  const inst = await (await api(server, "GET", `/api/v1/apps/${app.client_id}/installations`)).json();
  assert.equal(inst.count, 1);
  assert.equal(inst.installations[0].org_slug, "globex");
});

test("a new authorization keeps the previous token set live (MAX_LIVE_GRANTS; FeatureOS's one-per-org is in features_profiles)", async () => {
  const app = await botApp();
  const first = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
  const second = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
  assert.equal((await bearer(server, "/api/v1/me", first.access_token)).status, 200);
  assert.equal((await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: first.refresh_token })).status, 200);
  assert.equal((await bearer(server, "/api/v1/me", second.access_token)).status, 200);
});

test("installing with the app actor needs an org admin", async () => {
  const app = await botApp();
  const { res } = await consent(carol, app, { scope: "posts:read" }, { actor: "app" });
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("location"), null);
  const page = await (await carol.fetch(`/oauth/authorize?${authorizeQuery(app)}`)).text();
  assert.match(page, /As the app itself/, "consent shows the actor modes");
});

test("client_credentials: only where an admin installed the app actor, no refresh token, app identity", async () => {
  const app = await botApp();
  const cc = (extra = {}) => tokenRequest(server, app, { grant_type: "client_credentials", ...extra });
  let res = await cc();
  assert.equal(res.status, 400);
  await tokensFor(server, bob, app, { scope: "posts:read posts:write" }, { org: "org_globex", actor: "app" });
  res = await cc();
  assert.equal(res.status, 200);
  const t = await res.json();
  assert.equal(t.refresh_token, undefined);
  assert.equal(t.scope, "posts:read posts:write");
  const me = await (await bearer(server, "/api/v1/me", t.access_token)).json();
  assert.equal(me.actor, "app");
  assert.equal(me.user, null);
  assert.equal(me.org.slug, "globex");
  assert.equal((await bearer(server, "/api/v1/posts", t.access_token, { method: "POST" })).status, 201);
  res = await cc({ scope: "profile:read" });
  assert.equal((await res.json()).error, "invalid_scope", "only what the admin approved");
  res = await cc({ org_id: "org_acme" });
  assert.equal((await res.json()).error, "unauthorized_client", "not installed in Acme");
});

test("bot-only app (Fluxer) uses client_credentials in its owner org", async () => {
  const app = await registerApp(server, { scopes: ["posts:read"], actor_modes: ["app"] });
  const res = await tokenRequest(server, app, { grant_type: "client_credentials" });
  assert.equal(res.status, 200);
  const me = await (await bearer(server, "/api/v1/me", (await res.json()).access_token)).json();
  assert.equal(me.org.slug, "acme");
  const strict = await registerApp(server, { scopes: ["posts:read"], actor_modes: ["app"], bot_require_code_grant: true });
  assert.equal((await tokenRequest(server, strict, { grant_type: "client_credentials" })).status, 400);
  const privateBot = await botApp({ bot_public: false });
  const { res: r2 } = await consent(bob, privateBot, { scope: "posts:read" }, { org: "org_globex", actor: "app" });
  assert.equal(r2.status, 403, "a non-public bot can only be added by its owner org");
});

test("permissions follow the user's live role: demote → 403, remove → 401", async () => {
  const app = await botApp();
  const t = await tokensFor(server, alice, app, { prompt: "consent", scope: "posts:write profile:read" });
  assert.equal((await bearer(server, "/api/v1/posts", t.access_token, { method: "POST" })).status, 201);
  await server.db.prepare("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_alice'").run();
  try {
    const res = await bearer(server, "/api/v1/posts", t.access_token, { method: "POST" });
    assert.equal(res.status, 403);
    assert.match(res.headers.get("www-authenticate"), /insufficient_scope/);
    await server.db.prepare("DELETE FROM memberships WHERE user_id = 'usr_alice'").run();
    assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
    assert.equal((await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token })).status, 400);
  } finally {
    await server.db.prepare("INSERT OR REPLACE INTO memberships VALUES ('org_acme', 'usr_alice', 'owner')").run();
  }
});

test("update with optimistic concurrency; narrowing declared scopes narrows live tokens", async () => {
  const app = await botApp();
  const t = await tokensFor(server, alice, app, { prompt: "consent", scope: "posts:write profile:read" });
  let res = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: 1, scopes: ["profile:read"], name: "Renamed", terms_url: "https://t.example/terms" });
  assert.equal(res.status, 200);
  const updated = await res.json();
  assert.equal(updated.version, 2);
  assert.equal(updated.name, "Renamed");
  res = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: 1, name: "Stale" });
  assert.equal(res.status, 409);
  assert.equal((await res.json()).current_version, 2);
  assert.equal((await bearer(server, "/api/v1/posts", t.access_token, { method: "POST" })).status, 403);
  res = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: 2, redirect_uris: ["http://example.com/cb"] });
  assert.equal(res.status, 400, "the same validation as registration");
});

test("rotate the secret: old one rejected at once, tokens live on; expired secret is invalid_client", async () => {
  const app = await botApp();
  const t = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
  const rot = await (await api(server, "POST", `/api/v1/apps/${app.client_id}/secret`, { secret_expires_in: 3600 })).json();
  assert.match(rot.client_secret, /^sec_/);
  let res = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, "invalid_client");
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
  const fresh = { ...app, client_secret: rot.client_secret };
  res = await tokenRequest(server, fresh, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(res.status, 200);
  await server.db.prepare("UPDATE apps SET secret_expires_at = 1 WHERE id = ?").bind(app.client_id).run();
  res = await tokenRequest(server, fresh, { grant_type: "client_credentials" });
  assert.equal(res.status, 401);
  assert.match((await res.json()).error_description, /expired/);
});

test("deactivate suspends, reactivate resumes, delete is irreversible", async () => {
  const app = await botApp();
  const t = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
  assert.equal((await api(server, "POST", `/api/v1/apps/${app.client_id}/deactivate`)).status, 200);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
  assert.equal((await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token })).status, 401);
  assert.equal((await alice.fetch(`/oauth/authorize?${authorizeQuery(app)}`)).status, 400);
  assert.equal((await api(server, "POST", `/api/v1/apps/${app.client_id}/reactivate`)).status, 200);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
  assert.equal((await api(server, "DELETE", `/api/v1/apps/${app.client_id}`)).status, 204);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
  assert.equal((await api(server, "GET", `/api/v1/apps/${app.client_id}`)).status, 404);
  assert.equal((await api(server, "POST", `/api/v1/apps/${app.client_id}/reactivate`)).status, 404);
  const inst = await server.db.prepare("SELECT count(*) AS n FROM installs WHERE app_id = ? AND revoked_at IS NULL").bind(app.client_id).first();
  assert.equal(inst.n, 0);
});

test("Fluxer application object and Get Current Application", async () => {
  const app = await botApp({ description: "d".repeat(400), terms_url: "https://t.example", privacy_url: "https://p.example" });
  for (const k of ["id", "name", "description", "bot_public", "bot_require_code_grant", "terms_url", "privacy_url", "owner_org_id", "version", "redirect_uris"])
    assert.ok(k in app, k);
  const t = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
  const cur = await (await bearer(server, "/api/v1/apps/@me", t.access_token)).json();
  assert.equal(cur.id, app.client_id);
  assert.equal(cur.client_secret, undefined);
});

test("prompt=none and not asking twice; prompt=consent always asks", async () => {
  const app = await botApp();
  let res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "none" })}`);
  assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "consent_required");
  const anon = new Browser(server);
  res = await anon.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "none" })}`);
  assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "login_required");
  await tokensFor(server, alice, app, { scope: "profile:read posts:read" });
  res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "none", scope: "profile:read" })}`);
  assert.equal(res.status, 302);
  assert.ok(new URL(res.headers.get("location")).searchParams.get("code"));
  res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "profile:read" })}`);
  assert.equal(res.status, 302, "already approved: no consent screen");
  res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "posts:write" })}`);
  assert.equal(res.status, 200, "a wider scope asks again");
  res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent", scope: "profile:read" })}`);
  assert.equal(res.status, 200);
});

test("registering an app needs oauth_app.manage in the owner org (Fiskl)", async () => {
  const body = JSON.stringify({ name: "Nope", redirect_uris: ["https://a.example/cb"], scopes: ["profile:read"], org_id: "org_acme" });
  let res = await carol.fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": await carol.csrf() }, body });
  assert.equal(res.status, 403);
  assert.match((await res.json()).error_description, /oauth_app\.manage/);
  res = await bob.fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": await bob.csrf() }, body });
  assert.equal(res.status, 403, "not a member of Acme");
  res = await alice.fetch("/api/v1/apps", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": await alice.csrf() }, body });
  assert.equal(res.status, 201);
});
