// Red-team review of issue 10/11's new code: each test here either failed
// against the merged code (and its fix is in the same commit) or covers an
// adversarial case the ecosystem suites do not.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startServer, Browser, consent, exchange, bearer, authorizeQuery, eventually, registerApp, FORM, form, api } from "./support.mjs";
import { profileVars } from "../../scripts/profile-vars.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

let cached, edge, ado, docs;

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
  ado = await startServer({ ...profileVars("azure-devops"), DCR: "open", DCR_RATE_PER_HOUR: "1000" });
});
after(async () => {
  await cached?.close();
  await edge?.close();
  await ado?.close();
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
  api(server, method, new URL(client.registration_client_uri).pathname, body, token);

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

test("RFC 7592 token confusion: a registration access token is no bearer, an access token no registration token; a body's client_id never names the new client", async () => {
  const platform = await registerApp(cached, { name: "Platform App" });
  const client = await register(cached, { client_id: platform.client_id, client_name: "Impostor", scope: "profile:read" });
  assert.notEqual(client.client_id, platform.client_id, "the server picks the id");
  const row = await cached.db.prepare("SELECT name, registration FROM apps WHERE id = ?1").bind(platform.client_id).first();
  assert.deepEqual({ ...row }, { name: "Platform App", registration: "platform" });
  const t = await tokens(cached, client, "profile:read");
  assert.equal((await bearer(cached, "/api/v1/me", client.registration_access_token)).status, 401);
  assert.equal((await manage(cached, client, "GET", t.access_token)).status, 401);
  assert.equal((await manage(cached, client, "DELETE", t.refresh_token)).status, 401);
  // A platform app's id on the management path, with a valid (other) registration token.
  const other = { ...client, registration_client_uri: `${cached.base}/oauth/register/${platform.client_id}` };
  assert.equal((await manage(cached, other, "DELETE", client.registration_access_token)).status, 401);
  assert.ok(await cached.db.prepare("SELECT 1 FROM apps WHERE id = ?1").bind(platform.client_id).first());
});

test("metadata documents with duplicate keys, non-UTF-8 bytes or 21 redirect URIs are refused on a page", async () => {
  const alice = new Browser(cached);
  await alice.signIn("alice@acme.test", "alice-password");
  const url = (p) => docs.url(`/review/bad-${p}.json`);
  const cases = {
    dup: `{"client_id":${JSON.stringify(url("dup"))},"client_id":"https://other.example/c.json","redirect_uris":["http://localhost:3000/callback"]}`,
    bytes: Buffer.concat([Buffer.from(`{"client_id":${JSON.stringify(url("bytes"))},"client_name":"`), Buffer.from([0xff, 0xfe]), Buffer.from('","redirect_uris":["http://localhost:3000/callback"]}')]),
    many: JSON.stringify(clientDocument(url("many"), { redirect_uris: Array.from({ length: 21 }, (_, i) => `http://localhost:${3000 + i}/cb`) })),
  };
  for (const [name, body] of Object.entries(cases)) {
    docs.route(`/review/bad-${name}.json`, { headers: { "cache-control": "no-store" }, body });
    const client = { client_id: url(name), redirect_uris: ["http://localhost:3000/callback"] };
    const res = await alice.fetch(`/oauth/authorize?${authorizeQuery(client)}`);
    assert.equal(res.status, 400, name);
    assert.equal(res.headers.get("location"), null, name);
    assert.equal(await cached.db.prepare("SELECT 1 FROM apps WHERE id = ?1").bind(url(name)).first(), null, name);
  }
});

test("no 5xx on malformed input at the new endpoints (registration, management, URL client ids, resource, the Azure DevOps forms)", async () => {
  const bad = [];
  const check = async (label, res) => {
    if (res.status >= 500) bad.push(`${label}: ${res.status} ${await res.text()}`);
  };
  const json = { "content-type": "application/json" };
  const bodies = [
    "[]", "null", '"x"', '{"redirect_uris":null}', '{"redirect_uris":[1]}', '{"redirect_uris":["http://127.0.0.1/cb"],"scope":5}',
    '{"redirect_uris":["http://127.0.0.1/cb"],"client_uri":"https://\\r\\nx"}', "[".repeat(200) + "]".repeat(200),
    '{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":[]}', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
  ];
  const reg = await register(cached, {});
  for (const b of bodies) {
    await check(`register ${String(b).slice(0, 40)}`, await cached.fetch("/oauth/register", { method: "POST", headers: json, body: b }));
    await check(`put ${String(b).slice(0, 40)}`, await cached.fetch(`/oauth/register/${reg.client_id}`, {
      method: "PUT", headers: { ...json, authorization: `Bearer ${reg.registration_access_token}` }, body: b,
    }));
  }
  for (const p of ["%FF", "%00", "a%2Fb", "x".repeat(300), "%25", "%2e%2e", encodeURIComponent("https://a.example/x")]) {
    for (const method of ["GET", "PUT", "DELETE"]) {
      await check(`${method} register/${p}`, await cached.fetch(`/oauth/register/${p}`, {
        method, headers: { ...json, authorization: `Bearer ${reg.registration_access_token}` }, body: method === "PUT" ? "{}" : undefined,
      }));
    }
  }
  const alice = new Browser(cached);
  await alice.signIn("alice@acme.test", "alice-password");
  for (const id of ["https://", "https://a.example/%", "https://[::1]/x", "https://a.example:99999/x", "https:///x", "https://a.example/\u0000", "HTTP://localhost/x", "https://a.example/x y"]) {
    const q = new URLSearchParams({ client_id: id, redirect_uri: "http://localhost:3000/callback", response_type: "code", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" });
    await check(`authorize ${id}`, await alice.fetch(`/oauth/authorize?${q}`));
    await check(`token ${id}`, await cached.fetch("/oauth/token", { method: "POST", headers: FORM, body: form({ grant_type: "authorization_code", client_id: id, code: "x", code_verifier: "y".repeat(43) }) }));
  }
  for (const r of ["", "x", "https://[", "https://a#", "%", "https://a.example/" + "x".repeat(600)]) {
    await check(`refresh resource ${r}`, await cached.fetch("/oauth/token", { method: "POST", headers: FORM, body: form({ grant_type: "refresh_token", client_id: "app_x", refresh_token: "rt_x", resource: r }) }));
  }
  const JB = "urn:ietf:params:oauth:grant-type:jwt-bearer";
  const CA = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
  const rt = (payload) => "eyJ0eXAiOiJydCJ9." + Buffer.from(payload).toString("base64url") + ".";
  for (const a of ["", "x", "eyJ0eXAiOiJydCJ9..", rt("{}"), rt("null"), rt('{"rt":5}'), rt('{"rt":"rt_' + "x".repeat(600) + '"}'), "a".repeat(5000)]) {
    for (const gt of [JB, "refresh_token"]) {
      await check(`ado ${gt} ${a.slice(0, 30)}`, await ado.fetch("/oauth2/token", {
        method: "POST", headers: FORM, body: form({ grant_type: gt, assertion: a, client_assertion_type: CA, client_assertion: "s", redirect_uri: "https://x" }),
      }));
    }
    await check(`ado revoke ${a.slice(0, 30)}`, await ado.fetch("/oauth2/revoke", { method: "POST", headers: { ...FORM, authorization: `Bearer ${a || "z"}` }, body: form({ token: a || "z" }) }));
  }
  assert.deepEqual(bad, []);
});

test("storage failures on the new paths are 503 with Retry-After, and a failed registration stores nothing", async () => {
  const without = async (table, fn) => {
    await cached.db.prepare(`ALTER TABLE ${table} RENAME TO ${table}_gone`).run();
    try {
      await fn();
    } finally {
      await cached.db.prepare(`ALTER TABLE ${table}_gone RENAME TO ${table}`).run();
    }
  };
  const client = await register(cached, {});
  const before = (await cached.db.prepare("SELECT COUNT(*) AS n FROM apps").first()).n;
  await without("client_registrations", async () => {
    const res = await cached.fetch("/oauth/register", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ redirect_uris: [CB] }),
    });
    assert.equal(res.status, 503);
    assert.ok(res.headers.get("retry-after"));
    for (const method of ["GET", "DELETE"]) {
      const m = await manage(cached, client, method, client.registration_access_token);
      assert.equal(m.status, 503, method);
    }
  });
  assert.equal((await cached.db.prepare("SELECT COUNT(*) AS n FROM apps").first()).n, before, "nothing stored");
  const client_id = docs.url("/review/outage.json");
  docs.route("/review/outage.json", { headers: { "cache-control": "no-store" }, body: clientDocument(client_id) });
  const alice = new Browser(cached);
  await alice.signIn("alice@acme.test", "alice-password");
  await without("apps", async () => {
    const page = await alice.fetch(`/oauth/authorize?${authorizeQuery({ client_id, redirect_uris: clientDocument(client_id).redirect_uris })}`);
    assert.equal(page.status, 503);
  });
});

test("unauthenticated authorize requests cannot make the server fetch without bound: per source address and per document host", async () => {
  // Each authorize with a new URL client_id is a fetch before any sign-in;
  // a document that fails is never cached, so without a budget one caller
  // (or many) could drive unlimited outbound requests at any host.
  const s = await startServer({
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "3",
    CIMD_FETCHES_PER_HOST_PER_MINUTE: "5",
  });
  try {
    const missing = (n) => docs.url(`/budget/missing-${n}.json`); // 404: never cached
    const ask = (n, ip) =>
      s.fetch(`/oauth/authorize?${authorizeQuery({ client_id: missing(n), redirect_uris: [CB] })}`, {
        headers: { "cf-connecting-ip": ip },
      });
    for (let n = 0; n < 3; n++) assert.equal((await ask(n, "203.0.113.7")).status, 400, `fetch ${n} is refused on its document`);
    const over = await ask(3, "203.0.113.7");
    assert.equal(over.status, 429, "a fourth fetch from the same address in the minute");
    assert.equal(docs.hits("/budget/missing-3.json"), 0, "and it was not fetched");
    // Another address still has its own budget, up to the host's.
    assert.equal((await ask(4, "198.51.100.9")).status, 400);
    assert.equal((await ask(5, "198.51.100.9")).status, 400);
    const host = await ask(6, "192.0.2.44");
    assert.equal(host.status, 429, "the document host's budget is spent (5 per minute)");
    assert.equal(docs.hits("/budget/missing-6.json"), 0);
  } finally {
    await s.close();
  }
});
