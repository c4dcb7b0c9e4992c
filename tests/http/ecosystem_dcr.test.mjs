// Issue 10, item 2: RFC 7591 dynamic client registration and RFC 7592
// management, under DCR = off | open | initial_access_token; bounded by a
// per-address rate limit, a cap checked inside the INSERT, and the sweep.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import { startServer, Browser, consent, exchange, bearer, hiddenFields, FORM, form, basic, eventually, api, count } from "./support.mjs";

const ADMIN = "dcr-test-admin-token-0123456789abcdefghijklmnop";
let off, open, capped, gated;

before(async () => {
  off = await startServer();
  open = await startServer({ DCR: "open", DCR_RATE_PER_HOUR: "5" });
  capped = await startServer({ DCR: "open", DCR_MAX_CLIENTS: "5", DCR_RATE_PER_HOUR: "100" });
  gated = await startServer({
    DCR: "initial_access_token",
    PLATFORM_ADMIN_TOKEN: ADMIN,
    DCR_CLIENT_SECRET_TTL_SECONDS: "86400",
  });
});
after(async () => {
  for (const s of [off, open, capped, gated]) await s?.close();
});

// Every registration from its own address unless a test names one, so the
// per-address limit (5 per hour on `open`) only bites where a test wants it.
let nextIp = 1;
const freshIp = () => `198.51.${Math.floor(nextIp / 250)}.${(nextIp++ % 250) + 1}`;

