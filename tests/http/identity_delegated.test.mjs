// Delegated sign-in (issue 9 §2): the platform keeps its login page. A
// stand-in platform (a real node:http server on loopback) owns LOGIN_URL: it
// receives the browser with a login_challenge, signs the user in its own way
// (its own password table and cookie), accepts the challenge server-to-server
// with the admin token, and redirects the browser to `redirect_to`. Then our
// consent → code → token → API, all over HTTP against the worker in workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import {
  startServer, Browser, registerApp, authorizeQuery, hiddenFields, pkcePair, exchange, bearer, form, FORM, count as countRows,
} from "./support.mjs";

const ADMIN = "adm_delegated_0123456789abcdefghijklmnopqrstuvwxyz";
let server, platform, app;

/** The stand-in platform: its own users, passwords and sessions. */
function startPlatform() {
  const users = { alice: { password: "platform-alice", externalId: "ext-alice" }, carol: { password: "platform-carol", externalId: "ext-carol" } };
  const sessions = new Map(); // platform's own session id -> username
  const state = { challenges: [], acceptExtra: {}, lastAccept: null };
  const accept = async (challenge, body) =>
    fetch(`${server.base}/admin/v1/login/accept?login_challenge=${encodeURIComponent(challenge)}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const srv = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://platform.test");
    const cookie = (req.headers.cookie ?? "").match(/psid=([^;]+)/)?.[1];
    if (req.method === "GET" && url.pathname === "/login") {
      const challenge = url.searchParams.get("login_challenge");
      state.challenges.push(challenge);
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(`<form method="post" action="/login"><input type="hidden" name="login_challenge" value="${challenge}"></form>`);
    }
    if (req.method === "POST" && url.pathname === "/login") {
      let raw = "";
      for await (const chunk of req) raw += chunk;
      const f = new URLSearchParams(raw);
      const challenge = f.get("login_challenge");
      if (f.get("action") === "deny") {
        const r = await fetch(`${server.base}/admin/v1/login/reject?login_challenge=${encodeURIComponent(challenge)}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
          body: JSON.stringify({ error_description: "the user cancelled on the platform" }),
        });
        const body = await r.json();
        res.writeHead(302, { location: body.redirect_to });
        return res.end();
      }
      const name = cookie && sessions.get(cookie) ? sessions.get(cookie) : f.get("user");
      const u = users[name];
      if (!u || (!(cookie && sessions.get(cookie)) && f.get("password") !== u.password)) {
        res.writeHead(401, { "content-type": "text/plain" });
        return res.end("wrong password");
      }
      const sid = randomBytes(12).toString("hex");
      sessions.set(sid, name);
      const r = await accept(challenge, { external_id: u.externalId, ...state.acceptExtra });
      state.lastAccept = { status: r.status, body: await r.json() };
      if (r.status !== 200) {
        res.writeHead(502, { "content-type": "application/json" });
        return res.end(JSON.stringify(state.lastAccept));
      }
      res.writeHead(302, { location: state.lastAccept.body.redirect_to, "set-cookie": `psid=${sid}; Path=/; HttpOnly` });
      return res.end();
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => resolve({ srv, state, accept, url: `http://127.0.0.1:${srv.address().port}/login` })),
  );
}

before(async () => {
  platform = await startPlatform();
  // Every test here opens challenges from this one address; the per-source
  // budget itself is tested in review_issue15_signin.
  server = await startServer({
    SIGNIN_MODE: "delegated", LOGIN_URL: platform.url, PLATFORM_ADMIN_TOKEN: ADMIN, LOGIN_CHALLENGES_PER_SOURCE_PER_MINUTE: "10000",
  });
  // The platform's own ids on the fixture users and orgs (what provisioning sets).
  for (const [table, id, ext] of [["users", "usr_alice", "ext-alice"], ["users", "usr_carol", "ext-carol"], ["orgs", "org_acme", "ext-acme"], ["orgs", "org_globex", "ext-globex"]]) {
    await server.db.prepare(`UPDATE ${table} SET external_id = ? WHERE id = ?`).bind(ext, id).run();
  }
  app = await registerApp(server, { redirect_uris: ["http://localhost:3000/callback"] });
});
after(async () => {
  await server?.close();
  platform?.srv.close();
});

