// The configuration profiles of docs/configuration.md (profiles/*.toml), each run in workerd:
// prefixes, lifetimes and refresh expiry as the platform documents them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { profileVars } from "../../scripts/profile-vars.mjs";
import { startServer, Browser, registerApp, consent, exchange, tokensFor, tokenRequest, bearer } from "./support.mjs";

async function withProfile(name, fn) {
  const server = await startServer(name ? profileVars(name) : {});
  try {
    const alice = new Browser(server);
    await alice.signIn("alice@acme.test", "alice-password");
    await fn(server, alice);
  } finally {
    await server.close();
  }
}

const refreshExpiry = async (server) =>
  (await server.db.prepare("SELECT expires_at FROM tokens WHERE kind = 'refresh' ORDER BY created_at DESC, rowid DESC LIMIT 1").first()).expires_at;

test("FeatureOS: foapp_/fosec_/fooc_/foot_/foor_, 24 h access, refresh until revoked", async () => {
  await withProfile("featureos", async (server, alice) => {
    const app = await registerApp(server);
    assert.match(app.client_id, /^foapp_/);
    assert.match(app.client_secret, /^fosec_/);
    const { location } = await consent(alice, app, { scope: "profile:read" });
    assert.match(location.searchParams.get("code"), /^fooc_/);
    const t = await (await exchange(server, app, location.searchParams.get("code"))).json();
    assert.match(t.access_token, /^foot_/);
    assert.match(t.refresh_token, /^foor_/);
    assert.equal(t.expires_in, 86400);
    assert.equal(await refreshExpiry(server), null);
    // One live token per target organization: a new authorization replaces it.
    const again = await tokensFor(server, alice, app, { prompt: "consent", scope: "profile:read" });
    const me = (token) => bearer(server, "/api/v1/me", token);
    assert.equal((await me(t.access_token)).status, 401);
    assert.equal((await me(again.access_token)).status, 200);
  });
});

test("fsckmsft: 60 min access, refresh expires after 90 days idle", async () => {
  await withProfile("fsckmsft", async (server, alice) => {
    const app = await registerApp(server);
    const t = await tokensFor(server, alice, app, { scope: "profile:read" });
    assert.equal(t.expires_in, 3600);
    const exp = await refreshExpiry(server);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(exp - (now + 90 * 86400)) < 120, `refresh expires_at ${exp}`);
  });
});

test("Fluxer: 7-day access, non-expiring single-use refresh", async () => {
  await withProfile("fluxer", async (server, alice) => {
    const app = await registerApp(server);
    const t = await tokensFor(server, alice, app, { scope: "profile:read" });
    assert.equal(t.expires_in, 604800);
    assert.equal(await refreshExpiry(server), null);
    assert.equal((await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token })).status, 200);
    // Outside the default reuse grace (10 s since issue 15), anchored at the rotation.
    await server.db.prepare("UPDATE tokens SET used_at = used_at - 11 WHERE hash = ?").bind(createHash("sha256").update(t.refresh_token).digest("hex")).run();
    const again = await tokenRequest(server, app, { grant_type: "refresh_token", refresh_token: t.refresh_token });
    assert.equal((await again.json()).error, "invalid_grant");
  });
});

test("Azure DevOps: codes live 15 minutes (the default is 5)", async () => {
  for (const [profile, expected] of [["azure-devops", 200], [null, 400]]) {
    await withProfile(profile, async (server, alice) => {
      const app = await registerApp(server);
      const { location } = await consent(alice, app, { scope: "profile:read" });
      // Age the code by 6 minutes 40 seconds.
      await server.db.prepare("UPDATE codes SET expires_at = expires_at - 400").run();
      const res = await exchange(server, app, location.searchParams.get("code"));
      assert.equal(res.status, expected, `${profile ?? "default"}: ${await res.clone().text()}`);
    });
  }
});
