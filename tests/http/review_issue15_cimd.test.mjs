// Issue 15 (second security review), the metadata-document (CIMD) and
// client-admin items: bans and suspensions outlive the sweep (1), every
// client id is manageable in the back office (2), a third party's failing
// fetches cannot spend a real client's budget (5), "used" means a code was
// issued and bans do not take cap slots (7), CIMD_ALLOWED_HOSTS holds after
// authorize (11), an anonymous authorize that stores a client is audited
// (13), loopback host names are refused and the fetch error page does not
// tell the upstream status (14).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, consent, exchange, tokenRequest, bearer, authorizeQuery, api, eventually, lastLine, FORM, form } from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

const ADMIN = "issue15-cimd-admin-token-0123456789abcdefghijkl";
let docs, server, alice;

before(async () => {
  docs = await startDocumentServer();
  server = await startServer({
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    PLATFORM_ADMIN_TOKEN: ADMIN,
    // The budget has its own server below; these tests fetch freely.
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "10000",
    CIMD_FETCHES_PER_HOST_PER_MINUTE: "10000",
  });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await server?.close();
  await docs?.close();
});

const admin = (s, method, path, body) => api(s, method, `/admin/v1${path}`, body, ADMIN);

function publish(path, extra = {}, headers = { "cache-control": "max-age=60" }) {
  const client_id = docs.url(path);
  docs.route(path, { headers, body: clientDocument(client_id, extra) });
  return { client_id, redirect_uris: clientDocument(client_id).redirect_uris };
}

const authorize = (browser, client, extra = {}, init = {}) => browser.fetch(`/oauth/authorize?${authorizeQuery(client, extra)}`, init);
/** An authorize with no session, as anyone on the internet sends it. */
const anonymous = (s, client, ip = "203.0.113.50") =>
  s.fetch(`/oauth/authorize?${authorizeQuery(client)}`, { headers: { "cf-connecting-ip": ip } });

/** Age rows as if `days` had passed since they were last fetched, created and used. */
async function age(s, ids, days = 3) {
  const then = Math.floor(Date.now() / 1000) - days * 86400;
  for (const id of ids) {
    await s.db
      .prepare("UPDATE apps SET metadata_expires_at = ?2, last_used_at = ?2, created_at = ?2 WHERE id = ?1")
      .bind(id, then)
      .run();
  }
}

const exists = async (s, id) => (await s.db.prepare("SELECT id FROM apps WHERE id = ?1").bind(id).first()) !== null;

/** Run the sweep and wait until `control` (an idle, aged client) is gone: the sweep has run. */
async function sweepWith(s, control) {
  await s.scheduled();
  await eventually(async () => !(await exists(s, control)), { timeout: 5000 });
}

test("item 1: a banned URL client stays banned, and a suspended one suspended, after the sweep of expired clients", async () => {
  const banned = publish("/i1/banned.json");
  const suspended = publish("/i1/suspended.json");
  const control = publish("/i1/control.json");
  for (const c of [banned, suspended, control]) assert.equal((await authorize(alice, c)).status, 200);
  assert.equal((await admin(server, "DELETE", `/clients/${encodeURIComponent(banned.client_id)}`)).status, 204);
  assert.equal(
    (await admin(server, "PATCH", `/clients/${encodeURIComponent(suspended.client_id)}`, { status: "suspended" })).status,
    200,
  );
  await age(server, [banned.client_id, suspended.client_id, control.client_id]);
  await sweepWith(server, control.client_id);
  const hits = [docs.hits("/i1/banned.json"), docs.hits("/i1/suspended.json")];
  // The documents are still published: an anonymous authorize must still be refused.
  assert.equal((await anonymous(server, banned)).status, 400, "the ban outlives the sweep");
  assert.equal((await anonymous(server, suspended)).status, 400, "the suspension outlives the sweep");
  assert.equal((await authorize(alice, suspended)).status, 400);
  const row = await server.db.prepare("SELECT status FROM apps WHERE id = ?1").bind(suspended.client_id).first();
  assert.deepEqual(row, { status: "suspended" });
  const one = await admin(server, "GET", `/clients/${encodeURIComponent(suspended.client_id)}`);
  assert.equal((await one.json()).status, "suspended");
  assert.deepEqual([docs.hits("/i1/banned.json"), docs.hits("/i1/suspended.json")], hits, "a banned or suspended client's document is not fetched");
});

