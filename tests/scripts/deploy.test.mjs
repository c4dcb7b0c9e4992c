// `make deploy` (scripts/deploy.mjs) without a network: a stand-in `wrangler`
// plays the Cloudflare account (its D1 databases and the worker's secrets) and
// hands `deploy` to the real wrangler with --dry-run, so the arguments the
// script builds are checked by wrangler itself.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;

const FAKE = `#!/usr/bin/env node
const fs = require("node:fs");
const state = JSON.parse(fs.readFileSync(process.env.FAKE_STATE, "utf8"));
const args = process.argv.slice(2);
const cut = args.indexOf("--config");
const config = args[cut + 1];
const cmd = args.slice(0, cut);
const entry = { cmd };
const save = () => { state.calls.push(entry); fs.writeFileSync(process.env.FAKE_STATE, JSON.stringify(state)); };
// Each worker has its own secrets: the back office's config is the generated one.
const back = /back-office/.test(config);
entry.worker = back ? "back-office" : "public";
const held = back ? state.backSecrets : state.secrets;
if (cmd[0] === "d1" && cmd[1] === "list") { save(); console.log(JSON.stringify(state.databases)); }
else if (cmd[0] === "d1" && cmd[1] === "create") {
  const uuid = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f";
  state.databases.push({ name: cmd[2], uuid }); save();
  console.log('Created your new D1 database.\\n[[d1_databases]]\\nbinding = "DB"\\ndatabase_name = "' + cmd[2] + '"\\ndatabase_id = "' + uuid + '"');
}
else if (cmd[0] === "d1" && cmd[1] === "migrations") { save(); console.log("migrations applied"); }
else if (cmd[0] === "secret" && cmd[1] === "list") { save(); console.log(JSON.stringify(held.map((name) => ({ name, type: "secret_text" })))); }
else if (cmd[0] === "deploy") {
  const i = cmd.indexOf("--secrets-file");
  if (i >= 0) { entry.secrets = JSON.parse(fs.readFileSync(cmd[i + 1], "utf8")); for (const k of Object.keys(entry.secrets)) if (!held.includes(k)) held.push(k); }
  save();
  // The real wrangler, without npx in front (a second of CPU per call).
  const r = require("node:child_process").spawnSync(process.execPath, [process.env.REAL_WRANGLER, ...cmd, "--config", config], { stdio: "inherit", env: process.env });
  process.exit(r.status);
}
else { save(); console.error("fake wrangler: unexpected " + cmd.join(" ")); process.exit(2); }
`;

const made = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function account({ databases = [], secrets = [], backSecrets = secrets } = {}) {
  const dir = mkdtempSync(join(root, "build", "deploy-test-"));
  made.push(dir);
  // The existing build of both workers, linked (no rebuild): the back office's
  // generated config goes beside its build, here, not into the real build/.
  mkdirSync(join(dir, "build", "back-office"), { recursive: true });
  for (const f of ["index.js", "index_bg.wasm", "back-office/index.js", "back-office/index_bg.wasm"])
    symlinkSync(join(root, "build", f), join(dir, "build", f));
  // The real config, made to point at it.
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8")
    .replace(/^\[build\]\ncommand = .*$/m, "")
    .replace(/^migrations_dir = .*$/m, `migrations_dir = "${join(root, "migrations")}"`);
  writeFileSync(join(dir, "wrangler.toml"), toml);
  writeFileSync(join(dir, "wrangler.cjs"), FAKE);
  writeFileSync(join(dir, "state.json"), JSON.stringify({ databases, secrets: [...secrets], backSecrets: [...backSecrets], calls: [] }));
  return dir;
}

function deploy(dir, env) {
  const r = spawnSync("node", [join(root, "scripts", "deploy.mjs")], {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WRANGLER_CMD: `node ${join(dir, "wrangler.cjs")}`,
      WRANGLER_CONFIG: join(dir, "wrangler.toml"),
      FAKE_STATE: join(dir, "state.json"),
      REAL_WRANGLER: join(root, "node_modules", "wrangler", "bin", "wrangler.js"),
      DEPLOY_DRY_RUN: "1",
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      ...env,
    },
  });
  const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
  return { ...r, state, toml: readFileSync(join(dir, "wrangler.toml"), "utf8") };
}

