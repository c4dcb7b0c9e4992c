// Issue 8, the token side: client lockout per source address (1.2), the bot
// install re-checked on every path that issues a code (1.5), PKCE for every
// client (1.10), several live token sets per user and per install (2.1), and
// the refresh reuse grace window (2.2). In workerd with a local D1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { profileVars } from "../../scripts/profile-vars.mjs";
import {
  startServer, Browser, registerApp, pkcePair, hiddenFields, consent, exchange, tokenRequest, tokensFor, bearer,
  authorizeQuery, basic, form, FORM, count,
} from "./support.mjs";

const sha = (s) => createHash("sha256").update(s).digest("hex");

// S0: the shipped defaults (wrangler.toml). S1: a 30 s refresh grace window
// and caps of 2, to see eviction without minting ten token sets.
let s0, s1, alice0, alice1;
before(async () => {
  s0 = await startServer();
  s1 = await startServer({ REFRESH_REUSE_GRACE_SECONDS: "30", MAX_LIVE_GRANTS: "2", MAX_LIVE_APP_TOKENS: "2" });
  alice0 = new Browser(s0);
  await alice0.signIn("alice@acme.test", "alice-password");
  alice1 = new Browser(s1);
  await alice1.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await s0.close();
  await s1.close();
});

const botApp = (server, extra = {}) =>
  registerApp(server, { scopes: ["profile:read", "posts:read", "posts:write"], actor_modes: ["app", "self"], ...extra });

/** A token request from a given client address (CF-Connecting-IP). */
function fromAddress(server, ip, app, secret, fields) {
  return server.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(app.client_id, secret), "cf-connecting-ip": ip },
    body: form(fields),
  });
}

const refresh = (server, app, rt) => tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: rt });
const live = async (server, at) => (await bearer(server, "/api/v1/me", at)).status;

// ---- 1.2: a third party cannot lock the rightful client out -------------

test("client lockout counts per source address: 21 bad secrets from X never refuse the right secret from Y", async () => {
  const app = await registerApp(s0, { name: "Lockout", scopes: ["posts:read"], actor_modes: ["app"] });
  const X = "203.0.113.7";
  const Y = "198.51.100.9";
  const cc = { grant_type: "client_credentials" };
  const statuses = [];
  for (let i = 0; i < 21; i++) statuses.push((await fromAddress(s0, X, app, "sec_guess", cc)).status);
  assert.deepEqual(statuses, [...Array(20).fill(401), 429], "X is limited after 20 failures");
  // The rightful client, elsewhere: the attacker's failures are not its own.
  let res = await fromAddress(s0, Y, app, app.client_secret, cc);
  assert.equal(res.status, 200, `right secret from Y: ${await res.clone().text()}`);
  // The guarded write path (code exchange) too, where the check is in SQL.
  const { verifier, challenge } = pkcePair();
  const code = await codeFor(s0, alice0, app, { code_challenge: challenge, code_challenge_method: "S256", scope: "posts:read" }, { actor: "app" });
  res = await fromAddress(s0, Y, app, app.client_secret, {
    grant_type: "authorization_code", code, redirect_uri: app.redirect_uris[0], code_verifier: verifier,
  });
  assert.equal(res.status, 200, `exchange from Y: ${await res.clone().text()}`);
  // Y's own budget is untouched: a bad secret from Y is a plain 401.
  assert.equal((await fromAddress(s0, Y, app, "sec_guess", cc)).status, 401);
  // X stays limited, even with the right secret: otherwise 429-vs-200 would
  // be an oracle and X could keep guessing at line speed.
  res = await fromAddress(s0, X, app, app.client_secret, cc);
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "900");
});

test("client lockout: an IPv6 sender counts as its /64, so rotating addresses does not buy guesses", async () => {
  const app = await registerApp(s0, { name: "Lockout6", scopes: ["posts:read"], actor_modes: ["app"] });
  const cc = { grant_type: "client_credentials" };
  for (let i = 0; i < 20; i++) assert.equal((await fromAddress(s0, `2001:db8:1:2::${i + 1}`, app, "sec_guess", cc)).status, 401);
  assert.equal((await fromAddress(s0, "2001:db8:1:2:ffff::9", app, "sec_guess", cc)).status, 429, "same /64");
  assert.equal((await fromAddress(s0, "2001:db8:1:3::1", app, app.client_secret, cc)).status, 200, "another /64");
});