function register(server, body, { ip = freshIp(), token, headers = {}, raw } = {}) {
  const h = { "content-type": "application/json", "cf-connecting-ip": ip, ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  return server.fetch("/oauth/register", { method: "POST", headers: h, body: raw ?? JSON.stringify(body) });
}

const CB = "http://127.0.0.1:8976/callback";
const publicClient = (extra = {}) => ({
  redirect_uris: [CB],
  token_endpoint_auth_method: "none",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  client_name: "MCP Test Client",
  ...extra,
});

async function registered(server, body = publicClient(), opts) {
  const res = await register(server, body, opts);
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

const manage = (server, client, method, token = client.registration_access_token, body) =>
  api(server, method, new URL(client.registration_client_uri).pathname, body, token);

const dynamicCount = (server) => count(server, "SELECT COUNT(*) AS n FROM apps WHERE registration = 'dynamic'");

test("DCR=off (the default): no registration endpoint, none advertised", async () => {
  const meta = await (await off.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.registration_endpoint, undefined);
  assert.equal((await register(off, publicClient())).status, 404);
  assert.equal((await off.fetch("/oauth/register/app_x", { headers: { authorization: "Bearer rat_x" } })).status, 404);
  assert.equal(await dynamicCount(off), 0);
});

test("open: a public client registers, the user sees it as unverified, and it gets a token with PKCE that calls the API", async () => {
  const meta = await (await open.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.registration_endpoint, `${open.base}/oauth/register`);

  const res = await register(open, publicClient({ client_name: "<script>alert(1)</script> Tool", scope: "profile:read posts:read" }));
  assert.equal(res.status, 201);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(res.headers.get("access-control-allow-origin"), "*", "browser-based MCP clients register too");
  const client = await res.json();
  assert.match(client.client_id, /^app_/);
  assert.match(client.registration_access_token, /^rat_/);
  assert.equal(client.registration_client_uri, `${open.base}/oauth/register/${client.client_id}`);
  assert.equal(typeof client.client_id_issued_at, "number");
  assert.equal(client.client_secret, undefined);
  assert.equal(client.client_secret_expires_at, undefined);
  assert.equal(client.token_endpoint_auth_method, "none");
  assert.deepEqual(client.redirect_uris, [CB]);
  assert.deepEqual(client.response_types, ["code"]);
  assert.equal(client.scope, "posts:read profile:read");
  assert.ok(!Object.values(client).includes(null), "absent metadata is left out, not null");

  const row = await open.db.prepare("SELECT * FROM apps WHERE id = ?1").bind(client.client_id).first();
  assert.equal(row.owner_org_id, null);
  assert.equal(row.registration, "dynamic");
  assert.equal(row.actor_modes, '["self"]');
  assert.equal(row.client_type, "public");
  assert.equal(row.last_used_at, null);
  const stored = await open.db.prepare("SELECT token_hash FROM client_registrations WHERE app_id = ?1").bind(client.client_id).first();
  assert.match(stored.token_hash, /^[0-9a-f]{64}$/, "the registration access token is kept as SHA-256");

  const alice = new Browser(open);
  await alice.signIn("alice@acme.test", "alice-password");
  // The consent page says nobody reviewed it, and escapes its chosen name.
  const q = new URLSearchParams({
    client_id: client.client_id, redirect_uri: CB, response_type: "code", scope: "profile:read",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256",
  });
  const page = await (await alice.fetch(`/oauth/authorize?${q}`)).text();
  assert.match(page, /id="unverified"/);
  assert.match(page, /Unverified app/);
  assert.ok(!page.includes("<script>alert(1)</script>"));
  assert.ok(page.includes("&lt;script&gt;alert(1)&lt;"), "escaped");

  const { location } = await consent(alice, client, { scope: "profile:read posts:read" });
  const code = location.searchParams.get("code");
  assert.ok(code, String(location));
  const used = await open.db.prepare("SELECT last_used_at FROM apps WHERE id = ?1").bind(client.client_id).first();
  assert.equal(typeof used.last_used_at, "number", "issuing a code marks the client used");
  const tokenRes = await exchange(open, client, code);
  assert.equal(tokenRes.status, 200, await tokenRes.clone().text());
  const tokens = await tokenRes.json();
  const me = await bearer(open, "/api/v1/me", tokens.access_token);
  assert.equal(me.status, 200);
  assert.equal((await me.json()).actor, "self");

  // No bot identity, so no client_credentials.
  const cc = await open.fetch("/oauth/token", {
    method: "POST", headers: FORM,
    body: form({ grant_type: "client_credentials", client_id: client.client_id, org_id: "org_acme" }),
  });
  assert.notEqual(cc.status, 200);
});

test("RFC 7592: read, update and delete with the registration access token; a wrong or another client's token is 401 and says nothing more", async () => {
  const a = await registered(open);
  const b = await registered(open);

  const read = await manage(open, a, "GET");
  assert.equal(read.status, 200);
  assert.equal(read.headers.get("cache-control"), "no-store");
  const info = await read.json();
  assert.equal(info.client_id, a.client_id);
  assert.equal(info.registration_access_token, a.registration_access_token);
  assert.equal(info.client_name, "MCP Test Client");

  const refusals = [];
  for (const [client, token] of [
    [a, "rat_wrong"],
    [a, b.registration_access_token], // another client's token
    [{ ...a, registration_client_uri: `${open.base}/oauth/register/app_doesnotexist` }, a.registration_access_token],
    [{ ...a, registration_client_uri: `${open.base}/oauth/register/app_doesnotexist` }, "rat_wrong"],
  ]) {
    const res = await manage(open, client, "GET", token);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate"), /^Bearer error="invalid_token"/);
    refusals.push(await res.text());
  }
  assert.equal(new Set(refusals).size, 1, "an unknown client and a wrong token look the same");
  assert.equal((await open.fetch(new URL(a.registration_client_uri).pathname)).status, 401, "no token");

  // Update: replaces the metadata.
  const NEW_CB = "https://client.example/oauth/cb";
  const put = await manage(open, a, "PUT", undefined, {
    client_id: a.client_id, redirect_uris: [NEW_CB], client_name: "Renamed", token_endpoint_auth_method: "none",
    client_uri: "https://client.example", scope: "profile:read",
  });
  assert.equal(put.status, 200, await put.clone().text());
  const updated = await put.json();
  assert.deepEqual(updated.redirect_uris, [NEW_CB]);
  assert.equal(updated.client_name, "Renamed");
  assert.equal(updated.client_uri, "https://client.example");
  assert.equal(updated.scope, "profile:read");
  assert.equal((await (await manage(open, a, "GET")).json()).client_name, "Renamed");

  // Refused updates change nothing.
  for (const [body, code] of [
    [{ redirect_uris: [NEW_CB] }, "invalid_client_metadata"], // no client_id
    [{ client_id: b.client_id, redirect_uris: [NEW_CB] }, "invalid_client_metadata"],
    [{ client_id: a.client_id, redirect_uris: [NEW_CB], token_endpoint_auth_method: "client_secret_basic" }, "invalid_client_metadata"],
    [{ client_id: a.client_id, redirect_uris: [NEW_CB], client_secret: "sec_mine" }, "invalid_client_metadata"],
    [{ client_id: a.client_id, redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
  ]) {
    const res = await manage(open, a, "PUT", undefined, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((await res.json()).error, code, JSON.stringify(body));
  }
  const other = await manage(open, a, "PUT", b.registration_access_token, { client_id: a.client_id, redirect_uris: [CB], client_name: "Hijacked" });
  assert.equal(other.status, 401);
  assert.equal((await (await manage(open, a, "GET")).json()).client_name, "Renamed");

  // A live token set of `b`, then b deletes itself: everything of it dies in one batch.
  const alice = new Browser(open);
  await alice.signIn("alice@acme.test", "alice-password");
  const { location } = await consent(alice, b);
  const tokens = await (await exchange(open, b, location.searchParams.get("code"))).json();
  assert.equal((await bearer(open, "/api/v1/me", tokens.access_token)).status, 200);

  assert.equal((await manage(open, b, "DELETE", a.registration_access_token)).status, 401, "not with a's token");
  assert.equal((await manage(open, b, "DELETE", "rat_nope")).status, 401);
  const del = await manage(open, b, "DELETE");
  assert.equal(del.status, 204);
  assert.equal((await bearer(open, "/api/v1/me", tokens.access_token)).status, 401, "its tokens are revoked");
  const refresh = await open.fetch("/oauth/token", {
    method: "POST", headers: FORM,
    body: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, client_id: b.client_id }),
  });
  assert.equal(refresh.status, 401, "the client is gone");
  assert.equal((await manage(open, b, "GET")).status, 401);
  assert.equal((await manage(open, b, "DELETE")).status, 401, "a second delete finds nothing");
  assert.equal(await open.db.prepare("SELECT COUNT(*) AS n FROM client_registrations WHERE app_id = ?1").bind(b.client_id).first().then((r) => r.n), 0);

  // Each act left its audit record, written in the act's own batch.
  const actions = (await open.db.prepare("SELECT action FROM audit_events WHERE app_id IN (?1, ?2) ORDER BY id")
    .bind(a.client_id, b.client_id).all()).results.map((r) => r.action);
  assert.deepEqual(actions.filter((x) => x.startsWith("client.")), ["client.registered", "client.registered", "client.updated", "client.deleted"]);
});

test("open: a confidential client is refused with a reason, and nothing is stored", async () => {
  const before = await dynamicCount(open);
  for (const method of ["client_secret_basic", "client_secret_post"]) {
    const res = await register(open, publicClient({ token_endpoint_auth_method: method }));
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error, "invalid_client_metadata");
    assert.match(body.error_description, /public clients/);
  }
  // RFC 7591's default method is client_secret_basic; here it becomes none.
  const { token_endpoint_auth_method, client_secret } = await registered(open, { redirect_uris: [CB] });
  assert.equal(token_endpoint_auth_method, "none");
  assert.equal(client_secret, undefined);
  assert.equal(await dynamicCount(open), before + 1);
});

test("invalid metadata is refused with the RFC 7591 error and stores nothing", async () => {
  const before = await dynamicCount(open);
  const cases = [
    [{ redirect_uris: ["http://client.example/cb"] }, 400, "invalid_redirect_uri"],
    [{ redirect_uris: ["javascript:alert(1)"] }, 400, "invalid_redirect_uri"],
    [{ redirect_uris: ["https://client.example/cb#frag"] }, 400, "invalid_redirect_uri"],
    [{ redirect_uris: ["https://*.example/cb"] }, 400, "invalid_redirect_uri"],
    [{ client_name: "no redirect" }, 400, "invalid_redirect_uri"],
    [{ redirect_uris: "https://client.example/cb" }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], grant_types: ["client_credentials"] }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], grant_types: ["urn:ietf:params:oauth:grant-type:device_code"] }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], response_types: ["token"] }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], scope: "profile:read admin:everything" }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], token_endpoint_auth_method: "private_key_jwt" }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], client_uri: "javascript:alert(1)" }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], logo_uri: "data:image/svg+xml;base64,PHN2Zz4=" }, 400, "invalid_client_metadata"],
    [{ redirect_uris: [CB], client_name: "x".repeat(101) }, 400, "invalid_client_metadata"],
  ];
  for (const [body, status, error] of cases) {
    const res = await register(open, body);
    assert.equal(res.status, status, JSON.stringify(body));
    const out = await res.json();
    assert.equal(out.error, error, JSON.stringify(body));
    assert.ok(out.error_description, "with a reason");
  }
  const raw = [
    [{ raw: "{not json" }, 400],
    [{ raw: "[1, 2]" }, 400],
    [{ raw: JSON.stringify(publicClient()), headers: { "content-type": "text/plain" } }, 400],
    [{ raw: JSON.stringify(publicClient({ client_name: "x", padding: "y".repeat(20_000) })) }, 413],
    [{ raw: "x".repeat(70_000) }, 413],
  ];
  for (const [opts, status] of raw) {
    const res = await register(open, undefined, opts);
    assert.equal(res.status, status, opts.raw.slice(0, 40));
    assert.ok((await res.json()).error);
  }
  assert.equal(await dynamicCount(open), before, "nothing stored");

  // Unknown members are ignored, not refused (RFC 7591 §2).
  const ok = await registered(open, publicClient({ software_statement: "eyJ.x.y", jwks_uri: "https://x.example/jwks", contacts: ["a@b.example"] }));
  assert.equal(ok.jwks_uri, undefined);
});