test("without a valid ISSUER nothing is created", () => {
  for (const env of [{}, { ISSUER: "http://auth.example.com" }, { ISSUER: "https://auth.example.com/path" }]) {
    const dir = account();
    const r = deploy(dir, env);
    assert.equal(r.status, 1, JSON.stringify(env));
    assert.match(r.stderr, /ISSUER/);
    assert.deepEqual(r.state.calls, []);
  }
  const r = deploy(account(), { ISSUER: "https://auth.example.com", SIGNIN_MODE: "delegated" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /LOGIN_URL/);
  assert.deepEqual(r.state.calls, []);
});

test("first deploy: creates the database, writes its id, migrates, deploys with the issuer and a new admin token shown once", () => {
  const dir = account();
  const r = deploy(dir, { ISSUER: "https://auth.example.com/", SIGNIN_MODE: "delegated", LOGIN_URL: "https://platform.example/login" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.deepEqual(r.state.calls.map((c) => `${c.cmd.slice(0, 2).join(" ")} ${c.worker}`), [
    "d1 list public", "d1 create public", "d1 migrations public", "secret list public", "secret list back-office",
    "deploy --var back-office", "deploy --var public",
  ]);
  // Both workers: the same vars and the same secrets; the back office's config has the new database id.
  const [back, pub] = r.state.calls.slice(-2);
  assert.deepEqual(back.cmd.filter((a) => a.includes(":")), pub.cmd.filter((a) => a.includes(":")));
  assert.deepEqual(back.secrets, pub.secrets);
  assert.match(readFileSync(join(dir, "build", "back-office", "wrangler.toml"), "utf8"), /database_id = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"/);
  assert.match(r.toml, /database_id = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"/);
  const dep = r.state.calls.at(-1);
  assert.ok(dep.cmd.includes("ISSUER:https://auth.example.com"));
  assert.ok(dep.cmd.includes("SIGNIN_MODE:delegated"));
  assert.ok(dep.cmd.includes("LOGIN_URL:https://platform.example/login"));
  const token = dep.secrets.PLATFORM_ADMIN_TOKEN;
  assert.match(token, /^adm_[A-Za-z0-9_-]{43}$/);
  assert.equal(r.stdout.split(token).length - 1, 1, "the token is printed exactly once");
  // The secrets file is gone after the deployment.
  const file = dep.cmd[dep.cmd.indexOf("--secrets-file") + 1];
  assert.equal(existsSync(file), false);
});

test("a re-deploy reuses the database and never rotates the admin token by surprise", () => {
  const dir = account({ databases: [{ name: "edge-oauth", uuid: "11111111-2222-4333-8444-555555555555" }], secrets: ["PLATFORM_ADMIN_TOKEN", "JWT_SIGNING_KEYS"] });
  const r = deploy(dir, { ISSUER: "https://auth.example.com" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.deepEqual(r.state.calls.map((c) => c.cmd.slice(0, 2).join(" ")), ["d1 list", "d1 migrations", "secret list", "secret list", "deploy --var", "deploy --var"]);
  assert.match(r.toml, /database_id = "11111111-2222-4333-8444-555555555555"/);
  assert.equal(r.state.calls.at(-1).secrets, undefined);
  assert.doesNotMatch(r.stdout, /adm_/);
  // A token given by the operator is uploaded with the deployment.
  const given = "adm_given_0123456789abcdefghijklmnopqrstuvwxyz";
  const r2 = deploy(dir, { ISSUER: "https://auth.example.com", PLATFORM_ADMIN_TOKEN: given });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(r2.state.calls.at(-1).secrets.PLATFORM_ADMIN_TOKEN, given);
  assert.doesNotMatch(r2.stdout, new RegExp(given));
});

test("ACCESS_TOKEN_FORMAT=jwt: a signing key set rides with the first deployment, never replaced after", () => {
  const dir = account();
  const r = deploy(dir, { ISSUER: "https://auth.example.com", ACCESS_TOKEN_FORMAT: "jwt" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const dep = r.state.calls.at(-1);
  assert.ok(dep.cmd.includes("ACCESS_TOKEN_FORMAT:jwt"));
  const set = JSON.parse(dep.secrets.JWT_SIGNING_KEYS);
  // An EC key (access tokens) and, for OPENID=on (the default), an RSA key (ID tokens).
  assert.equal(set.keys.length, 2);
  assert.equal(set.keys[0].crv, "P-256");
  assert.ok(set.keys[0].d && set.keys[0].kid);
  assert.ok(!r.stdout.includes(set.keys[0].d), "the private key is never printed");
  const again = deploy(dir, { ISSUER: "https://auth.example.com", ACCESS_TOKEN_FORMAT: "jwt" });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.state.calls.at(-1).secrets, undefined);
});

test("OPENID=on (the default): the first deployment brings an RSA and an EC key; OPENID=off with opaque tokens brings none", () => {
  const r = deploy(account(), { ISSUER: "https://auth.example.com" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const set = JSON.parse(r.state.calls.at(-1).secrets.JWT_SIGNING_KEYS);
  assert.deepEqual(set.keys.map((k) => k.kty).sort(), ["EC", "RSA"]);
  const rsa = set.keys.find((k) => k.kty === "RSA");
  assert.ok(rsa.kid && rsa.d && rsa.p && rsa.q && rsa.dp && rsa.dq && rsa.qi);
  assert.ok(Buffer.from(rsa.n, "base64url").length >= 256, "at least 2048 bits");
  assert.equal(new Set(set.keys.map((k) => k.kid)).size, 2, "distinct kids");
  assert.ok(!r.stdout.includes(rsa.d), "the private key is never printed");
  const off = deploy(account(), { ISSUER: "https://auth.example.com", OPENID: "off" });
  assert.equal(off.status, 0, off.stderr + off.stdout);
  const dep = off.state.calls.at(-1);
  assert.equal(dep.secrets.JWT_SIGNING_KEYS, undefined);
  assert.ok(dep.cmd.includes("OPENID:off"));
});

test("SUBJECT_TYPE=pairwise: a SUBJECT_SALT rides with the first deployment, never replaced after; public needs none", () => {
  const dir = account();
  const r = deploy(dir, { ISSUER: "https://auth.example.com", SUBJECT_TYPE: "pairwise" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const dep = r.state.calls.at(-1);
  assert.ok(dep.cmd.includes("SUBJECT_TYPE:pairwise"));
  const salt = dep.secrets.SUBJECT_SALT;
  assert.ok(salt && salt.length >= 32 && salt.length <= 512, "a salt the worker accepts");
  assert.ok(!r.stdout.includes(salt), "the salt is never printed");
  const again = deploy(dir, { ISSUER: "https://auth.example.com", SUBJECT_TYPE: "pairwise" });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.state.calls.at(-1).secrets?.SUBJECT_SALT, undefined, "never rotated by surprise");
  const pub = deploy(account(), { ISSUER: "https://auth.example.com" });
  assert.equal(pub.state.calls.at(-1).secrets.SUBJECT_SALT, undefined);
});

test("the first deploy after the split: a secret only the public worker has must be given, so both workers hold the same value", () => {
  const dir = account({ databases: [{ name: "edge-oauth", uuid: "11111111-2222-4333-8444-555555555555" }], secrets: ["PLATFORM_ADMIN_TOKEN", "JWT_SIGNING_KEYS"], backSecrets: [] });
  const r = deploy(dir, { ISSUER: "https://auth.example.com" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /back-office worker lacks the secret PLATFORM_ADMIN_TOKEN/);
  assert.ok(!r.state.calls.some((c) => c.cmd[0] === "deploy"), "nothing deployed");
  const given = "adm_given_0123456789abcdefghijklmnopqrstuvwxyz";
  const keys = JSON.stringify({ keys: [] });
  const ok = deploy(dir, { ISSUER: "https://auth.example.com", PLATFORM_ADMIN_TOKEN: given, JWT_SIGNING_KEYS: keys });
  assert.equal(ok.status, 0, ok.stderr);
  const [back, pub] = ok.state.calls.slice(-2);
  assert.deepEqual([back.worker, pub.worker], ["back-office", "public"]);
  assert.equal(back.secrets.PLATFORM_ADMIN_TOKEN, given);
  assert.deepEqual(back.secrets, pub.secrets);
});

test("a BACK_OFFICE binding that names another worker is refused before anything is deployed", () => {
  const dir = account();
  const toml = join(dir, "wrangler.toml");
  writeFileSync(toml, readFileSync(toml, "utf8").replace('service = "edge-oauth-back-office"', 'service = "someone-else"'));
  const r = deploy(dir, { ISSUER: "https://auth.example.com" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /BACK_OFFICE service binding must name "edge-oauth-back-office"/);
  assert.deepEqual(r.state.calls, [], "nothing created");
});

test("without the [[services]] block (the back office on its own hostname) both workers still deploy", () => {
  const dir = account();
  const toml = join(dir, "wrangler.toml");
  writeFileSync(toml, readFileSync(toml, "utf8").replace(/\[\[services\]\]\nbinding = "BACK_OFFICE"\nservice = "edge-oauth-back-office"\n/, ""));
  assert.doesNotMatch(readFileSync(toml, "utf8"), /BACK_OFFICE/);
  const r = deploy(dir, { ISSUER: "https://auth.example.com" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.deepEqual(r.state.calls.filter((c) => c.cmd[0] === "deploy").map((c) => c.worker), ["back-office", "public"]);
  assert.match(readFileSync(join(dir, "build", "back-office", "wrangler.toml"), "utf8"), /^name = "edge-oauth-back-office"$/m);
});
