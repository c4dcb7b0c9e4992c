// Issue 19 "Done when": unmodified, pinned clients (package.json) do the
// sender-constrained flows end to end. oauth4webapi: its own discovery, a
// pushed authorization request (RFC 9126) with a DPoP proof, the user's
// sign-in and consent, the code exchange, a refresh and a DPoP-protected
// call to /api/v1/me, the client authenticating with private_key_jwt
// (RFC 7523) throughout; once with the defaults (DPOP_NONCE=on) and once
// under profiles/fapi2.toml. openid-client: its DPoP handle through the code
// flow, a refresh and fetchProtectedResource. Every request is counted
// through the libraries' customFetch, so the nonce dance (use_dpop_nonce,
// then the retry) is asserted, not assumed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { calculateJwkThumbprint } from "jose";
import { profileVars } from "../../scripts/profile-vars.mjs";
import { startServer, Browser, api, hiddenFields, count } from "./support.mjs";

let server, fapi;
before(async () => {
  [server, fapi] = await Promise.all([startServer({ INTROSPECTION_CLIENTS: "" }), startServer(profileVars("fapi2"))]);
});
after(async () => {
  await server?.close();
  await fapi?.close();
});

const REDIRECT = "http://127.0.0.1:8765/callback";

/** Every request a library makes: method, path, status, and its OAuth error if any. */
function recorder() {
  const seen = [];
  const fetcher = async (url, init) => {
    const res = await fetch(url, init);
    let error;
    const challenge = res.headers.get("www-authenticate");
    if (challenge) error = /error="([^"]+)"/.exec(challenge)?.[1];
    if (!error && res.status >= 400 && (res.headers.get("content-type") ?? "").includes("json")) {
      error = (await res.clone().json()).error;
    }
    seen.push({ call: `${init?.method ?? "GET"} ${new URL(url).pathname}`, status: res.status, error, dpop: new Headers(init?.headers).has("dpop") });
    return res;
  };
  return { seen, fetcher };
}

/** A confidential private_key_jwt client, DPoP mandatory, registered through the apps API. */
async function registerPkjwtClient(srv) {
  const keys = await oauth.generateKeyPair("ES256");
  const jwk = { ...(await crypto.subtle.exportKey("jwk", keys.publicKey)), kid: "rp-key-1", alg: "ES256", use: "sig" };
  const res = await api(srv, "POST", "/api/v1/apps", {
    name: "oauth4webapi RP",
    redirect_uris: [REDIRECT],
    scopes: ["profile:read"],
    client_type: "confidential",
    token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [jwk] },
    token_endpoint_auth_signing_alg: "ES256",
    dpop_bound_access_tokens: true,
    require_pushed_authorization_requests: true,
  });
  assert.equal(res.status, 201, await res.clone().text());
  const reg = await res.json();
  assert.equal(reg.client_secret, undefined);
  return { reg, privateKey: keys.privateKey };
}

/** oauth4webapi's documented pattern: on use_dpop_nonce, send the request again (the handle kept the nonce). */
async function withNonceRetry(send, process) {
  try {
    return { result: await process(await send()), retried: false };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { result: await process(await send()), retried: true };
  }
}

