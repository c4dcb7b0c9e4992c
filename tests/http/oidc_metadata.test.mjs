// Issue 17, item 9: the OpenID client metadata (id_token_signed_response_alg,
// post_logout_redirect_uris, backchannel_logout_uri,
// backchannel_logout_session_required, sector_identifier_uri) in platform
// app registration (/api/v1/apps), RFC 7591/7592 and Client ID Metadata
// Documents: accepted, stored, echoed; each refusal names the field and the
// reason and stores nothing. A sector identifier document is fetched (no
// redirect, time and size bounds, a budget per source) and must list every
// redirect URI; under SUBJECT_TYPE=pairwise a client whose redirect URIs span
// hosts must name one. Documents come from a loopback server
// (tests/http/cimd_server.mjs), admitted by CIMD_ALLOW_HTTP_LOOPBACK.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startServer, api, authorizeQuery, lastLine, freePort, testSigningKeys, testRsaKey, DEV_API_KEY } from "./support.mjs";
import { startDocumentServer, clientDocument } from "./cimd_server.mjs";

const MAX_DOC = 2048;
let docs, server, pairwise, strict;

before(async () => {
  docs = await startDocumentServer();
  const common = {
    DCR: "open",
    DCR_RATE_PER_HOUR: "1000",
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    CIMD_FETCH_TIMEOUT_SECONDS: "1",
    CIMD_MAX_DOCUMENT_BYTES: String(MAX_DOC),
  };
  server = await startServer({
    ...common,
    // An RSA and an EC key: ES256 ID tokens are on offer.
    JWT_SIGNING_KEYS: testSigningKeys(),
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "10000",
    CIMD_FETCHES_PER_HOST_PER_MINUTE: "10000",
  });
  pairwise = await startServer({
    ...common,
    SUBJECT_TYPE: "pairwise",
    SUBJECT_SALT: "oidc-metadata-test-salt-0123456789abcdef",
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "10000",
    CIMD_FETCHES_PER_HOST_PER_MINUTE: "10000",
  });
  // An RSA key only (no ES256); a small fetch budget per source.
  strict = await startServer({
    ...common,
    JWT_SIGNING_KEYS: JSON.stringify({ keys: [testRsaKey()] }),
    CIMD_FETCHES_PER_SOURCE_PER_MINUTE: "2",
  });
});
after(async () => {
  for (const s of [server, pairwise, strict]) await s?.close();
  await docs?.close();
});

const CB = "http://localhost:3000/callback";
let n = 0;
const uniq = (p) => `${p}-${++n}`;

/** Serve a sector identifier document listing `uris` (or `route` as given). */
function sector(uris = [CB], route = {}) {
  return docs.route(`/${uniq("sector")}.json`, { body: uris, ...route });
}

const OIDC = (sectorUri) => ({
  id_token_signed_response_alg: "ES256",
  post_logout_redirect_uris: ["https://app.example/bye", "http://127.0.0.1:9000/bye"],
  backchannel_logout_uri: "https://app.example/backchannel",
  backchannel_logout_session_required: true,
  sector_identifier_uri: sectorUri,
});

const appBody = (extra = {}) => ({
  name: uniq("OIDC App"),
  redirect_uris: [CB],
  scopes: ["profile:read"],
  ...extra,
});

const columns =
  "SELECT id_token_signed_response_alg AS alg, post_logout_redirect_uris AS plr, backchannel_logout_uri AS bcl, " +
  "backchannel_logout_session_required AS bsr, sector_identifier_uri AS sector, version FROM apps WHERE id = ?";
const stored = (s, id) => s.db.prepare(columns).bind(id).first();
const appsNamed = async (s, name) =>
  (await s.db.prepare("SELECT COUNT(*) AS n FROM apps WHERE name = ?").bind(name).first()).n;
const dynamicCount = async (s) =>
  (await s.db.prepare("SELECT COUNT(*) AS n FROM apps WHERE registration = 'dynamic'").first()).n;

