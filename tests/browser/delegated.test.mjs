// Delegated sign-in in a real headless Chromium, where cookie rules are the
// browser's own: the stand-in platform's login page lives on another site
// (http://localhost:<port>, while the worker is http://127.0.0.1:<port>), so
// the trip back with the verifier is a cross-site redirect after the
// platform's POST. Our browser-binding cookie (SameSite=Lax) must come back on
// it, and our session cookie must be set by it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { launchChromium } from "./support.mjs";
import { startServer, registerApp, pkcePair, exchange, bearer } from "../http/support.mjs";

const ADMIN = "adm_browser_0123456789abcdefghijklmnopqrstuvwxyz";
let server, browser, platform, callback, cbUrl, loginUrl;

async function accept(challenge, externalId) {
  const r = await fetch(`${server.base}/admin/v1/login/accept?login_challenge=${encodeURIComponent(challenge)}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ external_id: externalId }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).redirect_to;
}

before(async () => {
  // The platform: a login form, its own password check, then accept and 303.
  platform = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (req.method === "GET" && url.pathname === "/login") {
      const c = url.searchParams.get("login_challenge") ?? "";
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(`<!doctype html><h1>Platform sign-in</h1><form method="post" action="/login">
        <input type="hidden" name="login_challenge" value="${c.replace(/[^A-Za-z0-9_-]/g, "")}">
        <input id="user" name="user"><input id="password" name="password" type="password">
        <button type="submit">Sign in</button></form>`);
    }
    if (req.method === "POST" && url.pathname === "/login") {
      let raw = "";
      for await (const chunk of req) raw += chunk;
      const f = new URLSearchParams(raw);
      if (f.get("user") !== "alice" || f.get("password") !== "platform-alice") {
        res.writeHead(401).end("no");
        return;
      }
      const to = await accept(f.get("login_challenge"), "ext-alice");
      res.writeHead(303, { location: to, "set-cookie": "psid=1; Path=/; HttpOnly" });
      return res.end();
    }
    // Any other site sending the browser somewhere (a link, a redirect).
    if (req.method === "GET" && url.pathname === "/go") {
      res.writeHead(302, { location: url.searchParams.get("to") });
      return res.end();
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => platform.listen(0, "127.0.0.1", r));
  loginUrl = `http://localhost:${platform.address().port}/login`;
  callback = http.createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("callback ok"));
  await new Promise((r) => callback.listen(0, "127.0.0.1", r));
  cbUrl = `http://127.0.0.1:${callback.address().port}/cb`;
  server = await startServer({ SIGNIN_MODE: "delegated", LOGIN_URL: loginUrl, PLATFORM_ADMIN_TOKEN: ADMIN });
  await server.db.prepare("UPDATE users SET external_id = 'ext-alice' WHERE id = 'usr_alice'").run();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  platform?.close();
  callback?.close();
  await server?.close();
});

function authorizeUrl(app, extra = {}) {
  const q = new URLSearchParams({
    client_id: app.client_id, redirect_uri: cbUrl, response_type: "code", scope: "profile:read", state: "st-deleg", ...extra,
  });
  return `${server.base}/oauth/authorize?${q}`;
}

