// Red-team review of issue 10/11's new code: each test here either failed
// against the merged code (and its fix is in the same commit) or covers an
// adversarial case the ecosystem suites do not.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startServer, Browser, consent, exchange, bearer, authorizeQuery, eventually } from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

let cached, edge, docs;

before(async () => {
  // One isolate with the per-isolate bearer cache on (its staleness bound).
  docs = await startDocumentServer();
  cached = await startServer({
    DCR: "open",
    DCR_RATE_PER_HOUR: "100",
    BEARER_CACHE_TTL_SECONDS: "60",
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
  });
  edge = await startServer({ BEARER_MODE: "edge", CIMD: "on", CIMD_ALLOW_HTTP_LOOPBACK: "true" });
});
after(async () => {
  await cached?.close();
  await edge?.close();
  await docs?.close();
});

const CB = "http://127.0.0.1:8976/callback";

async function register(server, body) {
  const res = await server.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", ...body }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

const manage = (server, client, method, token, body) =>
  server.fetch(new URL(client.registration_client_uri).pathname, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });

async function tokens(server, client, scope) {
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  const { location } = await consent(alice, client, { scope });
  const res = await exchange(server, client, location.searchParams.get("code"));
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

test("RFC 7592 update narrowing a client's scopes takes effect on the isolate's next API call (bearer cache dropped)", async () => {
  const client = await register(cached, { scope: "profile:read posts:read" });
  const t = await tokens(cached, client, "profile:read posts:read");
  assert.equal((await bearer(cached, "/api/v1/posts", t.access_token)).status, 200, "cached now");
  const put = await manage(cached, client, "PUT", client.registration_access_token, {
    client_id: client.client_id,
    redirect_uris: [CB],
    scope: "profile:read",
  });
  assert.equal(put.status, 200, await put.clone().text());
  assert.equal((await bearer(cached, "/api/v1/posts", t.access_token)).status, 403, "posts:read is no longer declared");
});

test("a refetched metadata document narrowing its scopes takes effect on the isolate's next API call (bearer cache dropped)", async () => {
  const client_id = docs.url("/review/narrow.json");
  const publish = (scope) =>
    docs.route("/review/narrow.json", { headers: { "cache-control": "no-store" }, body: clientDocument(client_id, { scope }) });
  publish("profile:read posts:read");
  const client = { client_id, redirect_uris: clientDocument(client_id).redirect_uris };
  const t = await tokens(cached, client, "profile:read posts:read");
  assert.equal((await bearer(cached, "/api/v1/posts", t.access_token)).status, 200, "cached now");
  publish("profile:read");
  const alice = new Browser(cached);
  await alice.signIn("alice@acme.test", "alice-password");
  const page = await alice.fetch(`/oauth/authorize?${authorizeQuery(client, { scope: "profile:read" })}`);
  assert.ok([200, 302].includes(page.status), `refetched (consent page or prior consent): ${page.status}`);
  const row = await cached.db.prepare("SELECT scopes FROM apps WHERE id = ?1").bind(client_id).first();
  assert.equal(row.scopes, '["profile:read"]');
  assert.equal((await bearer(cached, "/api/v1/posts", t.access_token)).status, 403, "posts:read is no longer declared");
});

test("edge mode: a refetched document narrowing its scopes evicts the KV copies of its tokens without waiting for the cron", async () => {
  const client_id = docs.url("/review/edge.json");
  const publish = (scope) =>
    docs.route("/review/edge.json", { headers: { "cache-control": "no-store" }, body: clientDocument(client_id, { scope }) });
  publish("profile:read posts:read");
  const client = { client_id, redirect_uris: clientDocument(client_id).redirect_uris };
  const t = await tokens(edge, client, "profile:read posts:read");
  const key = createHash("sha256").update(t.access_token).digest("hex");
  await eventually(async () => (await edge.db.kvKeys()).includes(key));
  assert.equal((await bearer(edge, "/api/v1/posts", t.access_token)).status, 200);
  publish("profile:read");
  const alice = new Browser(edge);
  await alice.signIn("alice@acme.test", "alice-password");
  const page = await alice.fetch(`/oauth/authorize?${authorizeQuery(client, { scope: "profile:read" })}`);
  assert.ok([200, 302].includes(page.status), String(page.status));
  const gone = await eventually(async () => !(await edge.db.kvKeys()).includes(key));
  assert.ok(gone, "the KV copy is evicted after the refetch");
  assert.equal((await bearer(edge, "/api/v1/posts", t.access_token)).status, 403);
});

test("a client_id URL whose dot segments hide behind backslashes or tabs is refused before any fetch (draft §3: no dot segments)", async () => {
  const alice = new Browser(cached);
  await alice.signIn("alice@acme.test", "alice-password");
  for (const [i, trick] of ["/bs/x\\..\\doc.json", "/tab/x/.\t./doc.json"].entries()) {
    const raw = docs.url(trick);
    // What a URL parser makes of it: the document one level up.
    const target = `/${i === 0 ? "bs" : "tab"}/doc.json`;
    docs.route(target, { headers: { "cache-control": "no-store" }, body: clientDocument(raw) });
    const client = { client_id: raw, redirect_uris: clientDocument(raw).redirect_uris };
    const res = await alice.fetch(`/oauth/authorize?${authorizeQuery(client)}`);
    assert.equal(res.status, 400, `${JSON.stringify(raw)} was accepted (${res.status})`);
    assert.match(await res.text(), /path segments|normali/);
    assert.equal(docs.hits(target), 0, "nothing fetched");
  }
});
