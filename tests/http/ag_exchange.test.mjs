// Issue 20 item 1: token exchange (RFC 8693). An MCP server built with the
// MCP SDK (tests/mcp/server.mjs, its `platform_me` tool) receives a token for
// itself from an MCP SDK client, exchanges it for a narrower token for the
// platform API as its own confidential client (per-client `token_exchange`
// policy), and calls the API; the chain's `act` shows in introspection and
// nests after a second exchange; revoking the subject grant ends the whole
// chain (strict bearer mode here; `BEARER_MODE=jwt` and `edge` on servers of their own).
// Every refusal the issue lists is checked to have issued nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, createHash, randomUUID } from "node:crypto";
import { decodeJwt, SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint } from "jose";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { startMcpServer } from "../mcp/server.mjs";
import { startServer, Browser, registerApp, hiddenFields, bearer, tokensFor as tokensOnce, freePort, api, tokenRequest, clientRequest, count, lastLine, testSigningKeys, basic, form, FORM } from "./support.mjs";

const REDIRECT = "http://127.0.0.1:33419/oauth/callback";
const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT = "urn:ietf:params:oauth:token-type:access_token";
// Each call asks for a fresh consent: a repeat request would be approved without a page.
const tokensFor = (server, browser, app, query) => tokensOnce(server, browser, app, { prompt: "consent", ...query });
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const EXCHANGER_ID = "app_exchanging_mcp_server";
const ADMIN = "exchange-test-admin-token-0123456789abcdefghijk";

let as, mcp, alice, mcpClient, exchanger, api1, userApp;

/** A confidential app registered through the API, copied under a fixed id (INTROSPECTION_CLIENTS names it). */
async function fixedIdApp(server, id, body) {
  const app = await registerApp(server, body);
  const row = await server.db.prepare("SELECT * FROM apps WHERE id = ?").bind(app.client_id).first();
  row.id = id;
  const cols = Object.keys(row);
  await server.db.prepare(`INSERT INTO apps (${cols.join(",")}) VALUES (${cols.map(() => "?").join(",")})`).bind(...cols.map((c) => row[c])).run();
  return { ...app, client_id: id, id };
}

/** PATCH an app's token_exchange policy through the apps API. */
async function setPolicy(server, app, policy) {
  const cur = await (await api(server, "GET", `/api/v1/apps/${app.client_id}`)).json();
  return api(server, "PATCH", `/api/v1/apps/${app.client_id}`, { version: cur.version, token_exchange: policy });
}

const exchanges = (server = as) => count(server, "SELECT count(*) AS n FROM grants WHERE source = 'token_exchange'");
const exchangeTokens = (server = as) =>
  count(server, "SELECT count(*) AS n FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE g.source = 'token_exchange'");

const exchange = (server, app, fields) => tokenRequest(server, app, { grant_type: GRANT, subject_token_type: AT, ...fields });

async function introspect(server, client, token) {
  const res = await clientRequest(server, "/oauth/introspect", client, { token });
  assert.equal(res.status, 200);
  return res.json();
}

before(async () => {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  api1 = `${issuer}/api/v1`;
  mcp = await startMcpServer({
    issuer,
    validation: "introspection",
    introspectionClient: () => exchanger,
    exchange: { client: () => exchanger, target: api1 },
  });
  as = await startServer({ RESOURCES: `${api1}, ${mcp.resource}`, INTROSPECTION_CLIENTS: EXCHANGER_ID, DCR: "open", PLATFORM_ADMIN_TOKEN: ADMIN }, { port });
  alice = new Browser(as);
  await alice.signIn("alice@acme.test", "alice-password");
  mcpClient = await registerApp(as, { name: "MCP SDK client", client_type: "public", redirect_uris: [REDIRECT], scopes: ["profile:read", "posts:read"] });
  exchanger = await fixedIdApp(as, EXCHANGER_ID, { name: "Exchanging MCP server", scopes: ["profile:read", "posts:read"] });
  const res = await setPolicy(as, exchanger, { subject_audiences: [mcp.resource], audiences: [api1] });
  assert.equal(res.status, 200, await res.text());
  // A confidential client of the user's own, for subject tokens made without the SDK.
  userApp = await registerApp(as, { name: "User's client" });
});
after(async () => {
  await as?.close();
  await mcp?.close();
});

