// The platform's hold on clients nobody registered for it: a dynamic
// registration (RFC 7591) or a metadata document URL (CIMD) can be listed,
// suspended, reactivated and deleted through the back office, and each act
// takes effect on the client's tokens at once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, tokensFor, bearer, registerApp, eventually, api } from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

const ADMIN = "clients-test-admin-token-0123456789abcdefghijklm";
let server, docs, alice;

before(async () => {
  docs = await startDocumentServer();
  server = await startServer({
    DCR: "open",
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    PLATFORM_ADMIN_TOKEN: ADMIN,
    BEARER_CACHE_TTL_SECONDS: "60",
  });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
});
after(async () => {
  await server?.close();
  await docs?.close();
});

const CB = "http://127.0.0.1:8976/callback";
const admin = (method, path, body) => api(server, method, `/admin/v1${path}`, body, ADMIN);

async function dynamicClient(name) {
  const res = await server.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", client_name: name, scope: "profile:read" }),
  });
  assert.equal(res.status, 201);
  return res.json();
}

function urlClient(path) {
  const client_id = docs.url(path);
  const doc = clientDocument(client_id, { scope: "profile:read" });
  docs.route(path, { headers: { "cache-control": "max-age=60" }, body: doc });
  return { client_id, redirect_uris: doc.redirect_uris };
}

test("the back office lists self-registered and URL clients, never platform apps", async () => {
  const d = await dynamicClient("Listed dynamic");
  const u = urlClient("/admin/listed.json");
  await tokensFor(server, alice, u, { scope: "profile:read" });
  const platform = await registerApp(server, { scopes: ["profile:read"] });
  const all = await (await admin("GET", "/clients?limit=100")).json();
  const ids = all.items.map((c) => c.client_id);
  assert.ok(ids.includes(d.client_id) && ids.includes(u.client_id), JSON.stringify(ids));
  assert.ok(!ids.includes(platform.client_id), "platform apps are managed by their org");
  const kinds = await (await admin("GET", "/clients?registration=metadata_document")).json();
  assert.deepEqual(kinds.items.map((c) => c.registration), kinds.items.map(() => "metadata_document"));
  assert.equal((await admin("GET", `/clients/${encodeURIComponent(platform.client_id)}`)).status, 404);
  const one = await (await admin("GET", `/clients/${encodeURIComponent(u.client_id)}`)).json();
  assert.equal(one.registration, "metadata_document");
  assert.equal((await admin("GET", "/clients?registration=platform")).status, 400);
  assert.equal((await server.fetch("/admin/v1/clients")).status, 401, "the admin token is needed");
});

test("suspending a dynamic client stops its tokens at once (also from this isolate's cache); reactivating restores them", async () => {
  const d = await dynamicClient("Suspended dynamic");
  const app = { client_id: d.client_id, redirect_uris: [CB] };
  const t = await tokensFor(server, alice, app, { scope: "profile:read" });
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200); // now cached
  const res = await admin("PATCH", `/clients/${d.client_id}`, { status: "suspended" });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, "suspended");
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401, "a suspended client's token");
  const page = await alice.fetch(`/oauth/authorize?client_id=${d.client_id}&redirect_uri=${encodeURIComponent(CB)}&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`);
  assert.equal(page.status, 400, "and it cannot start a new authorization");
  assert.equal((await admin("PATCH", `/clients/${d.client_id}`, { status: "active" })).status, 200);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
  assert.equal((await admin("PATCH", `/clients/${d.client_id}`, { status: "deleted" })).status, 400);
  const audit = await eventually(async () => {
    const a = await (await admin("GET", "/audit?limit=100")).json();
    return a.items.some((e) => e.action === "client.suspended" && e.detail?.client_id === d.client_id) && a;
  });
  assert.ok(audit);
});

test("deleting a URL client revokes its tokens, and a refetch of its document does not bring it back (a ban)", async () => {
  const u = urlClient("/admin/banned.json");
  const t = await tokensFor(server, alice, u, { scope: "profile:read" });
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 200);
  assert.equal((await admin("DELETE", `/clients/${encodeURIComponent(u.client_id)}`)).status, 204);
  assert.equal((await bearer(server, "/api/v1/me", t.access_token)).status, 401);
  // The document is still published: the next authorize must still refuse.
  const again = await alice.fetch(`/oauth/authorize?client_id=${encodeURIComponent(u.client_id)}&redirect_uri=${encodeURIComponent(u.redirect_uris[0])}&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`);
  assert.equal(again.status, 400);
  assert.equal((await admin("GET", `/clients/${encodeURIComponent(u.client_id)}`)).status, 404);
  assert.equal((await admin("DELETE", `/clients/${encodeURIComponent(u.client_id)}`)).status, 404, "idempotent: gone");
});