test("flood: 20 parallel registrations against DCR_MAX_CLIENTS=5 store exactly 5; the rest get 429 with Retry-After", async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => register(capped, publicClient())));
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 201).length, 5, String(statuses));
  assert.equal(statuses.filter((s) => s === 429).length, 15, String(statuses));
  const refused = results.find((r) => r.status === 429);
  assert.ok(Number(refused.headers.get("retry-after")) >= 60);
  assert.equal((await refused.json()).error, "too_many_requests");
  assert.equal(await dynamicCount(capped), 5);
  assert.equal((await capped.db.prepare("SELECT COUNT(*) AS n FROM client_registrations").first()).n, 5);
});

test("rate limit per source address (an IPv6 sender as its /64); other addresses are unaffected", async () => {
  const ip = "203.0.113.77";
  for (let i = 0; i < 5; i++) assert.equal((await register(open, publicClient(), { ip })).status, 201);
  const sixth = await register(open, publicClient(), { ip });
  assert.equal(sixth.status, 429);
  assert.ok(Number(sixth.headers.get("retry-after")) > 0);
  assert.equal((await register(open, publicClient(), { ip: "203.0.113.78" })).status, 201);

  for (let i = 0; i < 5; i++) {
    assert.equal((await register(open, publicClient(), { ip: `2001:db8:77:1::${i + 1}` })).status, 201);
  }
  assert.equal((await register(open, publicClient(), { ip: "2001:db8:77:1:ffff::9" })).status, 429, "same /64");
  assert.equal((await register(open, publicClient(), { ip: "2001:db8:77:2::1" })).status, 201, "another /64");
});