// ---- 1.5: the role is re-checked wherever a code is issued ---------------

/** Consent (or prompt=none) and return the code from the redirect. */
async function codeFor(server, browser, app, query, choose = {}) {
  const { location } = await consent(browser, app, { prompt: "consent", ...query }, choose);
  assert.ok(location?.searchParams.get("code"), `no code: ${location}`);
  return location.searchParams.get("code");
}

const codesOf = (server, app) => count(server, "SELECT count(*) AS n FROM codes WHERE app_id = ?", app.client_id);

test("a demoted admin cannot silently renew the org's bot install with prompt=none", async () => {
  const bob = new Browser(s0);
  await bob.signIn("bob@globex.test", "bob-password");
  const app = await botApp(s0);
  await tokensFor(s0, bob, app, { scope: "posts:read" }, { org: "org_globex", actor: "app" });
  // While bob is admin, prior consent renews silently (the baseline).
  let { challenge } = pkcePair();
  let res = await bob.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "posts:read", prompt: "none", code_challenge: challenge, code_challenge_method: "S256" })}`);
  assert.ok(new URL(res.headers.get("location")).searchParams.get("code"), "admin: silent renewal");
  await s0.db.prepare("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_bob'").run();
  try {
    const before = await codesOf(s0, app);
    res = await bob.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "posts:read", prompt: "none", code_challenge: challenge, code_challenge_method: "S256" })}`);
    assert.equal(res.status, 302);
    const loc = new URL(res.headers.get("location"));
    assert.equal(loc.searchParams.get("code"), null, "no code for a member");
    assert.equal(loc.searchParams.get("error"), "consent_required");
    // Without prompt=none the user is asked (and the form needs the role).
    res = await bob.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "posts:read", code_challenge: challenge, code_challenge_method: "S256" })}`);
    assert.equal(res.status, 200, "the consent page, not a code");
    assert.equal(await codesOf(s0, app), before, "nothing issued");
  } finally {
    await s0.db.prepare("UPDATE memberships SET role = 'admin' WHERE user_id = 'usr_bob'").run();
  }
});

test("an app-actor code whose user was demoted before the exchange redeems nothing", async () => {
  const bob = new Browser(s0);
  await bob.signIn("bob@globex.test", "bob-password");
  const app = await botApp(s0);
  const { verifier, challenge } = pkcePair();
  const code = await codeFor(s0, bob, app, { scope: "posts:read", code_challenge: challenge, code_challenge_method: "S256" }, { org: "org_globex", actor: "app" });
  await s0.db.prepare("UPDATE memberships SET role = 'member' WHERE user_id = 'usr_bob'").run();
  try {
    const res = await exchange(s0, app, code, { verifier });
    assert.equal(res.status, 400, await res.clone().text());
    assert.equal((await res.json()).error, "invalid_grant");
    const grants = await s0.db.prepare("SELECT count(*) AS n FROM grants WHERE app_id = ?").bind(app.client_id).first();
    assert.equal(grants.n, 0, "no grant issued");
  } finally {
    await s0.db.prepare("UPDATE memberships SET role = 'admin' WHERE user_id = 'usr_bob'").run();
  }
  // Restored to admin, a fresh code works again (the refusal was the role).
  const again = pkcePair();
  const ok = await codeFor(s0, bob, app, { scope: "posts:read", code_challenge: again.challenge, code_challenge_method: "S256" }, { org: "org_globex", actor: "app" });
  assert.equal((await exchange(s0, app, ok, { verifier: again.verifier })).status, 200);
});

test("a bot made private after the install is not renewed silently in another org (Fluxer's bot_public)", async () => {
  const bob = new Browser(s0);
  await bob.signIn("bob@globex.test", "bob-password");
  const app = await botApp(s0);
  await tokensFor(s0, bob, app, { scope: "posts:read" }, { org: "org_globex", actor: "app" });
  await s0.db.prepare("UPDATE apps SET bot_public = 0 WHERE id = ?").bind(app.client_id).run();
  const { challenge } = pkcePair();
  const res = await bob.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "posts:read", prompt: "none", code_challenge: challenge, code_challenge_method: "S256" })}`);
  const loc = new URL(res.headers.get("location"));
  assert.equal(loc.searchParams.get("code"), null);
  assert.equal(loc.searchParams.get("error"), "consent_required");
});