function assertEchoed(body, sectorUri) {
  assert.equal(body.id_token_signed_response_alg, "ES256");
  assert.deepEqual(body.post_logout_redirect_uris, ["https://app.example/bye", "http://127.0.0.1:9000/bye"]);
  assert.equal(body.backchannel_logout_uri, "https://app.example/backchannel");
  assert.equal(body.backchannel_logout_session_required, true);
  assert.equal(body.sector_identifier_uri, sectorUri);
}

async function assertStored(s, id, sectorUri) {
  const row = await stored(s, id);
  assert.equal(row.alg, "ES256");
  assert.deepEqual(JSON.parse(row.plr), ["https://app.example/bye", "http://127.0.0.1:9000/bye"]);
  assert.equal(row.bcl, "https://app.example/backchannel");
  assert.equal(row.bsr, 1);
  assert.equal(row.sector, sectorUri);
  return row;
}

/** Each field wrong, with a word its refusal must contain. */
const REFUSALS = [
  [{ id_token_signed_response_alg: "HS256" }, /id_token_signed_response_alg "HS256".*not supported/],
  [{ id_token_signed_response_alg: "none" }, /id_token_signed_response_alg "none".*always signed/],
  [{ post_logout_redirect_uris: "https://app.example/bye" }, /post_logout_redirect_uris must be an array/],
  [{ post_logout_redirect_uris: ["https://app.example/bye#frag"] }, /post_logout_redirect_uri .*fragment/],
  [{ post_logout_redirect_uris: ["http://app.example/bye"] }, /post_logout_redirect_uri .*uses http/],
  [{ post_logout_redirect_uris: Array.from({ length: 21 }, (_, i) => `https://app.example/${i}`) }, /at most 20 post_logout_redirect_uris/],
  [{ post_logout_redirect_uris: [`https://app.example/${"a".repeat(2001)}`] }, /post_logout_redirect_uri is longer than 2000/],
  [{ backchannel_logout_uri: "http://app.example/bcl" }, /backchannel_logout_uri .*uses http/],
  [{ backchannel_logout_uri: "https://app.example/bcl#f" }, /backchannel_logout_uri .*fragment/],
  [{ backchannel_logout_session_required: "yes" }, /backchannel_logout_session_required must be true or false/],
  [{ sector_identifier_uri: "http://app.example/sector.json" }, /sector_identifier_uri must use https/],
  [{ sector_identifier_uri: "https://10.1.2.3/sector.json" }, /sector_identifier_uri must name a host, not an IP address/],
];

test("platform app: every field accepted, stored and echoed on create, read and update", async () => {
  const s = sector();
  const res = await api(server, "POST", "/api/v1/apps", appBody(OIDC(s)));
  assert.equal(res.status, 201, await res.clone().text());
  const app = await res.json();
  assertEchoed(app, s);
  assertEchoed(await (await api(server, "GET", `/api/v1/apps/${app.id}`)).json(), s);
  await assertStored(server, app.id, s);

  // Update: a field changed, one cleared with null, the rest kept.
  const up = await api(server, "PATCH", `/api/v1/apps/${app.id}`, {
    version: app.version,
    id_token_signed_response_alg: "RS256",
    backchannel_logout_uri: null,
  });
  assert.equal(up.status, 200, await up.clone().text());
  const updated = await up.json();
  assert.equal(updated.id_token_signed_response_alg, "RS256");
  assert.equal(updated.backchannel_logout_uri, null);
  assert.equal(updated.sector_identifier_uri, s, "kept");
  assert.deepEqual(updated.post_logout_redirect_uris, app.post_logout_redirect_uris, "kept");
  const row = await stored(server, app.id);
  assert.equal(row.alg, "RS256");
  assert.equal(row.bcl, null);

  // An app that names none of them reads as the defaults.
  const plain = await (await api(server, "POST", "/api/v1/apps", appBody())).json();
  assert.equal(plain.id_token_signed_response_alg, "RS256");
  assert.deepEqual(plain.post_logout_redirect_uris, []);
  assert.equal(plain.backchannel_logout_uri, null);
  assert.equal(plain.backchannel_logout_session_required, false);
  assert.equal(plain.sector_identifier_uri, null);
});

