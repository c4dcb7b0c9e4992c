// Issue 10, item 4: RFC 8707 resource indicators. `resource` at authorize and
// at the token endpoint sets the token's audience (a subset of what was
// approved, never more); an unknown or malformed one is `invalid_target` and
// changes nothing; the platform's API refuses a token whose audience is
// another resource, in every bearer mode; JWTs and introspection carry `aud`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { decodeJwt } from "jose";
import { startServer, Browser, registerApp, pkcePair, basic, hiddenFields, eventually, unescape, FORM, freePort, lastLine, bearer, testSigningKeys, clientRequest, count } from "./support.mjs";

const OTHER = "https://other.example/mcp";
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const JWT = { ACCESS_TOKEN_FORMAT: "jwt", JWT_SIGNING_KEYS: testSigningKeys("k1") };

/** A server whose RESOURCES are its own API (first: the default) and OTHER. */
async function withResources(vars = {}) {
  const port = await freePort();
  const api = `http://127.0.0.1:${port}/api/v1`;
  const s = await startServer({ RESOURCES: `${api} ${OTHER}`, ...vars }, { port });
  s.api = api;
  s.browser = new Browser(s);
  await s.browser.signIn("alice@acme.test", "alice-password");
  s.app = await registerApp(s, { name: "Audience" });
  return s;
}

let strict, edge, cached, jwtOffline, jwtStrict;
before(async () => {
  strict = await withResources();
  edge = await withResources({ BEARER_MODE: "edge" });
  cached = await withResources({ BEARER_CACHE_TTL_SECONDS: "30" });
  jwtOffline = await withResources({ ...JWT, BEARER_MODE: "jwt" });
  jwtStrict = await withResources(JWT);
});
after(async () => {
  for (const s of [strict, edge, cached, jwtOffline, jwtStrict]) await s?.close();
});

const enc = (pairs) => new URLSearchParams(pairs).toString();

/** GET authorize with `resources` (repeated), approve on the consent page
 * (every hidden field kept, repeats included); the redirect's URL. */
async function approve(s, resources = [], extra = {}) {
  const { verifier, challenge } = pkcePair();
  const pairs = [
    ["client_id", s.app.client_id], ["redirect_uri", s.app.redirect_uris[0]], ["response_type", "code"],
    ["scope", "profile:read posts:read"], ["state", "st1"], ["code_challenge", challenge],
    ["code_challenge_method", "S256"], ...resources.map((r) => ["resource", r]), ...Object.entries(extra),
  ];
  const page = await s.browser.fetch(`/oauth/authorize?${enc(pairs)}`);
  if (page.status !== 200) {
    // A prior consent covers the request: the code (or the error) comes at once.
    const location = page.headers.get("location") && new URL(page.headers.get("location"));
    return { page, location, code: location?.searchParams.get("code"), verifier };
  }
  const html = await page.text();
  const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], unescape(m[2])]);
  assert.ok(hiddenFields(html).csrf, "a consent form");
  const res = await s.browser.fetch("/oauth/authorize", {
    method: "POST", headers: FORM, body: enc([...fields, ["org", "org_acme"], ["decision", "approve"]]),
  });
  const location = new URL(res.headers.get("location"));
  return { code: location.searchParams.get("code"), verifier, location };
}

/** POST /oauth/token as the app, with repeated parameters allowed. */
const token = (s, pairs, app = s.app) =>
  s.fetch("/oauth/token", { method: "POST", headers: { ...FORM, authorization: basic(app.client_id, app.client_secret) }, body: enc(pairs) });

const redeem = (s, code, verifier, resources = []) =>
  token(s, [["grant_type", "authorization_code"], ["code", code], ["redirect_uri", s.app.redirect_uris[0]], ["code_verifier", verifier], ...resources.map((r) => ["resource", r])]);

const refresh = (s, refresh_token, resources = []) =>
  token(s, [["grant_type", "refresh_token"], ["refresh_token", refresh_token], ...resources.map((r) => ["resource", r])]);

