// `make deploy`: from an empty Cloudflare account to a running server.
//
//   ISSUER=https://auth.example.com make deploy
//
// 1. checks the settings a production server needs (ISSUER; LOGIN_URL when
//    SIGNIN_MODE=delegated) before anything is created;
// 2. creates the D1 database named in wrangler.toml if the account has none,
//    and writes its id into wrangler.toml (commit that change);
// 3. applies the migrations to the remote database;
// 4. deploys both workers (docs/architecture.md "Two workers"): the back
//    office first (the public worker's BACK_OFFICE service binding names it),
//    then the public one, each with the production settings as vars and the
//    same secrets in the same deployment: PLATFORM_ADMIN_TOKEN from the
//    environment, or, on the first deploy only, a new random one printed once;
// 5. prints what to do next (provision, first app).
//
// Every Cloudflare call goes through `wrangler` (WRANGLER_CMD overrides the
// command, which is how the tests run this script without a network).
import { spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backOfficeConfig as checkBackOffice, writeBackOfficeConfig } from "./back-office-config.mjs";

const root = new URL("../", import.meta.url).pathname;
const CONFIG = process.env.WRANGLER_CONFIG ?? join(root, "wrangler.toml");
const WRANGLER = (process.env.WRANGLER_CMD ?? "npx --no-install wrangler").split(" ");
const PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000";
// Settings passed as vars at deploy time, so wrangler.toml keeps the local
// development values (an ISSUER there would break `make dev`).
const PASSED_VARS = [
  "ISSUER", "SIGNIN_MODE", "LOGIN_URL", "BEARER_MODE", "ACCESS_TTL_SECONDS", "INTROSPECTION_CLIENTS",
  "ACCESS_TOKEN_FORMAT", "RESOURCES", "OPENID", "ID_TOKEN_TTL_SECONDS", "SUBJECT_TYPE",
];

function fail(msg) {
  console.error(`deploy: ${msg}`);
  process.exit(1);
}

function wrangler(args, { input, json, config = CONFIG } = {}) {
  const r = spawnSync(WRANGLER[0], [...WRANGLER.slice(1), ...args, "--config", config], {
    cwd: root,
    input,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: [input === undefined ? "inherit" : "pipe", "pipe", "inherit"],
  });
  if (r.status !== 0) fail(`\`wrangler ${args.join(" ")}\` failed (exit ${r.status})`);
  if (!json) return r.stdout;
  try {
    return JSON.parse(r.stdout);
  } catch {
    fail(`\`wrangler ${args.join(" ")}\` did not print JSON`);
  }
}

/** https origin (http only on loopback), as the worker itself requires. */
function checkOrigin(name, value, { path = false } = {}) {
  let u;
  try {
    u = new URL(value);
  } catch {
    fail(`${name} must be a URL, got ${JSON.stringify(value)}`);
  }
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) fail(`${name} must be https`);
  if (!path && (u.pathname !== "/" || u.search || u.hash)) fail(`${name} must be an origin (no path), e.g. https://auth.example.com`);
}

function tomlString(text, key) {
  return text.match(new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, "m"))?.[1];
}

// 1. Settings first: nothing is created for a deployment that could not serve.
const issuer = (process.env.ISSUER ?? "").replace(/\/$/, "");
if (!issuer) fail("set ISSUER to the public origin of the server, e.g. ISSUER=https://auth.example.com make deploy");
checkOrigin("ISSUER", issuer);
if (process.env.SIGNIN_MODE === "delegated") {
  if (!process.env.LOGIN_URL) fail("SIGNIN_MODE=delegated needs LOGIN_URL (the platform's login page)");
  checkOrigin("LOGIN_URL", process.env.LOGIN_URL, { path: true });
}
const adminToken = process.env.PLATFORM_ADMIN_TOKEN;
if (adminToken !== undefined && (adminToken.length < 32 || adminToken.length > 512))
  fail("PLATFORM_ADMIN_TOKEN must be 32 to 512 characters");

let config = readFileSync(CONFIG, "utf8");
const workerName = tomlString(config, "name") ?? fail("wrangler.toml has no name");
const dbName = tomlString(config, "database_name") ?? fail("wrangler.toml has no [[d1_databases]] database_name");
try {
  checkBackOffice(config, CONFIG);
} catch (e) {
  fail(e.message);
}

// 2. The database: reuse the account's, or create it; its id goes into the config.
const existing = wrangler(["d1", "list", "--json"], { json: true });
let dbId = (Array.isArray(existing) ? existing : []).find((d) => d.name === dbName)?.uuid;
if (dbId) {
  console.log(`deploy: D1 database ${dbName} exists (${dbId})`);
} else {
  const out = wrangler(["d1", "create", dbName]);
  dbId = out.match(/database_id\s*=\s*"([0-9a-f-]{36})"/)?.[1] ?? out.match(/"uuid"\s*:\s*"([0-9a-f-]{36})"/)?.[1];
  if (!dbId) fail("could not read the new database's id from `wrangler d1 create`");
  console.log(`deploy: created D1 database ${dbName} (${dbId})`);
}
if (tomlString(config, "database_id") !== dbId) {
  config = config.replace(/^(\s*database_id\s*=\s*)"[^"]*"/m, `$1"${dbId}"`);
  writeFileSync(CONFIG, config);
  console.log(`deploy: wrote database_id into ${CONFIG.replace(root, "")} (commit it)`);
}
if (dbId === PLACEHOLDER_ID) fail("the database id is still the local placeholder");

