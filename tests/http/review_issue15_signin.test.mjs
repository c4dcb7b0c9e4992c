// Issue 15 (second security review), delegated sign-in and the back office:
// §3 anonymous challenge writes are budgeted per source and bounded in size,
// and the landing finds its challenge by index; §6 one rule for external ids;
// §8 a second authorization keeps the first one's browser binding (with a
// cookie jar that honours Path and SameSite); §9 the platform's sign-out ends
// pending sign-ins; §12 the right admin token is never refused for others'
// failures; §13 sign-out, accept and reject are audited.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, registerApp, authorizeQuery, count as countRows } from "./support.mjs";

const ADMIN = "adm_issue15_0123456789abcdefghijklmnopqrstuvwxyz";
const LOGIN_URL = "http://127.0.0.1:9/login";
let server, app;

before(async () => {
  server = await startServer({ SIGNIN_MODE: "delegated", LOGIN_URL, PLATFORM_ADMIN_TOKEN: ADMIN });
  for (const [id, ext] of [["usr_alice", "ext-alice"], ["usr_carol", "ext-carol"]]) {
    await server.db.prepare("UPDATE users SET external_id = ? WHERE id = ?").bind(ext, id).run();
  }
  await server.db.prepare("UPDATE orgs SET external_id = 'ext-acme' WHERE id = 'org_acme'").run();
  app = await registerApp(server, { redirect_uris: ["http://localhost:3000/callback"] });
});
after(() => server?.close());