const admin = (method, path, body) =>
  server.fetch(path, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
const acceptCall = (challenge, body) => admin("PUT", `/admin/v1/login/accept?login_challenge=${encodeURIComponent(challenge)}`, body);
const rejectCall = (challenge, body) => admin("PUT", `/admin/v1/login/reject?login_challenge=${encodeURIComponent(challenge)}`, body);
const pathOf = (u) => { const x = new URL(u); return x.pathname + x.search; };
const count = (sql, ...p) => countRows(server, sql, ...p);

/** GET authorize without a session: the redirect to LOGIN_URL and its challenge. */
async function toLoginPage(browser, query = {}) {
  const res = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, query)}`);
  const raw = res.headers.get("location");
  assert.equal(res.status, 302, await res.text());
  assert.ok(raw?.startsWith(`${platform.url}?login_challenge=`), `authorize sent the browser to ${raw}, not to LOGIN_URL`);
  const location = new URL(raw);
  return { res, location, challenge: location.searchParams.get("login_challenge") };
}

/** The platform signs `user` in on its page and sends the browser on: redirect_to. */
async function platformSignIn(challenge, user = "alice", extra = {}) {
  const res = await fetch(platform.url, {
    method: "POST", redirect: "manual", headers: FORM,
    body: form({ login_challenge: challenge, user, password: `platform-${user}`, ...extra }),
  });
  assert.equal(res.status, 302, await res.text());
  return res.headers.get("location");
}

/** Consent page → approve → code → token. */
async function approveAndExchange(browser, consentPage, verifier) {
  const fields = hiddenFields(await consentPage.text());
  const res = await browser.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve" });
  assert.equal(res.status, 303);
  const code = new URL(res.headers.get("location")).searchParams.get("code");
  assert.ok(code);
  const tok = await exchange(server, app, code, { verifier });
  assert.equal(tok.status, 200);
  return tok.json();
}

test("delegated journey: authorize → platform login page → accept → our session → consent → code → token → API", async () => {
  const browser = new Browser(server);
  const { verifier, challenge: pkce } = pkcePair();
  const { res, challenge } = await toLoginPage(browser, { code_challenge: pkce, code_challenge_method: "S256", state: "st-journey" });
  assert.match(challenge, /^lc_[A-Za-z0-9_-]{43}$/);
  // The browser binding cookie: HttpOnly, SameSite=Lax, on every path that
  // opens a challenge, so a second authorization reuses it (issue 15 §8).
  const bind = res.headers.getSetCookie().find((c) => c.startsWith("eo_login="));
  assert.match(bind, /HttpOnly/);
  assert.match(bind, /SameSite=Lax/);
  assert.match(bind, /Path=\/;/);
  assert.match(bind, /Max-Age=600/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  // Stored hashed: the plaintext challenge is nowhere in the table.
  assert.equal(await count("SELECT COUNT(*) AS n FROM login_challenges WHERE challenge_hash = ? OR request LIKE ?", challenge, `%${challenge}%`), 0);
  assert.equal(await count("SELECT COUNT(*) AS n FROM login_challenges"), 1);
  // The platform may look at what is being asked before signing in.
  const info = await admin("GET", `/admin/v1/login?login_challenge=${challenge}`);
  assert.equal(info.status, 200);
  const infoBody = await info.json();
  assert.equal(infoBody.status, "pending");
  assert.equal(infoBody.client.client_id, app.client_id);
  assert.equal(infoBody.client.name, "Test App");
  assert.deepEqual(infoBody.requested_scope.sort(), ["posts:read", "profile:read"]);

  const redirectTo = await platformSignIn(challenge);
  // Neither secret reaches the log lines.
  const loginVerifier = new URL(redirectTo).searchParams.get("login_verifier");
  assert.match(loginVerifier, /^lv_/);
  assert.ok(!server.log.lines.some((l) => l.includes(challenge) || l.includes(loginVerifier)));
  assert.equal(new URL(redirectTo).origin, server.base);
  assert.equal(new URL(redirectTo).pathname, "/oauth/login/verify");
  const landing = await browser.fetch(pathOf(redirectTo));
  assert.equal(landing.status, 302, await landing.text());
  assert.ok(browser.cookies.get("eo_session"), "our own session cookie");
  const session = landing.headers.getSetCookie().find((c) => c.startsWith("eo_session="));
  assert.match(session, /HttpOnly/);
  assert.match(session, /SameSite=Lax/);
  const back = new URL(landing.headers.get("location"), server.base);
  assert.equal(back.pathname, "/oauth/authorize");
  assert.equal(back.searchParams.get("state"), "st-journey");
  assert.equal(back.searchParams.get("code_challenge"), pkce);
  // Our consent screen, unchanged, for the user the platform named.
  const consentPage = await browser.fetch(back.pathname + back.search);
  assert.equal(consentPage.status, 200);
  const html = await consentPage.clone().text();
  assert.match(html, /alice@acme\.test/);
  const tokens = await approveAndExchange(browser, consentPage, verifier);
  const me = await bearer(server, "/api/v1/me", tokens.access_token);
  assert.equal(me.status, 200);
  const body = await me.json();
  assert.equal(body.user.id, "usr_alice");
  assert.equal(body.user.email, "alice@acme.test");
  // Signed in now: the next authorize goes straight to consent, not to LOGIN_URL.
  const again = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent" })}`);
  assert.equal(again.status, 200);
  assert.equal(await count("SELECT COUNT(*) AS n FROM login_challenges"), 1);
});

