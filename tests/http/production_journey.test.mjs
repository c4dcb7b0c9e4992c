// Issue 9 §3: a production-shaped run. Migrations only (no SQL fixtures), the
// server configured as in production (ISSUER set, delegated sign-in, the admin
// token as a secret), everything created through the provisioning API by
// `scripts/provision.mjs`, and the platform's own login page played by
// `scripts/stand-in-platform.mjs` — the same script `make dev SIGNIN=delegated`
// runs. Then one journey: platform login → consent → code → token → API call →
// role change through the API → the next call narrows → user deleted → 401.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, Browser, hiddenFields, pkcePair, exchange, bearer, FORM, form, freePort, api } from "./support.mjs";
import { startStandInPlatform } from "../../scripts/stand-in-platform.mjs";

const root = new URL("../../", import.meta.url).pathname;
const TOKEN = `adm_${"p".repeat(40)}`;

// What the platform owns: its users and their passwords never reach us.
const PLATFORM_USERS = [
  { external_id: "u-dana", email: "dana@northwind.example", password: "dana's platform password" },
  { external_id: "u-eli", email: "eli@northwind.example", password: "eli's platform password" },
];
// What the platform pushes to us: identity without passwords.
const DOCUMENT = {
  scopes: [
    { name: "posts:read", description: "Read posts in the organization" },
    { name: "posts:write", description: "Create posts in the organization" },
  ],
  roles: [
    { name: "owner", permissions: ["posts:read", "posts:write", "oauth_app.manage", "org.admin"] },
    { name: "editor", permissions: ["posts:read", "posts:write"] },
    { name: "viewer", permissions: ["posts:read"] },
  ],
  orgs: [{ external_id: "o-northwind", slug: "northwind", name: "Northwind" }],
  users: [
    { external_id: "u-dana", email: "dana@northwind.example", name: "Dana" },
    { external_id: "u-eli", email: "eli@northwind.example", name: "Eli" },
  ],
  memberships: [
    { org: "o-northwind", user: "u-dana", role: "owner" },
    { org: "o-northwind", user: "u-eli", role: "editor" },
  ],
};

let server, platform, issuer, dir;

const admin = async (method, path, body) => {
  const res = await api(server, method, `/admin/v1${path}`, body, TOKEN);
  return { status: res.status, body: await res.json() };
};

