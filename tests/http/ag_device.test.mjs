// Issue 20 item 3: the device authorization grant (RFC 8628). A client with
// `device_authorization: true` starts at POST /oauth/device_authorization,
// the user types the code at /device (signed in), approves on our consent
// screen, and the device's poll of the token endpoint gets the tokens once.
// Every refusal below leaves nothing issued or changed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint, decodeJwt } from "jose";
import {
  startServer, Browser, registerApp, api, hidden, clientRequest, tokenRequest, bearer, count, lastLine, FORM, form,
} from "./support.mjs";

const GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const ADMIN = "adm_device_http_0123456789abcdefghijklmnopqrstuv";
let server, alice, pub, conf, off;
let ipN = 0;
const freshIp = () => ({ "cf-connecting-ip": `203.0.113.${++ipN}` });

before(async () => {
  server = await startServer({ DCR: "open", PLATFORM_ADMIN_TOKEN: ADMIN });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  pub = await registerApp(server, { name: "Device CLI", client_type: "public", device_authorization: true });
  conf = await registerApp(server, { name: "Device TV", device_authorization: true });
  off = await registerApp(server, { name: "No device flow", client_type: "public" });
});
after(async () => {
  await server?.close();
});

const rows = () => count(server, "SELECT count(*) AS n FROM device_codes");
const issued = () => count(server, "SELECT count(*) AS n FROM tokens");
const grants = () => count(server, "SELECT count(*) AS n FROM grants");

async function start(app, fields = {}, headers = freshIp()) {
  const h = { ...FORM, ...headers };
  const body = { scope: "profile:read posts:read", ...fields };
  if (app.client_secret) h.authorization = "Basic " + Buffer.from(`${app.client_id}:${app.client_secret}`).toString("base64");
  else body.client_id = app.client_id;
  return server.fetch("/oauth/device_authorization", { method: "POST", headers: h, body: form(body) });
}

async function started(app, fields = {}) {
  const res = await start(app, fields);
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

const poll = (app, device_code) => tokenRequest(server, app, { grant_type: GRANT, device_code });

/** Let the next poll of this code come after its interval. */
const waited = (device_code) =>
  server.db.prepare("UPDATE device_codes SET last_poll_at = last_poll_at - 3600 WHERE last_poll_at IS NOT NULL").run();

/** Submit the code form as `browser` (from `ip`); returns the response and its page. */
async function enter(browser, userCode, ip = freshIp(), extra = {}) {
  const csrf = await browser.csrf();
  const res = await browser.post("/device", { csrf, user_code: userCode, ...extra }, { headers: ip });
  return { res, html: await res.text() };
}

async function decide(browser, userCode, decision, ip = freshIp()) {
  const { res, html } = await enter(browser, userCode, ip);
  assert.equal(res.status, 200, html);
  const csrf = hidden(html, "csrf");
  const out = await browser.post("/device", { csrf, user_code: hidden(html, "user_code"), org: "org_acme", decision }, { headers: ip });
  return { res: out, html: await out.text() };
}

async function errorOf(res) {
  const body = await res.json();
  return `${res.status} ${body.error}`;
}

test("both discovery documents name the device authorization endpoint and grant, not the page", async () => {
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    const doc = await (await server.fetch(path)).json();
    assert.equal(doc.device_authorization_endpoint, `${server.base}/oauth/device_authorization`, path);
    assert.ok(doc.grant_types_supported.includes(GRANT), path);
    assert.ok(!JSON.stringify(doc).includes(`${server.base}/device"`), path);
  }
});

test("the apps API echoes the switch, off by default, and updates it", async () => {
  assert.equal(pub.device_authorization, true);
  assert.equal(off.device_authorization, false);
  const app = await registerApp(server, { name: "Switch" });
  const res = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: app.version, device_authorization: true });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await res.json()).device_authorization, true);
  const read = await (await api(server, "GET", `/api/v1/apps/${app.client_id}`)).json();
  assert.equal(read.device_authorization, true);
  const bad = await api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: read.version, device_authorization: "yes" });
  assert.equal(bad.status, 400);
});