test("prompt=none without a session stays login_required on the redirect URI, and opens no challenge", async () => {
  const browser = new Browser(server);
  const before = await count("SELECT COUNT(*) AS n FROM login_challenges");
  const res = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "none", state: "st-none" })}`);
  assert.equal(res.status, 302);
  const loc = new URL(res.headers.get("location"));
  assert.equal(loc.origin + loc.pathname, "http://localhost:3000/callback");
  assert.equal(loc.searchParams.get("error"), "login_required");
  assert.equal(loc.searchParams.get("state"), "st-none");
  assert.equal(loc.searchParams.get("iss"), server.base);
  assert.equal(await count("SELECT COUNT(*) AS n FROM login_challenges"), before);
});

test("an invalid client or redirect URI is an error page, never a trip to LOGIN_URL", async () => {
  const browser = new Browser(server);
  const res = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, { redirect_uri: "https://evil.example/cb" })}`);
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("location"), null);
});

test("our password form is not shown in delegated mode; sign-out still works", async () => {
  const browser = new Browser(server);
  // The sign-in link goes to the platform's page instead of a form of ours.
  const link = await browser.fetch("/signin");
  assert.equal(link.status, 302);
  assert.ok(link.headers.get("location").startsWith(`${platform.url}?login_challenge=lc_`));
  assert.doesNotMatch(await link.text(), /password/i);
  const post = await browser.post("/signin", { email: "alice@acme.test", password: "alice-password", return_to: "/" });
  assert.equal(post.status, 404);
  assert.equal(browser.cookies.get("eo_session"), undefined);
  // Sign in the delegated way, then sign out here.
  const { challenge } = await toLoginPage(browser);
  const landing = await browser.fetch(pathOf(await platformSignIn(challenge)));
  assert.equal(landing.status, 302);
  const csrf = hiddenFields(await (await browser.fetch("/")).text()).csrf;
  assert.ok(csrf);
  const out = await browser.post("/signout", { csrf });
  assert.equal(out.status, 303);
  assert.equal(browser.cookies.get("eo_session"), undefined);
  const next = await browser.fetch(`/oauth/authorize?${authorizeQuery(app)}`);
  assert.equal(next.status, 302);
  assert.ok(next.headers.get("location").startsWith(platform.url));
});

