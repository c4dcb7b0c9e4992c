// The server-rendered pages in a real headless Chromium (Debian's, driven by
// playwright-core): consent, connected apps, developer settings. A screenshot
// of the consent page is kept in tests/artifacts/consent.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdirSync, statSync } from "node:fs";
import { launchChromium } from "./support.mjs";
import { startServer, registerApp, pkcePair, exchange, bearer, tokenRequest } from "../http/support.mjs";

let server, browser, callback, cbUrl;
const artifacts = new URL("../artifacts/", import.meta.url);

before(async () => {
  server = await startServer();
  callback = http.createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("callback ok"));
  await new Promise((r) => callback.listen(0, "127.0.0.1", r));
  cbUrl = `http://127.0.0.1:${callback.address().port}/cb`;
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  callback?.close();
  await server?.close();
});

async function signedIn(email, password) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.base}/signin`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${server.base}/`), page.click("button[type=submit]")]);
  return { context, page };
}

// PKCE is required of every client by default: one pair for the pages here.
const PK = pkcePair();

function authorizeUrl(app, extra = {}) {
  const q = new URLSearchParams({
    client_id: app.client_id, redirect_uri: cbUrl, response_type: "code", scope: "profile:read posts:write", state: "st-browser",
    code_challenge: PK.challenge, code_challenge_method: "S256", ...extra,
  });
  return `${server.base}/oauth/authorize?${q}`;
}

test("consent journey in Chromium: sign-in form, escaped app name, approve, callback; screenshot kept", async () => {
  const name = `Evil <img src=x onerror=alert(1)> <script>alert(2)</script>`;
  const app = await registerApp(server, { name, homepage_url: "https://evil.example", redirect_uris: [cbUrl] });
  const { verifier, challenge } = pkcePair();
  const context = await browser.newContext();
  const page = await context.newPage();
  let dialogs = 0;
  page.on("dialog", (d) => { dialogs++; d.dismiss(); });
  const res = await page.goto(authorizeUrl(app, { code_challenge: challenge, code_challenge_method: "S256" }));
  assert.equal(new URL(page.url()).pathname, "/signin");
  await page.fill("#email", "alice@acme.test");
  await page.fill("#password", "alice-password");
  const consentResponse = page.waitForResponse((r) => r.url().includes("/oauth/authorize") && r.status() === 200);
  await page.click("button[type=submit]");
  const consentRes = await consentResponse;
  assert.match(consentRes.headers()["content-security-policy"], /frame-ancestors 'none'/);
  assert.equal(consentRes.headers()["x-frame-options"], "DENY");
  assert.equal(await page.textContent("#app-name"), name, "markup shown as text");
  assert.equal(await page.locator("#app-name img").count(), 0);
  assert.equal(await page.locator("#app-name script").count(), 0);
  const body = await page.textContent("body");
  assert.match(body, /by Acme/);
  assert.match(body, /Create and edit posts in the organization/);
  assert.deepEqual(await page.locator("#org option").evaluateAll((os) => os.map((o) => o.value)), ["org_acme"]);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: new URL("consent.png", artifacts).pathname, fullPage: true });
  assert.ok(statSync(new URL("consent.png", artifacts)).size > 10_000);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[value=approve]")]);
  const cb = new URL(page.url());
  assert.equal(cb.searchParams.get("state"), "st-browser");
  assert.equal(cb.searchParams.get("iss"), server.base);
  assert.match(await page.textContent("body"), /callback ok/);
  const t = await exchange(server, { ...app, redirect_uris: [cbUrl] }, cb.searchParams.get("code"), { verifier });
  assert.equal(t.status, 200);
  assert.equal(dialogs, 0, "no script ran");
  await context.close();
  void res;
});

test("deny in Chromium lands on the callback with access_denied", async () => {
  const app = await registerApp(server, { redirect_uris: [cbUrl] });
  const { context, page } = await signedIn("alice@acme.test", "alice-password");
  await page.goto(authorizeUrl(app, { prompt: "consent" }));
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[value=deny]")]);
  assert.equal(new URL(page.url()).searchParams.get("error"), "access_denied");
  await context.close();
});

test("connected apps page: revoke in the browser, the token dies", async () => {
  const app = await registerApp(server, { name: "Connected One", redirect_uris: [cbUrl] });
  const { context, page } = await signedIn("carol@acme.test", "carol-password");
  await page.goto(authorizeUrl(app, { scope: "profile:read" }));
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[value=approve]")]);
  const code = new URL(page.url()).searchParams.get("code");
  const t = await (await exchange(server, { ...app, redirect_uris: [cbUrl] }, code, { verifier: PK.verifier })).json();
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
  await page.goto(`${server.base}/settings/apps`);
  const row = page.locator(".app-row", { hasText: "Connected One" });
  assert.equal(await row.count(), 1);
  assert.match(await row.textContent(), /profile:read/);
  await Promise.all([page.waitForURL(`${server.base}/settings/apps`), row.locator("button", { hasText: "Revoke access" }).click()]);
  assert.equal(await page.locator(".app-row", { hasText: "Connected One" }).count(), 0);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
  const r = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal((await r.json()).error, "invalid_grant");
  await context.close();
});

