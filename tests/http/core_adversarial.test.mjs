// Attacks and mistakes, each refused without side effects (RFC 9700, OAuth 2.1).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  startServer, Browser, registerApp, pkcePair, hiddenFields, consent, exchange, tokenRequest, tokensFor, bearer,
  authorizeQuery, basic, form, FORM,
} from "./support.mjs";

let server, alice, app;
before(async () => {
  server = await startServer();
  app = await registerApp(server, { redirect_uris: ["https://client.example/cb", "http://127.0.0.1/cb"] });
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
});
after(() => server.close());

const errorOf = (res) => new URL(res.headers.get("location")).searchParams.get("error");

test("unknown client or unregistered redirect URI gets an error page, never a redirect", async () => {
  for (const q of [
    `client_id=app_nope&response_type=code&redirect_uri=${encodeURIComponent("https://client.example/cb")}`,
    `client_id=${app.client_id}&response_type=code&redirect_uri=${encodeURIComponent("https://evil.example/cb")}`,
    `client_id=${app.client_id}&response_type=code&redirect_uri=${encodeURIComponent("https://client.example/cb/")}`,
    `client_id=${app.client_id}&response_type=code&redirect_uri=${encodeURIComponent("https://client.example/cb/extra")}`,
    `client_id=${app.client_id}&response_type=code&redirect_uri=${encodeURIComponent("https://client.example/cb?x=1")}`,
    `client_id=${app.client_id}&response_type=token`, // two URIs registered: redirect_uri is required
  ]) {
    const res = await alice.fetch(`/oauth/authorize?${q}`);
    assert.equal(res.status, 400, q);
    assert.equal(res.headers.get("location"), null, q);
    assert.match(res.headers.get("content-type"), /text\/html/);
  }
});

test("implicit grant is refused with unsupported_response_type", async () => {
  const res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { response_type: "token", state: "i1" })}`);
  assert.equal(res.status, 302);
  const cb = new URL(res.headers.get("location"));
  assert.equal(cb.searchParams.get("error"), "unsupported_response_type");
  assert.equal(cb.searchParams.get("state"), "i1");
  assert.equal(cb.searchParams.get("iss"), server.base);
});

test("plain PKCE and malformed challenges are refused", async () => {
  const { verifier } = pkcePair();
  let res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { code_challenge: verifier, code_challenge_method: "plain" })}`);
  assert.equal(errorOf(res), "invalid_request");
  res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { code_challenge: "short", code_challenge_method: "S256" })}`);
  assert.equal(errorOf(res), "invalid_request");
});

test("undeclared scope is invalid_scope", async () => {
  const res = await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { scope: "webhooks:manage" })}`);
  assert.equal(errorOf(res), "invalid_scope");
});

test("loopback redirect URI matches on any port (RFC 8252)", async () => {
  const { location } = await consent(alice, { ...app, redirect_uris: ["http://127.0.0.1:49152/cb"] }, { prompt: "consent" });
  assert.equal(location.origin, "http://127.0.0.1:49152");
  assert.ok(location.searchParams.get("code"));
});

test("missing or wrong PKCE verifier is invalid_grant and the code survives", async () => {
  const { verifier, challenge } = pkcePair();
  const { location } = await consent(alice, app, { code_challenge: challenge, code_challenge_method: "S256", prompt: "consent" });
  const code = location.searchParams.get("code");
  let res = await exchange(server, app, code);
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_grant");
  res = await exchange(server, app, code, { verifier: pkcePair().verifier });
  assert.equal((await res.json()).error, "invalid_grant");
  res = await exchange(server, app, code, { verifier });
  assert.equal(res.status, 200, "failed attempts changed nothing");
});

test("a verifier for a code issued without a challenge is refused (no downgrade)", async () => {
  const { location } = await consent(alice, app, { prompt: "consent" });
  const code = location.searchParams.get("code");
  // A code without a challenge, as PKCE_REQUIRED=public issues to a confidential client.
  await server.db.prepare("UPDATE codes SET challenge = NULL WHERE hash = ?").bind(createHash("sha256").update(code).digest("hex")).run();
  let res = await exchange(server, app, code, { verifier: pkcePair().verifier });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_grant");
  // Nor without one: PKCE_REQUIRED=all wants a verifier from every client
  // (hardening_token.test.mjs covers this rule).
  res = await exchange(server, app, code, { verifier: undefined });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_request");
});

test("redirect_uri at the token endpoint must match the authorization request", async () => {
  const { location } = await consent(alice, app, { prompt: "consent" });
  const res = await exchange(server, app, location.searchParams.get("code"), { redirect_uri: "http://127.0.0.1/cb" });
  assert.equal((await res.json()).error, "invalid_grant");
});

test("a code is bound to its client", async () => {
  const other = await registerApp(server, { redirect_uris: ["https://client.example/cb"] });
  const { location } = await consent(alice, app, { prompt: "consent" });
  const res = await exchange(server, other, location.searchParams.get("code"));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_grant");
});

test("an expired code is invalid_grant", async () => {
  const { location } = await consent(alice, app, { prompt: "consent" });
  await server.db.prepare("UPDATE codes SET expires_at = 0 WHERE used_at IS NULL").run();
  const res = await exchange(server, app, location.searchParams.get("code"));
  assert.equal((await res.json()).error, "invalid_grant");
});