test("RFC 7591: grant_types with the device_code URN turns the switch on; the back office turns it on for another", async () => {
  const reg = (grant_types) => server.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json", ...freshIp() },
    body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:8976/cb"], token_endpoint_auth_method: "none", grant_types, client_name: "DCR CLI" }),
  });
  const on = await reg(["authorization_code", "refresh_token", GRANT]);
  assert.equal(on.status, 201, await on.clone().text());
  const onApp = await on.json();
  assert.ok(onApp.grant_types.includes(GRANT));
  assert.equal((await start({ client_id: onApp.client_id }, { scope: "profile:read" })).status, 200);
  const plain = await (await reg(["authorization_code"])).json();
  assert.ok(!plain.grant_types.includes(GRANT));
  const before = await rows();
  assert.equal(await errorOf(await start({ client_id: plain.client_id }, { scope: "profile:read" })), "400 unauthorized_client");
  assert.equal(await rows(), before);
  const bogus = await reg(["authorization_code", "urn:ietf:params:oauth:grant-type:unknown"]);
  assert.equal(bogus.status, 400);
  // The platform switches it on for the self-registered client, audited.
  const admin = (method, path, body) => server.fetch(path, {
    method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: body && JSON.stringify(body),
  });
  const patched = await admin("PATCH", `/admin/v1/clients/${plain.client_id}`, { device_authorization: true });
  assert.equal(patched.status, 200, await patched.clone().text());
  assert.equal((await patched.json()).device_authorization, true);
  assert.equal(await count(server, "SELECT count(*) AS n FROM audit_events WHERE app_id = ?1 AND action = 'client.device_authorization.enabled'", plain.client_id), 1);
  assert.equal((await start({ client_id: plain.client_id }, { scope: "profile:read" })).status, 200);
  assert.equal((await admin("PATCH", `/admin/v1/clients/${plain.client_id}`, { device_authorization: "yes" })).status, 400);
});

test("a client without the switch is refused (unauthorized_client) and nothing is stored", async () => {
  const before = await rows();
  const res = await start(off);
  assert.equal(await errorOf(res), "400 unauthorized_client");
  assert.equal(await rows(), before);
  // Nor can it poll with a code it never got.
  const p = await poll(off, "dc_" + "A".repeat(43));
  assert.equal(await errorOf(p), "400 unauthorized_client");
});

test("malformed requests get a 4xx with a reason and write nothing", async () => {
  const before = await rows();
  for (const [fields, want] of [
    [{ scope: "admin:everything" }, "400 invalid_scope"],
    [{ resource: "https://elsewhere.example/api" }, "400 invalid_target"],
    [{ resource: "not a url" }, "400 invalid_target"],
  ]) {
    assert.equal(await errorOf(await start(pub, fields)), want, JSON.stringify(fields));
  }
  const twice = await server.fetch("/oauth/device_authorization", {
    method: "POST", headers: { ...FORM, ...freshIp() }, body: `client_id=${pub.client_id}&scope=a&scope=b`,
  });
  assert.equal(await errorOf(twice), "400 invalid_request");
  const wrongSecret = await server.fetch("/oauth/device_authorization", {
    method: "POST",
    headers: { ...FORM, ...freshIp(), authorization: "Basic " + Buffer.from(`${conf.client_id}:nope`).toString("base64") },
    body: "scope=profile:read",
  });
  assert.equal(await errorOf(wrongSecret), "401 invalid_client");
  assert.equal(await rows(), before);
  // At the token endpoint: missing, malformed and unknown device codes.
  const t = await issued();
  assert.equal(await errorOf(await tokenRequest(server, pub, { grant_type: GRANT })), "400 invalid_request");
  assert.equal(await errorOf(await poll(pub, "not-ours")), "400 invalid_grant");
  assert.equal(await errorOf(await poll(pub, "dc_" + "B".repeat(43))), "400 invalid_grant");
  assert.equal(await issued(), t);
});

