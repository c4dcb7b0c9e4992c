// `make provision FILE=platform.json`: apply a whole platform (scopes, roles,
// orgs, users, memberships, org API keys, orgs' trusted ID-JAG issuers) described in one JSON document,
// through the provisioning API, so it works the same against `make dev` and a
// deployed server. Idempotent: a second run reports "no changes".
//
//   node scripts/provision.mjs [--url http://127.0.0.1:8787] [--dry-run] [--wait] FILE
//
// The admin token comes from $PLATFORM_ADMIN_TOKEN, else from .dev.vars.
// --dry-run asks the server to validate each change and prints the diff;
// nothing is written. --wait first waits (up to 180 s) for /ready.
import { readFileSync, existsSync } from "node:fs";

const KINDS = ["scopes", "roles", "orgs", "users", "memberships", "api_keys", "trusted_issuers"];

/** The document's items as API calls, in dependency order. */
export function plan(doc) {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("the document must be a JSON object");
  const unknown = Object.keys(doc).filter((k) => !KINDS.includes(k));
  if (unknown.length) throw new Error(`unknown section(s): ${unknown.join(", ")} (expected ${KINDS.join(", ")})`);
  const e = encodeURIComponent;
  const take = (item, keys, what) => {
    if (!item || typeof item !== "object" || Array.isArray(item)) throw new Error(`each of ${what} must be an object`);
    const body = { ...item };
    const out = keys.map((k) => {
      if (typeof item[k] !== "string" || !item[k]) throw new Error(`an item of ${what} lacks "${k}"`);
      delete body[k];
      return item[k];
    });
    return [out, body];
  };
  const calls = [];
  const list = (k) => {
    const v = doc[k] ?? [];
    if (!Array.isArray(v)) throw new Error(`"${k}" must be a list`);
    return v;
  };
  for (const s of list("scopes")) {
    const [[name], body] = take(s, ["name"], "scopes");
    calls.push({ kind: "scope", key: name, path: `/admin/v1/scopes/${e(name)}`, body, needs: [] });
  }
  for (const r of list("roles")) {
    const [[name], body] = take(r, ["name"], "roles");
    const needs = (Array.isArray(body.permissions) ? body.permissions : []).map((p) => `scope:${p}`);
    calls.push({ kind: "role", key: name, path: `/admin/v1/roles/${e(name)}`, body, needs });
  }
  for (const o of list("orgs")) {
    const [[id], body] = take(o, ["external_id"], "orgs");
    calls.push({ kind: "org", key: id, path: `/admin/v1/orgs/${e(id)}`, body, needs: [] });
  }
  for (const u of list("users")) {
    const [[id], body] = take(u, ["external_id"], "users");
    calls.push({ kind: "user", key: id, path: `/admin/v1/users/${e(id)}`, body, needs: [] });
  }
  for (const m of list("memberships")) {
    const [[org, user], body] = take(m, ["org", "user"], "memberships");
    const needs = [`org:${org}`, `user:${user}`, `role:${body.role}`];
    calls.push({ kind: "membership", key: `${org}/${user}`, path: `/admin/v1/orgs/${e(org)}/memberships/${e(user)}`, body, needs });
  }
  for (const k of list("api_keys")) {
    const [[org, name], body] = take(k, ["org", "name"], "api_keys");
    const needs = [`org:${org}`, `role:${body.role}`];
    calls.push({ kind: "api key", key: `${org}/${name}`, path: `/admin/v1/orgs/${e(org)}/api-keys/${e(name)}`, body, needs });
  }
  for (const t of list("trusted_issuers")) {
    const [[org, name], body] = take(t, ["org", "name"], "trusted_issuers");
    const needs = [`org:${org}`, ...(body.default_role ? [`role:${body.default_role}`] : [])];
    calls.push({ kind: "trusted issuer", key: `${org}/${name}`, path: `/admin/v1/orgs/${e(org)}/trusted-issuers/${e(name)}`, body, needs });
  }
  return calls;
}