/** Authorize with `granted`, redeem narrowing to `narrowed`: the token response. */
async function issue(s, granted = [], narrowed = []) {
  const { code, verifier } = await approve(s, granted);
  assert.ok(code, "a code");
  const res = await redeem(s, code, verifier, narrowed);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

const me = (s, t) => bearer(s, "/api/v1/me", t);
const introspect = async (s, t) => (await clientRequest(s, "/oauth/introspect", s.app, { token: t })).json();
const param = (h, name) => h?.match(new RegExp(`${name}="([^"]*)"`))?.[1];

/** The API's answer to a token for another resource: 401 invalid_token, a reason, and where to look. */
async function refusedForAudience(s, t, label) {
  const res = await me(s, t);
  assert.equal(res.status, 401, `${label}: a token for ${OTHER} must not work on ${s.api}`);
  const challenge = res.headers.get("www-authenticate");
  assert.equal(param(challenge, "error"), "invalid_token", label);
  assert.match(param(challenge, "error_description"), /not for this resource/, label);
  assert.equal(param(challenge, "resource_metadata"), s.api.replace("/api/v1", "/.well-known/oauth-protected-resource/api/v1"), label);
  assert.equal((await res.json()).error, "invalid_token");
}

test("RFC 8707: a token for another resource is refused by the platform API (the issue's 'a token for one API works on any')", async () => {
  const { access_token } = await issue(strict, [OTHER], [OTHER]);
  await refusedForAudience(strict, access_token, "strict");
  const own = await issue(strict, [strict.api], [strict.api]);
  assert.equal((await me(strict, own.access_token)).status, 200, "a token for the API works on it");
  assert.equal(lastLine(strict, "me")?.d1, 1, "the audience is read in the bearer check's one D1 read");
  assert.equal(lastLine(strict, "token/authorization_code")?.d1, 1, "the exchange with resource stays one round trip");
});

test("every bearer mode refuses a token whose audience is another resource: edge (KV copy), per-isolate cache, jwt, strict with JWTs", async () => {
  // edge: the KV copy carries the audience; the refusal comes from the copy.
  const e = await issue(edge, [OTHER]);
  const key = sha256(e.access_token);
  await eventually(async () => (await edge.db.kvKeys()).includes(key));
  assert.deepEqual(JSON.parse(JSON.parse(await edge.db.kvGet(key)).audience), [OTHER]);
  await refusedForAudience(edge, e.access_token, "edge");
  assert.equal(lastLine(edge, "me")?.d1, 0, "answered from the KV copy");
  const eOwn = await issue(edge, [edge.api]);
  await eventually(async () => (await edge.db.kvKeys()).includes(sha256(eOwn.access_token)));
  assert.equal((await me(edge, eOwn.access_token)).status, 200);

  // cache: a refused token stays refused when its record comes from the cache.
  const c = await issue(cached, [OTHER]);
  const cOwn = await issue(cached, []);
  assert.equal((await me(cached, cOwn.access_token)).status, 200);
  assert.equal((await me(cached, cOwn.access_token)).status, 200);
  assert.equal(lastLine(cached, "me")?.d1, 0, "second call from the cache");
  await refusedForAudience(cached, c.access_token, "cache, first call");
  await refusedForAudience(cached, c.access_token, "cache, cached call");
  assert.equal(lastLine(cached, "me")?.d1, 0);

  // jwt: `aud` in the signed token is the audience; no storage read.
  for (const [s, label] of [[jwtOffline, "jwt"], [jwtStrict, "strict+JWT"]]) {
    const j = await issue(s, [OTHER]);
    assert.equal(decodeJwt(j.access_token).aud, OTHER, label);
    await refusedForAudience(s, j.access_token, label);
    const jOwn = await issue(s, []);
    assert.equal(decodeJwt(jOwn.access_token).aud, s.api, `${label}: the default audience`);
    assert.equal((await me(s, jOwn.access_token)).status, 200, label);
  }
  assert.equal(lastLine(jwtOffline, "me")?.d1, 0);
});

test("no resource anywhere: the default audience (the first listed resource), as before", async () => {
  const t = await issue(strict);
  assert.equal((await me(strict, t.access_token)).status, 200);
  const i = await introspect(strict, t.access_token);
  assert.equal(i.active, true);
  assert.equal(i.aud, strict.api);
  assert.equal((await introspect(strict, t.refresh_token)).aud, strict.api);
  // And the default configuration (no RESOURCES): <issuer>/api/v1.
  const plain = await startServer();
  try {
    const b = new Browser(plain);
    await b.signIn("alice@acme.test", "alice-password");
    plain.browser = b;
    plain.app = await registerApp(plain);
    const d = await issue(plain, [`${plain.base}/api/v1/`], [`${plain.base.toUpperCase().replace("HTTP://", "http://")}/api/v1`]);
    assert.equal((await introspect(plain, d.access_token)).aud, `${plain.base}/api/v1`, "trailing slash and case are canonicalised");
    assert.equal((await me(plain, d.access_token)).status, 200);
    const other = await approve(plain, [OTHER]);
    assert.equal(other.location.searchParams.get("error"), "invalid_target", "OTHER is not listed here");
  } finally {
    await plain.close();
  }
});

test("several resources: the token is for all of them unless the token request narrows it; refresh narrows per token, never beyond the grant", async () => {
  const t = await issue(jwtStrict, [jwtStrict.api, OTHER]);
  assert.deepEqual(decodeJwt(t.access_token).aud, [jwtStrict.api, OTHER], "JWT aud: an array for several");
  assert.deepEqual((await introspect(jwtStrict, t.access_token)).aud, [jwtStrict.api, OTHER]);
  assert.equal((await me(jwtStrict, t.access_token)).status, 200);
  // Narrow at refresh to OTHER: the API refuses that access token.
  let res = await refresh(jwtStrict, t.refresh_token, [OTHER]);
  const r1 = await res.json();
  assert.equal(res.status, 200, JSON.stringify(r1));
  assert.equal(decodeJwt(r1.access_token).aud, OTHER);
  await refusedForAudience(jwtStrict, r1.access_token, "narrowed at refresh");
  // The refresh token kept the grant's whole audience: the next refresh may ask for the API.
  assert.deepEqual((await introspect(jwtStrict, r1.refresh_token)).aud, [jwtStrict.api, OTHER]);
  res = await refresh(jwtStrict, r1.refresh_token, [jwtStrict.api]);
  const r2 = await res.json();
  assert.equal(res.status, 200, JSON.stringify(r2));
  assert.equal((await me(jwtStrict, r2.access_token)).status, 200);
  // No resource: the whole grant again.
  const r3 = await (await refresh(jwtStrict, r2.refresh_token)).json();
  assert.deepEqual(decodeJwt(r3.access_token).aud, [jwtStrict.api, OTHER]);
  assert.equal(lastLine(jwtStrict, "token/refresh_token")?.d1, 1, "refresh with audience stays one round trip");
});

test("authorize: an unknown or malformed resource is invalid_target at the redirect URI, with state and iss; no code", async () => {
  const before = await count(strict, "SELECT count(*) AS n FROM codes");
  const cases = {
    unknown: "https://evil.example/api",
    prefix: strict.api.replace("/api/v1", "/api"),
    relative: "/api/v1",
    "no scheme": "other.example/mcp",
    fragment: `${OTHER}#x`,
    query: `${OTHER}?tenant=1`,
    oversized: `https://other.example/${"a".repeat(600)}`,
    empty: "",
  };
  for (const [label, r] of Object.entries(cases)) {
    const { page, location } = await approve(strict, [r]);
    assert.equal(page?.status, 302, label);
    assert.equal(location.origin + location.pathname, strict.app.redirect_uris[0], label);
    assert.equal(location.searchParams.get("error"), "invalid_target", label);
    assert.ok(location.searchParams.get("error_description"), label);
    assert.equal(location.searchParams.get("state"), "st1", label);
    assert.equal(location.searchParams.get("iss"), strict.base, label);
  }
  // One bad value among good ones spoils the request.
  const { location } = await approve(strict, [strict.api, "https://evil.example/api"]);
  assert.equal(location.searchParams.get("error"), "invalid_target");
  assert.equal(await count(strict, "SELECT count(*) AS n FROM codes"), before, "no code was stored");
  // The client and redirect URI are still checked first: a page, never a redirect.
  const bad = await strict.browser.fetch(`/oauth/authorize?${enc([["client_id", "app_nope"], ["response_type", "code"], ["resource", "https://evil.example"]])}`);
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get("location"), null);
});