/** The MCP SDK's OAuthClientProvider, as an embedding application writes one. */
class TestProvider {
  constructor(client_id) {
    this._clientInformation = { client_id };
    this.authorizationUrls = [];
  }
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return { client_name: "MCP SDK client", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" };
  }
  state() {
    return (this._state = randomBytes(12).toString("base64url"));
  }
  clientInformation() {
    return this._clientInformation;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(t) {
    this._tokens = t;
  }
  redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    return this._verifier;
  }
}

/** Alice approves the SDK's authorization request; the code from the redirect. */
async function approve(provider) {
  const url = provider.authorizationUrls.at(-1);
  const page = await alice.fetch(url.pathname + url.search);
  let res = page;
  if (page.status !== 302) {
    const html = await page.text();
    assert.equal(page.status, 200, html.slice(0, 300));
    res = await alice.post("/oauth/authorize", { ...hiddenFields(html), org: "org_acme", decision: "approve" });
    assert.equal(res.status, 303, await res.text());
  }
  const back = new URL(res.headers.get("location"));
  assert.equal(back.searchParams.get("state"), provider._state);
  return back.searchParams.get("code");
}

async function connect(provider) {
  const first = new StreamableHTTPClientTransport(mcp.url, { authProvider: provider });
  await assert.rejects(new Client({ name: "ag-exchange", version: "1.0.0" }).connect(first), UnauthorizedError);
  await first.finishAuth(await approve(provider));
  await first.close();
  const client = new Client({ name: "ag-exchange", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(mcp.url, { authProvider: provider }));
  return client;
}

test("the MCP journey: the server exchanges its token for a platform-API token, act shows, a chain nests it, revoking the subject grant ends the chain", async () => {
  const meta = await (await as.fetch("/.well-known/oauth-authorization-server")).json();
  assert.ok(meta.grant_types_supported.includes(GRANT));
  const oidc = await (await as.fetch("/.well-known/openid-configuration")).json();
  assert.ok(oidc.grant_types_supported.includes(GRANT));

  const provider = new TestProvider(mcpClient.client_id);
  const client = await connect(provider);
  const subject = provider.tokens();
  const before = await exchanges();
  const called = await client.callTool({ name: "platform_me", arguments: {} });
  assert.equal(called.isError, undefined, JSON.stringify(called));
  const out = called.structuredContent;
  assert.equal(out.status, 200, JSON.stringify(out));
  assert.equal(out.me.user?.email, "alice@acme.test", JSON.stringify(out.me));
  assert.equal(out.me.app.client_id, EXCHANGER_ID);
  assert.deepEqual(out.me.act, { sub: EXCHANGER_ID });
  assert.equal(out.exchanged.issued_token_type, AT);
  assert.equal(out.exchanged.token_type, "Bearer");
  assert.equal(out.exchanged.refresh_token, undefined);
  assert.equal(out.exchanged.scope, "profile:read");
  assert.ok(out.exchanged.expires_in > 0 && out.exchanged.expires_in <= subject.expires_in);
  assert.equal(await exchanges(), before + 1);
  // One round trip for the reads (client, subject), one for the issuing batch.
  assert.equal(lastLine(as, "token/token_exchange")?.d1, 2, JSON.stringify(lastLine(as, "token/token_exchange")));

  // The user's own token still works at the MCP server only: not at the API.
  assert.equal((await bearer(as, "/api/v1/me", subject.access_token)).status, 401);
  const first = out.exchanged.access_token;
  const seen = await introspect(as, exchanger, first);
  assert.equal(seen.active, true);
  assert.equal(seen.client_id, EXCHANGER_ID);
  assert.equal(seen.aud, api1);
  assert.deepEqual(seen.act, { sub: EXCHANGER_ID });

  // A second exchange down the chain, by another client that may exchange API tokens.
  const second = await registerApp(as, { name: "Second hop" });
  assert.equal((await setPolicy(as, second, { subject_audiences: [api1], audiences: [api1], scopes: ["profile:read"] })).status, 200);
  const res = await exchange(as, second, { subject_token: first });
  const hop = await res.json();
  assert.equal(res.status, 200, JSON.stringify(hop));
  const chained = await introspect(as, second, hop.access_token);
  assert.deepEqual(chained.act, { sub: second.client_id, act: { sub: EXCHANGER_ID } });
  assert.equal(chained.sub, seen.sub);
  assert.equal((await bearer(as, "/api/v1/me", hop.access_token)).status, 200);
  const audit = await as.db.prepare("SELECT * FROM audit_events WHERE action = 'token.exchanged' AND app_id = ?").bind(second.client_id).first();
  assert.ok(audit, "the exchange is audited");
  assert.equal(JSON.parse(audit.detail).act.act.sub, EXCHANGER_ID);

  // Revoking the exchanged token itself leaves the subject alive.
  const mine = await exchange(as, second, { subject_token: first });
  const mineTok = (await mine.json()).access_token;
  assert.equal((await clientRequest(as, "/oauth/revoke", second, { token: mineTok })).status, 200);
  assert.equal((await bearer(as, "/api/v1/me", mineTok)).status, 401);
  assert.equal((await bearer(as, "/api/v1/me", first)).status, 200);
  assert.equal((await introspect(as, exchanger, first)).active, true);

  // The user's client revokes its refresh token: the subject grant ends, and every exchange from it.
  const revoked = await clientRequest(as, "/oauth/revoke", mcpClient, { token: subject.refresh_token, token_type_hint: "refresh_token" });
  assert.equal(revoked.status, 200);
  assert.equal((await bearer(as, "/api/v1/me", first)).status, 401);
  assert.equal((await bearer(as, "/api/v1/me", hop.access_token)).status, 401);
  assert.equal((await introspect(as, exchanger, first)).active, false);
  assert.equal((await introspect(as, second, hop.access_token)).active, false);
  const root = await as.db.prepare("SELECT grant_id FROM tokens WHERE hash = ?").bind(sha256(subject.refresh_token)).first();
  assert.equal(await count(as, "SELECT count(*) AS n FROM grants WHERE root_grant_id = ?", root.grant_id), 3);
  assert.equal(await count(as, "SELECT count(*) AS n FROM grants WHERE root_grant_id = ? AND revoked_at IS NULL", root.grant_id), 0);
  await client.close();
});

test("the policy: set, read and checked through /api/v1/apps; a public client refused; /oauth/register refuses it", async () => {
  const app = await registerApp(as, {
    name: "Policy at creation",
    token_exchange: { subject_audiences: [`${mcp.resource}/`], audiences: [api1], actor_token: "required" },
  });
  assert.deepEqual(app.token_exchange, { subject_audiences: [mcp.resource], audiences: [api1], actor_token: "required" });
  const read = await (await api(as, "GET", `/api/v1/apps/${app.client_id}`)).json();
  assert.deepEqual(read.token_exchange, app.token_exchange);
  for (const [policy, why] of [
    [{ subject_audiences: [], audiences: ["https://elsewhere.example/api"] }, /RESOURCES/],
    [{ audiences: [api1] }, /subject_audiences/],
    [{ subject_audiences: [], audiences: [api1], actor_token: "sometimes" }, /actor_token/],
    [{ subject_audiences: [], audiences: [api1], scope: ["x"] }, /unknown field/],
    ["on", /null or an object/],
  ]) {
    const res = await setPolicy(as, app, policy);
    const body = await res.json();
    assert.equal(res.status, 400, JSON.stringify(policy));
    assert.match(body.error_description ?? body.message ?? JSON.stringify(body), why);
  }
  const off = await setPolicy(as, app, null);
  assert.equal(off.status, 200);
  assert.equal((await off.json()).token_exchange, null);
  const pub = await api(as, "POST", "/api/v1/apps", {
    name: "Public", client_type: "public", redirect_uris: [REDIRECT], scopes: ["profile:read"],
    token_exchange: { subject_audiences: [], audiences: [api1] },
  });
  assert.equal(pub.status, 400);
  assert.match(JSON.stringify(await pub.json()), /confidential/);
  const reg = await as.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Self", redirect_uris: [REDIRECT], token_exchange: { subject_audiences: [], audiences: [api1] } }),
  });
  assert.equal(reg.status, 400);
  const err = await reg.json();
  assert.equal(err.error, "invalid_client_metadata");
  assert.match(err.error_description, /token_exchange/);
  // The platform sets it on a self-registered client (admin clients API).
  // (DCR=open registers public clients only: this one is made confidential in SQL for the test.)
  const dcr = await as.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Self-registered server", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
  });
  assert.equal(dcr.status, 201, await dcr.clone().text());
  const { client_id } = await dcr.json();
  const refused = await api(as, "PATCH", `/admin/v1/clients/${client_id}`, { token_exchange: { subject_audiences: [], audiences: [api1] } }, ADMIN);
  assert.equal(refused.status, 400);
  assert.match(JSON.stringify(await refused.json()), /confidential/);
  await as.db.prepare("UPDATE apps SET client_type = 'confidential', secret_hash = ? WHERE id = ?").bind("0".repeat(64), client_id).run();
  const policy = { subject_audiences: [mcp.resource], audiences: [api1] };
  const set = await api(as, "PATCH", `/admin/v1/clients/${client_id}`, { token_exchange: policy }, ADMIN);
  const setBody = await set.json();
  assert.equal(set.status, 200, JSON.stringify(setBody));
  assert.deepEqual(setBody.token_exchange, { ...policy, actor_token: "optional" });
  const got = await (await api(as, "GET", `/admin/v1/clients/${client_id}`, undefined, ADMIN)).json();
  assert.deepEqual(got.token_exchange, setBody.token_exchange);
  const bad = await api(as, "PATCH", `/admin/v1/clients/${client_id}`, { token_exchange: { subject_audiences: [], audiences: [] } }, ADMIN);
  assert.equal(bad.status, 400);
  const cleared = await api(as, "PATCH", `/admin/v1/clients/${client_id}`, { token_exchange: null }, ADMIN);
  assert.equal((await cleared.json()).token_exchange, null);
});

