// Issue 10, first "Done when": the unmodified MCP TypeScript SDK client
// (@modelcontextprotocol/sdk, pinned) connects to a small MCP server
// (tests/mcp/server.mjs: the SDK's own server classes, its own RFC 9728
// metadata naming this issuer, tokens checked with jose against jwks_uri or by
// RFC 7662 introspection) whose tools are protected by this authorization
// server. The SDK drives discovery, registration, PKCE, `resource` and the
// token exchange itself; the test only plays the user in the consent UI
// (the OAuthClientProvider's redirectToAuthorization) and hands the code back
// through transport.finishAuth(code), as an application embedding the SDK does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, createHash } from "node:crypto";
import { Response as MfResponse } from "miniflare";
import { decodeJwt } from "jose";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { startMcpServer } from "../mcp/server.mjs";
import { startDocumentServer } from "./cimd_server.mjs";
import { startServer, Browser, registerApp, hiddenFields, bearer, tokensFor, freePort, testSigningKeys } from "./support.mjs";

const REDIRECT = "http://127.0.0.1:33418/oauth/callback";
// The MCP SDK accepts only an https `clientMetadataUrl` (client/auth.js
// isHttpsUrl), so the document has an https URL on a reserved name; the
// worker's outbound fetches go to the test (Miniflare `outboundService`),
// which serves that name from a loopback server.
const CIMD_HOST = "mcp-client.example";
const CIMD_PATH = "/oauth/client-metadata.json";
const CIMD_URL = `https://${CIMD_HOST}${CIMD_PATH}`;

let as, mcp, mcpIntrospect, docServer, alice, preApp, rsClient;
const RS_CLIENT_ID = "app_mcp_introspecting_rs";

/** The client's metadata document (draft-ietf-oauth-client-id-metadata-document), on loopback. */
async function startDocServer() {
  const docs = await startDocumentServer();
  docs.route(CIMD_PATH, {
    headers: { "cache-control": "max-age=60" },
    body: {
      client_id: CIMD_URL,
      client_name: "CIMD MCP test client",
      client_uri: `https://${CIMD_HOST}/`,
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    },
  });
  return docs;
}

/** The worker's internet: the CIMD host is the loopback document server; nothing else exists. */
async function outbound(request) {
  const url = new URL(request.url);
  if (url.protocol === "https:" && url.host === CIMD_HOST) {
    const local = `${docServer.origin}${url.pathname}${url.search}`;
    const accept = request.headers.get("accept");
    const res = await fetch(local, { method: request.method, headers: accept ? { accept } : {}, redirect: "manual" });
    return new MfResponse(await res.arrayBuffer(), { status: res.status, headers: [...res.headers] });
  }
  return new MfResponse("no such host in this test", { status: 502 });
}

before(async () => {
  docServer = await startDocServer();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  mcp = await startMcpServer({ issuer });
  mcpIntrospect = await startMcpServer({ issuer, validation: "introspection", introspectionClient: () => rsClient });
  as = await startServer(
    {
      ACCESS_TOKEN_FORMAT: "jwt",
      JWT_SIGNING_KEYS: testSigningKeys("mcp-test"),
      // The MCP server first: until RFC 8707 narrows each token to its
      // `resource`, a JWT's audience is the first resource, and the
      // pre-registered scenario must pass today.
      RESOURCES: `${mcp.resource}, ${issuer}/api/v1, ${mcpIntrospect.resource}`,
      INTROSPECTION_CLIENTS: RS_CLIENT_ID,
      DCR: "open",
      // The document's URL is https (see CIMD_URL), so the development-only
      // CIMD_ALLOW_HTTP_LOOPBACK is not needed.
      CIMD: "on",
    },
    { port, worker: { outboundService: outbound } },
  );
  assert.equal(as.base, issuer);
  alice = new Browser(as);
  await alice.signIn("alice@acme.test", "alice-password");
  // A pre-registered app, as other tests register them.
  preApp = await registerApp(as, { name: "Pre-registered MCP client", redirect_uris: [REDIRECT], scopes: ["profile:read", "posts:read"] });
  // The introspecting MCP server's own confidential client, under the id
  // INTROSPECTION_CLIENTS names (ids are random, so its row is copied).
  const rs = await registerApp(as, { name: "MCP resource server" });
  const row = await as.db.prepare("SELECT * FROM apps WHERE id = ?").bind(rs.client_id).first();
  row.id = RS_CLIENT_ID;
  const cols = Object.keys(row);
  await as.db.prepare(`INSERT INTO apps (${cols.join(",")}) VALUES (${cols.map(() => "?").join(",")})`).bind(...cols.map((c) => row[c])).run();
  rsClient = { client_id: RS_CLIENT_ID, client_secret: rs.client_secret };
});
after(async () => {
  await as?.close();
  await mcp?.close();
  await mcpIntrospect?.close();
  await docServer?.close();
});