test("replayed code fails and revokes the tokens of the first exchange", async () => {
  const { location } = await consent(alice, app, { prompt: "consent" });
  const code = location.searchParams.get("code");
  const first = await (await exchange(server, app, code)).json();
  assert.equal((await bearer(server, "/api/v1/me", first.access_token)).status, 200);
  const replay = await exchange(server, app, code);
  assert.equal(replay.status, 400);
  assert.equal((await replay.json()).error, "invalid_grant");
  assert.equal((await bearer(server, "/api/v1/me", first.access_token)).status, 401);
  const refresh = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: first.refresh_token });
  assert.equal((await refresh.json()).error, "invalid_grant");
});

test("20 concurrent redemptions of one code: exactly one succeeds", async () => {
  const { location } = await consent(alice, app, { prompt: "consent" });
  const code = location.searchParams.get("code");
  const results = await Promise.all(Array.from({ length: 20 }, () => exchange(server, app, code)));
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 1, JSON.stringify(statuses));
  assert.equal(statuses.filter((s) => s === 400).length, 19);
  const hash = createHash("sha256").update(code).digest("hex");
  const issued = await server.db
    .prepare("SELECT count(*) AS n FROM tokens WHERE grant_id = (SELECT grant_id FROM codes WHERE hash = ?)")
    .bind(hash)
    .first();
  assert.equal(issued.n, 2, "one access and one refresh token, from the single winner");
  const grants = await server.db.prepare("SELECT count(*) AS n FROM grants WHERE id IN (SELECT grant_id FROM codes WHERE hash = ?)").bind(hash).first();
  assert.equal(grants.n, 1);
});

test("reused refresh token fails and revokes its whole family", async () => {
  const t1 = await tokensFor(server, alice, app, { prompt: "consent", redirect_uri: "https://client.example/cb" });
  const t2 = await (await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t1.refresh_token })).json();
  assert.ok(t2.access_token);
  // Outside the default reuse grace (10 s since issue 15), anchored at the rotation.
  await server.db.prepare("UPDATE tokens SET used_at = used_at - 11 WHERE hash = ?").bind(createHash("sha256").update(t1.refresh_token).digest("hex")).run();
  const reuse = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t1.refresh_token });
  assert.equal(reuse.status, 400);
  assert.equal((await reuse.json()).error, "invalid_grant");
  assert.equal((await bearer(server, "/api/v1/me", t2.access_token)).status, 401, "newest access token dead");
  const next = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t2.refresh_token });
  assert.equal((await next.json()).error, "invalid_grant", "newest refresh token dead");
});

test("consent POST without or with a wrong CSRF token is refused, no redirect", async () => {
  const page = await (await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent" })}`)).text();
  const fields = hiddenFields(page);
  for (const csrf of [undefined, "forged", fields.csrf + "x"]) {
    const f = { ...fields, org: "org_acme", decision: "approve" };
    if (csrf === undefined) delete f.csrf;
    else f.csrf = csrf;
    const res = await alice.post("/oauth/authorize", f);
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("location"), null);
  }
  // Another user's session cannot use alice's token either.
  const bob = new Browser(server);
  await bob.signIn("bob@globex.test", "bob-password");
  const res = await bob.post("/oauth/authorize", { ...fields, org: "org_globex", decision: "approve" });
  assert.equal(res.status, 403);
});

test("consent for an org the user is not in is refused", async () => {
  const page = await (await alice.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent" })}`)).text();
  const res = await alice.post("/oauth/authorize", { ...hiddenFields(page), org: "org_globex", decision: "approve" });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("location"), null);
});

test("an app name with markup is shown escaped on the consent page", async () => {
  const evil = await registerApp(server, {
    name: `<script>alert(1)</script><img src=x onerror=alert(2)>`,
    description: `"><svg onload=alert(3)>`,
    redirect_uris: ["https://client.example/cb"],
  });
  const page = await (await alice.fetch(`/oauth/authorize?${authorizeQuery(evil)}`)).text();
  assert.ok(page.includes("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"));
  assert.ok(!page.includes("<script>alert"));
  assert.ok(!page.includes("<img src=x"));
  assert.ok(!page.includes("<svg"));
});

test("sign-in return_to cannot redirect off-site", async () => {
  const b = new Browser(server);
  for (const rt of ["https://evil.example/", "//evil.example/", "/\\evil.example"]) {
    const res = await b.post("/signin", { email: "carol@acme.test", password: "carol-password", return_to: rt });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/");
  }
});

test("bad client secret is invalid_client 401 with a Basic challenge", async () => {
  const res = await server.fetch("/oauth/token", {
    method: "POST", headers: { ...FORM, authorization: basic(app.client_id, "sec_wrong") },
    body: form({ grant_type: "refresh_token", refresh_token: "rt_x" }),
  });
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate"), /^Basic/);
  assert.equal((await res.json()).error, "invalid_client");
});

test("unknown grant type is unsupported_grant_type", async () => {
  const res = await tokenRequest(server, app, { grant_type: "password", username: "a", password: "b" });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "unsupported_grant_type");
});