test("refused, each issuing nothing: widening, a target outside the policy, no policy, a public client, a refresh token, expired and revoked subjects, another client's audience, a missing required actor_token", async () => {
  const t = await tokensFor(as, alice, userApp, { resource: mcp.resource, scope: "profile:read" });
  const apiTok = await tokensFor(as, alice, userApp, { scope: "profile:read posts:read" });
  const issuedBefore = [await exchanges(), await exchangeTokens()];
  const refuse = async (app, fields, status, error, why) => {
    const res = await exchange(as, app, fields);
    const body = await res.json();
    assert.equal(res.status, status, `${why}: ${JSON.stringify(body)}`);
    assert.equal(body.error, error, `${why}: ${JSON.stringify(body)}`);
    assert.match(body.error_description, why);
  };
  await refuse(exchanger, { subject_token: t.access_token, scope: "profile:read posts:read" }, 400, "invalid_scope", /posts:read.*only narrows/);
  await refuse(exchanger, { subject_token: t.access_token, resource: mcp.resource }, 400, "invalid_target", /token_exchange audiences/);
  await refuse(exchanger, { subject_token: t.access_token, audience: "https://elsewhere.example/api" }, 400, "invalid_target", /not a resource/);
  const plain = await registerApp(as, { name: "No policy" });
  await refuse(plain, { subject_token: t.access_token }, 400, "unauthorized_client", /token_exchange policy is not set/);
  const pub = await registerApp(as, { name: "Public", client_type: "public", redirect_uris: [REDIRECT], scopes: ["profile:read"] });
  await as.db.prepare("UPDATE apps SET token_exchange = (SELECT token_exchange FROM apps WHERE id = ?) WHERE id = ?").bind(EXCHANGER_ID, pub.client_id).run();
  await refuse(pub, { subject_token: t.access_token }, 400, "unauthorized_client", /confidential client/);
  await refuse(exchanger, { subject_token: t.refresh_token }, 400, "invalid_request", /refresh token cannot be exchanged/);
  await refuse(exchanger, { subject_token: t.refresh_token, subject_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }, 400, "invalid_request", /refresh token/);
  await refuse(exchanger, { subject_token: t.access_token, requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }, 400, "invalid_request", /access tokens only/);
  await refuse(exchanger, { subject_token: apiTok.access_token }, 400, "invalid_request", /subject_audiences/);
  const strict = await registerApp(as, { name: "Needs an actor" });
  await setPolicy(as, strict, { subject_audiences: [mcp.resource], audiences: [api1], actor_token: "required" });
  await refuse(strict, { subject_token: t.access_token }, 400, "invalid_request", /requires an actor_token/);
  // Expired, then revoked.
  const expiring = await tokensFor(as, alice, userApp, { resource: mcp.resource, scope: "profile:read" });
  await as.db.prepare("UPDATE tokens SET expires_at = ? WHERE hash = ?").bind(Math.floor(Date.now() / 1000) - 5, sha256(expiring.access_token)).run();
  await refuse(exchanger, { subject_token: expiring.access_token }, 400, "invalid_request", /not active/);
  assert.equal((await clientRequest(as, "/oauth/revoke", userApp, { token: t.refresh_token })).status, 200);
  await refuse(exchanger, { subject_token: t.access_token }, 400, "invalid_request", /not active/);
  assert.deepEqual([await exchanges(), await exchangeTokens()], issuedBefore, "nothing was issued");
});