before(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  platform = await startStandInPlatform({ server: issuer, adminToken: TOKEN, users: PLATFORM_USERS });
  server = await startServer(
    { ISSUER: issuer, SIGNIN_MODE: "delegated", LOGIN_URL: platform.url, PLATFORM_ADMIN_TOKEN: TOKEN },
    { fixtures: false, port },
  );
  dir = mkdtempSync(join(tmpdir(), "platform-doc-"));
});
after(async () => {
  await server?.close();
  await platform?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("from migrations alone, through the provisioning API and the platform's login page, to a token that follows the platform's changes", async () => {
  // An empty database, as after `make deploy`.
  assert.equal((await server.db.prepare("SELECT count(*) AS n FROM users").first()).n, 0);
  assert.equal((await (await server.fetch("/ready")).json()).database, "ok");
  const meta = await (await server.fetch("/.well-known/oauth-authorization-server")).json();
  assert.equal(meta.issuer, issuer);

  // 1. The platform describes itself once; `make provision` applies it.
  const file = join(dir, "platform.json");
  writeFileSync(file, JSON.stringify(DOCUMENT));
  const run = (...args) =>
    spawnSync("node", [join(root, "scripts/provision.mjs"), "--url", server.base, ...args, file], {
      encoding: "utf8",
      env: { ...process.env, PLATFORM_ADMIN_TOKEN: TOKEN },
    });
  let r = run();
  assert.equal(r.status, 0, r.stderr + r.stdout);
  r = run();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /no changes/);
  // An org API key for the platform's developer portal (shown once).
  const key = await admin("PUT", "/orgs/o-northwind/api-keys/portal", { role: "owner" });
  assert.equal(key.status, 201, JSON.stringify(key.body));

  // 2. A developer registers an app with that key.
  const reg = await api(
    server,
    "POST",
    "/api/v1/apps",
    { name: "Northwind Reports", redirect_uris: ["http://localhost:4000/cb"], scopes: ["posts:read", "posts:write"] },
    key.body.secret,
  );
  assert.equal(reg.status, 201, await reg.clone().text());
  const app = await reg.json();

  // 3. Eli authorizes it: our authorize → the platform's login page → back.
  const eli = new Browser(server);
  const { verifier, challenge } = pkcePair();
  const query = new URLSearchParams({
    client_id: app.client_id, redirect_uri: "http://localhost:4000/cb", response_type: "code",
    scope: "posts:read posts:write", state: "s-1", code_challenge: challenge, code_challenge_method: "S256",
  });
  let res = await eli.fetch(`/oauth/authorize?${query}`);
  assert.equal(res.status, 302);
  const login = new URL(res.headers.get("location"));
  assert.equal(login.origin + login.pathname, platform.url);
  // No password form of ours in this mode.
  assert.equal((await eli.post("/signin", { email: "eli@northwind.example", password: "x", return_to: "/" })).status, 404);
  const wrong = await fetch(platform.url, {
    method: "POST", redirect: "manual", headers: FORM,
    body: form({ login_challenge: login.searchParams.get("login_challenge"), email: "eli@northwind.example", password: "nope" }),
  });
  assert.equal(wrong.status, 401);
  const signedIn = await fetch(platform.url, {
    method: "POST", redirect: "manual", headers: FORM,
    body: form({ login_challenge: login.searchParams.get("login_challenge"), email: "eli@northwind.example", password: PLATFORM_USERS[1].password }),
  });
  assert.equal(signedIn.status, 302, await signedIn.text());
  const back = new URL(signedIn.headers.get("location"));
  assert.equal(back.origin, issuer);
  res = await eli.fetch(back.pathname + back.search);
  assert.ok([302, 303].includes(res.status), `verifier landing: ${res.status}`);
  res = await eli.fetch(res.headers.get("location"));
  assert.equal(res.status, 200, "our consent screen");
  const page = await res.text();
  assert.match(page, /Northwind Reports/);
  res = await eli.post("/oauth/authorize", { ...hiddenFields(page), org: (await server.db.prepare("SELECT id FROM orgs WHERE external_id = 'o-northwind'").first()).id, decision: "approve" });
  assert.equal(res.status, 303);
  const cb = new URL(res.headers.get("location"));
  assert.equal(cb.searchParams.get("iss"), issuer);
  assert.equal(cb.searchParams.get("state"), "s-1");

  // 4. Code → token → API.
  const tok = await exchange(server, app, cb.searchParams.get("code"), { verifier, redirect_uri: "http://localhost:4000/cb" });
  assert.equal(tok.status, 200, await tok.clone().text());
  const { access_token } = await tok.json();
  const me = await (await bearer(server, "/api/v1/me", access_token)).json();
  assert.equal(me.user.email, "eli@northwind.example");
  assert.equal(me.user.role, "editor");
  const write = () => bearer(server, "/api/v1/posts", access_token, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "Q3" }),
  });
  assert.equal((await write()).status, 201);

  // 5. The platform demotes Eli: the very next call is narrowed.
  const demoted = await admin("PUT", "/orgs/o-northwind/memberships/u-eli", { role: "viewer" });
  assert.equal(demoted.status, 200, JSON.stringify(demoted.body));
  const refused = await write();
  assert.equal(refused.status, 403);
  assert.match(refused.headers.get("www-authenticate") ?? "", /insufficient_scope/);
  assert.equal((await bearer(server, "/api/v1/posts", access_token)).status, 200);

  // 6. The platform deletes Eli: the token is dead on the next call.
  const deleted = await admin("DELETE", "/users/u-eli");
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  assert.equal((await bearer(server, "/api/v1/posts", access_token)).status, 401);
  // And the platform saw exactly one sign-in, by its own account.
  assert.deepEqual(platform.accepted, ["u-eli"]);
});
