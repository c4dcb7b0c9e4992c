// Issue 20 item 2: enterprise-managed authorization (ID-JAG). An org's
// enterprise IdP (a local JWKS server, `jose` signing) issues an Identity
// Assertion JWT Authorization Grant; the MCP client presents it with the
// jwt-bearer grant (oauth4webapi, no browser) and calls the MCP server of
// tests/mcp/server.mjs with the token. Trusted issuers are provisioned per
// org through /admin/v1/orgs/{org}/trusted-issuers. Every refusal issues
// nothing. The switch combinations with the Azure DevOps profile are in
// ag_idjag_switches.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import * as oauth from "oauth4webapi";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startServer, registerApp, freePort, count, lastLine, basic, form, FORM, b64url } from "./support.mjs";
import { startMcpServer } from "../mcp/server.mjs";
import { startIdp, idpKey, trustIssuer, JWT_BEARER } from "./ag_idjag_idp.mjs";

const ADMIN = "idjag-test-admin-token-0123456789abcdefghijklmnop";
let server, mcp, idp, acmeIdp, globexIdp, app, other, issuer;

before(async () => {
  idp = await startIdp();
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  mcp = await startMcpServer({ issuer });
  server = await startServer(
    {
      ID_JAG: "on",
      PLATFORM_ADMIN_TOKEN: ADMIN,
      // The IdP is a loopback http server (development's allowance).
      CIMD_ALLOW_HTTP_LOOPBACK: "true",
      ACCESS_TOKEN_FORMAT: "jwt",
      RESOURCES: `${mcp.resource}, ${issuer}/api/v1`,
      DPOP_NONCE: "off",
    },
    { port },
  );
  assert.equal(server.base, issuer);
  app = await registerApp(server, { name: "Enterprise MCP client", scopes: ["profile:read", "posts:read", "posts:write"] });
  other = await registerApp(server, { name: "Another client", scopes: ["profile:read"] });
  acmeIdp = idp.tenant("acme");
  globexIdp = idp.tenant("globex");
  const acme = await trustIssuer(server, ADMIN, "acme", "okta", {
    issuer: acmeIdp.issuer,
    jwks_uri: acmeIdp.jwksUri,
    allowed_clients: [app.client_id],
    subject_claim: "sub",
    resources: [mcp.resource, `${issuer}/api/v1`],
    scopes: ["profile:read", "posts:read", "posts:write"],
  });
  assert.equal(acme.status, 201, JSON.stringify(acme.body));
  const globex = await trustIssuer(server, ADMIN, "globex", "entra", {
    issuer: globexIdp.issuer,
    jwks_uri: globexIdp.jwksUri,
    allowed_clients: [app.client_id, other.client_id],
    subject_claim: "email",
    resources: [mcp.resource],
    scopes: ["profile:read"],
  });
  assert.equal(globex.status, 201, JSON.stringify(globex.body));
});
after(async () => {
  await server?.close();
  await mcp?.close();
  await idp?.close();
});

const admin = async (method, path, body) => {
  const headers = { authorization: `Bearer ${ADMIN}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await server.fetch(`/admin/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};
const issuedCount = () => count(server, "SELECT COUNT(*) AS n FROM grants WHERE source = 'id_jag'");
const tokenCount = () => count(server, "SELECT COUNT(*) AS n FROM tokens");
const refusals = () => count(server, "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'id_jag.refused'");

/** An ID-JAG of the acme IdP for alice and the MCP server, with overrides. */
const aliceJag = (o = {}) => acmeIdp.sign({ as: issuer, clientId: app.client_id, sub: "alice", resource: mcp.resource, scope: "profile:read posts:read", ...o });

function jwtBearer(assertion, extra = {}, client = app, headers = {}) {
  return server.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(client.client_id, client.client_secret), ...headers },
    body: form({ grant_type: JWT_BEARER, assertion, ...extra }),
  });
}

/** The request is refused with `error` (its reason matching `why`), and nothing was issued. */
async function refused(res, status, error, why) {
  const before = [await issuedCount(), await tokenCount()];
  const r = await res();
  const body = await r.json();
  assert.equal(r.status, status, JSON.stringify(body));
  assert.equal(body.error, error, JSON.stringify(body));
  assert.match(body.error_description, why);
  assert.deepEqual([await issuedCount(), await tokenCount()], before, "nothing issued");
  return body;
}

// ---- provisioning ------------------------------------------------------------