test("a rejected challenge ends with access_denied on the app's callback (state, iss); no session, no code", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser, { state: "st-deny" });
  const redirectTo = await platformSignIn(challenge, "alice", { action: "deny" });
  const codesBefore = await count("SELECT COUNT(*) AS n FROM codes");
  const res = await browser.fetch(pathOf(redirectTo));
  assert.equal(res.status, 302);
  const loc = new URL(res.headers.get("location"));
  assert.equal(loc.origin + loc.pathname, "http://localhost:3000/callback");
  assert.equal(loc.searchParams.get("error"), "access_denied");
  assert.equal(loc.searchParams.get("error_description"), "the user cancelled on the platform");
  assert.equal(loc.searchParams.get("state"), "st-deny");
  assert.equal(loc.searchParams.get("iss"), server.base);
  assert.equal(loc.searchParams.get("code"), null);
  assert.equal(browser.cookies.get("eo_session"), undefined);
  assert.equal(await count("SELECT COUNT(*) AS n FROM codes"), codesBefore);
  assert.equal((await (await admin("GET", `/admin/v1/login?login_challenge=${challenge}`)).json()).status, "used");
  // Decided: it cannot be accepted afterwards.
  assert.equal((await acceptCall(challenge, { external_id: "ext-alice" })).status, 409);
});

test("reject refuses unknown error codes and unknown fields, and changes nothing", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser);
  for (const body of [{ error: "server_error" }, { error: "access_denied", hint: "x" }, "{", { error_description: "a\u0000b" }]) {
    const res = await rejectCall(challenge, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.ok((await res.json()).error_description);
  }
  const info = await (await admin("GET", `/admin/v1/login?login_challenge=${challenge}`)).json();
  assert.equal(info.status, "pending");
  // An empty body rejects with access_denied.
  const ok = await rejectCall(challenge, "");
  assert.equal(ok.status, 200);
  const res = await browser.fetch(pathOf((await ok.json()).redirect_to));
  assert.equal(new URL(res.headers.get("location")).searchParams.get("error"), "access_denied");
});

test("a challenge accepted twice: the second accept is refused (409) and the first redirect works once", async () => {
  const browser = new Browser(server);
  // prompt=consent survives the trip: alice approved this app already.
  const { challenge } = await toLoginPage(browser, { prompt: "consent" });
  const first = await acceptCall(challenge, { external_id: "ext-alice" });
  assert.equal(first.status, 200);
  const { redirect_to } = await first.json();
  assert.equal((await (await admin("GET", `/admin/v1/login?login_challenge=${challenge}`)).json()).status, "accepted");
  const second = await acceptCall(challenge, { external_id: "ext-carol" });
  assert.equal(second.status, 409);
  assert.equal((await second.json()).error, "conflict");
  const verifierHashes = await count("SELECT COUNT(DISTINCT verifier_hash) AS n FROM login_challenges WHERE verifier_hash IS NOT NULL AND user_id = 'usr_carol'");
  assert.equal(verifierHashes, 0);
  const landing = await browser.fetch(pathOf(redirect_to));
  assert.equal(landing.status, 302);
  const consent = await browser.fetch(pathOf(new URL(landing.headers.get("location"), server.base).href));
  assert.match(await consent.text(), /alice@acme\.test/);
});

test("concurrent accepts of one challenge: exactly one wins", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser);
  const results = await Promise.all([1, 2, 3, 4].map(() => acceptCall(challenge, { external_id: "ext-alice" })));
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 409, 409, 409]);
});

test("a verifier used twice: the second landing is refused and starts no session", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser);
  const redirectTo = await platformSignIn(challenge);
  const sessionsBefore = await count("SELECT COUNT(*) AS n FROM sessions");
  assert.equal((await browser.fetch(pathOf(redirectTo))).status, 302);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions"), sessionsBefore + 1);
  browser.cookies.delete("eo_session");
  const replay = await browser.fetch(pathOf(redirectTo));
  assert.equal(replay.status, 400);
  assert.match(await replay.text(), /expired or was already used/);
  assert.equal(replay.headers.getSetCookie().some((c) => c.startsWith("eo_session=")), false);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions"), sessionsBefore + 1);
  // And a replayed challenge: once used it cannot be accepted again.
  assert.equal((await acceptCall(challenge, { external_id: "ext-alice" })).status, 409);
});

