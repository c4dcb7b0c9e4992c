// Issue 19 item 2: pushed authorization requests (RFC 9126). The client
// pushes its authorization request to POST /oauth/par (authenticated as at the
// token endpoint) and gets a single-use `request_uri` (60 s); the authorize
// request then carries only `client_id` and `request_uri`, and what was pushed
// stays on the server: never in the browser's URL nor the consent form.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, Browser, registerApp, hiddenFields, pkcePair, exchange, basic, form, FORM, count, lastLine,
} from "./support.mjs";

const URN = "urn:ietf:params:oauth:request_uri:";
let server, strict, alice, conf, pub, other;

before(async () => {
  server = await startServer();
  alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  conf = await registerApp(server, { name: "PAR confidential" });
  pub = await registerApp(server, { name: "PAR public", client_type: "public" });
  other = await registerApp(server, { name: "PAR other" });
});
after(async () => {
  await server?.close();
  await strict?.close();
});

const pushedRows = () => count(server, "SELECT count(*) AS n FROM pushed_requests");
const codes = (app) => count(server, "SELECT count(*) AS n FROM codes WHERE app_id = ?1", app.client_id);

/** POST /oauth/par as `app` (Basic with its secret, else client_id in the body). */
function push(s, app, fields = {}, headers = {}) {
  const body = { ...fields };
  const h = { ...FORM, ...headers };
  if (app.client_secret) h.authorization = basic(app.client_id, app.client_secret);
  else body.client_id = app.client_id;
  return s.fetch("/oauth/par", { method: "POST", headers: h, body: form(body) });
}

function request(app, extra = {}) {
  const { verifier, challenge } = pkcePair();
  const fields = {
    response_type: "code",
    redirect_uri: app.redirect_uris[0],
    scope: "profile:read posts:read",
    state: "par-state-" + Math.random().toString(36).slice(2),
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  };
  return { fields, verifier };
}

async function pushed(s, app, extra = {}) {
  const { fields, verifier } = request(app, extra);
  const res = await push(s, app, fields);
  assert.equal(res.status, 201, await res.clone().text());
  const body = await res.json();
  return { ...body, fields, verifier };
}

const authorizeUrl = (app, requestUri) =>
  `/oauth/authorize?${new URLSearchParams({ client_id: app.client_id, request_uri: requestUri })}`;

/** The pushed values that must not travel through the browser. */
const secrets = (fields) => [fields.state, fields.code_challenge, fields.redirect_uri, "posts:read", "posts%3Aread"];

test("both discovery documents name the PAR endpoint and the server-wide requirement (off)", async () => {
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    const doc = await (await server.fetch(path)).json();
    assert.equal(doc.pushed_authorization_request_endpoint, `${server.base}/oauth/par`, path);
    assert.equal(doc.require_pushed_authorization_requests, false, path);
  }
});

test("a confidential client pushes, authorizes with client_id and request_uri only, and exchanges the code", async () => {
  const before = await pushedRows();
  const res = await push(server, conf, request(conf).fields);
  assert.equal(res.status, 201, await res.clone().text());
  assert.match(res.headers.get("cache-control") ?? "", /no-store/);
  const body = await res.json();
  assert.ok(body.request_uri.startsWith(URN), body.request_uri);
  assert.equal(body.expires_in, 60);
  assert.equal(await pushedRows(), before + 1);

  const plain = await registerApp(server, { name: "PAR baseline" });
  const { fields: direct } = request(plain);
  const baseline = await alice.fetch(`/oauth/authorize?${new URLSearchParams({ client_id: plain.client_id, ...direct })}`);
  assert.equal(baseline.status, 200);
  const trips = lastLine(server, "authorize")?.d1;
  const p = await pushed(server, conf);
  const page = await alice.fetch(authorizeUrl(conf, p.request_uri));
  assert.equal(page.status, 200, await page.clone().text());
  assert.equal(lastLine(server, "authorize")?.d1, trips, "a request_uri costs no D1 round trip of its own");
  const html = await page.text();
  const fields = hiddenFields(html);
  assert.deepEqual(Object.keys(fields).filter((k) => k !== "csrf").sort(), ["client_id", "request_uri"]);
  for (const s of secrets(p.fields)) assert.ok(!html.includes(`value="${s}"`), `the consent form carries ${s}`);
  const done = await alice.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  assert.equal(done.status, 303, await done.clone().text());
  const location = new URL(done.headers.get("location"));
  assert.equal(`${location.origin}${location.pathname}`, conf.redirect_uris[0]);
  assert.equal(location.searchParams.get("state"), p.fields.state, "the pushed state comes back");
  assert.equal(location.searchParams.get("iss"), server.base);
  const tokens = await exchange(server, conf, location.searchParams.get("code"), { verifier: p.verifier });
  assert.equal(tokens.status, 200, await tokens.clone().text());
  assert.deepEqual((await tokens.json()).scope.split(" ").sort(), ["posts:read", "profile:read"]);
});

