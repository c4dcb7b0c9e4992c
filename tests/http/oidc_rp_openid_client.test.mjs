// Issue 17 "Done when": the unmodified openid-client (pinned in package.json)
// as a relying party: its default (OpenID Connect) discovery, the code flow
// with PKCE, expectedNonce and maxAge, the ID token validated (signature
// against jwks_uri too: enableNonRepudiationChecks) for an RS256 and an ES256
// client, fetchUserInfo with expectedSubject, a refresh giving a new ID token
// of the same sub, and RP-initiated logout through buildEndSessionUrl. The
// user's part (sign-in, consent) goes through support.mjs's cookie jar.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as client from "openid-client";
import { startServer, Browser, registerApp } from "./support.mjs";
import { rpSigningKeys, rpWebServer, userApproves } from "./oidc_rp_support.mjs";

let server, rp;
before(async () => {
  rp = await rpWebServer();
  server = await startServer({ JWT_SIGNING_KEYS: rpSigningKeys() });
});
after(async () => {
  await server?.close();
  await rp?.close();
});

const jwtPart = (jwt, i) => JSON.parse(Buffer.from(jwt.split(".")[i], "base64url").toString());

/**
 * An RP configured by openid-client's own discovery, every request it makes
 * recorded. allowInsecureRequests only because the test issuer is
 * http://127.0.0.1 (workerd on loopback); nothing else is relaxed.
 */
async function relyingParty(reg, alg) {
  const seen = [];
  const config = await client.discovery(
    new URL(server.base),
    reg.client_id,
    { client_secret: reg.client_secret, id_token_signed_response_alg: alg },
    client.ClientSecretBasic(reg.client_secret),
    {
      execute: [client.allowInsecureRequests],
      [client.customFetch]: (url, init) => {
        seen.push(`${init.method} ${new URL(url).pathname}`);
        return fetch(url, init);
      },
    },
  );
  // ID tokens from the token endpoint are otherwise trusted by TLS alone
  // (OIDC Core §3.1.3.7 item 6); this makes the RP check their signatures.
  client.enableNonRepudiationChecks(config);
  return { config, seen };
}

