// Issue 10, item 1: OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document). An https URL is the
// client_id; the server fetches the JSON document at that URL (no redirects,
// time and size limits, JSON only), checks it, caches it by its HTTP caching
// headers and materialises the client as an apps row. Documents come from a
// loopback server the tests start (tests/http/cimd_server.mjs), which the
// development-only CIMD_ALLOW_HTTP_LOOPBACK admits.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer,
  Browser,
  consent,
  exchange,
  tokenRequest,
  bearer,
  authorizeQuery,
  FORM,
  form,
  eventually,
} from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

const MAX_CLIENTS = 40;
let docs, server, off, strict, alice;

before(async () => {
  docs = await startDocumentServer();
  server = await startServer({
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    // The "too slow" case waits this long; a test must not take long.
    CIMD_FETCH_TIMEOUT_SECONDS: "1",
    CIMD_MAX_CLIENTS: String(MAX_CLIENTS),
    // Every test here fetches from this one address and host; the fetch
    // budget itself is tested in review_issue10.
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "10000",
    CIMD_FETCHES_PER_HOST_PER_MINUTE: "10000",
  });
  off = await startServer({ CIMD_ALLOW_HTTP_LOOPBACK: "true" });
  strict = await startServer({ CIMD: "on" });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await server?.close();
  await off?.close();
  await strict?.close();
  await docs?.close();
});

/** Serve a document at `path` (with `extra` members and `headers`); the client as support.mjs helpers want it. */
function publish(path, extra = {}, headers = { "cache-control": "max-age=60" }) {
  const client_id = docs.url(path);
  docs.route(path, { headers, body: clientDocument(client_id, extra) });
  return { client_id, redirect_uris: extra.redirect_uris ?? clientDocument(client_id).redirect_uris };
}

const authorize = (browser, client, extra = {}) =>
  browser.fetch(`/oauth/authorize?${authorizeQuery(client, extra)}`);

/** A refusal shown as a page (RFC 6749 §4.1.2.1): never a redirect. */
async function assertPage(res, status, pattern) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("location"), null, "never redirected");
  const html = await res.text();
  assert.match(html, pattern);
  return html;
}

test("metadata advertises client_id_metadata_document_supported only when CIMD is on", async () => {
  const on = await (await server.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(on.client_id_metadata_document_supported, true);
  const no = await (await off.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(no.client_id_metadata_document_supported, undefined);
});

test("happy path: authorize (PKCE) → consent shows the host → token → API → refresh → revoke", async () => {
  const client = publish("/happy/client.json", { client_name: "Happy <script>alert(1)</script>" });
  const page = await authorize(alice, client);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<strong>127\.0\.0\.1<\/strong> — this app identified itself by its web address/);
  assert.ok(!html.includes("<script>alert(1)"), "the document's name is escaped");
  assert.match(html, /Happy &lt;script&gt;/);

  const { location } = await consent(alice, client, {}, { org: "org_acme" });
  assert.equal(location.origin + location.pathname, "http://localhost:3000/callback");
  const code = location.searchParams.get("code");
  assert.ok(code);
  let res = await exchange(server, client, code);
  assert.equal(res.status, 200, await res.clone().text());
  const t = await res.json();
  assert.equal(t.token_type, "Bearer");
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);

  res = await tokenRequest(server, client, { grant_type: "refresh_token", refresh_token: t.refresh_token });
  assert.equal(res.status, 200);
  const t2 = await res.json();
  assert.notEqual(t2.access_token, t.access_token);
  assert.equal((await bearer(server, "/api/v1/me", t2.access_token)).status, 200);

  res = await server.fetch("/oauth/revoke", {
    method: "POST",
    headers: FORM,
    body: form({ token: t2.refresh_token, client_id: client.client_id }),
  });
  assert.equal(res.status, 200);
  assert.equal((await bearer(server, "/api/v1/me", t2.access_token)).status, 401);

  const row = await server.db
    .prepare("SELECT owner_org_id, registration, client_type, actor_modes, secret_hash FROM apps WHERE id = ?1")
    .bind(client.client_id)
    .first();
  assert.deepEqual(row, {
    owner_org_id: null,
    registration: "metadata_document",
    client_type: "public",
    actor_modes: '["self"]',
    secret_hash: null,
  });
  // The client cannot act as a bot: actor mode `app` is refused.
  const fields = (await consent(alice, client, { prompt: "consent" }, { actor: "app" })).res;
  assert.equal(fields.status, 400);
});

