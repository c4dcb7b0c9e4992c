// Issue 20 item 3: the device authorization grant (RFC 8628) with an
// unmodified client library, openid-client 6.8.1 (`initiateDeviceAuthorization`
// and `pollDeviceAuthorizationGrant`), while the user approves in headless
// Chromium: once through our password sign-in, once through the delegated
// sign-in (the platform's login page on another site, as delegated.test.mjs).
// The client's poll returns tokens that work at /api/v1/me.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import * as client from "openid-client";
import { launchChromium } from "./support.mjs";
import { startServer, registerApp, bearer } from "../http/support.mjs";

const ADMIN = "adm_device_0123456789abcdefghijklmnopqrstuvwxyz";
let server, delegated, platform, loginUrl, chromium;

before(async () => {
  // The platform of the delegated run: a login form; on success it accepts
  // the challenge server to server and sends the browser back.
  platform = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (req.method === "GET" && url.pathname === "/login") {
      const c = (url.searchParams.get("login_challenge") ?? "").replace(/[^A-Za-z0-9_-]/g, "");
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(`<!doctype html><form method="post" action="/login"><input type="hidden" name="login_challenge" value="${c}">
        <input id="user" name="user"><button type="submit">Sign in</button></form>`);
    }
    if (req.method === "POST" && url.pathname === "/login") {
      let raw = "";
      for await (const chunk of req) raw += chunk;
      const f = new URLSearchParams(raw);
      const r = await fetch(`${delegated.base}/admin/v1/login/accept?login_challenge=${encodeURIComponent(f.get("login_challenge"))}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ external_id: "ext-alice" }),
      });
      if (r.status !== 200) return res.writeHead(500).end(await r.text());
      res.writeHead(303, { location: (await r.json()).redirect_to });
      return res.end();
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => platform.listen(0, "127.0.0.1", r));
  loginUrl = `http://localhost:${platform.address().port}/login`;
  // A one-second interval keeps the library's polling short.
  [server, delegated] = await Promise.all([
    startServer({ DEVICE_POLL_INTERVAL_SECONDS: "1" }),
    startServer({ DEVICE_POLL_INTERVAL_SECONDS: "1", SIGNIN_MODE: "delegated", LOGIN_URL: loginUrl, PLATFORM_ADMIN_TOKEN: ADMIN }),
  ]);
  await delegated.db.prepare("UPDATE users SET external_id = 'ext-alice' WHERE id = 'usr_alice'").run();
  chromium = await launchChromium();
});
after(async () => {
  await chromium?.close();
  platform?.close();
  await server?.close();
  await delegated?.close();
});

/** openid-client as a CLI would use it: discovery, then the device flow. */
async function deviceClient(s, name) {
  const app = await registerApp(s, { name, client_type: "public", device_authorization: true });
  // allowInsecureRequests only because the test issuer is http://127.0.0.1.
  const config = await client.discovery(new URL(s.base), app.client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const started = await client.initiateDeviceAuthorization(config, { scope: "profile:read posts:read" });
  assert.match(started.user_code, /^[B-Z]{4}-[B-Z]{4}$/);
  assert.equal(started.verification_uri, `${s.base}/device`);
  const tokens = client.pollDeviceAuthorizationGrant(config, started);
  return { started, tokens };
}

/** From our code form (prefilled) through consent to the done page. */
async function approve(page, userCode) {
  assert.equal(await page.inputValue("#user_code"), userCode, "prefilled from verification_uri_complete");
  await Promise.all([page.waitForLoadState(), page.click("button[type=submit]")]);
  await page.waitForSelector("#device-user-code");
  assert.equal(await page.textContent("#device-user-code"), userCode, "the consent screen shows the code to check");
  assert.match(await page.textContent("body"), /matches the one shown on your device/);
  await Promise.all([page.waitForSelector("#device-done"), page.click("button[value=approve]")]);
  assert.equal(await page.textContent("#device-done"), "Device connected");
}

test("Chromium + openid-client: password sign-in, approve, the CLI's poll gets working tokens", async () => {
  const { started, tokens } = await deviceClient(server, "Device CLI");
  const context = await chromium.newContext();
  const page = await context.newPage();
  await page.goto(started.verification_uri_complete);
  assert.equal(new URL(page.url()).pathname, "/signin", "sign-in first");
  await page.fill("#email", "alice@acme.test");
  await page.fill("#password", "alice-password");
  await Promise.all([page.waitForURL((u) => u.pathname === "/device"), page.click("button[type=submit]")]);
  assert.equal(new URL(page.url()).searchParams.get("user_code"), started.user_code);
  await approve(page, started.user_code);
  const t = await tokens;
  assert.ok(t.access_token && t.refresh_token);
  const me = await bearer(server, "/api/v1/me", t.access_token);
  assert.equal(me.status, 200);
  assert.equal((await me.json()).user.id, "usr_alice");
  await context.close();
});

test("Chromium + openid-client: delegated sign-in on the platform's page, back to the code, approve", async () => {
  const { started, tokens } = await deviceClient(delegated, "Device CLI (delegated)");
  const context = await chromium.newContext();
  const page = await context.newPage();
  await page.goto(started.verification_uri_complete);
  assert.equal(new URL(page.url()).origin, new URL(loginUrl).origin, "on the platform's page");
  await page.fill("#user", "alice");
  await Promise.all([page.waitForURL((u) => u.href.startsWith(`${delegated.base}/device`)), page.click("button[type=submit]")]);
  await approve(page, started.user_code);
  const t = await tokens;
  const me = await bearer(delegated, "/api/v1/me", t.access_token);
  assert.equal(me.status, 200);
  assert.equal((await me.json()).user.id, "usr_alice");
  await context.close();
});