async function oauth4webapiJourney(srv) {
  const { reg, privateKey } = await registerPkjwtClient(srv);
  const { seen, fetcher } = recorder();
  const opts = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: fetcher }; // http on loopback only
  const issuer = new URL(srv.base);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...opts }));
  assert.equal(as.pushed_authorization_request_endpoint, `${srv.base}/oauth/par`);
  assert.ok(as.token_endpoint_auth_methods_supported.includes("private_key_jwt"));
  assert.ok(as.dpop_signing_alg_values_supported.includes("ES256"));
  const rp = { client_id: reg.client_id };
  const clientAuth = oauth.PrivateKeyJwt({ key: privateKey, kid: "rp-key-1" });
  const dpopKeys = await oauth.generateKeyPair("ES256");
  const DPoP = oauth.DPoP(rp, dpopKeys);
  const jkt = await calculateJwkThumbprint(await crypto.subtle.exportKey("jwk", dpopKeys.publicKey));

  // The push, with a DPoP proof (RFC 9449 §10.1).
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const pushed = await withNonceRetry(
    () => oauth.pushedAuthorizationRequest(as, rp, clientAuth, {
      redirect_uri: REDIRECT, response_type: "code", scope: "profile:read", state,
      code_challenge: challenge, code_challenge_method: "S256",
    }, { ...opts, DPoP }),
    (res) => oauth.processPushedAuthorizationResponse(as, rp, res),
  );
  const { request_uri } = pushed.result;
  assert.match(request_uri, /^urn:ietf:params:oauth:request_uri:/);

  // The user: sign in, approve; the browser's URL carries client_id + request_uri only.
  const authUrl = new URL(as.authorization_endpoint);
  authUrl.searchParams.set("client_id", rp.client_id);
  authUrl.searchParams.set("request_uri", request_uri);
  const browser = new Browser(srv);
  await browser.signIn("alice@acme.test", "alice-password");
  const page = await browser.fetch(authUrl.pathname + authUrl.search);
  assert.equal(page.status, 200);
  const decision = await browser.post("/oauth/authorize", { ...hiddenFields(await page.text()), org: "org_acme", decision: "approve" });
  const callback = new URL(decision.headers.get("location"));
  const params = oauth.validateAuthResponse(as, rp, callback, state); // checks iss (RFC 9207)
  // The code is bound to the key that signed the push's proof (RFC 9449 §10.1).
  const code = callback.searchParams.get("code");
  assert.equal(
    (await srv.db.prepare("SELECT dpop_jkt FROM codes ORDER BY rowid DESC LIMIT 1").first()).dpop_jkt,
    jkt,
    "the push's DPoP proof binds the code",
  );
  assert.ok(code);

  const exchanged = await withNonceRetry(
    () => oauth.authorizationCodeGrantRequest(as, rp, clientAuth, params, REDIRECT, verifier, { ...opts, DPoP }),
    (res) => oauth.processAuthorizationCodeResponse(as, rp, res),
  );
  const tokens = exchanged.result;
  assert.equal(tokens.token_type, "dpop", "the access token is DPoP-bound");

  // The nonce dance happened once, on the first DPoP request; its retry worked.
  const dpopCalls = seen.filter((s) => s.dpop);
  assert.equal(dpopCalls[0].status, 400, JSON.stringify(seen));
  assert.equal(dpopCalls[0].error, "use_dpop_nonce");
  assert.equal(dpopCalls[1].call, dpopCalls[0].call, "the retry is the same request");
  assert.ok(dpopCalls[1].status < 300, JSON.stringify(seen));
  assert.equal(pushed.retried || exchanged.retried, true);
  assert.equal(seen.filter((s) => s.error === "use_dpop_nonce").length, 1, `one dance, the nonce kept afterwards: ${JSON.stringify(seen)}`);

  // A DPoP-protected call: the library's proof (ath, nonce) accepted...
  const meUrl = new URL(`${srv.base}/api/v1/me`);
  const me = await oauth.protectedResourceRequest(tokens.access_token, "GET", meUrl, new Headers(), null, { ...opts, DPoP });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).user.email, "alice@acme.test");
  // ...and the same token as a plain Bearer token refused.
  const stolen = await fetch(meUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(stolen.status, 401);
  assert.match(stolen.headers.get("www-authenticate") ?? "", /^DPoP /);

  // A refresh, still DPoP: a new bound access token.
  const refreshed = await withNonceRetry(
    () => oauth.refreshTokenGrantRequest(as, rp, clientAuth, tokens.refresh_token, { ...opts, DPoP }),
    (res) => oauth.processRefreshTokenResponse(as, rp, res),
  );
  assert.equal(refreshed.retried, false, "the nonce from the earlier answers is still good");
  assert.equal(refreshed.result.token_type, "dpop");
  assert.notEqual(refreshed.result.access_token, tokens.access_token);
  const me2 = await oauth.protectedResourceRequest(refreshed.result.access_token, "GET", meUrl, new Headers(), null, { ...opts, DPoP });
  assert.equal(me2.status, 200);

  // Introspection (private_key_jwt again) says the token is bound to the DPoP key.
  const intro = await oauth.processIntrospectionResponse(
    as, rp, await oauth.introspectionRequest(as, rp, clientAuth, refreshed.result.access_token, opts),
  );
  assert.equal(intro.active, true);
  assert.equal(intro.cnf?.jkt, jkt);
  // Every client assertion was a fresh one (single-use jti): none refused.
  assert.equal(seen.filter((s) => s.error === "invalid_client").length, 0, JSON.stringify(seen));
  return { seen, reg };
}

test("oauth4webapi: PAR + DPoP + private_key_jwt through code, refresh and a DPoP-protected API call, with the nonce dance", async () => {
  await oauth4webapiJourney(server);
});