test("a document whose client_id differs from its URL is refused", async () => {
  const client_id = docs.route("/mismatch/client.json", {
    body: clientDocument("https://victim.example/client.json"),
  });
  await assertPage(await authorize(alice, { client_id, redirect_uris: ["http://localhost:3000/callback"] }), 400, /not the URL it was fetched from/);
});

test("a document that redirects is refused, and the redirect is not followed", async () => {
  const target = publish("/redirect/target.json");
  const client_id = docs.route("/redirect/client.json", { status: 302, headers: { location: target.client_id } });
  await assertPage(await authorize(alice, { client_id, redirect_uris: target.redirect_uris }), 400, /could not be fetched/);
  assert.equal(docs.hits("/redirect/target.json"), 0, "never fetched");
});

test("a document larger than 5 KiB is refused", async () => {
  const client_id = docs.url("/large/client.json");
  docs.route("/large/client.json", { body: clientDocument(client_id, { padding: "x".repeat(6000) }) });
  await assertPage(await authorize(alice, { client_id, redirect_uris: ["http://localhost:3000/callback"] }), 400, /could not be fetched/);
});

test("a document server that never answers is abandoned after the timeout", async () => {
  const client_id = docs.route("/slow/client.json", { hang: true });
  await assertPage(await authorize(alice, { client_id, redirect_uris: ["http://localhost:3000/callback"] }), 400, /could not be fetched/);
});