test("trusted issuers: PUT is idempotent, GET/list/PATCH/DELETE answer, one org per issuer, every change audited", async () => {
  const body = {
    issuer: "https://login.example.com/tenant-x/v2.0",
    jwks_uri: "https://login.example.com/tenant-x/discovery/v2.0/keys",
    allowed_clients: [app.client_id],
    subject_claim: "email",
    default_role: "member",
    resources: [mcp.resource],
    scopes: ["profile:read"],
  };
  const created = await admin("PUT", "/orgs/acme/trusted-issuers/entra-x", body);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.created, true);
  assert.deepEqual(created.body.allowed_clients, [app.client_id]);
  const again = await admin("PUT", "/orgs/acme/trusted-issuers/entra-x", body);
  assert.equal(again.status, 200);
  assert.equal(again.body.changed, false);
  const got = await admin("GET", "/orgs/acme/trusted-issuers/entra-x");
  assert.equal(got.status, 200);
  assert.equal(got.body.subject_claim, "email");
  assert.equal(got.body.default_role, "member");
  const list = await admin("GET", "/orgs/acme/trusted-issuers");
  assert.deepEqual(list.body.items.map((i) => i.name).sort(), ["entra-x", "okta"]);
  const patched = await admin("PATCH", "/orgs/acme/trusted-issuers/entra-x", { scopes: ["profile:read", "posts:read"], default_role: null });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.deepEqual(Object.keys(patched.body.changes).sort(), ["default_role", "scopes"]);
  // One issuer, one org: its `iss` is what picks the org.
  const taken = await admin("PUT", "/orgs/globex/trusted-issuers/same", body);
  assert.equal(taken.status, 409, JSON.stringify(taken.body));
  assert.match(taken.body.error_description, /already trusted by another org/);
  for (const [bad, why] of [
    [{ jwks_uri: "http://keys.example.com/jwks" }, /jwks_uri must use https/],
    [{ issuer: "not a url" }, /issuer must be an absolute https URL/],
    [{ default_role: "no-such-role" }, /unknown role/],
    [{ resources: ["https://elsewhere.example/mcp"] }, /not a resource this server issues tokens for/],
    [{ subject_claim: "upn" }, /subject_claim must be/],
    [{ allowed_clients: [] }, /allowed_clients must list 1 to 100/],
    [{ scopes: ["two words"] }, /scopes/],
  ]) {
    const r = await admin("PUT", "/orgs/acme/trusted-issuers/bad", { ...body, issuer: "https://bad.example.com", ...bad });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error_description, why);
  }
  assert.equal(await count(server, "SELECT COUNT(*) AS n FROM trusted_issuers WHERE name = 'bad'"), 0);
  const dry = await admin("DELETE", "/orgs/acme/trusted-issuers/entra-x?dry_run=true");
  assert.equal(dry.body.deleted, false);
  const gone = await admin("DELETE", "/orgs/acme/trusted-issuers/entra-x");
  assert.equal(gone.body.deleted, true);
  assert.equal((await admin("GET", "/orgs/acme/trusted-issuers/entra-x")).status, 404);
  const actions = (await server.db.prepare("SELECT action FROM audit_events WHERE action LIKE 'trusted_issuer.%' AND detail LIKE '%entra-x%' ORDER BY id").all()).results.map((r) => r.action);
  assert.deepEqual(actions, ["trusted_issuer.created", "trusted_issuer.updated", "trusted_issuer.deleted"]);
  // Without the platform's token, nothing is read.
  const anon = await server.fetch("/admin/v1/orgs/acme/trusted-issuers");
  assert.equal(anon.status, 401);
});

test("discovery: the jwt-bearer grant and the ID-JAG profile are advertised, no issuer is", async () => {
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    const doc = await (await server.fetch(path)).json();
    assert.ok(doc.grant_types_supported.includes(JWT_BEARER), path);
    assert.deepEqual(doc.authorization_grant_profiles_supported, ["urn:ietf:params:oauth:grant-profile:id-jag"], path);
    assert.ok(!JSON.stringify(doc).includes(acmeIdp.issuer), "trusted issuers are not disclosed");
  }
});

// ---- the journey ---------------------------------------------------------------