test("an actor_token names the actor; an ID token issued to the exchanging client is a subject", async () => {
  const strict = await registerApp(as, { name: "Actor-naming server", redirect_uris: ["http://localhost:3000/callback"] });
  await setPolicy(as, strict, { subject_audiences: [mcp.resource], audiences: [api1], actor_token: "required" });
  const subject = await tokensFor(as, alice, userApp, { resource: mcp.resource, scope: "profile:read" });
  // The actor: a token of the exchanging client's own (here: alice signed in to it).
  const own = await tokensFor(as, alice, strict, { scope: "openid profile:read" });
  // An actor token of another client names someone the caller cannot prove to be.
  let res = await exchange(as, strict, { subject_token: subject.access_token, actor_token: subject.access_token, actor_token_type: AT });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error_description, /issued to this client/);
  res = await exchange(as, strict, { subject_token: subject.access_token, actor_token: own.access_token, actor_token_type: AT });
  const withActor = await res.json();
  assert.equal(res.status, 200, JSON.stringify(withActor));
  const seen = await introspect(as, strict, withActor.access_token);
  assert.equal(seen.act.sub, decodeJwt(own.id_token).sub);

  // The ID token issued to `strict` stands for its grant.
  const open = await registerApp(as, { name: "ID token exchanger" });
  await setPolicy(as, open, { subject_audiences: [], audiences: [api1] });
  const idt = await exchange(as, strict, {
    subject_token: own.id_token,
    subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
    actor_token: own.access_token,
    actor_token_type: AT,
  });
  const fromId = await idt.json();
  assert.equal(idt.status, 200, JSON.stringify(fromId));
  assert.ok(fromId.expires_in <= 3600);
  assert.equal((await bearer(as, "/api/v1/me", fromId.access_token)).status, 200);
  // Another client cannot use that ID token.
  res = await exchange(as, open, { subject_token: own.id_token, subject_token_type: "urn:ietf:params:oauth:token-type:id_token" });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error_description, /another client/);
  // Revoking the grant the ID token stands for ends its exchanges.
  assert.equal((await clientRequest(as, "/oauth/revoke", strict, { token: own.refresh_token })).status, 200);
  assert.equal((await bearer(as, "/api/v1/me", fromId.access_token)).status, 401);
});

