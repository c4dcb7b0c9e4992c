// `make deploy` (scripts/deploy.mjs) without a network: a stand-in `wrangler`
// plays the Cloudflare account (its D1 databases and the worker's secrets) and
// hands `deploy` to the real wrangler with --dry-run, so the arguments the
// script builds are checked by wrangler itself.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
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
if (cmd[0] === "d1" && cmd[1] === "list") { save(); console.log(JSON.stringify(state.databases)); }
else if (cmd[0] === "d1" && cmd[1] === "create") {
  const uuid = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f";
  state.databases.push({ name: cmd[2], uuid }); save();
  console.log('Created your new D1 database.\\n[[d1_databases]]\\nbinding = "DB"\\ndatabase_name = "' + cmd[2] + '"\\ndatabase_id = "' + uuid + '"');
}
else if (cmd[0] === "d1" && cmd[1] === "migrations") { save(); console.log("migrations applied"); }
else if (cmd[0] === "secret" && cmd[1] === "list") { save(); console.log(JSON.stringify(state.secrets.map((name) => ({ name, type: "secret_text" })))); }
else if (cmd[0] === "deploy") {
  const i = cmd.indexOf("--secrets-file");
  if (i >= 0) { entry.secrets = JSON.parse(fs.readFileSync(cmd[i + 1], "utf8")); for (const k of Object.keys(entry.secrets)) if (!state.secrets.includes(k)) state.secrets.push(k); }
  save();
  const r = require("node:child_process").spawnSync("npx", ["--no-install", "wrangler", ...cmd, "--config", config], { stdio: "inherit", env: process.env });
  process.exit(r.status);
}
else { save(); console.error("fake wrangler: unexpected " + cmd.join(" ")); process.exit(2); }
`;

const made = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function account({ databases = [], secrets = [] } = {}) {
  const dir = mkdtempSync(join(root, "build", "deploy-test-"));
  made.push(dir);
  // The real config, made to point at the existing build (no rebuild).
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8")
    .replace(/^main = .*$/m, `main = "${join(root, "build", "index.js")}"`)
    .replace(/^\[build\]\ncommand = .*$/m, "")
    .replace(/^migrations_dir = .*$/m, `migrations_dir = "${join(root, "migrations")}"`);
  writeFileSync(join(dir, "wrangler.toml"), toml);
  writeFileSync(join(dir, "wrangler.cjs"), FAKE);
  writeFileSync(join(dir, "state.json"), JSON.stringify({ databases, secrets, calls: [] }));
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
  assert.deepEqual(r.state.calls.map((c) => c.cmd.slice(0, 2).join(" ")), [
    "d1 list", "d1 create", "d1 migrations", "secret list", "deploy --var",
  ]);
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
  assert.deepEqual(r.state.calls.map((c) => c.cmd.slice(0, 2).join(" ")), ["d1 list", "d1 migrations", "secret list", "deploy --var"]);
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