test("platform app: each refusal names the field and the reason, and nothing is stored or changed", async () => {
  for (const [fields, reason] of REFUSALS) {
    const body = appBody(fields);
    const res = await api(server, "POST", "/api/v1/apps", body);
    const err = await res.json();
    assert.equal(res.status, 400, JSON.stringify(fields));
    assert.match(err.error_description, reason);
    assert.equal(await appsNamed(server, body.name), 0, "nothing stored");
  }
  const app = await (await api(server, "POST", "/api/v1/apps", appBody({ backchannel_logout_uri: "https://app.example/bcl" }))).json();
  for (const [fields, reason] of REFUSALS) {
    const res = await api(server, "PATCH", `/api/v1/apps/${app.id}`, { version: app.version, name: "changed", ...fields });
    assert.equal(res.status, 400, JSON.stringify(fields));
    assert.match((await res.json()).error_description, reason);
  }
  const row = await stored(server, app.id);
  assert.equal(row.version, app.version, "no update went through");
  assert.equal(row.bcl, "https://app.example/bcl");
});

test("RFC 7591/7592: the fields are registered, echoed, read back and replaced", async () => {
  const s = sector();
  const res = await server.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", ...OIDC(s) }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const client = await res.json();
  assertEchoed(client, s);
  await assertStored(server, client.client_id, s);
  const path = new URL(client.registration_client_uri).pathname;
  const read = await api(server, "GET", path, undefined, client.registration_access_token);
  assertEchoed(await read.json(), s);

  // RFC 7592 §2.2 replaces the metadata: what is left out is gone.
  const put = await api(
    server,
    "PUT",
    path,
    { client_id: client.client_id, redirect_uris: [CB], post_logout_redirect_uris: ["https://app.example/other"] },
    client.registration_access_token,
  );
  assert.equal(put.status, 200, await put.clone().text());
  const replaced = await put.json();
  assert.deepEqual(replaced.post_logout_redirect_uris, ["https://app.example/other"]);
  assert.equal(replaced.id_token_signed_response_alg, "RS256");
  assert.equal(replaced.backchannel_logout_uri, undefined, "absent values are left out (RFC 7591 responses)");
  assert.equal(replaced.sector_identifier_uri, undefined);
  assert.equal(replaced.backchannel_logout_session_required, false);
  const row = await stored(server, client.client_id);
  assert.equal(row.alg, null);
  assert.equal(row.sector, null);
  assert.equal(row.bsr, 0);

  // A refused replacement changes nothing.
  for (const [fields, reason] of REFUSALS) {
    const bad = await api(server, "PUT", path, { client_id: client.client_id, redirect_uris: [CB], ...fields }, client.registration_access_token);
    assert.equal(bad.status, 400, JSON.stringify(fields));
    const err = await bad.json();
    assert.equal(err.error, "invalid_client_metadata");
    assert.match(err.error_description, reason);
  }
  assert.deepEqual(JSON.parse((await stored(server, client.client_id)).plr), ["https://app.example/other"]);
});

test("RFC 7591: each refusal is invalid_client_metadata with the reason, and registers nothing", async () => {
  const before = await dynamicCount(server);
  for (const [fields, reason] of REFUSALS) {
    const res = await server.fetch("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", ...fields }),
    });
    assert.equal(res.status, 400, JSON.stringify(fields));
    const err = await res.json();
    assert.equal(err.error, "invalid_client_metadata");
    assert.match(err.error_description, reason);
  }
  assert.equal(await dynamicCount(server), before);
});

test("ES256 is refused where JWT_SIGNING_KEYS holds no EC key", async () => {
  const res = await api(strict, "POST", "/api/v1/apps", appBody({ id_token_signed_response_alg: "ES256" }));
  assert.equal(res.status, 400);
  assert.match((await res.json()).error_description, /id_token_signed_response_alg "ES256" is refused \(this server holds no EC signing key\); use one of: RS256/);
  const dcr = await strict.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", id_token_signed_response_alg: "ES256" }),
  });
  assert.equal(dcr.status, 400);
  assert.equal((await dcr.json()).error, "invalid_client_metadata");
});