/**
 * An OAuthClientProvider as an application embedding the SDK writes one: it
 * keeps what the SDK hands it, and "redirects" by remembering the URL for the
 * test's user to open.
 */
class TestProvider {
  constructor({ clientInformation, clientMetadataUrl, name = "MCP SDK test client" } = {}) {
    this._clientInformation = clientInformation;
    this.clientMetadataUrl = clientMetadataUrl;
    this.authorizationUrls = [];
    this._state = undefined;
    this._clientMetadata = {
      client_name: name,
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return this._clientMetadata;
  }
  state() {
    this._state = randomBytes(12).toString("base64url");
    return this._state;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this._clientInformation = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    if (!this._verifier) throw new Error("no code verifier saved");
    return this._verifier;
  }
}

/**
 * The user's part: open the authorization URL in the signed-in browser,
 * approve on the consent page, and read the code from the redirect back to
 * the client (checking `state` and RFC 9207 `iss`, as a client should).
 */
async function approve(provider) {
  const url = provider.authorizationUrls.at(-1);
  assert.ok(url, "the SDK asked for a redirect to the authorization endpoint");
  assert.equal(url.origin, as.base);
  const page = await alice.fetch(url.pathname + url.search);
  let res = page;
  let consentPage;
  // A user who already granted exactly this is sent straight back.
  if (page.status !== 302) {
    consentPage = await page.text();
    assert.equal(page.status, 200, `consent page: ${consentPage.slice(0, 300)}`);
    res = await alice.post("/oauth/authorize", { ...hiddenFields(consentPage), org: "org_acme", decision: "approve" });
    assert.equal(res.status, 303, await res.text());
  }
  const back = new URL(res.headers.get("location"));
  assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
  assert.equal(back.searchParams.get("state"), provider._state);
  assert.equal(back.searchParams.get("iss"), as.base);
  const code = back.searchParams.get("code");
  assert.ok(code, `no code in ${back}`);
  return { code, consentPage };
}

/** A raw MCP request (tools/list) to an MCP server, with a bearer token if given. */
const mcpCall = (server, token) =>
  fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });

const newClient = () => new Client({ name: "ecosystem-mcp-sdk-test", version: "1.0.0" });

/**
 * The SDK's documented flow: connect → UnauthorizedError after the redirect
 * was requested → the user approves → transport.finishAuth(code) → connect
 * again with a new transport. Returns the connected client.
 */
async function connectThroughOAuth(provider, server = mcp) {
  const first = new StreamableHTTPClientTransport(server.url, { authProvider: provider });
  await assert.rejects(newClient().connect(first), UnauthorizedError);
  const { code, consentPage } = await approve(provider);
  await first.finishAuth(code);
  await first.close();
  // Why the MCP server would refuse the token, before the SDK hides it.
  const probe = await mcpCall(server, provider.tokens()?.access_token);
  assert.equal(probe.status, 200, `MCP server: ${JSON.stringify(server.seen.at(-1))}`);
  const client = newClient();
  await client.connect(new StreamableHTTPClientTransport(server.url, { authProvider: provider }));
  return { client, consentPage };
}

/** The tools answer, for the user who consented, in the org chosen. */
async function assertToolsWork(client, clientId, server = mcp) {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ["add", "whoami"]);
  const sum = await client.callTool({ name: "add", arguments: { a: 20, b: 22 } });
  assert.deepEqual(sum.content, [{ type: "text", text: "42" }]);
  const who = await client.callTool({ name: "whoami", arguments: {} });
  assert.equal(who.isError, undefined, JSON.stringify(who));
  assert.equal(who.structuredContent.client_id, clientId);
  assert.equal(who.structuredContent.org, "org_acme");
  assert.match(who.structuredContent.sub, /^usr_|^u_/);
  assert.ok(who.structuredContent.scopes.includes("profile:read"));
  const aud = [who.structuredContent.aud].flat();
  assert.ok(aud.includes(server.resource), `aud ${JSON.stringify(who.structuredContent.aud)}`);
}

/** The authorization request the SDK built: PKCE S256, this resource, the metadata's scopes. */
function assertAuthorizationRequest(url, clientId, server = mcp) {
  const q = url.searchParams;
  assert.equal(q.get("client_id"), clientId);
  assert.equal(q.get("response_type"), "code");
  assert.equal(q.get("code_challenge_method"), "S256");
  assert.ok(q.get("code_challenge"));
  assert.equal(q.get("redirect_uri"), REDIRECT);
  assert.equal(q.get("resource"), server.resource);
  assert.equal(q.get("scope"), "profile:read");
}