test("item 2: a URL client with a 255-character id is read, suspended, reactivated and deleted through the back office", async () => {
  const prefix = docs.url("/i2/");
  const path = "/i2/" + "a".repeat(255 - prefix.length - ".json".length) + ".json";
  const client = publish(path);
  assert.equal(client.client_id.length, 255);
  assert.ok(encodeURIComponent(client.client_id).length > 256);
  assert.equal((await authorize(alice, client)).status, 200);
  const seg = encodeURIComponent(client.client_id);
  const got = await admin(server, "GET", `/clients/${seg}`);
  assert.equal(got.status, 200, await got.clone().text());
  assert.equal((await got.json()).client_id, client.client_id);
  assert.equal((await admin(server, "PATCH", `/clients/${seg}`, { status: "suspended" })).status, 200);
  assert.equal((await authorize(alice, client)).status, 400);
  assert.equal((await admin(server, "PATCH", `/clients/${seg}`, { status: "active" })).status, 200);
  assert.equal((await admin(server, "DELETE", `/clients/${seg}`)).status, 204);
  assert.equal((await authorize(alice, client)).status, 400, "banned");
  // Longer than any client id can be: still no route.
  assert.equal((await admin(server, "GET", `/clients/${"%41".repeat(300)}`)).status, 404);
});

test("item 7: an anonymous document fetch does not mark the client used; a code does; a client never used is swept even while refetched", async () => {
  const squat = publish("/i7/squat.json");
  const real = publish("/i7/real.json");
  const control = publish("/i7/control.json");
  assert.notEqual((await anonymous(server, squat)).status, 400);
  const lastUsed = async (id) => (await server.db.prepare("SELECT last_used_at FROM apps WHERE id = ?1").bind(id).first()).last_used_at;
  assert.equal(await lastUsed(squat.client_id), null, "fetching a document is not using the client");
  const { location } = await consent(alice, real);
  assert.ok(location.searchParams.get("code"));
  assert.ok((await lastUsed(real.client_id)) > 0, "a code was issued: used");
  // Two days on, the squatter refetched its document an hour ago (fresh),
  // but no code was ever issued to it: its place is freed.
  assert.equal((await authorize(alice, control)).status, 200);
  await age(server, [control.client_id]);
  const now = Math.floor(Date.now() / 1000);
  await server.db
    .prepare("UPDATE apps SET created_at = ?2, metadata_expires_at = ?3 WHERE id = ?1")
    .bind(squat.client_id, now - 2 * 86400, now + 3600)
    .run();
  await sweepWith(server, control.client_id);
  assert.equal(await exists(server, squat.client_id), false, "never used: swept");
  assert.equal(await exists(server, real.client_id), true, "used: kept");
});

test("item 7: the operator sees the cap's use; a banned client takes no slot, so deleting a squatter frees one and the ban holds", async () => {
  const s = await startServer({ CIMD: "on", CIMD_ALLOW_HTTP_LOOPBACK: "true", PLATFORM_ADMIN_TOKEN: ADMIN, CIMD_MAX_CLIENTS: "2" });
  try {
    const [a, b, c] = ["a", "b", "c"].map((n) => publish(`/i7cap/${n}.json`));
    assert.notEqual((await anonymous(s, a)).status, 400);
    assert.notEqual((await anonymous(s, b)).status, 400);
    assert.equal((await anonymous(s, c)).status, 429, "the cap is full");
    let caps = await (await admin(s, "GET", "/client-caps")).json();
    assert.deepEqual(caps.metadata_document, { max_clients: 2, stored: 2, never_used: 2, suspended: 0, banned: 0 });
    assert.equal((await admin(s, "DELETE", `/clients/${encodeURIComponent(a.client_id)}`)).status, 204);
    caps = await (await admin(s, "GET", "/client-caps")).json();
    assert.deepEqual(caps.metadata_document, { max_clients: 2, stored: 1, never_used: 1, suspended: 0, banned: 1 });
    assert.notEqual((await anonymous(s, c)).status, 429, "the ban freed a slot");
    assert.equal(await exists(s, c.client_id), true);
    assert.equal((await anonymous(s, a)).status, 400, "and the ban holds");
  } finally {
    await s.close();
  }
});

test("item 13: a URL client stored by an anonymous authorize is audited once", async () => {
  const client = publish("/i13/client.json", {}, { "cache-control": "no-store" });
  assert.notEqual((await anonymous(server, client)).status, 400);
  assert.notEqual((await anonymous(server, client)).status, 400, "a refetch");
  const records = await eventually(async () => {
    const page = await (await admin(server, "GET", "/audit?limit=200")).json();
    const mine = page.items.filter((e) => e.detail?.client_id === client.client_id);
    return mine.length > 0 && mine;
  });
  assert.equal(records.length, 1, JSON.stringify(records));
  assert.equal(records[0].action, "client.registered");
  assert.equal(records[0].detail.registration, "metadata_document");
  assert.equal(records[0].detail.host, "127.0.0.1");
});

test("item 14: the fetch error page does not tell the upstream status (the log does)", async () => {
  const client_id = docs.route("/i14/missing.json", { status: 418, body: "teapot" });
  const res = await authorize(alice, { client_id, redirect_uris: ["http://localhost:3000/callback"] });
  assert.equal(res.status, 400);
  const html = await res.text();
  assert.match(html, /could not be fetched/);
  assert.doesNotMatch(html, /418/);
  const logged = await eventually(() => /418/.test(lastLine(server, "authorize")?.error ?? ""));
  assert.ok(logged, "the detail is logged");
});

