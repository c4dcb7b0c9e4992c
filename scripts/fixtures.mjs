// Local development fixtures (SPEC.md): orgs, users, roles, the scope
// catalogue and an Acme admin API key. Used by `make dev` (through
// scripts/seed.mjs) and by the workerd tests. Never run against a remote DB.
import { createHash, pbkdf2Sync, randomBytes } from "node:crypto";

// Fixed so the README can give it; it only ever exists in local databases.
export const DEV_API_KEY = "key_acmeDevAdmin_LOCAL_ONLY_0123456789abcdefghij";
export const PASSWORD_ITERATIONS = 100_000;

export const USERS = [
  { id: "usr_alice", email: "alice@acme.test", name: "Alice", password: "alice-password" },
  { id: "usr_carol", email: "carol@acme.test", name: "Carol", password: "carol-password" },
  { id: "usr_bob", email: "bob@globex.test", name: "Bob", password: "bob-password" },
];
export const ORGS = [
  { id: "org_acme", slug: "acme", name: "Acme" },
  { id: "org_globex", slug: "globex", name: "Globex" },
];
export const MEMBERSHIPS = [
  ["org_acme", "usr_alice", "owner"],
  ["org_acme", "usr_carol", "member"],
  ["org_globex", "usr_bob", "admin"],
];
export const SCOPES = [
  ["profile:read", "Read your profile and organization membership"],
  ["posts:read", "Read posts in the organization"],
  ["posts:write", "Create and edit posts in the organization"],
  ["webhooks:manage", "Subscribe the app to webhook events in the organization"],
];
const ALL = ["profile:read", "posts:read", "posts:write", "webhooks:manage", "oauth_app.manage", "org.admin"];
export const ROLE_PERMISSIONS = {
  owner: ALL,
  admin: ALL,
  member: ["profile:read", "posts:read"],
};

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
      `INSERT INTO orgs (id, slug, name, created_at) VALUES (${q(o.id)}, ${q(o.slug)}, ${q(o.name)}, ${now}) ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name`,
    );
  for (const u of USERS)
    s.push(
      `INSERT INTO users (id, email, name, password_hash, created_at) VALUES (${q(u.id)}, ${q(u.email)}, ${q(u.name)}, ${q(hashPassword(u.password, iterations))}, ${now}) ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, password_hash = excluded.password_hash`,
    );
  for (const [org, user, role] of MEMBERSHIPS)
    s.push(`INSERT OR REPLACE INTO memberships (org_id, user_id, role) VALUES (${q(org)}, ${q(user)}, ${q(role)})`);
  for (const [role, perms] of Object.entries(ROLE_PERMISSIONS))
    for (const p of perms) s.push(`INSERT OR REPLACE INTO role_permissions (role, permission) VALUES (${q(role)}, ${q(p)})`);
  for (const [name, desc] of SCOPES) s.push(`INSERT OR REPLACE INTO scopes (name, description) VALUES (${q(name)}, ${q(desc)})`);
  s.push(
    `INSERT OR REPLACE INTO api_keys (hash, org_id, name, role, created_at) VALUES (${q(sha256hex(DEV_API_KEY))}, 'org_acme', 'acme-dev-admin', 'admin', ${now})`,
  );
  return s;
}
