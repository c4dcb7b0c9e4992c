// Review of the issue 8 fixes: each test failed on the landed code for the
// reason its name gives (see the review report).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, Browser, hidden, form, FORM, registerApp, tokensFor, tokenRequest, bearer, newUser as supportNewUser } from "./support.mjs";

const LIMIT = 10; // SIGNIN_MAX_FAILURES in wrangler.toml
let server, graceServer;
before(async () => {
  server = await startServer();
  graceServer = await startServer({ REFRESH_REUSE_GRACE_SECONDS: "30" });
});
after(async () => {
  await server.close();
  await graceServer.close();
});

const newUser = () => supportNewUser(server, "rev");

test("sign-in: the per-address counter takes an IPv6 sender by its /64, so one host cannot spray from fresh addresses", async () => {
  // Six accounts, nine guesses each: under the per-account limit, so only the
  // per-address counter (5x the limit) bounds this spray.
  const accounts = [];
  for (let i = 0; i < 6; i++) accounts.push(await newUser());
  const b = new Browser(server);
  const csrf = hidden(await (await b.fetch("/signin")).text(), "csrf");
  const statuses = [];
  let n = 0;
  for (let round = 0; round < 9; round++) {
    for (const email of accounts) {
      const addr = `2001:db8:77:1::${(++n).toString(16)}`; // one /64, a fresh address per guess
      const res = await b.fetch("/signin", {
        method: "POST",
        headers: { ...FORM, "cf-connecting-ip": addr },
        body: form({ email, password: `guess-${n}`, csrf }),
      });
      statuses.push(res.status);
    }
  }
  const checked = statuses.filter((s) => s === 401).length;
  assert.ok(checked <= 5 * LIMIT, `${checked} password checks from one /64 against a per-address limit of ${5 * LIMIT}`);
  assert.equal(statuses.at(-1), 429);
});

test("sign-in: a device cookie issued to another account is not adopted, so a planted one cannot lock the victim's browser", async () => {
  const victim = await newUser();
  const own = await newUser();
  // The attacker signs in to their own account and keeps the device cookie.
  const attacker = new Browser(server);
  assert.equal((await attacker.post("/signin", { email: own, password: "carol-password" }, { headers: { "cf-connecting-ip": "203.0.113.50" } })).status, 303);
  const planted = attacker.cookies.get("eo_device");
  assert.ok(planted);
  // The cookie is planted in the victim's browser (it is not __Host-: a sibling
  // subdomain or a plain-http response can set it), and the victim signs in.
  const user = new Browser(server);
  user.cookies.set("eo_device", planted);
  const home = { "cf-connecting-ip": "198.51.100.77" };
  assert.equal((await user.post("/signin", { email: victim, password: "carol-password" }, { headers: home })).status, 303);
  // The attacker, holding the same value, guesses against the victim.
  for (let i = 0; i < LIMIT + 2; i++) {
    await attacker.post("/signin", { email: victim, password: `guess-${i}` }, { headers: { "cf-connecting-ip": `203.0.113.${60 + i}` } });
  }
  // The victim's own browser must still sign in.
  const res = await user.post("/signin", { email: victim, password: "carol-password" }, { headers: home });
  assert.equal(res.status, 303, `the victim is locked out of their own browser: ${res.status}`);
});

test("sign-out during a database outage is a 503, not a 303 that leaves the session alive", async () => {
  const b = new Browser(server);
  await b.signIn("alice@acme.test", "alice-password");
  const csrf = await b.csrf();
  const session = b.cookies.get("eo_session");
  await server.db.prepare("ALTER TABLE sessions RENAME TO sessions_gone").run();
  let res;
  try {
    res = await b.post("/signout", { csrf });
  } finally {
    await server.db.prepare("ALTER TABLE sessions_gone RENAME TO sessions").run();
  }
  const stillValid = (await server.fetch("/", { headers: { cookie: `eo_session=${session}` } })).status === 200
    && hidden(await (await server.fetch("/", { headers: { cookie: `eo_session=${session}` } })).text(), "csrf") !== undefined;
  assert.equal(res.status, 503, `sign-out answered ${res.status} (session still valid afterwards: ${stillValid})`);
  assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
});