test("initial_access_token: the platform mints tokens; missing, wrong, expired, revoked and used-up ones are refused; confidential clients get a secret", async () => {
  const admin = (method, path, body) => api(gated, method, `/admin/v1${path}`, body, ADMIN);
  const mint = async (body = {}) => {
    const res = await admin("POST", "/initial-access-tokens", body);
    assert.equal(res.status, 201, await res.clone().text());
    return res.json();
  };
  const meta = await (await gated.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.registration_endpoint, `${gated.base}/oauth/register`);

  const t = await mint({ label: "partner CLI", expires_in: 3600 });
  assert.match(t.token, /^iat_/);
  const row = await gated.db.prepare("SELECT hash FROM initial_access_tokens WHERE id = ?1").bind(t.id).first();
  assert.match(row.hash, /^[0-9a-f]{64}$/);
  assert.ok(!JSON.stringify(await (await admin("GET", "/initial-access-tokens")).json()).includes(t.token), "shown once");
  assert.equal((await admin("POST", "/initial-access-tokens", { expires_in: 5 })).status, 400);
  assert.equal((await gated.fetch("/admin/v1/initial-access-tokens", { method: "POST" })).status, 401, "the back office needs its token");

  const before = await dynamicCount(gated);
  const none = await register(gated, publicClient());
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), "Bearer");
  const wrong = await register(gated, publicClient(), { token: "iat_wrong" });
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get("www-authenticate"), /invalid_token/);

  const expired = await mint();
  await gated.db.prepare("UPDATE initial_access_tokens SET expires_at = 1000 WHERE id = ?1").bind(expired.id).run();
  assert.equal((await register(gated, publicClient(), { token: expired.token })).status, 401);

  const revoked = await mint();
  assert.equal((await admin("DELETE", `/initial-access-tokens/${revoked.id}`)).status, 204);
  assert.equal((await register(gated, publicClient(), { token: revoked.token })).status, 401);

  const once = await mint({ max_uses: 1 });
  assert.equal((await register(gated, publicClient(), { token: once.token })).status, 201);
  assert.equal((await register(gated, publicClient(), { token: once.token })).status, 401, "used up");
  assert.equal(await dynamicCount(gated), before + 1);

  // Confidential: the secret is shown once, with its expiry (DCR_CLIENT_SECRET_TTL_SECONDS).
  const res = await register(gated, publicClient({ token_endpoint_auth_method: "client_secret_basic", client_name: "Partner" }), { token: t.token });
  assert.equal(res.status, 201, await res.clone().text());
  const conf = await res.json();
  assert.match(conf.client_secret, /^sec_/);
  assert.equal(conf.token_endpoint_auth_method, "client_secret_basic");
  assert.equal(conf.client_secret_expires_at, conf.client_id_issued_at + 86400);
  const info = await (await manage(gated, conf, "GET")).json();
  assert.equal(info.client_secret, undefined, "never shown again");
  assert.equal(info.client_secret_expires_at, conf.client_secret_expires_at);
  const stored = await gated.db.prepare("SELECT initial_token_id FROM client_registrations WHERE app_id = ?1").bind(conf.client_id).first();
  assert.equal(stored.initial_token_id, t.id);
  const listed = (await (await admin("GET", "/initial-access-tokens")).json()).items.find((i) => i.id === t.id);
  assert.equal(listed.uses, 1);

  // It authenticates at the token endpoint with its secret.
  const bob = new Browser(gated);
  await bob.signIn("bob@globex.test", "bob-password");
  const { location } = await consent(bob, conf, {}, { org: "org_globex" });
  const code = location.searchParams.get("code");
  const bad = await gated.fetch("/oauth/token", {
    method: "POST", headers: { ...FORM, authorization: basic(conf.client_id, "sec_wrong") },
    body: form({ grant_type: "authorization_code", code, redirect_uri: CB, code_verifier: "x".repeat(43) }),
  });
  assert.equal(bad.status, 401);
  const good = await exchange(gated, conf, code);
  assert.equal(good.status, 200, await good.clone().text());

  // Its secret stays when it updates itself; a public↔confidential switch is refused.
  const put = await manage(gated, conf, "PUT", undefined, {
    client_id: conf.client_id, client_secret: conf.client_secret, redirect_uris: [CB], client_name: "Partner 2",
  });
  assert.equal(put.status, 200, await put.clone().text());
  assert.equal((await put.json()).token_endpoint_auth_method, "client_secret_basic");
  const sw = await manage(gated, conf, "PUT", undefined, { client_id: conf.client_id, redirect_uris: [CB], token_endpoint_auth_method: "none" });
  assert.equal(sw.status, 400);

  // The platform's audit trail shows the minting and the registration.
  const audit = await (await admin("GET", "/audit?limit=200")).json();
  const acts = audit.items.map((i) => i.action);
  assert.ok(acts.includes("initial_access_token.created"));
  assert.ok(acts.includes("initial_access_token.revoked"));
  assert.ok(acts.includes("client.registered"));
});