// ---- 1.10: PKCE for every client ------------------------------------------

test("PKCE is required of confidential clients too (invalid_request on the redirect)", async () => {
  const app = await registerApp(s0, { name: "NoPkce" });
  assert.ok(app.client_secret, "a confidential client");
  const res = await alice0.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent", code_challenge: undefined })}`);
  assert.equal(res.status, 302, "redirected back, not the consent page");
  const loc = new URL(res.headers.get("location"));
  assert.equal(loc.origin + loc.pathname, app.redirect_uris[0]);
  assert.equal(loc.searchParams.get("error"), "invalid_request");
  assert.match(loc.searchParams.get("error_description"), /PKCE|code_challenge/);
  assert.equal(loc.searchParams.get("code"), null);
});

test("PKCE is required at the token endpoint too: a code minted without a challenge needs a verifier", async () => {
  const app = await registerApp(s0, { name: "NoPkceCode" });
  const { location } = await consent(alice0, app, { prompt: "consent" });
  const code = location.searchParams.get("code");
  // As PKCE_REQUIRED=public would have minted it, before a switch to "all".
  await s0.db.prepare("UPDATE codes SET challenge = NULL WHERE hash = ?").bind(sha(code)).run();
  const res = await exchange(s0, app, code, { verifier: undefined });
  assert.equal(res.status, 400, await res.clone().text());
  assert.equal((await res.json()).error, "invalid_request");
  const row = await s0.db.prepare("SELECT used_at FROM codes WHERE hash = ?").bind(sha(code)).first();
  assert.equal(row.used_at, null, "nothing consumed");
});

test("PKCE_REQUIRED=public (the Azure DevOps profile): confidential clients may omit PKCE, public ones may not", async () => {
  assert.equal(profileVars("azure-devops").PKCE_REQUIRED, "public");
  const server = await startServer(profileVars("azure-devops"));
  try {
    const alice = new Browser(server);
    await alice.signIn("alice@acme.test", "alice-password");
    const app = await registerApp(server, { name: "Azure style" });
    const { location } = await consent(alice, app, { prompt: "consent", code_challenge: undefined });
    const code = location.searchParams.get("code");
    assert.ok(code, `code without PKCE: ${location}`);
    assert.equal((await exchange(server, app, code, { verifier: undefined })).status, 200);
    const pub = await registerApp(server, { name: "Public", client_type: "public" });
    const res = await alice.fetch(`/oauth/authorize?${authorizeQuery(pub, { prompt: "consent", code_challenge: undefined })}`);
    assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "invalid_request");
  } finally {
    await server.close();
  }
});

// ---- 2.1: several live token sets -----------------------------------------

test("signing in on a second device keeps the first device's tokens alive (MAX_LIVE_GRANTS default)", async () => {
  const app = await botApp(s0);
  const phone = new Browser(s0);
  await phone.signIn("alice@acme.test", "alice-password");
  const laptop = await tokensFor(s0, alice0, app, { prompt: "consent", scope: "profile:read" });
  const mobile = await tokensFor(s0, phone, app, { prompt: "consent", scope: "profile:read" });
  assert.equal(await live(s0, laptop.access_token), 200, "first device still signed in");
  assert.equal(await live(s0, mobile.access_token), 200);
  assert.equal((await refresh(s0, app, laptop.refresh_token)).status, 200, "first device can still refresh");
});

test("beyond MAX_LIVE_GRANTS the oldest token set is evicted, atomically with the new one", async () => {
  const app = await botApp(s1);
  const sets = [];
  for (let i = 0; i < 3; i++) sets.push(await tokensFor(s1, alice1, app, { prompt: "consent", scope: "profile:read" }));
  assert.deepEqual(
    [await live(s1, sets[0].access_token), await live(s1, sets[1].access_token), await live(s1, sets[2].access_token)],
    [401, 200, 200],
  );
  assert.equal((await refresh(s1, app, sets[0].refresh_token)).status, 400, "the evicted refresh token is dead");
  const liveGrants = await s1.db.prepare("SELECT count(*) AS n FROM grants WHERE app_id = ? AND revoked_at IS NULL").bind(app.client_id).first();
  assert.equal(liveGrants.n, 2);
  // Another user of the same app and org has a budget of their own.
  const carol = new Browser(s1);
  await carol.signIn("carol@acme.test", "carol-password");
  const c = await tokensFor(s1, carol, app, { prompt: "consent", scope: "profile:read" });
  assert.equal(await live(s1, c.access_token), 200);
  assert.equal(await live(s1, sets[2].access_token), 200);
});

