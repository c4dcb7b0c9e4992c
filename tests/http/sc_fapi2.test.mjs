// Issue 19 item 4: the FAPI 2.0 profile (profiles/fapi2.toml) as deployed:
// every authorization request pushed, only private_key_jwt client
// authentication (a secret or none is refused everywhere, storing nothing),
// the redirect_uri required in the push; and a configuration contradicting
// the profile refuses to serve. (DPoP and private_key_jwt themselves are
// items 1 and 3; their end-to-end journeys under this profile are the lead's.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { profileVars } from "../../scripts/profile-vars.mjs";
import { startServer, Browser, registerApp, pkcePair, basic, form, FORM, count } from "./support.mjs";

let server, alice, conf, pub;

before(async () => {
  server = await startServer(profileVars("fapi2"));
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  conf = await registerApp(server, { name: "FAPI confidential" });
  pub = await registerApp(server, { name: "FAPI public", client_type: "public" });
});
after(async () => {
  await server?.close();
});

const fields = (app, extra = {}) => ({
  response_type: "code",
  redirect_uri: app.redirect_uris[0],
  scope: "profile:read",
  state: "fapi-state",
  code_challenge: pkcePair().challenge,
  code_challenge_method: "S256",
  ...extra,
});

test("discovery says every request must be pushed", async () => {
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    const doc = await (await server.fetch(path)).json();
    assert.equal(doc.require_pushed_authorization_requests, true, path);
    assert.equal(doc.pushed_authorization_request_endpoint, `${server.base}/oauth/par`, path);
    assert.equal(doc.authorization_response_iss_parameter_supported, true, path);
    // Only what the server accepts under the profile (a secret or none is refused).
    for (const endpoint of ["token", "revocation", "introspection"])
      assert.deepEqual(doc[`${endpoint}_endpoint_auth_methods_supported`], ["private_key_jwt"], `${path} ${endpoint}`);
  }
});

test("an authorize that was not pushed is refused, with iss, and issues nothing", async () => {
  const res = await alice.fetch(`/oauth/authorize?${new URLSearchParams({ client_id: conf.client_id, ...fields(conf) })}`);
  assert.equal(res.status, 302, await res.clone().text());
  const to = new URL(res.headers.get("location"));
  assert.equal(to.searchParams.get("error"), "invalid_request");
  assert.equal(to.searchParams.get("iss"), server.base);
  assert.equal(await count(server, "SELECT count(*) AS n FROM codes"), 0);
});

test("a client secret or no client authentication is refused at PAR, token, revoke and introspect", async () => {
  const secret = { ...FORM, authorization: basic(conf.client_id, conf.client_secret) };
  const calls = [
    ["/oauth/par", secret, fields(conf)],
    ["/oauth/par", FORM, { ...fields(pub), client_id: pub.client_id }],
    ["/oauth/par", FORM, { ...fields(conf), client_id: conf.client_id, client_secret: conf.client_secret }],
    ["/oauth/token", secret, { grant_type: "client_credentials", scope: "profile:read" }],
    ["/oauth/token", FORM, { grant_type: "refresh_token", refresh_token: "rt_x", client_id: pub.client_id }],
    ["/oauth/revoke", secret, { token: "at_x" }],
    ["/oauth/introspect", secret, { token: "at_x" }],
  ];
  for (const [path, headers, body] of calls) {
    const res = await server.fetch(path, { method: "POST", headers, body: form(body) });
    assert.equal(res.status, 401, `${path}: ${await res.clone().text()}`);
    const err = await res.json();
    assert.equal(err.error, "invalid_client", path);
    assert.match(err.error_description, /private_key_jwt/, path);
  }
  assert.equal(await count(server, "SELECT count(*) AS n FROM pushed_requests"), 0);
  assert.equal(await count(server, "SELECT count(*) AS n FROM tokens"), 0);
});

test("a contradicting configuration refuses to serve, naming the setting", async () => {
  const s = await startServer({ ...profileVars("fapi2"), PKCE_REQUIRED: "public" });
  try {
    const res = await s.fetch("/health");
    assert.equal(res.status, 500);
    assert.equal(await res.text(), "server misconfigured");
    const line = s.log.lines.find((l) => l.includes("bad configuration"));
    assert.match(line ?? "", /FAPI2/);
    assert.match(line, /PKCE_REQUIRED/);
  } finally {
    await s.close();
  }
});