test("a document served with a non-JSON content type is refused", async () => {
  const client = publish("/html/client.json", {}, { "content-type": "text/html" });
  await assertPage(await authorize(alice, client), 400, /not served as application(\/|&#x2F;)json/);
});

test("a redirect_uri outside the document is refused on a page; a loopback URI may change only its port (RFC 8252)", async () => {
  const client = publish("/redirects/client.json");
  await assertPage(
    await authorize(alice, client, { redirect_uri: "https://attacker.example/callback" }),
    400,
    /does not exactly match/,
  );
  await assertPage(
    await authorize(alice, client, { redirect_uri: "http://localhost:3000/other" }),
    400,
    /does not exactly match/,
  );
  // A native client listens on whatever port is free: same host and path,
  // another port, is the document's URI (as for registered apps).
  const ephemeral = await authorize(alice, client, { redirect_uri: "http://localhost:4444/callback" });
  assert.equal(ephemeral.status, 200);
  assert.match(await ephemeral.text(), /client-url-note/);
});

test("a document asking for a client secret is refused", async () => {
  const basic = publish("/secret/basic.json", { token_endpoint_auth_method: "client_secret_basic" });
  await assertPage(await authorize(alice, basic), 400, /only &quot;none&quot;|only "none"/);
  const withSecret = publish("/secret/inline.json", { client_secret: "s3cret" });
  await assertPage(await authorize(alice, withSecret), 400, /carries a client secret/);
  const expires = publish("/secret/expires.json", { client_secret_expires_at: 0 });
  await assertPage(await authorize(alice, expires), 400, /carries a client secret/);
});

test("a document's scopes must be in the catalogue, its redirect URIs valid", async () => {
  await assertPage(await authorize(alice, publish("/scope/client.json", { scope: "admin:all" })), 400, /scope &quot;admin:all&quot; is not offered/);
  const http = publish("/http-redirect/client.json", { redirect_uris: ["http://mcp-client.example/cb"] });
  await assertPage(await authorize(alice, http), 400, /uses http/);
});

test("CIMD=off: a URL client_id is an unknown client (page, no fetch)", async () => {
  const client = publish("/off/client.json");
  const browser = new Browser(off);
  await browser.signIn("alice@acme.test", "alice-password");
  await assertPage(await authorize(browser, client), 400, /Unknown application/);
  assert.equal(docs.hits("/off/client.json"), 0);
});

test("CIMD=off: the token endpoint does not know URL clients either", async () => {
  const res = await tokenRequest(off, { client_id: docs.url("/off/client.json") }, {
    grant_type: "authorization_code",
    code: "code_x",
    redirect_uri: "http://localhost:3000/callback",
    code_verifier: "v".repeat(43),
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, "invalid_client");
});

test("an http document URL is refused without the development setting", async () => {
  const client = publish("/strict/client.json");
  const browser = new Browser(strict);
  await browser.signIn("alice@acme.test", "alice-password");
  await assertPage(await authorize(browser, client), 400, /must use https/);
  assert.equal(docs.hits("/strict/client.json"), 0);
});

test("client_id URLs that break the draft's rules are refused before any fetch", async () => {
  for (const [bad, why] of [
    [docs.url("/rules/client.json") + "#frag", /fragment/],
    [docs.url("/rules/client.json") + "?v=1", /query string/],
    [docs.url("/rules/../client.json"), /\. or \.\. path segments/],
    [docs.origin + "/", /must have a path/],
    [docs.origin.replace("http://", "http://user:pw@") + "/rules/client.json", /user name or password/],
    [docs.url("/rules/" + "a".repeat(260)), /longer than 255/],
  ]) {
    await assertPage(await authorize(alice, { client_id: bad, redirect_uris: ["http://localhost:3000/callback"] }), 400, why);
  }
  assert.equal(docs.hits("/rules/client.json"), 0);
});

test("cache: within max-age no refetch; after expiry a refetch; no-store refetches each time", async () => {
  const cached = publish("/cache/fresh.json", {}, { "cache-control": "public, max-age=600" });
  assert.equal((await authorize(alice, cached)).status, 200);
  assert.equal((await authorize(alice, cached)).status, 200);
  assert.equal(docs.hits("/cache/fresh.json"), 1);

  const short = publish("/cache/short.json", {}, { "cache-control": "max-age=1" });
  assert.equal((await authorize(alice, short)).status, 200);
  assert.equal(docs.hits("/cache/short.json"), 1);
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal((await authorize(alice, short)).status, 200);
  assert.equal(docs.hits("/cache/short.json"), 2);

  const none = publish("/cache/none.json", {}, { "cache-control": "no-store" });
  assert.equal((await authorize(alice, none)).status, 200);
  assert.equal((await authorize(alice, none)).status, 200);
  assert.equal(docs.hits("/cache/none.json"), 2);
});

test("a stale document that now fails or changed refuses the authorize (nothing stale is served)", async () => {
  const client = publish("/stale/client.json", {}, { "cache-control": "no-store" });
  assert.equal((await authorize(alice, client)).status, 200);
  docs.route("/stale/client.json", { status: 404, body: "gone" });
  await assertPage(await authorize(alice, client), 400, /could not be fetched/);
  // Its owner removed the redirect URI: the next authorize sees it at once.
  publish("/stale/client.json", { redirect_uris: ["http://localhost:3000/other"] }, { "cache-control": "no-store" });
  await assertPage(await authorize(alice, client), 400, /does not exactly match/);
});

test("a code issued under the old document is still redeemed after the document changed", async () => {
  const client = publish("/changed/client.json", {}, { "cache-control": "no-store" });
  const { location } = await consent(alice, client);
  publish("/changed/client.json", { client_name: "Renamed" }, { "cache-control": "no-store" });
  const res = await exchange(server, client, location.searchParams.get("code"));
  assert.equal(res.status, 200, "the token endpoint does not fetch");
});

test("the cap on stored URL clients: a new URL is refused when full, a known one still works", async () => {
  const known = publish("/cap/known.json", {}, { "cache-control": "no-store" });
  assert.equal((await authorize(alice, known)).status, 200);
  const { n } = await server.db
    .prepare("SELECT COUNT(*) AS n FROM apps WHERE registration = 'metadata_document'")
    .first();
  const fill = MAX_CLIENTS - n;
  await server.db
    .prepare(
      "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) " +
        "INSERT INTO apps (id, name, redirect_uris, scopes, client_type, actor_modes, created_at, updated_at, registration, metadata_expires_at) " +
        "SELECT 'https://filler.example/c' || i, 'f', '[]', '[]', 'public', '[\"self\"]', 0, 0, 'metadata_document', 0 FROM k",
    )
    .bind(fill)
    .run();
  const fresh = publish("/cap/new.json");
  const res = await authorize(alice, fresh);
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("location"), null);
  const stored = await server.db.prepare("SELECT id FROM apps WHERE id = ?1").bind(fresh.client_id).first();
  assert.equal(stored, null);
  assert.equal((await authorize(alice, known)).status, 200, "a stored client is refreshed even at the cap");
  assert.equal(docs.hits("/cap/known.json"), 2);
  await server.db.prepare("DELETE FROM apps WHERE id LIKE 'https://filler.example/%'").run();
  assert.equal((await authorize(alice, fresh)).status, 200, "room again");
});

test("the sweep deletes URL clients long expired and unused, never one with live tokens", async () => {
  const idle = publish("/sweep/idle.json");
  assert.equal((await authorize(alice, idle)).status, 200);
  const busy = publish("/sweep/busy.json");
  const { location } = await consent(alice, busy);
  assert.equal((await exchange(server, busy, location.searchParams.get("code"))).status, 200);
  await server.db
    .prepare("UPDATE apps SET metadata_expires_at = 0, last_used_at = 0 WHERE id IN (?1, ?2)")
    .bind(idle.client_id, busy.client_id)
    .run();
  await server.scheduled();
  const ids = async () =>
    (await server.db.prepare("SELECT id FROM apps WHERE id IN (?1, ?2)").bind(idle.client_id, busy.client_id).all())
      .results.map((r) => r.id);
  await eventually(async () => !(await ids()).includes(idle.client_id));
  assert.deepEqual(await ids(), [busy.client_id]);
  // Swept is not forgotten: the next authorize fetches and stores it again.
  assert.equal((await authorize(alice, idle)).status, 200);
  assert.equal(docs.hits("/sweep/idle.json"), 2);
});

test("a user lists and disconnects a URL client through the API (its id as one encoded path segment)", async () => {
  const browser = new Browser(server);
  await browser.signIn("alice@acme.test", "alice-password");
  const client = publish("/disconnect/client.json");
  const { location } = await consent(browser, client, { prompt: "consent" });
  const t = await (await exchange(server, client, location.searchParams.get("code"))).json();
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
  const list = await (await browser.fetch("/api/v1/me/authorizations")).json();
  assert.ok(JSON.stringify(list).includes(client.client_id));
  const res = await browser.fetch(`/api/v1/me/authorizations/${encodeURIComponent(client.client_id)}`, {
    method: "DELETE",
    headers: { "x-csrf-token": await browser.csrf() },
  });
  assert.equal(res.status, 204);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
});

test("consent names the host the approval goes to, and warns when a self-identified client only receives it on localhost (MCP 2025-11-25)", async () => {
  // A metadata document cannot stop localhost impersonation: anyone can name
  // a real client's document and listen on a local port. The user must see
  // where the code goes, and a warning when that is this computer.
  const local = publish("/consent/local.json", { redirect_uris: ["http://127.0.0.1:3000/callback"] });
  const page = await (await authorize(alice, local)).text();
  assert.match(page, /id="redirect-host"[^]*127\.0\.0\.1/);
  assert.match(page, /id="localhost-warning"/);
  const web = publish("/consent/web.json", { redirect_uris: ["https://mcp-client.example/callback"] });
  const webPage = await (await authorize(alice, web)).text();
  assert.match(webPage, /id="redirect-host"[^]*mcp-client\.example/);
  assert.doesNotMatch(webPage, /id="localhost-warning"/);
});

test("CIMD_ALLOWED_HOSTS: a protected server accepts documents only from the hosts it trusts (and their subdomains), fetching nothing else", async () => {
  const trusting = await startServer({
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    CIMD_ALLOWED_HOSTS: "mcp-client.example, localhost",
  });
  try {
    const b = new Browser(trusting);
    await b.signIn("alice@acme.test", "alice-password");
    const refused = publish("/allow/refused.json"); // served from 127.0.0.1
    await assertPage(await authorize(b, refused), 400, /not among the hosts this server accepts/);
    assert.equal(docs.hits("/allow/refused.json"), 0, "never fetched");
    const viaName = { ...refused, client_id: refused.client_id.replace("127.0.0.1", "localhost") };
    docs.route("/allow/refused.json", { headers: { "cache-control": "max-age=60" }, body: clientDocument(viaName.client_id) });
    assert.equal((await authorize(b, viaName)).status, 200, "an allowed host is fetched and shown for consent");
  } finally {
    await trusting.close();
  }
});
