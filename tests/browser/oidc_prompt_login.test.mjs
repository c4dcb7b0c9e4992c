// OpenID Connect prompt=login in a real headless Chromium (issue 17 item 6):
// a signed-in browser is sent to our sign-in form (login_hint prefilled),
// signs in again, gets a new session cookie with the same attributes, and
// the same authorization goes on to the callback with a code whose
// auth_time is the new sign-in's.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash } from "node:crypto";
import { launchChromium } from "./support.mjs";
import { startServer, registerApp, pkcePair, exchange } from "../http/support.mjs";

let server, browser, callback, cbUrl;
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

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

function authorizeUrl(app, challenge, extra = {}) {
  const q = new URLSearchParams({
    client_id: app.client_id, redirect_uri: cbUrl, response_type: "code", scope: "profile:read", state: "st-login",
    code_challenge: challenge, code_challenge_method: "S256", ...extra,
  });
  return `${server.base}/oauth/authorize?${q}`;
}

const sessionCookie = async (context) => (await context.cookies(server.base)).find((c) => c.name === "eo_session");

test("prompt=login in Chromium: our form again, a new session cookie (HttpOnly, SameSite=Lax), and the code carries the new auth_time", async () => {
  const app = await registerApp(server, { redirect_uris: [cbUrl] });
  const context = await browser.newContext();
  const page = await context.newPage();
  // Sign in and approve once.
  const first = pkcePair();
  await page.goto(authorizeUrl(app, first.challenge));
  assert.equal(new URL(page.url()).pathname, "/signin");
  await page.fill("#email", "alice@acme.test");
  await page.fill("#password", "alice-password");
  await Promise.all([page.waitForURL((u) => u.pathname === "/oauth/authorize"), page.click("button[type=submit]")]);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[value=approve]")]);
  // Exchanged, so the app is installed and the approval counts next time.
  const firstCode = new URL(page.url()).searchParams.get("code");
  assert.equal((await exchange(server, { ...app, redirect_uris: [cbUrl] }, firstCode, { verifier: first.verifier })).status, 200);
  const old = await sessionCookie(context);
  assert.ok(old);
  const oldRow = await server.db.prepare("SELECT sid, auth_time FROM sessions WHERE hash = ?").bind(sha256(old.value)).first();
  // An hour later (as far as the session knows), the app asks for a fresh sign-in.
  await server.db.prepare("UPDATE sessions SET auth_time = auth_time - 3600 WHERE hash = ?").bind(sha256(old.value)).run();

  const { verifier, challenge } = pkcePair();
  await page.goto(authorizeUrl(app, challenge, { prompt: "login", login_hint: "alice@acme.test" }));
  assert.equal(new URL(page.url()).pathname, "/signin", "the sign-in form although signed in");
  assert.equal(await page.inputValue("#email"), "alice@acme.test", "login_hint prefills the email");
  await page.fill("#password", "alice-password");
  const started = Math.floor(Date.now() / 1000);
  // Already approved: straight back to the app, no loop through the form.
  await Promise.all([page.waitForURL((u) => u.href.startsWith(cbUrl)), page.click("button[type=submit]")]);
  const cb = new URL(page.url());
  assert.equal(cb.searchParams.get("state"), "st-login");
  const code = cb.searchParams.get("code");
  assert.ok(code);

  const fresh = await sessionCookie(context);
  assert.notEqual(fresh.value, old.value, "a new session");
  assert.equal(fresh.httpOnly, true);
  assert.equal(fresh.sameSite, "Lax");
  assert.equal(fresh.path, "/");
  const row = await server.db.prepare("SELECT sid, auth_time FROM sessions WHERE hash = ?").bind(sha256(fresh.value)).first();
  assert.notEqual(row.sid, oldRow.sid);
  assert.ok(row.auth_time >= started);
  assert.equal((await server.db.prepare("SELECT COUNT(*) AS n FROM sessions WHERE hash = ?").bind(sha256(old.value)).first()).n, 0);
  const codeRow = await server.db.prepare("SELECT auth_time, sid FROM codes WHERE hash = ?").bind(sha256(code)).first();
  assert.equal(codeRow.auth_time, row.auth_time);
  assert.equal(codeRow.sid, row.sid);
  const t = await exchange(server, { ...app, redirect_uris: [cbUrl] }, code, { verifier });
  assert.equal(t.status, 200);
  await context.close();
});