test("Chromium: the platform's login page on another site, back cross-site with the verifier, our consent, the code", async () => {
  const app = await registerApp(server, { name: "Browser App", redirect_uris: [cbUrl] });
  const { verifier, challenge } = pkcePair();
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(authorizeUrl(app, { code_challenge: challenge, code_challenge_method: "S256" }));
  assert.equal(new URL(page.url()).origin, new URL(loginUrl).origin, "on the platform's page");
  assert.match(new URL(page.url()).searchParams.get("login_challenge"), /^lc_/);
  // The binding cookie as Chromium stored it.
  const bind = (await context.cookies(`${server.base}/oauth/login/verify`)).find((c) => c.name === "eo_login");
  assert.ok(bind, "binding cookie stored");
  assert.equal(bind.httpOnly, true);
  assert.equal(bind.sameSite, "Lax");
  // The browser's, on every path that opens a challenge (issue 15 §8).
  assert.equal(bind.path, "/");
  await page.fill("#user", "alice");
  await page.fill("#password", "platform-alice");
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${server.base}/oauth/authorize`)),
    page.click("button[type=submit]"),
  ]);
  // Our consent page, for the user the platform named.
  assert.match(await page.textContent("body"), /alice@acme\.test/);
  assert.ok((await context.cookies(server.base)).some((c) => c.name === "eo_session"));
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[value=approve]")]);
  const cb = new URL(page.url());
  assert.equal(cb.searchParams.get("state"), "st-deleg");
  const t = await exchange(server, { ...app, redirect_uris: [cbUrl] }, cb.searchParams.get("code"), { verifier });
  assert.equal(t.status, 200);
  const me = await (await bearer(server, "/api/v1/me", (await t.json()).access_token)).json();
  assert.equal(me.user.id, "usr_alice");
  await context.close();
});

test("Chromium: a redirect_to opened in another browser is refused and signs nobody in", async () => {
  const app = await registerApp(server, { name: "Browser App 2", redirect_uris: [cbUrl] });
  // The attacker's browser reaches the platform page; the challenge is accepted for them.
  const attacker = await browser.newContext();
  const a = await attacker.newPage();
  const { challenge } = pkcePair();
  await a.goto(authorizeUrl(app, { code_challenge: challenge, code_challenge_method: "S256" }));
  assert.equal(new URL(a.url()).origin, new URL(loginUrl).origin, "on the platform's page");
  const redirectTo = await accept(new URL(a.url()).searchParams.get("login_challenge"), "ext-alice");
  // The victim opens it (a link in a mail, a page that navigates).
  const victim = await browser.newContext();
  const v = await victim.newPage();
  const res = await v.goto(redirectTo);
  assert.equal(res.status(), 403);
  assert.match(await v.textContent("body"), /another browser/);
  assert.equal((await victim.cookies(server.base)).some((c) => c.name === "eo_session"), false);
  await attacker.close();
  await victim.close();
});

test("Chromium: a second authorization in the same browser does not cancel the first one's sign-in (issue 15 §8)", async () => {
  const app = await registerApp(server, { name: "Browser App 3", redirect_uris: [cbUrl] });
  const context = await browser.newContext();
  // Sign-in A: the user is on the platform's login page.
  const a = await context.newPage();
  await a.goto(authorizeUrl(app, { state: "st-A", code_challenge: pkcePair().challenge, code_challenge_method: "S256" }));
  assert.equal(new URL(a.url()).origin, new URL(loginUrl).origin, "A on the platform's page");
  // Meanwhile another site sends the same browser to an authorize URL (B).
  const b = await context.newPage();
  const to = authorizeUrl(app, { state: "st-B", code_challenge: pkcePair().challenge, code_challenge_method: "S256" });
  await b.goto(`${new URL(loginUrl).origin}/go?to=${encodeURIComponent(to)}`);
  assert.equal(new URL(b.url()).origin, new URL(loginUrl).origin, "B on the platform's page");
  // A completes: the landing must still know this browser.
  await a.fill("#user", "alice");
  await a.fill("#password", "platform-alice");
  const [landing] = await Promise.all([
    a.waitForEvent("response", (r) => r.url().startsWith(`${server.base}/oauth/login/verify`)),
    a.click("button[type=submit]"),
  ]);
  await a.waitForLoadState();
  assert.equal(landing.status(), 302, `A's landing after B answered ${landing.status()}: ${await a.textContent("body")}`);
  assert.ok(a.url().startsWith(`${server.base}/oauth/authorize`), a.url());
  assert.equal(new URL(a.url()).searchParams.get("state"), "st-A");
  assert.match(await a.textContent("body"), /alice@acme\.test/);
  await context.close();
});