test("the sweep deletes a dynamic client never used within DCR_UNUSED_DAYS, not a used one", async () => {
  const unused = await registered(open);
  const used = await registered(open);
  const alice = new Browser(open);
  await alice.signIn("alice@acme.test", "alice-password");
  await consent(alice, used);
  const old = Math.floor(Date.now() / 1000) - 8 * 86400;
  await open.db.prepare("UPDATE apps SET created_at = ?1 WHERE id IN (?2, ?3)").bind(old, unused.client_id, used.client_id).run();
  await open.scheduled();
  await eventually(async () => !(await open.db.prepare("SELECT 1 AS x FROM apps WHERE id = ?1").bind(unused.client_id).first()));
  assert.ok(await open.db.prepare("SELECT 1 AS x FROM apps WHERE id = ?1").bind(used.client_id).first(), "used: kept");
  assert.equal((await manage(open, unused, "GET")).status, 401);
});

test("oauth4webapi, unmodified: discovery → dynamic registration → authorize with PKCE → token, from the metadata alone", async () => {
  const insecure = { [oauth.allowInsecureRequests]: true }; // http on loopback only
  const issuer = new URL(open.base);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
  const reg = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      { redirect_uris: [CB], token_endpoint_auth_method: "none", client_name: "oauth4webapi" },
      { ...insecure, headers: { "cf-connecting-ip": freshIp() } },
    ),
  );
  const client = { client_id: reg.client_id, token_endpoint_auth_method: "none" };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authUrl = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: CB, response_type: "code", scope: "profile:read", state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  })) authUrl.searchParams.set(k, v);
  const browser = new Browser(open);
  await browser.signIn("alice@acme.test", "alice-password");
  const page = await (await browser.fetch(authUrl.pathname + authUrl.search)).text();
  const decision = await browser.post("/oauth/authorize", { ...hiddenFields(page), org: "org_acme", decision: "approve" });
  const params = oauth.validateAuthResponse(as, client, new URL(decision.headers.get("location")), state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, CB, verifier, insecure),
  );
  assert.equal(tokens.scope, "profile:read");
  assert.equal((await bearer(open, "/api/v1/me", tokens.access_token)).status, 200);

  // A browser client's preflight for registration and management succeeds.
  for (const [path, method] of [["/oauth/register", "POST"], [`/oauth/register/${reg.client_id}`, "PUT"]]) {
    const pre = await open.fetch(path, {
      method: "OPTIONS",
      headers: { origin: "https://inspector.example", "access-control-request-method": method, "access-control-request-headers": "authorization, content-type" },
    });
    assert.equal(pre.status, 204, path);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  }
});