const count = (sql, ...p) => countRows(server, sql, ...p);
const admin = (method, path, body, ip) =>
  server.fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(ip ? { "cf-connecting-ip": ip } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const challengeOf = (res) => new URL(res.headers.get("location")).searchParams.get("login_challenge");
const pathOf = (u) => { const x = new URL(u); return x.pathname + x.search; };

/** Authorize without a session in `browser`: the challenge it was sent to LOGIN_URL with. */
async function startSignIn(browser, query = {}, ip = "192.0.2.1") {
  const res = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, query)}`, { headers: { "cf-connecting-ip": ip } });
  assert.equal(res.status, 302, await res.text());
  assert.ok(res.headers.get("location").startsWith(LOGIN_URL));
  return challengeOf(res);
}

/** The platform accepts `challenge` for `externalId`: the redirect_to path. */
async function accepted(challenge, externalId = "ext-alice") {
  const r = await admin("PUT", `/admin/v1/login/accept?login_challenge=${challenge}`, { external_id: externalId });
  assert.equal(r.status, 200, await r.clone().text());
  return pathOf((await r.json()).redirect_to);
}

test("§3 login challenges: each source has a budget per minute; past it 429 and no row; other sources unaffected", async () => {
  const before = await count("SELECT COUNT(*) AS n FROM login_challenges");
  const statuses = [];
  for (let i = 0; i < 40; i++) {
    // A fresh browser each time, as a script would be; the same /64.
    const res = await server.fetch("/signin?return_to=/settings", { headers: { "cf-connecting-ip": `2001:db8:15:3::${i + 1}` } });
    statuses.push(res.status);
    if (res.status === 429) assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
  }
  const written = (await count("SELECT COUNT(*) AS n FROM login_challenges")) - before;
  assert.equal(written, 30, `40 anonymous requests from one /64 wrote ${written} challenges (statuses ${statuses.join(",")})`);
  assert.deepEqual(statuses.slice(30), Array(10).fill(429));
  // Authorize draws on the same budget.
  const res = await server.fetch(`/oauth/authorize?${authorizeQuery(app)}`, { headers: { "cf-connecting-ip": "2001:db8:15:3::99" } });
  assert.equal(res.status, 429);
  assert.equal((await count("SELECT COUNT(*) AS n FROM login_challenges")) - before, 30);
  // One row of counter per source, not per request.
  assert.equal(await count("SELECT COUNT(*) AS n FROM rate_limits WHERE key LIKE 'login-challenge:2001:db8:15:3:%'"), 1);
  // Another source still signs in.
  const other = await server.fetch("/signin?return_to=/settings", { headers: { "cf-connecting-ip": "198.51.100.15" } });
  assert.equal(other.status, 302);
});

test("§3 return_to is bounded: over 2048 characters is a 400 and writes nothing", async () => {
  const before = await count("SELECT COUNT(*) AS n FROM login_challenges");
  const long = "/settings?x=" + "a".repeat(2100);
  const res = await server.fetch(`/signin?return_to=${encodeURIComponent(long)}`, { headers: { "cf-connecting-ip": "198.51.100.31" } });
  assert.equal(res.status, 400, `a ${long.length}-character return_to answered ${res.status}`);
  assert.match(await res.text(), /2048/);
  assert.equal(await count("SELECT COUNT(*) AS n FROM login_challenges"), before);
  const ok = await server.fetch(`/signin?return_to=${encodeURIComponent("/settings?x=" + "a".repeat(1900))}`, { headers: { "cf-connecting-ip": "198.51.100.31" } });
  assert.equal(ok.status, 302);
});

test("§3 the landing's session insert finds its challenge by index (used_by), not by a scan", async () => {
  const plan = await server.db
    .prepare("EXPLAIN QUERY PLAN SELECT l.user_id FROM login_challenges l JOIN users u ON u.id = l.user_id WHERE l.used_by = ?1 AND l.error IS NULL")
    .bind("x")
    .all();
  const detail = plan.results.map((r) => r.detail).join(" | ");
  assert.match(detail, /login_challenges_used_by/, `plan: ${detail}`);
  assert.doesNotMatch(detail, /SCAN l\b/, `plan: ${detail}`);
});

test("§6 accept refuses external ids the provisioning API could not address; 128 characters work end to end", async () => {
  const browser = new Browser(server);
  for (const bad of ["team/alice", "x".repeat(129), "a\u0000b"]) {
    const challenge = await startSignIn(browser, {}, "198.51.100.61");
    const r = await admin("PUT", `/admin/v1/login/accept?login_challenge=${challenge}`, { external_id: bad, user: { email: `new${bad.length}@example.test` } });
    assert.equal(r.status, 400, `accept with external_id ${JSON.stringify(bad.slice(0, 20))} (${bad.length} chars) answered ${r.status}`);
    assert.match((await r.json()).error_description ?? "", /external id/);
    assert.equal(await count("SELECT COUNT(*) AS n FROM users WHERE external_id = ?", bad), 0);
  }
  // A membership's org is an external id too.
  const c = await startSignIn(browser, {}, "198.51.100.61");
  const m = await admin("PUT", `/admin/v1/login/accept?login_challenge=${c}`, { external_id: "ext-alice", memberships: [{ org: "a/b", role: "member" }] });
  assert.equal(m.status, 400);
  // The longest id accept takes is one every users route takes.
  const longest = "u".repeat(128);
  const c2 = await startSignIn(browser, {}, "198.51.100.61");
  const ok = await admin("PUT", `/admin/v1/login/accept?login_challenge=${c2}`, { external_id: longest, user: { email: "longest@example.test" } });
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal((await admin("GET", `/admin/v1/users/${longest}`)).status, 200);
  assert.equal((await admin("DELETE", `/admin/v1/users/${longest}/sessions`)).status, 200);
  assert.equal((await admin("DELETE", `/admin/v1/users/${longest}`)).status, 200);
  // The sign-out route holds the same rule (it used to take anything).
  assert.equal((await admin("DELETE", `/admin/v1/users/${encodeURIComponent("team/alice")}/sessions`)).status, 400);
});

test("§8 a second authorization in the same browser keeps the first one's sign-in (jar honours Path)", async () => {
  const browser = new Browser(server);
  const a = await startSignIn(browser, { state: "st-A" }, "198.51.100.81");
  // Any site sends the browser to another authorize URL meanwhile.
  const b = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, { state: "st-B" })}`, { crossSite: true, headers: { "cf-connecting-ip": "198.51.100.81" } });
  assert.equal(b.status, 302);
  const bind = browser.cookies.entries().filter((c) => c.name === "eo_login");
  assert.equal(bind.length, 1, `binding cookies: ${JSON.stringify(bind)}`);
  // A's landing, back cross-site from the platform's page: still this browser's.
  const landing = await browser.fetch(await accepted(a), { crossSite: true });
  assert.equal(landing.status, 302, `A's landing after B answered ${landing.status}: ${await landing.text()}`);
  assert.ok(landing.headers.get("location").startsWith("/oauth/authorize?"));
  assert.match(landing.headers.get("location"), /state=st-A/);
  assert.ok(browser.cookies.get("eo_session"));
  // And B's still lands too (same binding).
  const b2 = await new Browser(server).fetch(await accepted(challengeOf(b)));
  assert.equal(b2.status, 403, "another browser still cannot land B");
});

test("§8 the test jar honours Path and SameSite as a browser does", async () => {
  const browser = new Browser(server);
  browser.cookies.store("p=1; Path=/only; SameSite=Lax", "/");
  browser.cookies.store("s=2; Path=/; SameSite=Strict", "/");
  browser.cookies.store("d=3", "/dir/page");
  assert.equal(browser.cookies.header("/elsewhere"), "s=2");
  assert.equal(browser.cookies.header("/only/x"), "p=1; s=2");
  assert.equal(browser.cookies.header("/onlyx"), "s=2");
  assert.equal(browser.cookies.header("/dir/x"), "d=3; s=2");
  assert.equal(browser.cookies.header("/only", { crossSite: true }), "p=1");
  assert.equal(browser.cookies.header("/only", { crossSite: true, method: "POST" }), "");
  browser.cookies.store("p=gone; Path=/only; Max-Age=0", "/");
  assert.equal(browser.cookies.header("/only"), "s=2");
});