// A grace-window replay mints a sibling pair; before the fix each sibling grew
// its own chain forever, so a stolen copy replayed inside the window was never
// caught by reuse detection, whichever side used its sibling first.
test("grace window: a sibling pair minted by a replay dies once the family moved on (no forked chain)", async () => {
  const s = graceServer;
  const app = await registerApp(s);
  const alice = new Browser(s);
  await alice.signIn("alice@acme.test", "alice-password");
  const t = await tokensFor(s, alice, app);
  const refresh = (rt) => tokenRequest(s, app, { grant_type: "refresh_token", refresh_token: rt });
  const a = await (await refresh(t.refresh_token)).json(); // the rightful client
  const b = await (await refresh(t.refresh_token)).json(); // a stolen copy replayed inside the window
  assert.ok(a.refresh_token && b.refresh_token);
  const c = await (await refresh(a.refresh_token)).json(); // the rightful client goes on
  assert.ok(c.access_token);
  const fork = await refresh(b.refresh_token);
  assert.equal(fork.status, 400, "the forked sibling still rotates after the family moved on");
  assert.equal((await bearer(s, "/api/v1/me", c.access_token)).status, 401, "reuse of a stale sibling ends the family");
  // The other order: the copy moves first, the rightful client's sibling is refused and the family ends.
  const t2 = await tokensFor(s, alice, app, { prompt: "consent" });
  const mine = await (await refresh(t2.refresh_token)).json();
  const copy = await (await refresh(t2.refresh_token)).json();
  const theirs = await (await refresh(copy.refresh_token)).json();
  assert.ok(theirs.access_token);
  assert.equal((await refresh(mine.refresh_token)).status, 400);
  assert.equal((await bearer(s, "/api/v1/me", theirs.access_token)).status, 401);
});

test("with a bearer cache, a token the token endpoint revoked (eviction, reuse) stops working in the isolate that revoked it", async () => {
  // Grace 0: the replay below is reuse at once (the default grace is 10 s since issue 15).
  const s = await startServer({ BEARER_CACHE_TTL_SECONDS: "60", MAX_LIVE_APP_TOKENS: "1", REFRESH_REUSE_GRACE_SECONDS: "0" });
  try {
    const live = async (at) => (await bearer(s, "/api/v1/me", at)).status;
    // MAX_LIVE_APP_TOKENS: the second client_credentials token evicts the first.
    const app = await registerApp(s, { scopes: ["posts:read"], actor_modes: ["app"] });
    const cc = () => tokenRequest(s, app, { grant_type: "client_credentials" }).then((r) => r.json());
    const first = await cc();
    assert.equal(await live(first.access_token), 200); // now cached
    const second = await cc();
    assert.equal(await live(second.access_token), 200);
    assert.equal(await live(first.access_token), 401, "the evicted token still works from the cache");
    // Refresh reuse: the family dies, the winner's cached access token with it.
    const user = await registerApp(s);
    const alice = new Browser(s);
    await alice.signIn("alice@acme.test", "alice-password");
    const t = await tokensFor(s, alice, user);
    const refresh = (rt) => tokenRequest(s, user, { grant_type: "refresh_token", refresh_token: rt });
    const a = await (await refresh(t.refresh_token)).json();
    assert.equal(await live(a.access_token), 200); // cached
    assert.equal((await refresh(t.refresh_token)).status, 400); // reuse: family revoked
    assert.equal(await live(a.access_token), 401, "a token of the killed family still works from the cache");
  } finally {
    await s.close();
  }
});

test("/ready fails when a table or column a request needs is missing (issue 8 and issue 10 migrations)", async () => {
  const s = await startServer();
  try {
    assert.equal((await s.fetch("/ready")).status, 200);
    for (const [what, down, up] of [
      ["signin_devices", "ALTER TABLE signin_devices RENAME TO signin_devices_gone", "ALTER TABLE signin_devices_gone RENAME TO signin_devices"],
      ["webhook_secret_previous", "ALTER TABLE webhook_secret_previous RENAME TO wsp_gone", "ALTER TABLE wsp_gone RENAME TO webhook_secret_previous"],
      ["tokens.parent", "ALTER TABLE tokens RENAME COLUMN parent TO parent_gone", "ALTER TABLE tokens RENAME COLUMN parent_gone TO parent"],
      // Issue 10's migrations: audiences (0012), registrations (0013), documents (0014).
      ["codes.audience", "ALTER TABLE codes RENAME COLUMN audience TO audience_gone", "ALTER TABLE codes RENAME COLUMN audience_gone TO audience"],
      ["client_registrations", "ALTER TABLE client_registrations RENAME TO cr_gone", "ALTER TABLE cr_gone RENAME TO client_registrations"],
      ["apps.metadata_expires_at", "ALTER TABLE apps RENAME COLUMN metadata_expires_at TO mea_gone", "ALTER TABLE apps RENAME COLUMN mea_gone TO metadata_expires_at"],
    ]) {
      await s.db.prepare(down).run();
      let status;
      try {
        status = (await s.fetch("/ready")).status;
      } finally {
        await s.db.prepare(up).run();
      }
      assert.equal(status, 503, `/ready without ${what}: ${status}`);
    }
    assert.equal((await s.fetch("/ready")).status, 200);
  } finally {
    await s.close();
  }
});