test("token: an unknown, malformed or unapproved resource is invalid_target, nothing is issued, and the code stays redeemable", async () => {
  const { code, verifier } = await approve(strict, [strict.api]);
  const tokensBefore = await count(strict, "SELECT count(*) AS n FROM tokens");
  const cases = {
    unknown: ["https://evil.example/api"],
    "listed but not approved (widening)": [OTHER],
    "approved plus one more": [strict.api, OTHER],
    relative: ["/api/v1"],
    fragment: [`${strict.api}#f`],
    oversized: [`${strict.api}/${"a".repeat(600)}`],
    empty: [""],
  };
  for (const [label, resources] of Object.entries(cases)) {
    const res = await redeem(strict, code, verifier, resources);
    const body = await res.json();
    assert.equal(res.status, 400, label);
    assert.equal(body.error, "invalid_target", `${label}: ${JSON.stringify(body)}`);
    assert.ok(body.error_description, label);
    assert.equal(res.headers.get("cache-control"), "no-store");
  }
  assert.equal(await count(strict, "SELECT count(*) AS n FROM tokens"), tokensBefore, "nothing issued");
  const row = await strict.db.prepare("SELECT used_at FROM codes WHERE hash = ?1").bind(sha256(code)).first();
  assert.equal(row.used_at, null, "the code was not consumed");
  const ok = await redeem(strict, code, verifier, [strict.api]);
  assert.equal(ok.status, 200, "the refused requests changed nothing: the code still works");
  assert.equal((await me(strict, (await ok.json()).access_token)).status, 200);
});