test("concurrent landings with one verifier: exactly one session", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser);
  const redirectTo = await platformSignIn(challenge);
  const before = await count("SELECT COUNT(*) AS n FROM sessions");
  const results = await Promise.all([1, 2, 3].map(() => browser.fetch(pathOf(redirectTo))));
  assert.deepEqual(results.map((r) => r.status).sort(), [302, 400, 400]);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions"), before + 1);
});

test("expiry: an expired challenge cannot be accepted (410), an accepted one that expired cannot land", async () => {
  const browser = new Browser(server);
  const { challenge: c1 } = await toLoginPage(browser);
  const { challenge: c2 } = await toLoginPage(browser);
  const redirectTo = (await (await acceptCall(c2, { external_id: "ext-alice" })).json()).redirect_to;
  // The 10-minute TTL has passed for both.
  await server.db.prepare("UPDATE login_challenges SET expires_at = ? WHERE used_at IS NULL")
    .bind(Math.floor(Date.now() / 1000) - 1).run();
  const late = await acceptCall(c1, { external_id: "ext-alice" });
  assert.equal(late.status, 410);
  const before = await count("SELECT COUNT(*) AS n FROM sessions");
  const landing = await browser.fetch(pathOf(redirectTo));
  assert.equal(landing.status, 400);
  assert.equal(browser.cookies.get("eo_session"), undefined);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions"), before);
  // The TTL is 10 minutes from the redirect.
  const { challenge: c3 } = await toLoginPage(new Browser(server));
  const row = await server.db.prepare("SELECT created_at, expires_at FROM login_challenges ORDER BY created_at DESC, rowid DESC LIMIT 1").first();
  assert.equal(row.expires_at - row.created_at, 600);
  assert.ok(c3);
  // The sweep deletes expired challenges.
  await server.scheduled();
  assert.equal(await count("SELECT COUNT(*) AS n FROM login_challenges WHERE expires_at <= ?", Math.floor(Date.now() / 1000)), 0);
});

test("a challenge accepted for one authorization and used for another is refused; nothing issued", async () => {
  const other = await registerApp(server, { name: "Other App", redirect_uris: ["http://localhost:4000/cb"] });
  const browser = new Browser(server);
  const { challenge: cA } = await toLoginPage(browser, { state: "st-A" });
  // The same browser starts a second authorization (another tab).
  const resB = await browser.fetch(`/oauth/authorize?${authorizeQuery(other, { state: "st-B" })}`);
  assert.equal(resB.status, 302);
  const redirectA = new URL(await platformSignIn(cA));
  // The verifier of A carried on B's request (and on A's with a changed state or scope).
  const swapped = [
    new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(authorizeQuery(other, { state: "st-B" }))), login_verifier: redirectA.searchParams.get("login_verifier") }),
  ];
  const before = await count("SELECT COUNT(*) AS n FROM sessions");
  const res = await browser.fetch(`/oauth/login/verify?${swapped[0]}`);
  assert.equal(res.status, 400);
  assert.match(await res.text(), /different authorization request/);
  assert.equal(browser.cookies.get("eo_session"), undefined);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions"), before);
  // The verifier is spent by the attempt: the original landing fails too.
  assert.equal((await browser.fetch(redirectA.pathname + redirectA.search)).status, 400);

  // A tampered state on the right app is another request too.
  const { challenge: cC } = await toLoginPage(browser, { state: "st-C" });
  const redirectC = new URL(await platformSignIn(cC));
  redirectC.searchParams.set("state", "st-evil");
  assert.equal((await browser.fetch(redirectC.pathname + redirectC.search)).status, 400);
  assert.equal(browser.cookies.get("eo_session"), undefined);
});

test("a verifier presented by another browser is refused (login CSRF): the victim gets no session", async () => {
  // The attacker starts an authorization in their browser and signs in as themselves…
  const attacker = new Browser(server);
  const { challenge } = await toLoginPage(attacker);
  const redirectTo = await platformSignIn(challenge, "carol");
  // …then lures the victim's browser to the redirect_to.
  const victim = new Browser(server);
  const before = await count("SELECT COUNT(*) AS n FROM sessions");
  const res = await victim.fetch(pathOf(redirectTo));
  assert.equal(res.status, 403);
  assert.match(await res.text(), /another browser/);
  assert.equal(victim.cookies.get("eo_session"), undefined);
  // A victim who has a binding cookie of their own (mid-flow) is refused the same way.
  const victim2 = new Browser(server);
  await toLoginPage(victim2);
  const { challenge: c2 } = await toLoginPage(attacker);
  const res2 = await victim2.fetch(pathOf(await platformSignIn(c2, "carol")));
  assert.equal(res2.status, 403);
  assert.equal(victim2.cookies.get("eo_session"), undefined);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions"), before);
});