test("a DPoP proof at the token endpoint binds the exchanged token", async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  const t = await tokensFor(as, alice, userApp, { resource: mcp.resource, scope: "profile:read" });
  const send = async (nonce) => {
    const proof = await new SignJWT({ htm: "POST", htu: `${as.base}/oauth/token`, jti: randomUUID(), iat: Math.floor(Date.now() / 1000), nonce })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
      .sign(privateKey);
    return as.fetch("/oauth/token", {
      method: "POST",
      headers: { ...FORM, authorization: basic(exchanger.client_id, exchanger.client_secret), dpop: proof },
      body: form({ grant_type: GRANT, subject_token_type: AT, subject_token: t.access_token }),
    });
  };
  // The nonce dance (RFC 9449 §8) when the server asks for one.
  let res = await send();
  if (res.status === 400 && res.headers.get("dpop-nonce")) res = await send(res.headers.get("dpop-nonce"));
  const bound = await res.json();
  assert.equal(res.status, 200, JSON.stringify(bound));
  assert.equal(bound.token_type, "DPoP");
  const seen = await introspect(as, exchanger, bound.access_token);
  assert.equal(seen.cnf.jkt, await calculateJwkThumbprint(jwk));
  assert.deepEqual(seen.act, { sub: EXCHANGER_ID });
  // Not usable as a bearer token.
  assert.equal((await bearer(as, "/api/v1/me", bound.access_token)).status, 401);
});