// 3. Schema.
wrangler(["d1", "migrations", "apply", "DB", "--remote"], { input: "y\n" });
console.log("deploy: migrations applied to the remote database");

// 4. Secrets ride with the deployment. The admin token is generated only when
// neither worker has one, so a re-deploy never rotates it by surprise. Both
// workers get the same values.
let backOfficeConfig;
try {
  backOfficeConfig = writeBackOfficeConfig(CONFIG);
} catch (e) {
  fail(e.message);
}
const secrets = {};
let generated = false;
const jwt = process.env.ACCESS_TOKEN_FORMAT === "jwt";
// OPENID=on (the default) signs ID tokens with RS256: the set needs an RSA key.
const openid = (process.env.OPENID ?? "").trim() !== "off";
const listed = {};
const has = (config, name) => {
  if (!listed[config]) {
    const out = wrangler(["secret", "list", "--format", "json"], { json: true, config });
    listed[config] = (Array.isArray(out) ? out : []).map((s) => s.name);
  }
  return listed[config].includes(name);
};
// A secret one worker keeps and the other lacks (the first deploy after the
// split into two workers) cannot be copied: its value is not readable.
const workerHas = (name) => {
  const [pub, back] = [has(CONFIG, name), has(backOfficeConfig, name)];
  if (pub !== back && !process.env[name])
    fail(`the ${pub ? "back-office" : "public"} worker lacks the secret ${name} the other has: pass its value (${name}=… make deploy) so both get it`);
  return pub && back;
};
if (adminToken) {
  secrets.PLATFORM_ADMIN_TOKEN = adminToken;
} else if (!workerHas("PLATFORM_ADMIN_TOKEN")) {
  secrets.PLATFORM_ADMIN_TOKEN = `adm_${randomBytes(32).toString("base64url")}`;
  generated = true;
}
// JWT access tokens and ID tokens need a signing key set (an EC P-256 key and
// an RSA key); one is made on the first deploy only (rotate by putting a new
// key first: docs/mcp-and-resource-servers.md "Validating tokens in your API").
if (process.env.JWT_SIGNING_KEYS) {
  secrets.JWT_SIGNING_KEYS = process.env.JWT_SIGNING_KEYS;
} else if ((jwt || openid) && !workerHas("JWT_SIGNING_KEYS")) {
  const stamp = `${new Date().toISOString().slice(0, 10)}-${randomBytes(4).toString("hex")}`;
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  secrets.JWT_SIGNING_KEYS = JSON.stringify({ keys: [{ ...ec, kid: `k-${stamp}` }, { ...rsa, kid: `rsa-${stamp}` }] });
}
// Pairwise subjects need their key; made once, never replaced (every pairwise
// `sub` would change with it).
if (process.env.SUBJECT_SALT) {
  secrets.SUBJECT_SALT = process.env.SUBJECT_SALT;
} else if ((process.env.SUBJECT_TYPE ?? "").trim() === "pairwise" && !workerHas("SUBJECT_SALT")) {
  secrets.SUBJECT_SALT = randomBytes(32).toString("base64url");
}
const vars = PASSED_VARS.filter((k) => process.env[k]).flatMap((k) => ["--var", `${k}:${k === "ISSUER" ? issuer : process.env[k]}`]);
const dir = mkdtempSync(join(tmpdir(), "edge-oauth-deploy-"));
const secretsFile = join(dir, "secrets.json");
writeFileSync(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
try {
  for (const [config, out] of [[backOfficeConfig, "dry-run-back-office"], [CONFIG, "dry-run"]]) {
    const args = ["deploy", ...vars];
    if (Object.keys(secrets).length) args.push("--secrets-file", secretsFile);
    if (process.env.DEPLOY_DRY_RUN === "1") args.push("--dry-run", "--outdir", join(root, "build", out));
    wrangler(args, { config });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`deploy: ${workerName}-back-office and ${workerName} deployed with ISSUER=${issuer}`);
if (generated) {
  console.log(`
  PLATFORM_ADMIN_TOKEN (shown once; keep it in your platform's secret store):
    ${secrets.PLATFORM_ADMIN_TOKEN}`);
}
console.log(`
  Next:
    curl ${issuer}/ready
    PLATFORM_ADMIN_TOKEN=… node scripts/provision.mjs --url ${issuer} platform.json
  (docs/operators.md: "Run it for your platform")`);