test("accept refuses bad input with a 4xx and a reason, and changes nothing", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser);
  const usersBefore = await count("SELECT COUNT(*) AS n FROM users");
  const membersBefore = await count("SELECT COUNT(*) AS n FROM memberships");
  const cases = [
    [404, { external_id: "ext-nobody" }],
    [400, { external_id: "" }],
    [400, { external_id: "ext-alice", subject: "x" }],
    [400, "not json"],
    [400, { external_id: "ext-new", user: { email: "not-an-email" } }],
    [400, { external_id: "ext-new", user: { email: "new@acme.test", name: "N", admin: true } }],
    [409, { external_id: "ext-new", user: { email: "alice@acme.test", name: "Impostor" } }],
    [400, { external_id: "ext-new", user: { email: "new@acme.test" }, memberships: [{ org: "ext-nowhere", role: "member" }] }],
    [400, { external_id: "ext-new", user: { email: "new@acme.test" }, memberships: [{ org: "ext-acme", role: "emperor" }] }],
    [400, { external_id: "ext-new", user: { email: "new@acme.test" }, memberships: [{ org: "ext-acme", role: "member" }, { org: "ext-acme", role: "admin" }] }],
    [400, { external_id: "ext-new", user: { email: "new@acme.test" }, memberships: Array.from({ length: 101 }, () => ({ org: "ext-acme", role: "member" })) }],
    // Alice is Acme's only owner: a sign-in cannot demote her.
    [409, { external_id: "ext-alice", memberships: [{ org: "ext-acme", role: "member" }] }],
  ];
  for (const [status, body] of cases) {
    const res = await acceptCall(challenge, body);
    assert.equal(res.status, status, JSON.stringify(body).slice(0, 200));
    assert.ok((await res.json()).error_description);
  }
  for (const [status, c] of [[404, "lc_unknownchallenge"], [404, "nope"], [400, ""]]) {
    const res = await admin("PUT", `/admin/v1/login/accept${c ? `?login_challenge=${c}` : ""}`, { external_id: "ext-alice" });
    assert.equal(res.status, status, c);
  }
  // Without the admin token: 401, whatever the body.
  const anon = await server.fetch(`/admin/v1/login/accept?login_challenge=${challenge}`, {
    method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ external_id: "ext-alice" }),
  });
  assert.equal(anon.status, 401);
  assert.equal(await count("SELECT COUNT(*) AS n FROM users"), usersBefore);
  assert.equal(await count("SELECT COUNT(*) AS n FROM memberships"), membersBefore);
  const info = await (await admin("GET", `/admin/v1/login?login_challenge=${challenge}`)).json();
  assert.equal(info.status, "pending");
});