/** Apply (or, dry, check) the document. Returns counts; throws on the first refusal. */
export async function provision({ url, token, doc, dryRun = false, log = console.log }) {
  const base = url.replace(/\/$/, "");
  const call = async (method, path, body) => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = { error_description: text };
    }
    return { status: res.status, json };
  };
  const counts = { created: 0, updated: 0, unchanged: 0 };
  // Dry run: what would be created, so its dependents are not asked about
  // (the server would not find their parent yet).
  const pending = new Set();
  const parents = new Set(["scope", "role", "org", "user"]);
  for (const c of plan(doc)) {
    const waiting = c.needs.filter((n) => pending.has(n));
    if (dryRun && waiting.length) {
      const exists = (await call("GET", c.path)).status === 200;
      log(`${exists ? "~" : "+"} ${c.kind} ${c.key}  (after ${waiting.join(", ")} is created; checked when applied)`);
      counts[exists ? "updated" : "created"]++;
      if (!exists && parents.has(c.kind)) pending.add(`${c.kind}:${c.key}`);
      continue;
    }
    const { status, json } = await call("PUT", c.path + (dryRun ? "?dry_run=true" : ""), c.body);
    if (status >= 300) {
      throw new Error(`${c.kind} ${c.key}: ${status} ${json.error ?? ""}: ${json.error_description ?? ""}`);
    }
    if (json.created) {
      counts.created++;
      if (dryRun && parents.has(c.kind)) pending.add(`${c.kind}:${c.key}`);
      log(`+ ${c.kind} ${c.key}${json.secret ? `  secret: ${json.secret}  (shown once; store it now)` : ""}`);
    } else if (json.changed) {
      counts.updated++;
      const what = Object.entries(json.changes ?? {}).map(([f, d]) => `${f}: ${JSON.stringify(d.from)} -> ${JSON.stringify(d.to)}`);
      log(`~ ${c.kind} ${c.key}  ${what.join("; ")}`);
    } else {
      counts.unchanged++;
    }
  }
  const changed = counts.created + counts.updated;
  if (dryRun) log(changed ? `dry run: would create ${counts.created}, update ${counts.updated}; nothing was changed` : "dry run: no changes");
  else log(changed ? `${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged` : "no changes");
  return counts;
}

/** $PLATFORM_ADMIN_TOKEN, else the one in .dev.vars. */
export function adminToken(devVars = ".dev.vars") {
  if (process.env.PLATFORM_ADMIN_TOKEN) return process.env.PLATFORM_ADMIN_TOKEN;
  if (existsSync(devVars)) {
    for (const line of readFileSync(devVars, "utf8").split("\n")) {
      const m = line.match(/^\s*PLATFORM_ADMIN_TOKEN\s*=\s*"?([^"\s]*)"?\s*$/);
      if (m) return m[1];
    }
  }
  return undefined;
}

async function waitReady(url, seconds = 180) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    try {
      if ((await fetch(url.replace(/\/$/, "") + "/ready")).status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url}/ready did not answer 200 within ${seconds} s`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  let url = "http://127.0.0.1:8787";
  let dryRun = false;
  let wait = false;
  let file;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--url") url = args[++i];
    else if (args[i] === "--dry-run") dryRun = true;
    else if (args[i] === "--wait") wait = true;
    else if (!args[i].startsWith("--") && !file) file = args[i];
    else {
      console.error(`unknown option ${args[i]}`);
      process.exit(2);
    }
  }
  if (!file) {
    console.error("usage: node scripts/provision.mjs [--url URL] [--dry-run] [--wait] FILE");
    process.exit(2);
  }
  const token = adminToken();
  if (!token) {
    console.error("no admin token: set PLATFORM_ADMIN_TOKEN (or run `make dev`, which writes .dev.vars)");
    process.exit(2);
  }
  try {
    const doc = JSON.parse(readFileSync(file, "utf8"));
    if (wait) await waitReady(url);
    await provision({ url, token, doc, dryRun });
  } catch (e) {
    console.error(`provision: ${e.message}`);
    process.exit(1);
  }
}