test("a public client pushes with client_id only; the sign-in redirect carries no pushed parameter", async () => {
  const p = await pushed(server, pub);
  const stranger = new Browser(server);
  const res = await stranger.fetch(authorizeUrl(pub, p.request_uri));
  assert.equal(res.status, 302);
  const to = res.headers.get("location");
  assert.ok(to.startsWith("/signin?"), to);
  for (const s of secrets(p.fields)) assert.ok(!decodeURIComponent(to).includes(s), `the sign-in URL carries ${s}: ${to}`);
  const back = new URL(to, server.base).searchParams.get("return_to");
  assert.deepEqual([...new URLSearchParams(back.split("?")[1]).keys()].sort(), ["client_id", "request_uri"]);
  // Signing in takes the browser back to the same pushed request.
  const signin = await stranger.post("/signin", { email: "alice@acme.test", password: "alice-password", return_to: back });
  assert.equal(signin.status, 303, await signin.clone().text());
  const page = await stranger.fetch(signin.headers.get("location"));
  assert.equal(page.status, 200, await page.clone().text());
  const fields = hiddenFields(await page.text());
  const done = await stranger.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  const code = new URL(done.headers.get("location")).searchParams.get("code");
  const tokens = await exchange(server, pub, code, { verifier: p.verifier });
  assert.equal(tokens.status, 200, await tokens.clone().text());
});

test("a pushed prompt=login signs in afresh and resumes the same pushed request", async () => {
  const p = await pushed(server, conf, { prompt: "login consent" });
  const res = await alice.fetch(authorizeUrl(conf, p.request_uri));
  assert.equal(res.status, 302);
  const back = new URL(res.headers.get("location"), server.base).searchParams.get("return_to");
  assert.deepEqual([...new URLSearchParams(back.split("?")[1]).keys()].sort(), ["client_id", "login_proof", "request_uri"]);
  const signin = await alice.post("/signin", { email: "alice@acme.test", password: "alice-password", return_to: back });
  const page = await alice.fetch(signin.headers.get("location"));
  assert.equal(page.status, 200, await page.clone().text());
  const fields = hiddenFields(await page.text());
  const done = await alice.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  assert.equal(new URL(done.headers.get("location")).searchParams.get("state"), p.fields.state);
});

test("parameters beside client_id and request_uri at authorize are ignored: the pushed ones decide", async () => {
  const p = await pushed(server, conf, { scope: "profile:read", prompt: "consent" });
  const extra = new URLSearchParams({
    client_id: conf.client_id, request_uri: p.request_uri, scope: "posts:write", state: "browser-state",
    redirect_uri: "http://localhost:3000/elsewhere", code_challenge: pkcePair().challenge,
  });
  const page = await alice.fetch(`/oauth/authorize?${extra}`);
  assert.equal(page.status, 200, await page.clone().text());
  const fields = hiddenFields(await page.text());
  const done = await alice.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  const location = new URL(done.headers.get("location"));
  assert.equal(`${location.origin}${location.pathname}`, conf.redirect_uris[0]);
  assert.equal(location.searchParams.get("state"), p.fields.state);
  const tokens = await exchange(server, conf, location.searchParams.get("code"), { verifier: p.verifier });
  assert.equal((await tokens.json()).scope, "profile:read");
});

test("a request_uri used twice issues nothing the second time", async () => {
  const p = await pushed(server, conf, { prompt: "consent" });
  const page = await alice.fetch(authorizeUrl(conf, p.request_uri));
  const fields = hiddenFields(await page.text());
  const first = await alice.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  assert.ok(new URL(first.headers.get("location")).searchParams.get("code"));
  const issued = await codes(conf);
  const again = await alice.fetch(authorizeUrl(conf, p.request_uri));
  assert.equal(again.status, 400, await again.clone().text());
  assert.match(await again.text(), /request_uri/);
  const replay = await alice.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  assert.equal(replay.status, 400, await replay.clone().text());
  assert.equal(await codes(conf), issued, "no second code");
});