test("BEARER_MODE=jwt: the exchanged JWT carries act (nested) and still dies with its subject grant", async () => {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const mcpRes = "https://mcp.example/mcp";
  const jwtAs = await startServer(
    { ACCESS_TOKEN_FORMAT: "jwt", BEARER_MODE: "jwt", JWT_SIGNING_KEYS: testSigningKeys("x"), RESOURCES: `${issuer}/api/v1, ${mcpRes}` },
    { port },
  );
  try {
    const bob = new Browser(jwtAs);
    await bob.signIn("alice@acme.test", "alice-password");
    const user = await registerApp(jwtAs, { name: "User's client" });
    const ex = await registerApp(jwtAs, { name: "Exchanger" });
    assert.equal((await setPolicy(jwtAs, ex, { subject_audiences: [mcpRes, `${issuer}/api/v1`], audiences: [`${issuer}/api/v1`] })).status, 200);
    const t = await tokensFor(jwtAs, bob, user, { resource: mcpRes, scope: "profile:read" });
    let res = await exchange(jwtAs, ex, { subject_token: t.access_token });
    const one = await res.json();
    assert.equal(res.status, 200, JSON.stringify(one));
    const claims = decodeJwt(one.access_token);
    assert.deepEqual(claims.act, { sub: ex.client_id });
    assert.equal(claims.aud, `${issuer}/api/v1`);
    assert.ok(claims.exp <= decodeJwt(t.access_token).exp);
    res = await exchange(jwtAs, ex, { subject_token: one.access_token, subject_token_type: "urn:ietf:params:oauth:token-type:jwt" });
    const two = await res.json();
    assert.equal(res.status, 200, JSON.stringify(two));
    assert.deepEqual(decodeJwt(two.access_token).act, { sub: ex.client_id, act: { sub: ex.client_id } });
    assert.equal((await bearer(jwtAs, "/api/v1/me", two.access_token)).status, 200);
    assert.equal((await clientRequest(jwtAs, "/oauth/revoke", user, { token: t.refresh_token })).status, 200);
    assert.equal((await bearer(jwtAs, "/api/v1/me", one.access_token)).status, 401);
    assert.equal((await bearer(jwtAs, "/api/v1/me", two.access_token)).status, 401);
    assert.equal((await introspect(jwtAs, ex, two.access_token)).active, false);
  } finally {
    await jwtAs.close();
  }
});

test("BEARER_MODE=edge: the exchanged token, served from KV, dies with its subject grant (at the latest once the cron evicts its copy)", async () => {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const mcpRes = "https://mcp.example/mcp";
  const edgeAs = await startServer({ BEARER_MODE: "edge", RESOURCES: `${issuer}/api/v1, ${mcpRes}` }, { port });
  try {
    const alice = new Browser(edgeAs);
    await alice.signIn("alice@acme.test", "alice-password");
    const user = await registerApp(edgeAs, { name: "User's client" });
    const ex = await registerApp(edgeAs, { name: "Exchanger" });
    assert.equal((await setPolicy(edgeAs, ex, { subject_audiences: [mcpRes], audiences: [`${issuer}/api/v1`] })).status, 200);
    const t = await tokensFor(edgeAs, alice, user, { resource: mcpRes, scope: "profile:read" });
    const res = await exchange(edgeAs, ex, { subject_token: t.access_token });
    const one = await res.json();
    assert.equal(res.status, 200, JSON.stringify(one));
    assert.equal((await bearer(edgeAs, "/api/v1/me", one.access_token)).status, 200);
    assert.equal((await clientRequest(edgeAs, "/oauth/revoke", user, { token: t.refresh_token })).status, 200);
    await edgeAs.scheduled();
    assert.equal((await bearer(edgeAs, "/api/v1/me", one.access_token)).status, 401, "the exchanged token ends with its subject grant");
    const live = await edgeAs.db.prepare("SELECT count(*) AS n FROM grants WHERE source = 'token_exchange' AND revoked_at IS NULL").first();
    assert.equal(live.n, 0, "the exchanged grant is revoked in D1");
  } finally {
    await edgeAs.close();
  }
});