/** A platform registration naming `sectorUri`; its status and error. */
async function withSector(s, sectorUri, redirect_uris = [CB]) {
  const body = appBody({ sector_identifier_uri: sectorUri, redirect_uris });
  const res = await api(s, "POST", "/api/v1/apps", body);
  const out = await res.json();
  return { status: res.status, out, stored: await appsNamed(s, body.name) };
}

const NOT_FETCHED = /sector_identifier_uri: the document could not be fetched/;

test("sector_identifier_uri: a good list is accepted; a list missing a redirect URI, not JSON, too big, a redirect or an unreachable host is refused", async () => {
  const two = [CB, "http://127.0.0.1:4000/cb"];
  let r = await withSector(server, sector([...two, "https://elsewhere.example/cb"]), two);
  assert.equal(r.status, 201, JSON.stringify(r.out));

  r = await withSector(server, sector([CB]), two);
  assert.equal(r.status, 400);
  assert.match(r.out.error_description, /sector_identifier_uri: the document does not list the redirect URI "http:\/\/127.0.0.1:4000\/cb"/);
  assert.equal(r.stored, 0);

  for (const body of ["not json", JSON.stringify({ redirect_uris: [CB] }), JSON.stringify([CB, 7])]) {
    r = await withSector(server, sector(undefined, { body }));
    assert.equal(r.status, 400, body);
    assert.match(r.out.error_description, /sector_identifier_uri: the document is not a JSON array of URIs/);
    assert.equal(r.stored, 0);
  }

  // Too big, a redirect, an unreachable host, a host that never answers:
  // the caller learns it could not be fetched; the log line says why.
  const big = JSON.stringify([CB, ...Array.from({ length: 100 }, (_, i) => `https://padding.example/${i}/${"x".repeat(20)}`)]);
  assert.ok(big.length > MAX_DOC);
  const target = sector();
  const closed = `http://127.0.0.1:${await freePort()}/sector.json`;
  for (const [uri, why] of [
    [sector(undefined, { body: big }), `larger than ${MAX_DOC} bytes`],
    [sector(undefined, { status: 302, headers: { location: target } }), "HTTP 302 (a redirect, not followed)"],
    [closed, "the request failed"],
    [docs.route(`/${uniq("hang")}.json`, { hang: true }), "no answer within 1 s"],
  ]) {
    const hitsBefore = docs.hits(new URL(target).pathname);
    r = await withSector(server, uri);
    assert.equal(r.status, 400, uri);
    assert.match(r.out.error_description, NOT_FETCHED);
    assert.equal(r.stored, 0);
    assert.match(lastLine(server, "apps_create").error, new RegExp(why.replace(/[()]/g, "\\$&")));
    assert.equal(docs.hits(new URL(target).pathname), hitsBefore, "a redirect is not followed");
  }
});