test("journey: the IdP's ID-JAG, oauth4webapi's jwt-bearer request, then the MCP server's tools", async () => {
  const as = await oauth.processDiscoveryResponse(
    new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), { algorithm: "oauth2", [oauth.allowInsecureRequests]: true }),
  );
  assert.ok(as.grant_types_supported.includes(JWT_BEARER));
  const client = { client_id: app.client_id };
  const auth = oauth.ClientSecretBasic(app.client_secret);
  const grant = async () => {
    const res = await oauth.genericTokenEndpointRequest(as, client, auth, JWT_BEARER, { assertion: await aliceJag() }, { [oauth.allowInsecureRequests]: true });
    return oauth.processGenericTokenEndpointResponse(as, client, res);
  };
  const before = await issuedCount();
  const tokens = await grant();
  assert.equal(tokens.token_type, "bearer");
  assert.deepEqual(tokens.scope.split(" ").sort(), ["posts:read", "profile:read"]);
  assert.equal(tokens.refresh_token, undefined, "the draft: no refresh token; the client presents a fresh ID-JAG");
  assert.equal(await issuedCount(), before + 1);
  // Cached keys: the client's read and the issuing batch, two round trips.
  await grant();
  assert.equal(lastLine(server, "token/id_jag")?.d1, 2, JSON.stringify(lastLine(server, "token/id_jag")));
  const row = await server.db
    .prepare("SELECT g.actor, g.user_id, g.org_id, g.audience, u.external_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.source = 'id_jag' ORDER BY g.created_at DESC LIMIT 1")
    .first();
  assert.deepEqual([row.actor, row.external_id, row.org_id, JSON.parse(row.audience)], ["self", "alice", "org_acme", [mcp.resource]]);
  const audit = await server.db.prepare("SELECT detail FROM audit_events WHERE action = 'id_jag.token_issued' ORDER BY id DESC LIMIT 1").first();
  assert.equal(JSON.parse(audit.detail).issuer, acmeIdp.issuer);

  const mcpClient = new Client({ name: "id-jag-test", version: "1.0.0" });
  await mcpClient.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } } }));
  try {
    const who = await mcpClient.callTool({ name: "whoami", arguments: {} });
    assert.equal(who.isError, undefined, JSON.stringify(who));
    assert.equal(who.structuredContent.client_id, app.client_id);
    assert.equal(who.structuredContent.org, "org_acme");
    assert.deepEqual([who.structuredContent.aud].flat(), [mcp.resource]);
    const sum = await mcpClient.callTool({ name: "add", arguments: { a: 40, b: 2 } });
    assert.deepEqual(sum.content, [{ type: "text", text: "42" }]);
  } finally {
    await mcpClient.close();
  }
});

