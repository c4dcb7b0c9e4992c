// Sign-in hardening in a real headless Chromium (issue 8, items 1.1 and 1.6):
// what only a browser shows. A TAB in return_to must not take the browser
// off-site after sign-in (browsers drop TABs from URLs, so "/\t/evil" becomes
// "//evil"), and a page on another site cannot sign the victim in as the attacker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { launchChromium } from "./support.mjs";
import { startServer, Browser, hidden } from "../http/support.mjs";

let server, browser, attackerSite, attackerBase;
let attackerPage = "";

before(async () => {
  server = await startServer();
  // The attacker's site: localhost on another port is cross-site to 127.0.0.1.
  attackerSite = http.createServer((req, res) => res.writeHead(200, { "content-type": "text/html" }).end(attackerPage));
  await new Promise((r) => attackerSite.listen(0, "127.0.0.1", r));
  attackerBase = `http://localhost:${attackerSite.address().port}`;
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  attackerSite?.close();
  await server?.close();
});

test("a TAB in return_to does not take the browser off-site after sign-in", async () => {
  const origin = new URL(server.base).origin;
  for (const rt of ["/\t/evil.example", "/\t/\tevil.example/x", "/\\\t/evil.example"]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const offsite = [];
    page.on("request", (r) => new URL(r.url()).origin !== origin && offsite.push(r.url()));
    await page.goto(`${server.base}/signin?${new URLSearchParams({ return_to: rt })}`);
    await page.fill("#email", "alice@acme.test");
    await page.fill("#password", "alice-password");
    // Where the browser goes after the sign-in POST's 303.
    const [next] = await Promise.all([
      page.waitForRequest((r) => r.redirectedFrom()?.url() === `${server.base}/signin`),
      page.click("button[type=submit]"),
    ]);
    assert.equal(new URL(next.url()).origin, origin, `${JSON.stringify(rt)}: the browser went to ${next.url()}`);
    await page.waitForLoadState("load");
    assert.deepEqual(offsite, [], JSON.stringify(rt));
    assert.match(await page.textContent("body"), /Signed in as/);
    await context.close();
  }
});

test("login CSRF: a page on another site auto-submitting the sign-in form does not sign the victim in", async () => {
  // The attacker even embeds a token from their own visit to the sign-in form.
  const token = hidden(await (await new Browser(server).fetch("/signin")).text(), "csrf") ?? "";
  attackerPage = `<!doctype html><body><form id="f" method="post" action="${server.base}/signin">
<input name="email" value="bob@globex.test"><input name="password" value="bob-password">
<input name="return_to" value="/"><input name="csrf" value="${token}"></form>
<script>document.getElementById("f").submit()</script></body>`;
  const context = await browser.newContext();
  const page = await context.newPage();
  // The victim has the sign-in form open in another tab (a pre-session cookie exists).
  const tab = await context.newPage();
  await tab.goto(`${server.base}/signin`);
  const submitted = page.waitForResponse((r) => r.url() === `${server.base}/signin` && r.request().method() === "POST");
  await page.goto(`${attackerBase}/`);
  const res = await submitted;
  assert.equal(res.status(), 403, "the cross-site sign-in POST is refused");
  const cookies = await context.cookies(server.base);
  assert.ok(!cookies.some((c) => c.name === "eo_session"), JSON.stringify(cookies.map((c) => c.name)));
  await page.goto(`${server.base}/`);
  const body = await page.textContent("body");
  assert.doesNotMatch(body, /Signed in as/);
  assert.doesNotMatch(body, /bob@globex\.test/);
  await context.close();
});

test("the sign-in form itself still works in Chromium (token and cookie round trip)", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.base}/signin`);
  await page.fill("#email", "carol@acme.test");
  await page.fill("#password", "carol-password");
  await Promise.all([page.waitForURL(`${server.base}/`), page.click("button[type=submit]")]);
  assert.match(await page.textContent("body"), /Signed in as carol@acme\.test/);
  await context.close();
});
