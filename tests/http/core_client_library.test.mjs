// An unmodified, widely used OAuth client library (oauth4webapi) against the
// worker: discovery, PKCE authorization URL, iss-checked callback, code
// exchange, refresh, introspection, revocation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import { startServer, Browser, registerApp, hiddenFields } from "./support.mjs";

let server;
before(async () => (server = await startServer({ INTROSPECTION_CLIENTS: "" })));
after(() => server.close());

const insecure = { [oauth.allowInsecureRequests]: true }; // http on loopback only

test("oauth4webapi drives the whole flow unmodified", async () => {
  const reg = await registerApp(server, { redirect_uris: ["http://127.0.0.1:8765/callback"] });
  const issuer = new URL(server.base);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
  assert.equal(as.token_endpoint, `${server.base}/oauth/token`);
  const client = { client_id: reg.client_id };
  const clientAuth = oauth.ClientSecretBasic(reg.client_secret);

  const verifier = oauth.generateRandomCodeVerifier();
  const challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const state = oauth.generateRandomState();
  const authUrl = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: reg.redirect_uris[0], response_type: "code", scope: "profile:read posts:read",
    state, code_challenge: challenge, code_challenge_method: "S256",
  })) authUrl.searchParams.set(k, v);

  // The user: sign in and approve in the "browser".
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  const page = await (await browser.fetch(authUrl.pathname + authUrl.search)).text();
  const decision = await browser.post("/oauth/authorize", { ...hiddenFields(page), org: "org_acme", decision: "approve" });
  const callback = new URL(decision.headers.get("location"));

  const params = oauth.validateAuthResponse(as, client, callback, state); // checks iss (RFC 9207)
  const tokenRes = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, reg.redirect_uris[0], verifier, insecure);
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenRes);
  assert.equal(tokens.token_type, "bearer");
  assert.equal(tokens.scope, "posts:read profile:read");

  const me = await fetch(`${server.base}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal((await me.json()).user.email, "alice@acme.test");

  const refreshed = await oauth.processRefreshTokenResponse(
    as, client, await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, insecure),
  );
  assert.notEqual(refreshed.access_token, tokens.access_token);

  const intro = await oauth.processIntrospectionResponse(
    as, client, await oauth.introspectionRequest(as, client, clientAuth, refreshed.access_token, insecure),
  );
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, client.client_id);

  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, refreshed.refresh_token, insecure));
  const after = await fetch(`${server.base}/api/v1/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  assert.equal(after.status, 401);
  const dead = await oauth.processIntrospectionResponse(
    as, client, await oauth.introspectionRequest(as, client, clientAuth, refreshed.access_token, insecure),
  );
  assert.equal(dead.active, false);
});