test("an email-mapped issuer, a narrower request scope, and a DPoP proof binding the token", async () => {
  const jag = await globexIdp.sign({ as: issuer, clientId: other.client_id, sub: "00u-bob", resource: mcp.resource, claims: { email: "BOB@globex.test" } });
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" });
  const proof = await new SignJWT({ jti: randomUUID(), htm: "POST", htu: `${issuer}/oauth/token`, iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
    .sign(privateKey);
  const res = await jwtBearer(jag, { scope: "profile:read" }, other, { dpop: proof });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, "DPoP");
  assert.equal(body.scope, "profile:read");
  const claims = JSON.parse(Buffer.from(body.access_token.split(".")[1], "base64url").toString());
  assert.equal(claims.org_id, "org_globex");
  assert.ok(claims.cnf?.jkt, "bound to the proof's key");
});

// ---- refusals: each issues nothing ------------------------------------------------

test("refused: an untrusted issuer, another org's issuer for its user, a wrong aud, another client's ID-JAG", async () => {
  const stranger = idp.tenant("stranger");
  await refused(async () => jwtBearer(await stranger.sign({ as: issuer, clientId: app.client_id, sub: "alice", resource: mcp.resource })), 400, "invalid_grant", /not trusted by any organization/);
  const before = await refusals();
  // Bob is globex's; acme's IdP cannot vouch for him.
  await refused(async () => jwtBearer(await aliceJag({ sub: "bob" })), 400, "invalid_grant", /not a member of the organization that trusts its issuer/);
  // Nor can globex's IdP act for acme's Alice (by email).
  await refused(async () => jwtBearer(await globexIdp.sign({ as: issuer, clientId: app.client_id, sub: "x", resource: mcp.resource, claims: { email: "alice@acme.test" } })), 400, "invalid_grant", /not a member/);
  await refused(async () => jwtBearer(await aliceJag({ as: `${issuer}/oauth/token` })), 400, "invalid_grant", /aud must be this server's issuer/);
  await refused(async () => jwtBearer(await aliceJag({ claims: { aud: [issuer, "https://other.example"] } })), 400, "invalid_grant", /aud/);
  // The ID-JAG names another client than the one authenticating.
  await refused(async () => jwtBearer(await aliceJag({ clientId: other.client_id })), 400, "invalid_grant", /issued to another client/);
  // A client the issuer does not allow, with an ID-JAG of its own.
  await refused(async () => jwtBearer(await aliceJag({ clientId: other.client_id }), {}, other), 400, "unauthorized_client", /allowed_clients/);
  // Refusals of a genuine ID-JAG (signature and claims hold) are audited in
  // the issuer's org; the others (anyone could have made them) only logged.
  assert.equal(await refusals(), before + 2, "the two members-only refusals are audited");
});

test("refused: a replayed jti, expired or too long-lived, a bad signature, alg none, not an ID-JAG", async () => {
  const jag = await aliceJag();
  assert.equal((await jwtBearer(jag)).status, 200);
  await refused(() => jwtBearer(jag), 400, "invalid_grant", /already used/);
  const now = Math.floor(Date.now() / 1000);
  await refused(async () => jwtBearer(await aliceJag({ now: now - 600 })), 400, "invalid_grant", /expired/);
  await refused(async () => jwtBearer(await aliceJag({ claims: { exp: now + 3600 } })), 400, "invalid_grant", /within 300 seconds/);
  // Signed by a key the issuer never published, under its key's kid.
  const forged = { ...idpKey(acmeIdp.key.kid) };
  await refused(async () => jwtBearer(await aliceJag({ key: forged })), 400, "invalid_grant", /signature does not verify/);
  const none = `${b64url(JSON.stringify({ alg: "none", typ: "oauth-id-jag+jwt" }))}.${b64url(JSON.stringify({ iss: acmeIdp.issuer, sub: "alice", aud: issuer, client_id: app.client_id, jti: randomUUID(), iat: now, exp: now + 60, resource: mcp.resource }))}.`;
  await refused(() => jwtBearer(none), 400, "invalid_grant", /alg is not accepted/);
  await refused(async () => jwtBearer(await aliceJag({ header: { alg: "ES256", typ: "JWT" } })), 400, "invalid_grant", /not an ID-JAG/);
  await refused(() => jwtBearer(""), 400, "invalid_request", /assertion is required/);
  // No client authentication at all.
  await refused(
    async () => server.fetch("/oauth/token", { method: "POST", headers: FORM, body: form({ grant_type: JWT_BEARER, assertion: await aliceJag(), client_id: app.client_id }) }),
    401,
    "invalid_client",
    /secret/,
  );
});

test("refused: a resource not configured, not the issuer's, or not the ID-JAG's; scopes beyond the allowed set", async () => {
  await refused(async () => jwtBearer(await aliceJag({ resource: "https://elsewhere.example/mcp" })), 400, "invalid_target", /not one this server serves/);
  // Served here, but not among the globex issuer's resources.
  await refused(
    async () => jwtBearer(await globexIdp.sign({ as: issuer, clientId: app.client_id, sub: "x", resource: `${issuer}/api/v1`, claims: { email: "bob@globex.test" } })),
    400,
    "invalid_target",
    /trusted issuer lists/,
  );
  await refused(async () => jwtBearer(await aliceJag(), { resource: `${issuer}/api/v1` }), 400, "invalid_target", /not one the ID-JAG names/);
  await refused(async () => jwtBearer(await aliceJag({ resource: undefined })), 400, "invalid_target", /name the resource/);
  // Carol is a member: posts:write is outside her role, so outside the set.
  await refused(async () => jwtBearer(await aliceJag({ sub: "carol" }), { scope: "profile:read posts:write" }), 400, "invalid_scope", /outside what this ID-JAG allows/);
  // The ID-JAG's scope caps the request's too.
  await refused(async () => jwtBearer(await aliceJag({ scope: "profile:read" }), { scope: "posts:read" }), 400, "invalid_scope", /posts:read/);
  // Carol without a scope asked for: what is left of the intersection.
  const res = await jwtBearer(await aliceJag({ sub: "carol", scope: "profile:read posts:read posts:write" }));
  assert.deepEqual((await res.json()).scope.split(" ").sort(), ["posts:read", "profile:read"]);
});

test("the Azure DevOps profile off: its assertion form is not an ID-JAG, refused, nothing issued", async () => {
  // The document's exchange (code as `assertion`, secret as
  // `client_assertion`): with the profile off the core refuses it.
  await refused(
    () =>
      server.fetch("/oauth/token", {
        method: "POST",
        headers: FORM,
        body: form({
          grant_type: JWT_BEARER,
          assertion: "a-code-from-response-type-assertion",
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: app.client_secret,
        }),
      }),
    401,
    "invalid_client",
    /client assertion must be a JWS/,
  );
  // With this client's own credentials, it is still no ID-JAG.
  await refused(() => jwtBearer("a-code-from-response-type-assertion"), 400, "invalid_grant", /not a compact JWS/);
});