test("the MCP server: 401 with a resource_metadata challenge, and RFC 9728 metadata naming this issuer", async () => {
  const res = await mcpCall(mcp);
  assert.equal(res.status, 401);
  const challenge = res.headers.get("www-authenticate");
  assert.match(challenge, /^Bearer /);
  assert.match(challenge, new RegExp(`resource_metadata="${mcp.metadataUrl}"`));
  const doc = await (await fetch(mcp.metadataUrl)).json();
  assert.equal(doc.resource, mcp.resource);
  assert.deepEqual(doc.authorization_servers, [as.base]);
  // The issuer it names describes itself with that issuer, and lists the MCP
  // server among its protected resources.
  const meta = await (await as.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.issuer, as.base);
  assert.ok(meta.protected_resources.includes(mcp.resource));
  assert.ok(meta.code_challenge_methods_supported.includes("S256"));
});

test("pre-registered client: the SDK discovers, authorizes with `resource`, exchanges, and calls the tools", async () => {
  const provider = new TestProvider({ clientInformation: { client_id: preApp.client_id, client_secret: preApp.client_secret } });
  const { client } = await connectThroughOAuth(provider);
  try {
    assertAuthorizationRequest(provider.authorizationUrls[0], preApp.client_id);
    // The token the SDK holds: an RFC 9068 JWT for the MCP server, for this client.
    const claims = decodeJwt(provider.tokens().access_token);
    assert.equal(claims.iss, as.base);
    assert.equal(claims.client_id, preApp.client_id);
    assert.deepEqual([claims.aud].flat(), [mcp.resource]);
    assert.ok(provider.tokens().refresh_token);
    await assertToolsWork(client, preApp.client_id);
    assert.ok(mcp.seen.at(-1).ok);
  } finally {
    await client.close();
  }
});

test("when the MCP server refuses its access token, the SDK refreshes (rotation, same audience) and retries the call", async () => {
  const provider = new TestProvider({ clientInformation: { client_id: preApp.client_id, client_secret: preApp.client_secret } });
  const { client } = await connectThroughOAuth(provider);
  try {
    const first = provider.tokens();
    // As if the access token had expired or been revoked.
    provider.saveTokens({ ...first, access_token: "at_stale" });
    const checks = mcp.seen.length;
    const who = await client.callTool({ name: "whoami", arguments: {} });
    assert.equal(who.structuredContent.client_id, preApp.client_id);
    const now = provider.tokens();
    assert.notEqual(now.access_token, "at_stale");
    assert.notEqual(now.refresh_token, first.refresh_token, "the refresh token rotated");
    assert.deepEqual([decodeJwt(now.access_token).aud].flat(), [mcp.resource]);
    assert.equal(provider.authorizationUrls.length, 1, "no new authorization was needed");
    const outcomes = mcp.seen.slice(checks).map((s) => s.ok);
    assert.equal(outcomes[0], false, "the stale token was refused");
    assert.equal(outcomes.at(-1), true);
  } finally {
    await client.close();
  }
});

// Issue 15 item 15: the SDK refreshes once per request that met a 401, so
// two requests in flight when the access token expires present the same
// refresh token. With REFRESH_REUSE_GRACE_SECONDS=0 (the old default) the
// second was reuse: the grant was revoked and the user had to authorize again.
test("two requests that find the access token expired refresh at once with the same refresh token, and the SDK stays signed in", async () => {
  const provider = new TestProvider({ clientInformation: { client_id: preApp.client_id, client_secret: preApp.client_secret } });
  const { client } = await connectThroughOAuth(provider);
  try {
    const first = provider.tokens();
    provider.saveTokens({ ...first, access_token: "at_stale" });
    // An application that persists tokens asynchronously (a file, a
    // keychain): the second request reads them before the first refresh is
    // saved, so both refreshes present the same refresh token.
    const save = provider.saveTokens.bind(provider);
    provider.saveTokens = (t) => new Promise((resolve) => setTimeout(() => resolve(save(t)), 300));
    const calls = await Promise.allSettled([
      client.callTool({ name: "whoami", arguments: {} }),
      client.callTool({ name: "whoami", arguments: {} }),
    ]);
    assert.deepEqual(calls.map((c) => c.status), ["fulfilled", "fulfilled"], calls.map((c) => String(c.reason ?? "")).join(" | "));
    for (const c of calls) assert.equal(c.value.structuredContent.client_id, preApp.client_id);
    const hash = createHash("sha256").update(first.refresh_token).digest("hex");
    const successors = await as.db.prepare("SELECT COUNT(*) AS n FROM tokens WHERE kind = 'refresh' AND parent = ?").bind(hash).first();
    assert.equal(successors.n, 2, "both refreshes presented the same refresh token");
    assert.equal(provider.authorizationUrls.length, 1, "no new authorization was needed");
    // Still signed in: the next expiry refreshes again.
    provider.saveTokens = save;
    provider.saveTokens({ ...provider.tokens(), access_token: "at_stale" });
    const again = await client.callTool({ name: "whoami", arguments: {} });
    assert.equal(again.structuredContent.client_id, preApp.client_id);
    assert.equal(provider.authorizationUrls.length, 1);
  } finally {
    await client.close();
  }
});