test("client_credentials tokens of one install coexist up to MAX_LIVE_APP_TOKENS, oldest evicted", async () => {
  const cc = (server, app) => tokenRequest(server, app, { grant_type: "client_credentials" }).then((r) => r.json());
  const app0 = await registerApp(s0, { scopes: ["posts:read"], actor_modes: ["app"] });
  const a = await cc(s0, app0);
  const b = await cc(s0, app0);
  assert.equal(await live(s0, a.access_token), 200, "two service instances do not log each other out");
  assert.equal(await live(s0, b.access_token), 200);
  const app1 = await registerApp(s1, { scopes: ["posts:read"], actor_modes: ["app"] });
  const t = [await cc(s1, app1), await cc(s1, app1), await cc(s1, app1)];
  assert.deepEqual([await live(s1, t[0].access_token), await live(s1, t[1].access_token), await live(s1, t[2].access_token)], [401, 200, 200]);
});

test("FeatureOS profile: one live token per target organization, whoever authorizes", async () => {
  const vars = profileVars("featureos");
  assert.equal(vars.LIVE_GRANTS_PER, "org");
  assert.equal(vars.MAX_LIVE_GRANTS, "1");
  const server = await startServer(vars);
  try {
    const alice = new Browser(server);
    await alice.signIn("alice@acme.test", "alice-password");
    const carol = new Browser(server);
    await carol.signIn("carol@acme.test", "carol-password");
    const app = await botApp(server);
    const first = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
    const second = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
    assert.equal(await live(server, first.access_token), 401, "a new authorization replaces the previous token set");
    assert.equal((await refresh(server, app, first.refresh_token)).status, 400);
    assert.equal(await live(server, second.access_token), 200);
    const byCarol = await tokensFor(server, carol, app, { prompt: "consent", scope: "profile:read" });
    assert.equal(await live(server, second.access_token), 401, "another user's authorization in the same org replaces it too");
    assert.equal(await live(server, byCarol.access_token), 200);
    // Another organization has its own live token.
    const bob = new Browser(server);
    await bob.signIn("bob@globex.test", "bob-password");
    const globex = await tokensFor(server, bob, app, { prompt: "consent", scope: "profile:read" }, { org: "org_globex" });
    assert.equal(await live(server, globex.access_token), 200);
    assert.equal(await live(server, byCarol.access_token), 200);
    // client_credentials tokens count too: still one per organization.
    const bot = await tokensFor(server, alice, app, { prompt: "consent", scope: "posts:read" }, { actor: "app" });
    assert.equal(await live(server, byCarol.access_token), 401, "the bot install replaced carol's token");
    const cc = async () => (await tokenRequest(server, app, { grant_type: "client_credentials", org_id: "org_acme" })).json();
    const c1 = await cc();
    assert.equal(await live(server, bot.access_token), 401);
    const c2 = await cc();
    assert.deepEqual([await live(server, c1.access_token), await live(server, c2.access_token)], [401, 200]);
    assert.equal(await live(server, globex.access_token), 200, "another organization is untouched");
  } finally {
    await server.close();
  }
});

// ---- 2.2: the refresh reuse grace window ----------------------------------