test("journey: start, pending, slow_down (interval grows), approve on /device, tokens once in one D1 round trip", async () => {
  const d = await started(pub);
  assert.match(d.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(d.verification_uri, `${server.base}/device`);
  assert.equal(d.verification_uri_complete, `${server.base}/device?user_code=${d.user_code}`);
  assert.equal(d.expires_in, 600);
  assert.equal(d.interval, 5);
  assert.match(d.device_code, /^dc_/);
  const stored = await server.db.prepare("SELECT * FROM device_codes WHERE app_id = ?1 ORDER BY created_at DESC LIMIT 1").bind(pub.client_id).first();
  assert.notEqual(stored.hash, d.device_code, "stored as a hash");
  assert.ok(!JSON.stringify(stored).includes(d.user_code.replace("-", "")), "the user code is stored keyed, not in clear");

  let p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 authorization_pending");
  assert.equal(lastLine(server, "token/device_code")?.d1, 1, "a poll is one D1 round trip");
  p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 slow_down");
  assert.equal(lastLine(server, "token/device_code")?.d1, 1);
  assert.equal(await count(server, "SELECT poll_interval AS n FROM device_codes WHERE app_id = ?1 AND used_at IS NULL ORDER BY created_at DESC", pub.client_id), 10);
  p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 slow_down");
  assert.equal(await count(server, "SELECT max(poll_interval) AS n FROM device_codes WHERE app_id = ?1", pub.client_id), 15, "each too-early poll adds 5 s");

  // The verification page: sign-in first, back to the code.
  const stranger = new Browser(server);
  const page = await stranger.fetch(`/device?user_code=${d.user_code.toLowerCase()}`);
  assert.equal(page.status, 302);
  assert.equal(page.headers.get("location"), `/signin?${new URLSearchParams({ return_to: `/device?user_code=${d.user_code}` })}`);
  const prefilled = await (await alice.fetch(`/device?user_code=${d.user_code}`)).text();
  assert.match(prefilled, new RegExp(`name="user_code"[^>]*value="${d.user_code}"`));
  const before = { t: await issued(), g: await grants() };
  const { res, html } = await enter(alice, d.user_code.toLowerCase().replace("-", " "));
  assert.equal(res.status, 200, html);
  assert.match(html, /Device CLI/);
  assert.match(html, new RegExp(d.user_code));
  assert.match(html, /matches the one shown on your device/);
  assert.match(html, /profile:read/);
  const csrf = hidden(html, "csrf");
  // A decision without the session's CSRF token changes nothing.
  const forged = await alice.post("/device", { csrf: "x", user_code: d.user_code, org: "org_acme", decision: "approve" });
  assert.equal(forged.status, 403);
  assert.equal(await count(server, "SELECT count(*) AS n FROM device_codes WHERE status <> 'pending' AND app_id = ?1", pub.client_id), 0);
  const approved = await alice.post("/device", { csrf, user_code: d.user_code, org: "org_acme", decision: "approve" }, { headers: freshIp() });
  assert.equal(approved.status, 200);
  assert.match(await approved.text(), /Device connected/);
  assert.equal(await issued(), before.t, "nothing issued before the device polls");
  // Too soon after the last poll: still slow_down, and nothing issued.
  p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 slow_down");
  assert.equal(await issued(), before.t);
  await waited();
  p = await poll(pub, d.device_code);
  assert.equal(p.status, 200, await p.clone().text());
  assert.equal(lastLine(server, "token/device_code")?.d1, 1, "the winning poll is one D1 round trip too");
  const tokens = await p.json();
  assert.equal(tokens.token_type, "Bearer");
  assert.ok(tokens.refresh_token);
  assert.deepEqual(tokens.scope.split(" ").sort(), ["posts:read", "profile:read"]);
  assert.equal(await issued(), before.t + 2);
  assert.equal(await grants(), before.g + 1);
  const me = await bearer(server, "/api/v1/me", tokens.access_token);
  assert.equal(me.status, 200, await me.clone().text());
  assert.equal((await me.json()).user.id, "usr_alice");
  // The refresh token works as the code flow's does.
  const r = await tokenRequest(server, pub, { grant_type: "refresh_token", refresh_token: tokens.refresh_token });
  assert.equal(r.status, 200, await r.clone().text());
  // Replay after success: refused, nothing more issued.
  const n = await issued();
  await waited();
  p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 invalid_grant");
  assert.equal(await issued(), n);
  // The audit log has the approval.
  assert.equal(await count(server, "SELECT count(*) AS n FROM audit_events WHERE app_id = ?1 AND action = 'authorization.granted'", pub.client_id), 1);
  // A decided code cannot be entered again.
  const again = await enter(alice, d.user_code);
  assert.equal(again.res.status, 400);
});

test("a confidential client with resource and openid: audience, ID token, DPoP binding", async () => {
  const resource = `${server.base}/api/v1`;
  const d = await started(conf, { scope: "openid posts:read", resource });
  const { res } = await decide(alice, d.user_code, "approve");
  assert.equal(res.status, 200);
  // The poll with a DPoP proof (after the nonce dance, which reads nothing).
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  const proof = (nonce) => new SignJWT({ htm: "POST", htu: `${server.base}/oauth/token`, jti: randomUUID(), iat: Math.floor(Date.now() / 1000), nonce })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk }).sign(privateKey);
  const dpopPoll = async (nonce) => server.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, dpop: await proof(nonce), authorization: "Basic " + Buffer.from(`${conf.client_id}:${conf.client_secret}`).toString("base64") },
    body: form({ grant_type: GRANT, device_code: d.device_code }),
  });
  const dance = await dpopPoll(undefined);
  assert.equal(await errorOf(dance), "400 use_dpop_nonce");
  const p = await dpopPoll(dance.headers.get("dpop-nonce"));
  assert.equal(p.status, 200, await p.clone().text());
  const t = await p.json();
  assert.equal(t.token_type, "DPoP");
  assert.ok(t.id_token, "openid gives an ID token");
  assert.equal(decodeJwt(t.id_token).aud, conf.client_id);
  const row = await server.db.prepare("SELECT t.audience, t.jkt FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE g.app_id = ?1 AND t.kind = 'access' AND g.source = 'device_code'").bind(conf.client_id).first();
  assert.deepEqual(JSON.parse(row.audience), [resource]);
  assert.equal(row.jkt, await calculateJwkThumbprint(jwk));
  // Without its secret the confidential client's code would not be redeemed.
  const d2 = await started(conf);
  await decide(alice, d2.user_code, "approve");
  const n = await issued();
  const bad = await server.fetch("/oauth/token", {
    method: "POST", headers: { ...FORM, authorization: "Basic " + Buffer.from(`${conf.client_id}:wrong`).toString("base64") },
    body: form({ grant_type: GRANT, device_code: d2.device_code }),
  });
  assert.equal(await errorOf(bad), "401 invalid_client");
  assert.equal(await issued(), n);
});