test("the MCP server refuses a missing, garbage or under-scoped token (401 / 403 insufficient_scope)", async () => {
  const call = (token) => mcpCall(mcp, token);
  assert.equal((await call("at_garbage")).status, 401);
  const forged = (await call("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJ4In0.")).status;
  assert.equal(forged, 401, "alg none");
  // A real token of this issuer, for this resource, without the tools' scope.
  const narrow = await tokensFor(as, alice, preApp, { scope: "posts:read", resource: mcp.resource });
  const res = await call(narrow.access_token);
  assert.equal(res.status, 403);
  assert.match(res.headers.get("www-authenticate"), /error="insufficient_scope"/);
  assert.match(res.headers.get("www-authenticate"), /scope="profile:read"/);
});

test("a token the SDK obtained for the MCP server is refused by this server's own /api/v1 (RFC 8707 audience)", async () => {
  const provider = new TestProvider({ clientInformation: { client_id: preApp.client_id, client_secret: preApp.client_secret } });
  const { client } = await connectThroughOAuth(provider);
  await client.close();
  const token = provider.tokens().access_token;
  assert.deepEqual([decodeJwt(token).aud].flat(), [mcp.resource]);
  const res = await bearer(as, "/api/v1/me", token);
  assert.equal(res.status, 401, `the platform API answered ${res.status} to a token for ${mcp.resource}`);
  assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
});

test("a token for the platform API (resource=<issuer>/api/v1) is refused by the MCP server", async () => {
  const t = await tokensFor(as, alice, preApp, { scope: "profile:read", resource: `${as.base}/api/v1`, prompt: "consent" });
  assert.deepEqual([decodeJwt(t.access_token).aud].flat(), [`${as.base}/api/v1`]);
  assert.equal((await bearer(as, "/api/v1/me", t.access_token)).status, 200);
  const res = await mcpCall(mcp, t.access_token);
  assert.equal(res.status, 401);
  assert.match(mcp.seen.at(-1).error, /aud/);
});

test("an MCP server that validates by RFC 7662 introspection accepts the SDK's token only with its own audience", async () => {
  const provider = new TestProvider({ clientInformation: { client_id: preApp.client_id, client_secret: preApp.client_secret } });
  const { client } = await connectThroughOAuth(provider, mcpIntrospect);
  try {
    assertAuthorizationRequest(provider.authorizationUrls[0], preApp.client_id, mcpIntrospect);
    await assertToolsWork(client, preApp.client_id, mcpIntrospect);
  } finally {
    await client.close();
  }
  // The same token is not good at the other MCP server.
  assert.equal((await mcpCall(mcp, provider.tokens().access_token)).status, 401);
});

test("discovery alone with RFC 7591 dynamic registration: RFC 9728 → RFC 8414 → register → authorize with resource → token → tool call", async () => {
  const meta = await (await as.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.registration_endpoint, `${as.base}/oauth/register`);
  const provider = new TestProvider({ name: "DCR MCP test client" });
  const { client, consentPage } = await connectThroughOAuth(provider);
  try {
    const info = provider.clientInformation();
    assert.ok(info?.client_id, "the SDK registered and saved a client");
    assert.notEqual(info.client_id, preApp.client_id);
    assert.equal(info.client_secret, undefined, "a public client under DCR=open");
    assertAuthorizationRequest(provider.authorizationUrls[0], info.client_id);
    assert.ok(consentPage, "a new client is shown the consent page");
    assert.match(consentPage, /unverified/i, "consent marks a dynamically registered client");
    await assertToolsWork(client, info.client_id);
  } finally {
    await client.close();
  }
});

test("Client ID Metadata Document: the client_id is the document's URL, fetched by the server, no registration", async () => {
  const meta = await (await as.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.client_id_metadata_document_supported, true);
  const before = docServer.hits(CIMD_PATH);
  const provider = new TestProvider({ clientMetadataUrl: CIMD_URL, name: "CIMD MCP test client" });
  const { client, consentPage } = await connectThroughOAuth(provider);
  try {
    assert.equal(provider.clientInformation().client_id, CIMD_URL);
    assertAuthorizationRequest(provider.authorizationUrls[0], CIMD_URL);
    assert.ok(docServer.hits(CIMD_PATH) > before, "the authorization server fetched the document");
    assert.ok(consentPage?.includes(CIMD_HOST), "consent shows the client's host");
    await assertToolsWork(client, CIMD_URL);
  } finally {
    await client.close();
  }
});