test("accept may create the user and their memberships in the same call; the journey then works for them", async () => {
  platform.state.acceptExtra = {};
  const browser = new Browser(server);
  const { verifier, challenge: pkce } = pkcePair();
  const { challenge } = await toLoginPage(browser, { code_challenge: pkce, code_challenge_method: "S256" });
  const res = await acceptCall(challenge, {
    external_id: "ext-dave",
    user: { email: "dave@acme.test", name: "Dave" },
    memberships: [{ org: "ext-acme", role: "member" }],
  });
  assert.equal(res.status, 200);
  const dave = await server.db.prepare("SELECT id, email, name, password_hash FROM users WHERE external_id = 'ext-dave'").first();
  assert.equal(dave.email, "dave@acme.test");
  assert.equal(dave.name, "Dave");
  assert.equal(dave.password_hash, "", "no password: a delegated user cannot use a password form");
  assert.equal((await server.db.prepare("SELECT role FROM memberships WHERE user_id = ? AND org_id = 'org_acme'").bind(dave.id).first()).role, "member");
  const landing = await browser.fetch(pathOf((await res.json()).redirect_to));
  assert.equal(landing.status, 302);
  const consentPage = await browser.fetch(pathOf(new URL(landing.headers.get("location"), server.base).href));
  assert.match(await consentPage.clone().text(), /dave@acme\.test/);
  const tokens = await approveAndExchange(browser, consentPage, verifier);
  const me = await (await bearer(server, "/api/v1/me", tokens.access_token)).json();
  assert.equal(me.user.id, dave.id);
  assert.equal(me.user.role, "member");
  // A later accept updates the same user (by external_id), never duplicates them.
  const { challenge: c2 } = await toLoginPage(new Browser(server));
  const again = await acceptCall(c2, { external_id: "ext-dave", user: { email: "dave.new@acme.test" }, memberships: [{ org: "ext-globex", role: "admin" }] });
  assert.equal(again.status, 200);
  assert.equal(await count("SELECT COUNT(*) AS n FROM users WHERE external_id = 'ext-dave'"), 1);
  const after = await server.db.prepare("SELECT email, name FROM users WHERE external_id = 'ext-dave'").first();
  assert.deepEqual({ ...after }, { email: "dave.new@acme.test", name: "Dave" });
  assert.equal(await count("SELECT COUNT(*) AS n FROM memberships WHERE user_id = ?", dave.id), 2);
});