test("refresh: widening beyond the grant is invalid_target and the refresh token stays usable (no family revocation)", async () => {
  const t = await issue(strict, [OTHER]);
  for (const resources of [[strict.api], [OTHER, strict.api], ["https://evil.example/x"], [`${OTHER}#x`]]) {
    const res = await refresh(strict, t.refresh_token, resources);
    const body = await res.json();
    assert.equal(res.status, 400, JSON.stringify(resources));
    assert.equal(body.error, "invalid_target", JSON.stringify(body));
  }
  const row = await strict.db.prepare("SELECT used_at, revoked_at FROM tokens WHERE hash = ?1").bind(sha256(t.refresh_token)).first();
  assert.deepEqual(row, { used_at: null, revoked_at: null });
  assert.equal((await introspect(strict, t.access_token)).active, true, "the family is intact");
  const res = await refresh(strict, t.refresh_token, [OTHER]);
  assert.equal(res.status, 200);
  await refusedForAudience(strict, (await res.json()).access_token, "still for OTHER after refresh");
});

test("client_credentials: resource names any listed resource, an unknown one is invalid_target, none is the default", async () => {
  const bot = await registerApp(strict, { name: "Bot", scopes: ["profile:read"], actor_modes: ["app"] });
  const cc = (resources) => token(strict, [["grant_type", "client_credentials"], ...resources.map((r) => ["resource", r])], bot);
  let res = await cc([OTHER]);
  const forOther = await res.json();
  assert.equal(res.status, 200, JSON.stringify(forOther));
  await refusedForAudience(strict, forOther.access_token, "client_credentials for OTHER");
  const i = await (await clientRequest(strict, "/oauth/introspect", bot, { token: forOther.access_token })).json();
  assert.equal(i.aud, OTHER);
  const before = await count(strict, "SELECT count(*) AS n FROM tokens");
  for (const bad of [["https://evil.example/x"], ["relative"], [`${OTHER}#frag`]]) {
    res = await cc(bad);
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error, "invalid_target");
  }
  assert.equal(await count(strict, "SELECT count(*) AS n FROM tokens"), before, "nothing issued");
  res = await cc([]);
  assert.equal(res.status, 200);
  assert.equal((await me(strict, (await res.json()).access_token)).status, 200, "default audience: the API");
});

test("the resource survives sign-in: an unauthenticated authorize request carries it to the sign-in page and back", async () => {
  const { challenge } = pkcePair();
  const anon = new Browser(strict);
  const q = enc([["client_id", strict.app.client_id], ["redirect_uri", strict.app.redirect_uris[0]], ["response_type", "code"], ["scope", "profile:read"], ["code_challenge", challenge], ["resource", OTHER]]);
  const res = await anon.fetch(`/oauth/authorize?${q}`);
  assert.equal(res.status, 302);
  const returnTo = new URL(res.headers.get("location"), strict.base).searchParams.get("return_to");
  assert.deepEqual(new URL(returnTo, strict.base).searchParams.getAll("resource"), [OTHER]);
});