test("sector_identifier_uri fetches: a budget per source; authorize of a platform app never fetches", async () => {
  const s = sector();
  const path = new URL(s).pathname;
  const ip = { "cf-connecting-ip": "203.0.113.77" };
  const post = (body) =>
    strict.fetch("/api/v1/apps", {
      method: "POST",
      headers: { ...ip, authorization: "Bearer " + DEV_API_KEY, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const first = await (await post(appBody({ sector_identifier_uri: s }))).json();
  assert.equal((await post(appBody({ sector_identifier_uri: s }))).status, 201);
  assert.equal(docs.hits(path), 2);
  const third = await post(appBody({ sector_identifier_uri: s }));
  assert.equal(third.status, 429);
  assert.ok(third.headers.get("retry-after"));
  assert.match((await third.json()).error_description, /sector_identifier_uri fetches/);
  assert.equal(docs.hits(path), 2, "the refused registration fetched nothing");

  const page = await strict.fetch(`/oauth/authorize?${authorizeQuery(first)}`);
  assert.ok([200, 302, 303].includes(page.status), String(page.status));
  assert.equal(docs.hits(path), 2, "authorize does not fetch the sector document of a platform app");
});

test("SUBJECT_TYPE=pairwise: redirect URIs on two hosts need a sector_identifier_uri (platform, RFC 7591, metadata document)", async () => {
  const twoHosts = ["https://one.example/cb", "https://other.example/cb"];
  const res = await api(pairwise, "POST", "/api/v1/apps", appBody({ redirect_uris: twoHosts }));
  assert.equal(res.status, 400);
  assert.match((await res.json()).error_description, /redirect_uris span more than one host \(one.example, other.example\).*sector_identifier_uri/);
  const ok = await api(pairwise, "POST", "/api/v1/apps", appBody({ redirect_uris: twoHosts, sector_identifier_uri: sector(twoHosts) }));
  assert.equal(ok.status, 201, await ok.clone().text());
  assert.equal((await api(pairwise, "POST", "/api/v1/apps", appBody({ redirect_uris: [CB, "http://localhost:3000/other"] }))).status, 201, "one host");
  // Loopback hosts name no sector: a native client on localhost and 127.0.0.1 (as MCP clients register) spans nothing.
  const native = await pairwise.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [CB, "http://127.0.0.1:3000/callback"], token_endpoint_auth_method: "none" }),
  });
  assert.equal(native.status, 201, await native.clone().text());

  const dcr = await pairwise.fetch("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: twoHosts, token_endpoint_auth_method: "none" }),
  });
  assert.equal(dcr.status, 400);
  const err = await dcr.json();
  assert.equal(err.error, "invalid_client_metadata");
  assert.match(err.error_description, /span more than one host/);

  const client_id = docs.url(`/${uniq("pairwise")}/client.json`);
  docs.route(new URL(client_id).pathname, { body: clientDocument(client_id, { redirect_uris: twoHosts }) });
  const page = await pairwise.fetch(`/oauth/authorize?${authorizeQuery({ client_id, redirect_uris: twoHosts })}`);
  assert.equal(page.status, 400);
  assert.match(await page.text(), /span more than one host/);
  assert.equal(await (await pairwise.db.prepare("SELECT COUNT(*) AS n FROM apps WHERE id = ?").bind(client_id).first()).n, 0);
});

test("metadata document: the fields are read from the document with the same rules, and refreshed with it", async () => {
  const s = sector();
  const client_id = docs.url(`/${uniq("cimd")}/client.json`);
  const path = new URL(client_id).pathname;
  docs.route(path, { headers: { "cache-control": "no-store" }, body: clientDocument(client_id, OIDC(s)) });
  const first = await server.fetch(`/oauth/authorize?${authorizeQuery({ client_id, redirect_uris: [CB] })}`);
  assert.notEqual(first.status, 400, await first.clone().text());
  await assertStored(server, client_id, s);
  assert.equal(docs.hits(new URL(s).pathname), 1, "the sector document is fetched with the document");

  // The document changes: the next resolution stores what it says now.
  docs.route(path, {
    headers: { "cache-control": "no-store" },
    body: clientDocument(client_id, { post_logout_redirect_uris: ["https://app.example/later"] }),
  });
  await server.fetch(`/oauth/authorize?${authorizeQuery({ client_id, redirect_uris: [CB] })}`);
  const row = await stored(server, client_id);
  assert.deepEqual(JSON.parse(row.plr), ["https://app.example/later"]);
  assert.equal(row.alg, null);
  assert.equal(row.sector, null);
  assert.equal(row.bsr, 0);

  // A document with a bad field, or whose sector list misses its redirect URI, is refused on a page.
  for (const [extra, reason] of [
    [{ backchannel_logout_uri: "http://app.example/bcl" }, /backchannel_logout_uri .*uses http/],
    [{ sector_identifier_uri: sector(["https://other.example/cb"]) }, /does not list the redirect URI/],
  ]) {
    docs.route(path, { headers: { "cache-control": "no-store" }, body: clientDocument(client_id, extra) });
    const page = await server.fetch(`/oauth/authorize?${authorizeQuery({ client_id, redirect_uris: [CB] })}`);
    assert.equal(page.status, 400);
    assert.equal(page.headers.get("location"), null);
    assert.match(await page.text(), reason);
    assert.deepEqual(JSON.parse((await stored(server, client_id)).plr), ["https://app.example/later"], "nothing stored");
  }
});