test("denied: the device gets access_denied, nothing issued", async () => {
  const d = await started(pub);
  const { res, html } = await decide(alice, d.user_code, "deny");
  assert.equal(res.status, 200);
  assert.match(html, /Request denied/);
  const n = await issued();
  const p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 access_denied");
  assert.equal(await issued(), n);
  assert.equal(lastLine(server, "token/device_code")?.d1, 1);
});

test("expired: the device gets expired_token, the page refuses the code, the sweep removes it", async () => {
  const d = await started(pub);
  await server.db.prepare("UPDATE device_codes SET expires_at = 1000 WHERE app_id = ?1 AND status = 'pending'").bind(pub.client_id).run();
  const p = await poll(pub, d.device_code);
  assert.equal(await errorOf(p), "400 expired_token");
  const { res, html } = await enter(alice, d.user_code);
  assert.equal(res.status, 400);
  assert.match(html, /not valid or has expired/);
  assert.equal(await count(server, "SELECT count(*) AS n FROM device_codes WHERE expires_at = 1000"), 1);
  const live = await count(server, "SELECT count(*) AS n FROM device_codes WHERE expires_at > 1000");
  await server.scheduled();
  assert.equal(await count(server, "SELECT count(*) AS n FROM device_codes WHERE expires_at = 1000"), 0, "swept");
  assert.equal(await count(server, "SELECT count(*) AS n FROM device_codes WHERE expires_at > 1000"), live, "live ones kept");
});

test("another client's device code is invalid_grant and leaves that code untouched", async () => {
  const d = await started(pub);
  const other = await registerApp(server, { name: "Other device app", client_type: "public", device_authorization: true });
  const before = await server.db.prepare("SELECT last_poll_at, poll_interval FROM device_codes WHERE app_id = ?1 AND last_poll_at IS NULL AND status = 'pending' AND expires_at > 2000").bind(pub.client_id).first();
  assert.ok(before);
  const p = await poll(other, d.device_code);
  assert.equal(await errorOf(p), "400 invalid_grant");
  assert.match((await poll(other, d.device_code).then((r) => r.json())).error_description, /another client/);
  const after = await count(server, "SELECT count(*) AS n FROM device_codes WHERE app_id = ?1 AND last_poll_at IS NOT NULL AND status = 'pending' AND expires_at > 2000", pub.client_id);
  assert.equal(after, 0, "the other client's poll did not mark the code");
  // Approved, it still only redeems for its own client.
  await decide(alice, d.user_code, "approve");
  const n = await issued();
  assert.equal(await errorOf(await poll(other, d.device_code)), "400 invalid_grant");
  assert.equal(await issued(), n);
});