test("oauth4webapi: a push whose dpop_jkt names another key than its DPoP proof is refused and stores nothing", async () => {
  const { reg, privateKey } = await registerPkjwtClient(server);
  const opts = { [oauth.allowInsecureRequests]: true };
  const issuer = new URL(server.base);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...opts }));
  const rp = { client_id: reg.client_id };
  const clientAuth = oauth.PrivateKeyJwt({ key: privateKey, kid: "rp-key-1" });
  const DPoP = oauth.DPoP(rp, await oauth.generateKeyPair("ES256"));
  const other = await calculateJwkThumbprint(await crypto.subtle.exportKey("jwk", (await oauth.generateKeyPair("ES256")).publicKey));
  const before = await count(server, "SELECT count(*) AS n FROM pushed_requests");
  await assert.rejects(
    withNonceRetry(
      () => oauth.pushedAuthorizationRequest(as, rp, clientAuth, {
        redirect_uri: REDIRECT, response_type: "code", scope: "profile:read", dpop_jkt: other,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256",
      }, { ...opts, DPoP }),
      (res) => oauth.processPushedAuthorizationResponse(as, rp, res),
    ),
    (e) => {
      assert.equal(e.error, "invalid_dpop_proof", e.message);
      return true;
    },
  );
  assert.equal(await count(server, "SELECT count(*) AS n FROM pushed_requests"), before);
});

test("oauth4webapi: the same journey under the FAPI 2.0 profile (profiles/fapi2.toml)", async () => {
  const { reg } = await oauth4webapiJourney(fapi);
  assert.equal(await count(fapi, "SELECT count(*) AS n FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE g.app_id = ?1 AND t.jkt IS NULL AND t.kind = 'access'", reg.client_id), 0);
});

test("openid-client: getDPoPHandle through the code flow, a refresh and fetchProtectedResource, with the nonce dance", async () => {
  const res = await api(server, "POST", "/api/v1/apps", {
    name: "openid-client RP",
    redirect_uris: [REDIRECT],
    scopes: ["profile:read"],
    client_type: "public",
    dpop_bound_access_tokens: true,
  });
  assert.equal(res.status, 201, await res.clone().text());
  const reg = await res.json();
  const { seen, fetcher } = recorder();
  const config = await client.discovery(new URL(server.base), reg.client_id, undefined, client.None(), {
    algorithm: "oauth2",
    execute: [client.allowInsecureRequests],
    [client.customFetch]: fetcher,
  });
  const dpopKeys = await client.randomDPoPKeyPair("ES256");
  const DPoP = client.getDPoPHandle(config, dpopKeys);
  const jkt = await calculateJwkThumbprint(await crypto.subtle.exportKey("jwk", dpopKeys.publicKey));

  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: "profile:read", state,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier), code_challenge_method: "S256",
  });
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  const page = await browser.fetch(url.pathname + url.search);
  assert.equal(page.status, 200);
  const decision = await browser.post("/oauth/authorize", { ...hiddenFields(await page.text()), org: "org_acme", decision: "approve" });
  const back = new URL(decision.headers.get("location"));

  const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier, expectedState: state }, undefined, { DPoP });
  assert.equal(tokens.token_type, "dpop");
  const token = seen.filter((s) => s.call === "POST /oauth/token");
  assert.deepEqual(token.map((s) => [s.status, s.error ?? null]), [[400, "use_dpop_nonce"], [200, null]], "openid-client retried once with the nonce");

  const meUrl = new URL(`${server.base}/api/v1/me`);
  const me = await client.fetchProtectedResource(config, tokens.access_token, meUrl, "GET", null, undefined, { DPoP });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).user.email, "alice@acme.test");
  const stolen = await fetch(meUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(stolen.status, 401, "a bound token is refused as Bearer");

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  assert.equal(refreshed.token_type, "dpop");
  assert.notEqual(refreshed.access_token, tokens.access_token);
  const me2 = await client.fetchProtectedResource(config, refreshed.access_token, meUrl, "GET", null, undefined, { DPoP });
  assert.equal(me2.status, 200);
  // A public client's refresh token is bound to the key too: another key cannot use it.
  const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: thief }), (e) => {
    assert.equal(e.error, "invalid_dpop_proof", e.message);
    return true;
  });
  const rows = await server.db.prepare("SELECT t.jkt FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE g.app_id = ?1 AND t.kind = 'access'").bind(reg.client_id).all();
  assert.ok(rows.results.length >= 2);
  for (const r of rows.results) assert.equal(r.jkt, jkt, "every access token bound to the handle's key");
});
