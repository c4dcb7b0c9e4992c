// scripts/dev-vars.mjs (`make dev`): a new .dev.vars gets a signing key set of
// one RSA and one EC key; an existing set without an RSA key gets one
// appended, every other key and line left as it was.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const script = new URL("../../scripts/dev-vars.mjs", import.meta.url).pathname;
const run = (dir) => spawnSync(process.execPath, [script], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH } });
const keysOf = (text) => JSON.parse(text.match(/^JWT_SIGNING_KEYS='(.*)'$/m)[1]).keys;

test("a new .dev.vars holds an RSA and an EC key", () => {
  const dir = mkdtempSync(join(tmpdir(), "dev-vars-"));
  const r = run(dir);
  assert.equal(r.status, 0, r.stderr);
  const keys = keysOf(readFileSync(join(dir, ".dev.vars"), "utf8"));
  assert.deepEqual(keys.map((k) => k.kty), ["EC", "RSA"]);
  assert.ok(keys.every((k) => k.kid && k.d));
  // And a SUBJECT_SALT for SUBJECT_TYPE=pairwise, long enough for the worker (32+).
  assert.match(readFileSync(join(dir, ".dev.vars"), "utf8"), /^SUBJECT_SALT="[A-Za-z0-9_-]{43}"$/m);
  // Run again: nothing changes.
  const before = readFileSync(join(dir, ".dev.vars"), "utf8");
  assert.equal(run(dir).status, 0);
  assert.equal(readFileSync(join(dir, ".dev.vars"), "utf8"), before);
});

test("an EC-only set from before OpenID gets an RSA key appended, nothing else changed", () => {
  const dir = mkdtempSync(join(tmpdir(), "dev-vars-"));
  const ec = { ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }), kid: "dev-old" };
  const admin = `PLATFORM_ADMIN_TOKEN="adm_${"x".repeat(43)}"`;
  writeFileSync(join(dir, ".dev.vars"), `# mine\n${admin}\nJWT_SIGNING_KEYS='${JSON.stringify({ keys: [ec] })}'\nOTHER=1\n`);
  const r = run(dir);
  assert.equal(r.status, 0, r.stderr);
  const text = readFileSync(join(dir, ".dev.vars"), "utf8");
  const keys = keysOf(text);
  assert.deepEqual(keys[0], ec, "the existing key first, unchanged");
  assert.equal(keys.length, 2);
  assert.equal(keys[1].kty, "RSA");
  // A SUBJECT_SALT is appended too (the file had none); the rest stays as it was.
  assert.match(text, /^SUBJECT_SALT="[A-Za-z0-9_-]{43}"$/m);
  assert.equal(
    text.replace(/^JWT_SIGNING_KEYS=.*$/m, "K").replace(/^SUBJECT_SALT=.*\n/m, ""),
    `# mine\n${admin}\nK\nOTHER=1\n`,
  );
});