test("a late request_uri issues nothing", async () => {
  const p = await pushed(server, conf);
  const issued = await codes(conf);
  await server.db.prepare("UPDATE pushed_requests SET expires_at = expires_at - 61").run();
  const res = await alice.fetch(authorizeUrl(conf, p.request_uri));
  assert.equal(res.status, 400, await res.clone().text());
  assert.match(await res.text(), /request_uri/);
  assert.equal(await codes(conf), issued);
});

test("a request_uri presented by another client issues nothing, and stays the pushing client's", async () => {
  const p = await pushed(server, conf);
  const before = [await codes(conf), await codes(other)];
  const res = await alice.fetch(authorizeUrl(other, p.request_uri));
  assert.equal(res.status, 400, await res.clone().text());
  assert.deepEqual([await codes(conf), await codes(other)], before);
  // Alice approved conf before: its own request_uri goes straight to a code.
  const ok = await alice.fetch(authorizeUrl(conf, p.request_uri));
  assert.equal(ok.status, 302, "the rightful client's request still works");
  assert.ok(new URL(ok.headers.get("location")).searchParams.get("code"));
});

test("a request_uri this server never issued, or in another shape, is refused", async () => {
  const issued = await codes(conf);
  for (const uri of [`${URN}nope`, `${URN}${"A".repeat(43)}`]) {
    const res = await alice.fetch(authorizeUrl(conf, uri));
    assert.equal(res.status, 400, `${uri}: ${await res.clone().text()}`);
  }
  // A request object by reference (OIDC Core §6.2) is still not supported.
  const res = await alice.fetch(authorizeUrl(conf, "https://client.example/request.jwt"));
  assert.equal(res.status, 302);
  assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "request_uri_not_supported");
  assert.equal(await codes(conf), issued);
});

test("bad pushes get an OAuth error and store nothing", async () => {
  const before = await pushedRows();
  const cases = [
    ["a request_uri inside the push", conf, { request_uri: `${URN}x` }, 400, "invalid_request"],
    ["a wrong secret", { ...conf, client_secret: "sec_wrong" }, {}, 401, "invalid_client"],
    ["an unknown client", { client_id: "app_nobody", redirect_uris: conf.redirect_uris }, {}, 401, "invalid_client"],
    ["an unregistered redirect_uri", conf, { redirect_uri: "https://evil.example/cb" }, 400, "invalid_request"],
    ["no response_type", conf, { response_type: undefined }, 400, "invalid_request"],
    ["response_type=token", conf, { response_type: "token" }, 400, "unsupported_response_type"],
    ["an undeclared scope", conf, { scope: "admin:everything" }, 400, "invalid_scope"],
    ["a public client without PKCE", pub, { code_challenge: undefined, code_challenge_method: undefined }, 400, "invalid_request"],
    ["a plain PKCE method", conf, { code_challenge_method: "plain" }, 400, "invalid_request"],
  ];
  for (const [name, app, extra, status, error] of cases) {
    const fields = Object.fromEntries(Object.entries(request(app, extra).fields).filter(([, v]) => v !== undefined));
    const res = await push(server, app, fields);
    assert.equal(res.status, status, `${name}: ${await res.clone().text()}`);
    assert.equal((await res.json()).error, error, name);
  }
  const get = await server.fetch("/oauth/par");
  assert.ok([404, 405].includes(get.status), `GET /oauth/par: ${get.status}`);
  assert.equal(await pushedRows(), before, "nothing was stored");
});

test("a client that requires PAR cannot authorize without it; with it, it can", async () => {
  // Registered with the client metadata (RFC 9126 §6).
  const strictApp = await registerApp(server, { name: "PAR required", require_pushed_authorization_requests: true });
  assert.equal(strictApp.require_pushed_authorization_requests, true);
  const { fields } = request(strictApp);
  const res = await alice.fetch(`/oauth/authorize?${new URLSearchParams({ client_id: strictApp.client_id, ...fields })}`);
  assert.ok([302, 400].includes(res.status), `${res.status}`);
  const where = res.headers.get("location") ?? (await res.text());
  assert.match(where, /pushed|request_uri/, where);
  assert.ok(!new URL(res.headers.get("location") ?? "http://x/").searchParams.get("code"));
  assert.equal(await codes(strictApp), 0);
  const p = await pushed(server, strictApp);
  const page = await alice.fetch(authorizeUrl(strictApp, p.request_uri));
  assert.equal(page.status, 200, await page.clone().text());
});