test("grace window: a replay of the just-rotated refresh token by the same client gets a fresh pair", async () => {
  const app = await botApp(s1);
  const t = await tokensFor(s1, alice1, app, { prompt: "consent", scope: "profile:read" });
  const r1 = await refresh(s1, app, t.refresh_token);
  assert.equal(r1.status, 200);
  const a = await r1.json();
  const before = s1.log.lines.length;
  const r2 = await refresh(s1, app, t.refresh_token);
  assert.equal(r2.status, 200, `replay inside the window: ${await r2.clone().text()}`);
  const b = await r2.json();
  assert.notEqual(b.refresh_token, a.refresh_token, "a fresh pair");
  assert.notEqual(b.access_token, a.access_token);
  assert.equal(await live(s1, a.access_token), 200, "the family lives");
  assert.equal(await live(s1, b.access_token), 200);
  const line = s1.log.lines.slice(before).map((l) => { try { return JSON.parse(l); } catch { return null; } })
    .find((p) => p?.route === "token/refresh_token");
  assert.equal(line?.d1, 1, "the grace path is one D1 round trip");
  // Another client cannot ride on the window.
  const other = await botApp(s1);
  assert.equal((await refresh(s1, other, t.refresh_token)).status, 400);
  assert.equal(await live(s1, b.access_token), 200);
  // Once a successor was itself rotated, the old token is no longer the
  // just-rotated one: its replay is reuse, and the family dies.
  assert.equal((await refresh(s1, app, b.refresh_token)).status, 200);
  const late = await refresh(s1, app, t.refresh_token);
  assert.equal((await late.json()).error, "invalid_grant");
  assert.equal(await live(s1, a.access_token), 401);
});

test("grace window: a replay after the window revokes the whole family (today's behaviour)", async () => {
  const app = await botApp(s1);
  const t = await tokensFor(s1, alice1, app, { prompt: "consent", scope: "profile:read" });
  const a = await (await refresh(s1, app, t.refresh_token)).json();
  await s1.db.prepare("UPDATE tokens SET used_at = used_at - 31 WHERE hash = ?").bind(sha(t.refresh_token)).run();
  const res = await refresh(s1, app, t.refresh_token);
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_grant");
  assert.equal(await live(s1, a.access_token), 401, "family revoked");
  assert.equal((await refresh(s1, app, a.refresh_token)).status, 400);
});

test("grace window: replays do not extend the window (anchored at the first rotation)", async () => {
  const app = await botApp(s1);
  const t = await tokensFor(s1, alice1, app, { prompt: "consent", scope: "profile:read" });
  assert.equal((await refresh(s1, app, t.refresh_token)).status, 200);
  await s1.db.prepare("UPDATE tokens SET used_at = used_at - 20 WHERE hash = ?").bind(sha(t.refresh_token)).run();
  assert.equal((await refresh(s1, app, t.refresh_token)).status, 200, "20 s after: inside");
  await s1.db.prepare("UPDATE tokens SET used_at = used_at - 11 WHERE hash = ?").bind(sha(t.refresh_token)).run();
  assert.equal((await refresh(s1, app, t.refresh_token)).status, 400, "31 s after the first rotation: outside");
});

test("N parallel refreshes with one token: all succeed and the family lives when grace > 0", async () => {
  const app = await botApp(s1);
  const t = await tokensFor(s1, alice1, app, { prompt: "consent", scope: "profile:read" });
  const results = await Promise.all(Array.from({ length: 8 }, () => refresh(s1, app, t.refresh_token)));
  assert.deepEqual(results.map((r) => r.status), Array(8).fill(200));
  const bodies = await Promise.all(results.map((r) => r.json()));
  assert.equal(new Set(bodies.map((b) => b.refresh_token)).size, 8, "each caller its own pair");
  for (const b of bodies) assert.equal(await live(s1, b.access_token), 200);
  const grant = await s1.db.prepare("SELECT revoked_at FROM grants WHERE id = (SELECT grant_id FROM tokens WHERE hash = ?)").bind(sha(t.refresh_token)).first();
  assert.equal(grant.revoked_at, null);
});

// Issue 15 item 15: the default grace is 10 s (the MCP SDK refreshes once per
// pending request); grace 0 is pinned in core_revoke_introspect.
test("N parallel refreshes with one token and the default grace (10 s): all succeed, the family lives", async () => {
  const app = await botApp(s0);
  const t = await tokensFor(s0, alice0, app, { prompt: "consent", scope: "profile:read" });
  const results = await Promise.all(Array.from({ length: 8 }, () => refresh(s0, app, t.refresh_token)));
  const statuses = results.map((r) => r.status);
  assert.deepEqual(statuses, Array(8).fill(200));
  for (const r of results) assert.equal(await live(s0, (await r.json()).access_token), 200);
});