for (const alg of ["RS256", "ES256"]) {
  test(`openid-client, ${alg} client: discovery, code flow with PKCE + nonce + max_age, userinfo, refresh, RP-initiated logout`, async () => {
    const callback = `${rp.origin}/callback`;
    const loggedOut = `${rp.origin}/logged-out`;
    const reg = await registerApp(server, {
      name: `OIDC RP ${alg}`,
      redirect_uris: [callback],
      scopes: ["profile:read"],
      id_token_signed_response_alg: alg,
      post_logout_redirect_uris: [loggedOut],
    });
    const { config, seen } = await relyingParty(reg, alg);
    assert.deepEqual(seen, ["GET /.well-known/openid-configuration"], "openid-client's default discovery is OpenID Connect's");
    const meta = config.serverMetadata();
    assert.equal(meta.issuer, server.base);
    assert.ok(meta.supportsPKCE(), "code_challenge_methods_supported lists S256");
    assert.ok(meta.id_token_signing_alg_values_supported.includes(alg));

    const browser = new Browser(server);
    await browser.signIn("alice@acme.test", "alice-password");

    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback,
      scope: "openid profile email",
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: "S256",
      nonce,
      state,
      max_age: "300",
    });
    const back = await userApproves(browser, url);
    assert.equal(back.origin + back.pathname, callback);

    const started = Math.floor(Date.now() / 1000);
    const tokens = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier,
      expectedNonce: nonce,
      expectedState: state,
      maxAge: 300,
      idTokenExpected: true,
    });
    assert.ok(seen.includes("GET /.well-known/jwks.json"), `the ID token's signature was checked against jwks_uri: ${seen}`);
    const header = jwtPart(tokens.id_token, 0);
    assert.equal(header.alg, alg, "signed with the client's id_token_signed_response_alg");
    assert.equal(header.kid, alg === "RS256" ? "rp-rsa" : "rp-ec");
    const claims = tokens.claims();
    assert.equal(claims.iss, server.base);
    assert.deepEqual([claims.aud].flat(), [reg.client_id]);
    assert.equal(claims.nonce, nonce);
    assert.equal(typeof claims.auth_time, "number");
    assert.ok(claims.auth_time <= started + 5 && claims.auth_time >= started - 300, `auth_time ${claims.auth_time}`);
    assert.ok(claims.exp > claims.iat);
    assert.equal(typeof claims.sub, "string");
    assert.doesNotMatch(claims.sub, /@/, "sub is opaque, never the email");
    assert.equal(typeof claims.at_hash, "string");
    assert.ok(claims.sid, "the session's sid (the grant came from a session)");

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(userinfo.sub, claims.sub);
    assert.equal(userinfo.email, "alice@acme.test");
    assert.equal(typeof userinfo.email_verified, "boolean");
    assert.equal(typeof userinfo.name, "string");
    assert.equal(userinfo.org_id, "org_acme");
    assert.equal(userinfo.org_slug, "acme");
    assert.equal(typeof userinfo.updated_at, "number");
    // expectedSubject is a live check: another sub is refused by the RP.
    await assert.rejects(client.fetchUserInfo(config, tokens.access_token, `${claims.sub}-other`));

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.id_token, "a refresh of an openid grant returns a new ID token");
    assert.notEqual(refreshed.id_token, tokens.id_token);
    const again = refreshed.claims();
    assert.equal(again.sub, claims.sub, "OIDC Core §12.2: the same sub");
    assert.equal(again.iss, claims.iss);
    assert.deepEqual([again.aud].flat(), [reg.client_id]);
    assert.equal(again.auth_time, claims.auth_time, "OIDC Core §12.2: auth_time of the original authentication");
    assert.equal(jwtPart(refreshed.id_token, 0).alg, alg);

    // RP-initiated logout: the library's end-session URL, followed.
    const logoutState = client.randomState();
    const end = client.buildEndSessionUrl(config, {
      id_token_hint: refreshed.id_token,
      post_logout_redirect_uri: loggedOut,
      state: logoutState,
    });
    assert.equal(end.origin + end.pathname, `${server.base}/oauth/logout`);
    const out = await browser.fetch(end.pathname + end.search);
    assert.ok(out.status >= 300 && out.status < 400, `end session answered ${out.status}: ${await out.text()}`);
    const landed = new URL(out.headers.get("location"));
    assert.equal(landed.origin + landed.pathname, loggedOut);
    assert.equal(landed.searchParams.get("state"), logoutState);
    assert.equal((await fetch(landed)).status, 200);
    assert.ok(rp.hits.some((h) => h.href === landed.href), "the browser reached the RP's post-logout page");
    // The session ended: the same browser must sign in again.
    const after = await browser.fetch(new URL(url).pathname + new URL(url).search);
    assert.equal(after.status, 302);
    assert.match(after.headers.get("location"), /^\/signin\?/);
  });
}

test("the README's openid-client snippet, as written (client_secret_post, no state)", async () => {
  const cb = `${rp.origin}/cb`;
  const bye = `${rp.origin}/bye`;
  const reg = await registerApp(server, { name: "README RP", redirect_uris: [cb], scopes: ["profile:read"], post_logout_redirect_uris: [bye] });
  // allowInsecureRequests only because the test issuer is http://127.0.0.1.
  const config = await client.discovery(new URL(server.base), reg.client_id, reg.client_secret, undefined, { execute: [client.allowInsecureRequests] });
  const verifier = client.randomPKCECodeVerifier(), nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: cb, scope: "openid profile email", nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  });
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  const callbackUrl = await userApproves(browser, url);
  const tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: verifier, expectedNonce: nonce });
  const user = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  assert.equal(user.email, "alice@acme.test");
  const byeUrl = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: bye });
  const out = await browser.fetch(byeUrl.pathname + byeUrl.search);
  assert.equal(out.headers.get("location"), bye, "back to the registered URI as registered (no state was sent)");
});