test("pushes of a public client from one address are bounded (30 a minute)", async () => {
  const app = await registerApp(server, { name: "PAR flood", client_type: "public" });
  const ip = { "cf-connecting-ip": "203.0.113.99" };
  let accepted = 0;
  let refused;
  for (let i = 0; i < 32; i++) {
    const res = await push(server, app, request(app).fields, ip);
    if (res.status === 201) accepted++;
    else refused ??= res;
  }
  assert.equal(accepted, 30);
  assert.equal(refused.status, 429);
  assert.ok(refused.headers.get("retry-after"));
  assert.equal(await count(server, "SELECT count(*) AS n FROM pushed_requests WHERE app_id = ?1", app.client_id), 30);
  // Another address has its own budget.
  const elsewhere = await push(server, app, request(app).fields, { "cf-connecting-ip": "203.0.113.100" });
  assert.equal(elsewhere.status, 201);
});

test("expired pushed requests are swept", async () => {
  await pushed(server, conf);
  await server.db.prepare("UPDATE pushed_requests SET expires_at = 1").run();
  await server.scheduled();
  assert.equal(await pushedRows(), 0);
});

test("PAR_REQUIRED=on: discovery says so, a plain authorize is refused, a pushed one works", async () => {
  strict = await startServer({ PAR_REQUIRED: "on", PAR_TTL_SECONDS: "30" });
  const doc = await (await strict.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(doc.require_pushed_authorization_requests, true);
  const app = await registerApp(strict, { name: "PAR everywhere" });
  const browser = new Browser(strict);
  await browser.signIn("alice@acme.test", "alice-password");
  const { fields } = request(app);
  const res = await browser.fetch(`/oauth/authorize?${new URLSearchParams({ client_id: app.client_id, ...fields })}`);
  const location = new URL(res.headers.get("location") ?? "http://x/");
  assert.equal(res.status, 302, await res.clone().text());
  assert.equal(location.searchParams.get("error"), "invalid_request");
  assert.match(location.searchParams.get("error_description"), /pushed/);
  const p = await pushed(strict, app);
  assert.equal(p.expires_in, 30);
  const page = await browser.fetch(authorizeUrl(app, p.request_uri));
  assert.equal(page.status, 200, await page.clone().text());
});

test("delegated sign-in: the login challenge and the platform's redirect carry only client_id and request_uri", async () => {
  const ADMIN = "adm_par_delegated_0123456789abcdefghijklmnopqrstuv";
  const d = await startServer({ SIGNIN_MODE: "delegated", LOGIN_URL: "https://platform.example/login", PLATFORM_ADMIN_TOKEN: ADMIN });
  try {
    await d.db.prepare("UPDATE users SET external_id = 'ext-alice' WHERE id = 'usr_alice'").run();
    const app = await registerApp(d, { name: "PAR delegated" });
    const p = await pushed(d, app);
    const browser = new Browser(d);
    const res = await browser.fetch(authorizeUrl(app, p.request_uri));
    assert.equal(res.status, 302, await res.clone().text());
    const login = new URL(res.headers.get("location"));
    assert.equal(login.origin + login.pathname, "https://platform.example/login");
    const challenge = login.searchParams.get("login_challenge");
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    const accepted = await d.fetch(`/admin/v1/login/accept?login_challenge=${encodeURIComponent(challenge)}`, {
      method: "PUT", headers: admin, body: JSON.stringify({ external_id: "ext-alice" }),
    });
    assert.equal(accepted.status, 200, await accepted.clone().text());
    const verify = (await accepted.json()).redirect_to;
    for (const s of secrets(p.fields)) assert.ok(!decodeURIComponent(verify).includes(s), `the verify URL carries ${s}: ${verify}`);
    assert.deepEqual([...new URL(verify, d.base).searchParams.keys()].sort(), ["client_id", "login_verifier", "request_uri"]);
    const landed = await browser.fetch(new URL(verify, d.base).pathname + new URL(verify, d.base).search);
    assert.equal(landed.status, 302, await landed.clone().text());
    const page = await browser.fetch(landed.headers.get("location"));
    assert.equal(page.status, 200, await page.clone().text());
    const fields = hiddenFields(await page.text());
    const done = await browser.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
    const back = new URL(done.headers.get("location"));
    assert.equal(back.searchParams.get("state"), p.fields.state);
    const tokens = await exchange(d, app, back.searchParams.get("code"), { verifier: p.verifier });
    assert.equal(tokens.status, 200, await tokens.clone().text());
  } finally {
    await d.close();
  }
});
