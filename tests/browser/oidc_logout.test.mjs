// Issue 17 "Done when": RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0) in real Chromium. The user signs in through an openid-client
// RP's code flow; the RP then sends the browser to openid-client's
// end-session URL. With the id_token_hint the session ends and the browser
// lands on the registered post_logout_redirect_uri with `state`; without it a
// confirmation page appears and nothing ends until the user confirms (a
// cross-site link cannot silently sign users out).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as client from "openid-client";
import { launchChromium } from "./support.mjs";
import { startServer, registerApp, count } from "../http/support.mjs";
import { rpSigningKeys, rpWebServer } from "../http/oidc_rp_support.mjs";

let server, rp, chromium, reg, config, callback, loggedOut;
before(async () => {
  rp = await rpWebServer();
  server = await startServer({ JWT_SIGNING_KEYS: rpSigningKeys() });
  chromium = await launchChromium();
  callback = `${rp.origin}/callback`;
  loggedOut = `${rp.origin}/logged-out`;
  reg = await registerApp(server, {
    name: "Chromium RP",
    redirect_uris: [callback],
    scopes: ["profile:read"],
    post_logout_redirect_uris: [loggedOut],
  });
  // allowInsecureRequests only because the test issuer is http://127.0.0.1.
  config = await client.discovery(new URL(server.base), reg.client_id, reg.client_secret, client.ClientSecretBasic(reg.client_secret), {
    execute: [client.allowInsecureRequests],
  });
});
after(async () => {
  await chromium?.close();
  await server?.close();
  await rp?.close();
});

const liveSessions = () => count(server, "SELECT count(*) AS n FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = 'alice@acme.test')");

/** The authorization URL the RP sends the browser to, and what it must remember. */
async function rpLogin() {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: "openid profile email",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    nonce,
    state,
  });
  return { url, verifier, nonce, state };
}

/** A fresh Chromium profile signed in through the RP's flow: its page and ID token. */
async function signedInThroughRp() {
  const context = await chromium.newContext();
  const page = await context.newPage();
  const login = await rpLogin();
  await page.goto(login.url.href);
  assert.equal(new URL(page.url()).pathname, "/signin", "a new browser signs in first");
  await page.fill("#email", "alice@acme.test");
  await page.fill("#password", "alice-password");
  await page.click("button[type=submit]");
  // The consent page, unless alice approved this app in an earlier test.
  await page.waitForURL((u) => u.href.startsWith(callback) || u.pathname === "/oauth/authorize");
  if (!page.url().startsWith(callback)) {
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callback)), page.click("button[value=approve]")]);
  }
  const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
    pkceCodeVerifier: login.verifier,
    expectedNonce: login.nonce,
    expectedState: login.state,
    idTokenExpected: true,
  });
  return { context, page, idToken: tokens.id_token };
}

/** Where a new authorization request lands: the sign-in form means no session. */
async function authorizeLandsOn(page) {
  const { url } = await rpLogin();
  await page.goto(url.href);
  return new URL(page.url());
}

test("with id_token_hint: the session ends and Chromium lands on the registered post_logout_redirect_uri with state", async () => {
  const { context, page, idToken } = await signedInThroughRp();
  const sessionsBefore = await liveSessions();
  const state = client.randomState();
  const end = client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: loggedOut, state });
  assert.equal(end.origin + end.pathname, `${server.base}/oauth/logout`);
  await page.goto(end.href);
  const landed = new URL(page.url());
  assert.equal(landed.origin + landed.pathname, loggedOut, `landed on ${landed.href}`);
  assert.equal(landed.searchParams.get("state"), state);
  assert.equal(await page.textContent("#rp"), "relying party page");
  assert.equal(await liveSessions(), sessionsBefore - 1, "the browser's session row is gone");
  assert.equal((await authorizeLandsOn(page)).pathname, "/signin", "the browser must sign in again");
  await context.close();
});

test("without id_token_hint: a confirmation page, nothing ends until the user confirms", async () => {
  const { context, page } = await signedInThroughRp();
  const sessionsBefore = await liveSessions();
  const state = client.randomState();
  const end = client.buildEndSessionUrl(config, { post_logout_redirect_uri: loggedOut, state });
  const res = await page.goto(end.href);
  assert.equal(res.status(), 200);
  assert.equal(new URL(page.url()).origin, server.base, "the browser stays with us: a confirmation page");
  const confirm = page.locator("form button[type=submit]").first();
  assert.equal(await confirm.count(), 1, "the page offers to sign out");
  assert.equal(await liveSessions(), sessionsBefore, "showing the page ended nothing");
  // Still signed in: in a second tab, a new authorization needs no sign-in.
  const tab = await context.newPage();
  assert.notEqual((await authorizeLandsOn(tab)).pathname, "/signin", "still signed in before confirming");
  await tab.close();

  await Promise.all([page.waitForNavigation(), confirm.click()]);
  assert.equal(await liveSessions(), sessionsBefore - 1, "confirming ended the session");
  const landed = new URL(page.url());
  if (landed.origin === rp.origin) {
    // Where the OP redirects after confirming, it is to the registered URI with state.
    assert.equal(landed.origin + landed.pathname, loggedOut);
    assert.equal(landed.searchParams.get("state"), state);
  }
  assert.equal((await authorizeLandsOn(page)).pathname, "/signin", "the browser must sign in again");
  await context.close();
});