test("cross-tenant and cross-client: another org's key or another client's registration token neither reads nor changes the fields", async () => {
  const globexKey = "key_globexOidcMetadataTest_0123456789abcdefghij";
  await server.db
    .prepare("INSERT INTO api_keys (hash, org_id, name, role, created_at) VALUES (?, 'org_globex', 'globex-admin', 'admin', 0)")
    .bind(createHash("sha256").update(globexKey).digest("hex"))
    .run();
  const app = await (await api(server, "POST", "/api/v1/apps", appBody({ backchannel_logout_uri: "https://acme.example/bcl" }))).json();
  const read = await api(server, "GET", `/api/v1/apps/${app.id}`, undefined, globexKey);
  assert.equal(read.status, 404);
  const write = await api(server, "PATCH", `/api/v1/apps/${app.id}`, { version: app.version, backchannel_logout_uri: "https://evil.example/bcl" }, globexKey);
  assert.equal(write.status, 404);
  const row = await stored(server, app.id);
  assert.equal(row.bcl, "https://acme.example/bcl");
  assert.equal(row.version, app.version);

  const reg = async () =>
    (await server.fetch("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", backchannel_logout_uri: "https://client.example/bcl" }),
    })).json();
  const [a, b] = [await reg(), await reg()];
  const put = await api(
    server,
    "PUT",
    new URL(b.registration_client_uri).pathname,
    { client_id: b.client_id, redirect_uris: [CB], backchannel_logout_uri: "https://evil.example/bcl" },
    a.registration_access_token,
  );
  assert.equal(put.status, 401);
  assert.equal((await stored(server, b.client_id)).bcl, "https://client.example/bcl");
});

test("RFC 7591: a sector_identifier_uri is fetched at registration; a list missing a redirect URI, or no document, registers nothing", async () => {
  const before = await dynamicCount(server);
  for (const [uri, error] of [
    [sector(["https://other.example/cb"]), /sector_identifier_uri: the document does not list the redirect URI/],
    [sector(undefined, { status: 302, headers: { location: sector() } }), NOT_FETCHED],
  ]) {
    const hits = docs.hits(new URL(uri).pathname);
    const res = await server.fetch("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", sector_identifier_uri: uri }),
    });
    assert.equal(res.status, 400, uri);
    const err = await res.json();
    assert.equal(err.error, "invalid_client_metadata");
    assert.match(err.error_description, error);
    assert.equal(docs.hits(new URL(uri).pathname), hits + 1, "fetched once");
  }
  assert.equal(await dynamicCount(server), before);

  // RFC 7592 replace: checked again; a refused one leaves the client as it was.
  const good = sector();
  const client = await (
    await server.fetch("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", sector_identifier_uri: good }),
    })
  ).json();
  const put = await api(
    server,
    "PUT",
    new URL(client.registration_client_uri).pathname,
    { client_id: client.client_id, redirect_uris: [CB, "http://127.0.0.1:5000/cb"], sector_identifier_uri: good },
    client.registration_access_token,
  );
  assert.equal(put.status, 400);
  assert.match((await put.json()).error_description, /does not list the redirect URI "http:\/\/127.0.0.1:5000\/cb"/);
  const row = await server.db.prepare("SELECT redirect_uris FROM apps WHERE id = ?").bind(client.client_id).first();
  assert.deepEqual(JSON.parse(row.redirect_uris), [CB]);
});

test("DCR=initial_access_token: a registration whose token cannot register fetches no sector document", async () => {
  const gated = await startServer({
    DCR: "initial_access_token",
    PLATFORM_ADMIN_TOKEN: "oidc-metadata-admin-token-0123456789abcdefghij",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
  });
  try {
    const uri = sector();
    const res = await gated.fetch("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer iat_not_a_real_token" },
      body: JSON.stringify({ redirect_uris: [CB], token_endpoint_auth_method: "none", sector_identifier_uri: uri }),
    });
    assert.equal(res.status, 401);
    assert.equal(docs.hits(new URL(uri).pathname), 0, "nothing fetched for a token that cannot register");
  } finally {
    await gated.close();
  }
});