test("item 14: host names that resolve to loopback are refused outside development, before any fetch", async () => {
  const strict = await startServer({ CIMD: "on" });
  try {
    const b = new Browser(strict);
    await b.signIn("alice@acme.test", "alice-password");
    for (const client_id of [
      "https://localhost./client.json",
      "https://app.localhost/client.json",
      "https://app.localhost./client.json",
      "https://mcp-client.example./client.json",
    ]) {
      const res = await authorize(b, { client_id, redirect_uris: ["http://localhost:3000/callback"] });
      assert.equal(res.status, 400, client_id);
      assert.match(await res.text(), /loopback|trailing dot/, client_id);
    }
  } finally {
    await strict.close();
  }
});

test("item 5: failing fetches for other documents on a host do not lock out a known client there, and a failure is cached", async () => {
  const s = await startServer({ CIMD: "on", CIMD_ALLOW_HTTP_LOOPBACK: "true" }); // the default budgets: 30/source, 60/host
  try {
    const b = new Browser(s);
    await b.signIn("alice@acme.test", "alice-password");
    const real = publish("/i5/real.json", {}, { "cache-control": "no-store" });
    assert.equal((await authorize(b, real, {}, { headers: { "cf-connecting-ip": "198.51.100.1" } })).status, 200);
    // Two addresses, 30 each: 60 authorizes for documents that do not exist.
    for (let n = 0; n < 60; n++) {
      const ip = n < 30 ? "203.0.113.7" : "203.0.113.8";
      const res = await anonymous(s, { client_id: docs.url(`/i5/missing-${n}.json`), redirect_uris: ["http://localhost:3000/callback"] }, ip);
      assert.ok([400, 429].includes(res.status), String(res.status));
    }
    const res = await authorize(b, real, {}, { headers: { "cf-connecting-ip": "198.51.100.1" } });
    assert.equal(res.status, 200, "the rightful client is not refused for others' failures");
    assert.equal(docs.hits("/i5/real.json"), 2, "its document was fetched again (no-store)");
    // The same failing URL again within the minute: answered from the failure cache.
    const before = docs.hits("/i5/missing-0.json");
    assert.equal(before, 1);
    const again = await anonymous(s, { client_id: docs.url("/i5/missing-0.json"), redirect_uris: ["http://localhost:3000/callback"] }, "192.0.2.9");
    assert.equal(again.status, 400);
    assert.match(await again.text(), /could not be fetched/);
    assert.equal(docs.hits("/i5/missing-0.json"), 1, "not fetched again");
  } finally {
    await s.close();
  }
});

/** Copy the rows `where` selects from one server's table to another's (the same data under another configuration). */
async function copyRows(from, to, table, where, ...params) {
  const { results } = await from.db.prepare(`SELECT * FROM ${table} WHERE ${where}`).bind(...params).all();
  for (const row of results) {
    const cols = Object.keys(row);
    await to.db
      .prepare(`INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((_, i) => `?${i + 1}`).join(", ")})`)
      .bind(...cols.map((c) => row[c]))
      .run();
  }
}

test("item 11: after its host leaves CIMD_ALLOWED_HOSTS, a URL client's tokens and refreshes are refused (the data as it was)", async () => {
  // The same database after a redeploy that narrowed the hosts: the rows of
  // the client, its grant and its tokens, copied into a server configured so.
  const narrowed = await startServer({ CIMD: "on", CIMD_ALLOW_HTTP_LOOPBACK: "true", CIMD_ALLOWED_HOSTS: "elsewhere.example" });
  try {
    const client = publish("/i11/client.json");
    const { location } = await consent(alice, client);
    const t = await (await exchange(server, client, location.searchParams.get("code"))).json();
    assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
    await copyRows(server, narrowed, "apps", "id = ?1", client.client_id);
    await copyRows(server, narrowed, "grants", "app_id = ?1", client.client_id);
    await copyRows(server, narrowed, "tokens", "grant_id IN (SELECT id FROM grants WHERE app_id = ?1)", client.client_id);
    assert.equal((await bearer(narrowed, "/api/v1/me", t.access_token)).status, 401, "the access token");
    const res = await tokenRequest(narrowed, client, { grant_type: "refresh_token", refresh_token: t.refresh_token });
    assert.equal(res.status, 401, "the refresh");
    assert.equal((await res.json()).error, "invalid_client");
    const revoke = await narrowed.fetch("/oauth/revoke", { method: "POST", headers: FORM, body: form({ token: t.refresh_token, client_id: client.client_id }) });
    assert.equal(revoke.status, 401, "revocation authenticates the client");
    // Under the configuration that allows it, the refresh token was not spent.
    const ok = await tokenRequest(server, client, { grant_type: "refresh_token", refresh_token: t.refresh_token });
    assert.equal(ok.status, 200);
  } finally {
    await narrowed.close();
  }
});