test("wrong and malformed user codes on the page: 4xx with a reason, nothing changed", async () => {
  const { res, html } = await enter(alice, "BCDF-GHJK");
  assert.equal(res.status, 400);
  assert.match(html, /not valid or has expired/);
  const malformed = await enter(alice, "hello");
  assert.equal(malformed.res.status, 400);
  assert.match(malformed.html, /8 letters/);
  const bogus = await enter(alice, "BCDF-GHJK", freshIp(), { decision: "maybe" });
  assert.equal(bogus.res.status, 400);
  // Script in the input is escaped back.
  const xss = await enter(alice, "<script>x</script>");
  assert.ok(!xss.html.includes("<script>x"));
});

test("per code: five lookups, then one decision; the sixth lookup denies the code (the device gets access_denied)", async () => {
  const a = await started(pub);
  let last;
  for (let i = 0; i < 5; i++) {
    last = await enter(alice, a.user_code);
    assert.equal(last.res.status, 200, `lookup ${i + 1}`);
  }
  const ok = await alice.post("/device", { csrf: hidden(last.html, "csrf"), user_code: a.user_code, org: "org_acme", decision: "approve" }, { headers: freshIp() });
  assert.equal(ok.status, 200);
  const d = await started(pub);
  for (let i = 0; i < 5; i++) assert.equal((await enter(alice, d.user_code)).res.status, 200, `lookup ${i + 1}`);
  const { res, html } = await enter(alice, d.user_code);
  assert.equal(res.status, 400);
  assert.match(html, /too many times/);
  assert.equal(await errorOf(await poll(pub, d.device_code)), "400 access_denied");
});

test("per source: the form's submissions are limited per address; the device endpoint per client and address", async () => {
  const ip = freshIp();
  for (let i = 0; i < 20; i++) {
    const { res } = await enter(alice, "BCDF-GHJK", ip);
    assert.equal(res.status, 400, `attempt ${i + 1}`);
  }
  const { res } = await enter(alice, "BCDF-GHJK", ip);
  assert.equal(res.status, 429);
  assert.ok(res.headers.get("retry-after"));
  // Another address is not affected.
  assert.equal((await enter(alice, "BCDF-GHJK")).res.status, 400);

  const src = freshIp();
  const before = await rows();
  for (let i = 0; i < 30; i++) assert.equal((await start(pub, {}, src)).status, 200, `request ${i + 1}`);
  const over = await start(pub, {}, src);
  assert.equal(await errorOf(over), "429 too_many_requests");
  assert.equal(await rows(), before + 30, "nothing stored past the budget");
});

test("JWT access tokens under BEARER_MODE=jwt: the device flow's token works offline", async () => {
  const jwt = await startServer({ ACCESS_TOKEN_FORMAT: "jwt", BEARER_MODE: "jwt" });
  try {
    const b = new Browser(jwt);
    await b.signIn("alice@acme.test", "alice-password");
    const app = await registerApp(jwt, { name: "JWT device", client_type: "public", device_authorization: true });
    const res = await jwt.fetch("/oauth/device_authorization", {
      method: "POST", headers: { ...FORM, ...freshIp() }, body: form({ client_id: app.client_id, scope: "profile:read" }),
    });
    const d = await res.json();
    const csrf = await b.csrf();
    const page = await (await b.post("/device", { csrf, user_code: d.user_code })).text();
    const done = await b.post("/device", { csrf: hidden(page, "csrf"), user_code: d.user_code, org: "org_acme", decision: "approve" });
    assert.equal(done.status, 200);
    const p = await tokenRequest(jwt, app, { grant_type: GRANT, device_code: d.device_code });
    assert.equal(p.status, 200, await p.clone().text());
    const t = await p.json();
    const claims = decodeJwt(t.access_token);
    assert.equal(claims.client_id, app.client_id);
    assert.equal(claims.scope, "profile:read");
    const me = await bearer(jwt, "/api/v1/me", t.access_token);
    assert.equal(me.status, 200, await me.clone().text());
  } finally {
    await jwt.close();
  }
});