test("§9 the platform's sign-out ends the user's accepted sign-ins that have not landed", async () => {
  const browser = new Browser(server);
  const landing = await accepted(await startSignIn(browser, {}, "198.51.100.91"), "ext-carol");
  const res = await admin("DELETE", "/admin/v1/users/ext-carol/sessions");
  assert.equal(res.status, 200);
  const after = await browser.fetch(landing);
  assert.equal(after.status, 400, `the landing after sign-out answered ${after.status}`);
  assert.equal(browser.cookies.get("eo_session"), undefined);
  assert.equal(await count("SELECT COUNT(*) AS n FROM sessions WHERE user_id = 'usr_carol'"), 0);
  assert.equal((await res.json()).pending_sign_ins_ended, 1);
  // Another user's pending sign-in is untouched.
  const alice = new Browser(server);
  const aliceLanding = await accepted(await startSignIn(alice, {}, "198.51.100.91"));
  assert.equal((await admin("DELETE", "/admin/v1/users/ext-carol/sessions")).status, 200);
  assert.equal((await alice.fetch(aliceLanding)).status, 302);
});

test("§12 the right admin token works from an address where others sent 20 wrong ones", async () => {
  const ip = "203.0.113.120";
  const call = (token) => server.fetch("/admin/v1/orgs", { headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": ip } });
  for (let i = 0; i < 20; i++) assert.equal((await call("wrong-token")).status, 401);
  assert.equal((await call("wrong-token")).status, 429, "the guesser is limited");
  const right = await call(ADMIN);
  assert.equal(right.status, 200, `the right token from the shared address answered ${right.status}`);
  assert.equal((await call("wrong-token")).status, 429, "the right token did not reset the guesser's budget");
});

test("§13 accept, reject and the platform's sign-out write audit records", async () => {
  const browser = new Browser(server);
  await accepted(await startSignIn(browser, {}, "198.51.100.131"));
  const rc = await startSignIn(browser, {}, "198.51.100.131");
  assert.equal((await admin("PUT", `/admin/v1/login/reject?login_challenge=${rc}`, { error: "access_denied" })).status, 200);
  assert.equal((await admin("DELETE", "/admin/v1/users/ext-alice/sessions")).status, 200);
  const items = (await (await admin("GET", "/admin/v1/audit?limit=200")).json()).items;
  const actions = items.map((i) => i.action);
  for (const a of ["login.accepted", "login.rejected", "user.sessions_ended"]) assert.ok(actions.includes(a), `no ${a} in ${actions.join(",")}`);
  const acc = items.find((i) => i.action === "login.accepted");
  assert.equal(acc.detail.external_id, "ext-alice");
  assert.equal(acc.detail.client_id, app.client_id);
  assert.equal(items.find((i) => i.action === "user.sessions_ended").detail.external_id, "ext-alice");
  // A refused act leaves no record.
  const n = await count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'login.accepted'");
  assert.equal((await admin("PUT", `/admin/v1/login/accept?login_challenge=${rc}`, { external_id: "ext-alice" })).status, 409);
  assert.equal((await admin("DELETE", "/admin/v1/users/ext-nobody/sessions")).status, 404);
  assert.equal(await count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'login.accepted'"), n);
  assert.equal(await count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'user.sessions_ended' AND detail LIKE '%ext-nobody%'"), 0);
});

test("§3 audit: a refused sign-in attempt leaves no counter row behind, whatever email it names", async () => {
  // Password mode, two failures per account and so ten per address.
  const pw = await startServer({ SIGNIN_MAX_FAILURES: "2" });
  try {
    const guesser = new Browser(pw);
    const signIn = (i) =>
      guesser.post("/signin", { email: `nobody${i}@example.test`, password: "wrong", return_to: "/" }, { headers: { "cf-connecting-ip": "203.0.113.150" } });
    for (let i = 0; i < 10; i++) assert.equal((await signIn(i)).status, 401);
    const rowsAfterBudget = await countRows(pw, "SELECT COUNT(*) AS n FROM rate_limits");
    for (let i = 10; i < 30; i++) assert.equal((await signIn(i)).status, 429);
    const rows = await countRows(pw, "SELECT COUNT(*) AS n FROM rate_limits");
    assert.equal(rows, rowsAfterBudget, `20 refused attempts with new emails added ${rows - rowsAfterBudget} counter rows`);
  } finally {
    await pw.close();
  }
});