test("developer page: register, list, edit, rotate secret, delete", async () => {
  const { context, page } = await signedIn("alice@acme.test", "alice-password");
  await page.goto(`${server.base}/settings/developer?org=org_acme`);
  await page.fill("#name", "Form App");
  await page.fill("#description", "made in a browser");
  await page.fill("#homepage_url", "https://form.example");
  await page.fill("#redirect_uris", "https://form.example/cb\nhttp://localhost:4000/cb");
  await page.check("input[name=scopes][value='posts:read']");
  await page.check("input[name=scopes][value='profile:read']");
  await page.click("button:has-text('Register')");
  const clientId = (await page.textContent("#client-id")).trim();
  const secret = (await page.textContent("#client-secret")).trim();
  assert.match(clientId, /^app_/);
  assert.match(secret, /^sec_/);
  const row = page.locator(".app-row", { hasText: "Form App" });
  const text = await row.textContent();
  assert.match(text, /posts:read profile:read/);
  assert.match(text, /https:\/\/form\.example\/cb/);
  assert.match(text, /http:\/\/localhost:4000\/cb/);
  assert.match(text, /Created \d{4}-\d{2}-\d{2}/);

  await row.locator("a", { hasText: "Edit" }).click();
  await page.fill("#name", "Form App Renamed");
  await page.uncheck("input[name=scopes][value='posts:read']");
  await Promise.all([page.waitForURL(`${server.base}/settings/developer/apps/${clientId}`), page.click("button:has-text('Save')")]);
  assert.equal(await page.textContent("h1 .app-name"), "Form App Renamed");
  const app = await (await fetch(`${server.base}/api/v1/apps/${clientId}`, { headers: { authorization: `Bearer ${(await import("../../scripts/fixtures.mjs")).DEV_API_KEY}` } })).json();
  assert.deepEqual(app.scopes, ["profile:read"]);

  await page.click("button:has-text('Rotate client secret')");
  const newSecret = (await page.textContent("#client-secret")).trim();
  assert.notEqual(newSecret, secret);
  const cc = (s) => tokenRequest(server, { client_id: clientId, client_secret: s }, { grant_type: "refresh_token", refresh_token: "rt_none" });
  assert.equal((await cc(secret)).status, 401, "old secret rejected at once");
  assert.equal((await (await cc(newSecret)).json()).error, "invalid_grant", "new secret authenticates");

  await page.check("input[name=confirm]");
  await Promise.all([page.waitForURL(/\/settings\/developer\?org=org_acme/), page.click("button:has-text('Delete app')")]);
  assert.equal(await page.locator(".app-row", { hasText: "Form App Renamed" }).count(), 0);
  assert.equal((await cc(newSecret)).status, 401);
  await context.close();
});

test("a form posted without the session's CSRF token is refused and changes nothing", async () => {
  const app = await registerApp(server, { name: "Kept", redirect_uris: [cbUrl] });
  const { context, page } = await signedIn("bob@globex.test", "bob-password");
  await page.goto(authorizeUrl(app, { scope: "profile:read" }));
  await page.selectOption("#org", "org_globex");
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[value=approve]")]);
  const code = new URL(page.url()).searchParams.get("code");
  assert.equal((await exchange(server, { ...app, redirect_uris: [cbUrl] }, code, { verifier: PK.verifier })).status, 200);
  await page.goto(`${server.base}/settings/apps`);
  assert.equal(await page.locator(".app-row", { hasText: "Kept" }).count(), 1);
  await page.evaluate(() => document.querySelector(".app-row form input[name=csrf]").remove());
  await page.locator(".app-row button").first().click();
  assert.match(await page.textContent("body"), /not issued to your session/);
  await page.goto(`${server.base}/settings/apps`);
  assert.equal(await page.locator(".app-row", { hasText: "Kept" }).count(), 1);
  await context.close();
});

test("members see the developer page without the register form", async () => {
  const { context, page } = await signedIn("carol@acme.test", "carol-password");
  await page.goto(`${server.base}/settings/developer`);
  assert.equal(await page.locator("#org-name").textContent(), "Acme");
  assert.equal(await page.locator("button:has-text('Register')").count(), 0);
  await context.close();
});