test("the platform ends a user's sessions: the next authorize goes back to LOGIN_URL", async () => {
  const browser = new Browser(server);
  const { challenge } = await toLoginPage(browser);
  assert.equal((await browser.fetch(pathOf(await platformSignIn(challenge, "carol")))).status, 302);
  assert.equal((await browser.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent" })}`)).status, 200);
  const other = new Browser(server);
  const { challenge: c2 } = await toLoginPage(other);
  assert.equal((await other.fetch(pathOf(await platformSignIn(c2, "alice")))).status, 302);
  const res = await admin("DELETE", "/admin/v1/users/ext-carol/sessions");
  assert.equal(res.status, 200);
  assert.ok((await res.json()).ended >= 1);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions WHERE user_id = 'usr_carol'"), 0);
  const next = await browser.fetch(`/oauth/authorize?${authorizeQuery(app)}`);
  assert.equal(next.status, 302);
  assert.ok(next.headers.get("location").startsWith(`${platform.url}?login_challenge=`));
  // Alice's session is untouched.
  assert.equal((await other.fetch(`/oauth/authorize?${authorizeQuery(app, { prompt: "consent" })}`)).status, 200);
  // Unknown user: 404; no token: 401.
  assert.equal((await admin("DELETE", "/admin/v1/users/ext-nobody/sessions")).status, 404);
  assert.equal((await server.fetch("/admin/v1/users/ext-carol/sessions", { method: "DELETE" })).status, 401);
  // Ids that need escaping in a path are decoded (a '/' is in no external id: issue 15 §6).
  await server.db.prepare("UPDATE users SET external_id = 'team carol+1%' WHERE id = 'usr_carol'").run();
  const escaped = await admin("DELETE", `/admin/v1/users/${encodeURIComponent("team carol+1%")}/sessions`);
  assert.equal(escaped.status, 200);
  await server.db.prepare("UPDATE users SET external_id = 'ext-carol' WHERE id = 'usr_carol'").run();
});

test("a consent POST without a session goes to LOGIN_URL (303), not to a password form", async () => {
  const browser = new Browser(server);
  const { challenge: pkce } = pkcePair();
  const res = await browser.post("/oauth/authorize", {
    ...Object.fromEntries(new URLSearchParams(authorizeQuery(app, { code_challenge: pkce, code_challenge_method: "S256" }))),
    org: "org_acme", decision: "approve", csrf: "x",
  });
  assert.equal(res.status, 303);
  assert.ok(res.headers.get("location").startsWith(`${platform.url}?login_challenge=lc_`));
});

test("the landing refuses malformed verifiers without a 5xx", async () => {
  const browser = new Browser(server);
  const q = authorizeQuery(app);
  for (const extra of ["", "&login_verifier=", "&login_verifier=lv_unknown", "&login_verifier=xx", `&login_verifier=lv_${"a".repeat(300)}`, "&login_verifier=lv_a&login_verifier=lv_b"]) {
    const res = await browser.fetch(`/oauth/login/verify?${q}${extra}`);
    assert.equal(res.status, 400, extra);
  }
  const noApp = await browser.fetch("/oauth/login/verify?login_verifier=lv_x");
  assert.equal(noApp.status, 400);
  assert.equal(browser.cookies.get("eo_session"), undefined);
});

test("delegated mode is configured or refused: LOGIN_URL required (https or loopback http), the admin token too", async () => {
  const bad = [
    { SIGNIN_MODE: "delegated", PLATFORM_ADMIN_TOKEN: ADMIN, LOGIN_URL: "" },
    { SIGNIN_MODE: "delegated", PLATFORM_ADMIN_TOKEN: ADMIN, LOGIN_URL: "http://platform.example/login" },
    { SIGNIN_MODE: "delegated", PLATFORM_ADMIN_TOKEN: "", LOGIN_URL: "https://platform.example/login" },
    { SIGNIN_MODE: "sso" },
  ];
  for (const vars of bad) {
    const s = await startServer(vars);
    try {
      assert.equal((await s.fetch("/health")).status, 500, JSON.stringify(vars));
    } finally {
      await s.close();
    }
  }
});

test("the settings pages sign in through the platform too, and land back on the page asked for", async () => {
  const browser = new Browser(server);
  let res = await browser.fetch("/settings/apps");
  assert.equal(res.status, 302);
  res = await browser.fetch(res.headers.get("location"));
  assert.equal(res.status, 302, "the sign-in link opens a challenge");
  const login = new URL(res.headers.get("location"));
  assert.equal(login.origin + login.pathname, platform.url);
  const challenge = login.searchParams.get("login_challenge");
  // What the platform's page sees: no app, a page of ours.
  const info = await (await admin("GET", `/admin/v1/login?login_challenge=${encodeURIComponent(challenge)}`)).json();
  assert.equal(info.client.name, null);
  const back = await platformSignIn(challenge);
  // The verifier of a page challenge cannot be spent on an authorization request.
  const forged = new URL(back);
  const verifier = forged.searchParams.get("login_verifier");
  const wrong = await browser.fetch(`/oauth/login/verify?${authorizeQuery(app)}&login_verifier=${verifier}`);
  assert.equal(wrong.status, 400);
  // And it is single use: spent above by the refused attempt.
  const landed = await browser.fetch(pathOf(back));
  assert.equal(landed.status, 400);

  // A fresh start lands on the page, signed in.
  const b2 = new Browser(server);
  res = await b2.fetch("/signin?return_to=%2Fsettings%2Fapps");
  const c2 = new URL(res.headers.get("location")).searchParams.get("login_challenge");
  res = await b2.fetch(pathOf(await platformSignIn(c2)));
  assert.equal(res.status, 302);
  assert.equal(res.headers.get("location"), "/settings/apps");
  assert.ok(b2.cookies.get("eo_session"));
  res = await b2.fetch("/settings/apps");
  assert.equal(res.status, 200);
  assert.match(await res.text(), /Connected apps/);

  // An off-site return_to is never followed.
  const b3 = new Browser(server);
  res = await b3.fetch("/signin?return_to=%2F%2Fevil.example%2F");
  const c3 = new URL(res.headers.get("location")).searchParams.get("login_challenge");
  res = await b3.fetch(pathOf(await platformSignIn(c3)));
  assert.equal(res.headers.get("location"), "/");

  // A rejected page sign-in is a page, not a session.
  const b4 = new Browser(server);
  res = await b4.fetch("/signin?return_to=%2Fsettings%2Fapps");
  const c4 = new URL(res.headers.get("location")).searchParams.get("login_challenge");
  const rej = await (await rejectCall(c4, {})).json();
  res = await b4.fetch(pathOf(rej.redirect_to));
  assert.equal(res.status, 403);
  assert.equal(b4.cookies.get("eo_session"), undefined);
});
