// Local development fixtures (SPEC.md), described once in fixtures/platform.json
// (the provisioning document that `make dev` applies through the API, with
// scripts/provision.mjs). The workerd suites load the same document as SQL
// (`fixtureStatements`) for speed; tests/http/identity_provisioning.test.mjs
// proves that the API path yields the same platform. Never run against a remote DB.
import { createHash, pbkdf2Sync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

export const PLATFORM_FILE = new URL("../fixtures/platform.json", import.meta.url);
export const PLATFORM = JSON.parse(readFileSync(PLATFORM_FILE, "utf8"));

// Fixed so the README can give it: the document imports it as the secret of
// the Acme admin key. It only ever exists in local databases.
export const DEV_API_KEY = PLATFORM.api_keys.find((k) => k.name === "acme-dev-admin").secret;
export const PASSWORD_ITERATIONS = 100_000;

// Our ids for the SQL path: the tests name orgs and users by them.
const orgId = (ext) => `org_${ext}`;
const userId = (ext) => `usr_${ext}`;

export const USERS = PLATFORM.users.map((u) => ({ id: userId(u.external_id), ...u }));
export const ORGS = PLATFORM.orgs.map((o) => ({ id: orgId(o.external_id), ...o }));
export const MEMBERSHIPS = PLATFORM.memberships.map((m) => [orgId(m.org), userId(m.user), m.role]);
export const SCOPES = PLATFORM.scopes.map((s) => [s.name, s.description]);
export const ROLE_PERMISSIONS = Object.fromEntries(PLATFORM.roles.map((r) => [r.name, r.permissions]));

export function sha256hex(s) {
  return createHash("sha256").update(s).digest("hex");
}

// Same format as src/crypto.rs: pbkdf2-sha256$<iterations>$<salt>$<hash>, base64 without padding.
export function hashPassword(password, iterations = PASSWORD_ITERATIONS) {
  const salt = randomBytes(16);
  const hash = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const b64 = (b) => b.toString("base64").replace(/=+$/, "");
  return `pbkdf2-sha256$${iterations}$${b64(salt)}$${b64(hash)}`;
}

const q = (v) => (v === null || v === undefined ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

/** Idempotent SQL statements that (re)create the fixtures. */
export function fixtureStatements({ iterations = PASSWORD_ITERATIONS } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const s = [];
  // Upserts, not REPLACE: a replaced parent row would be a delete under
  // foreign keys, and re-seeding must leave users' apps and tokens alone.
  for (const o of ORGS)
    s.push(
      `INSERT INTO orgs (id, external_id, slug, name, created_at) VALUES (${q(o.id)}, ${q(o.external_id)}, ${q(o.slug)}, ${q(o.name)}, ${now}) ON CONFLICT (id) DO UPDATE SET external_id = excluded.external_id, slug = excluded.slug, name = excluded.name`,
    );
  for (const u of USERS)
    s.push(
      `INSERT INTO users (id, external_id, email, name, password_hash, created_at) VALUES (${q(u.id)}, ${q(u.external_id)}, ${q(u.email)}, ${q(u.name)}, ${q(hashPassword(u.password, iterations))}, ${now}) ON CONFLICT (id) DO UPDATE SET external_id = excluded.external_id, email = excluded.email, name = excluded.name, password_hash = excluded.password_hash`,
    );
  for (const r of PLATFORM.roles)
    s.push(
      `INSERT INTO roles (name, description, created_at) VALUES (${q(r.name)}, ${q(r.description ?? "")}, ${now}) ON CONFLICT (name) DO UPDATE SET description = excluded.description`,
    );
  for (const [org, user, role] of MEMBERSHIPS)
    s.push(`INSERT OR REPLACE INTO memberships (org_id, user_id, role) VALUES (${q(org)}, ${q(user)}, ${q(role)})`);
  for (const [name, desc] of SCOPES) s.push(`INSERT OR REPLACE INTO scopes (name, description) VALUES (${q(name)}, ${q(desc)})`);
  for (const [role, perms] of Object.entries(ROLE_PERMISSIONS))
    for (const p of perms) s.push(`INSERT OR REPLACE INTO role_permissions (role, permission) VALUES (${q(role)}, ${q(p)})`);
  for (const k of PLATFORM.api_keys)
    s.push(
      `INSERT OR REPLACE INTO api_keys (hash, org_id, name, role, created_at) VALUES (${q(sha256hex(k.secret))}, ${q(orgId(k.org))}, ${q(k.name)}, ${q(k.role)}, ${now})`,
    );
  return s;
}
