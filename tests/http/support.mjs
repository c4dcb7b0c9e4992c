// Shared support for the workerd suites: one Miniflare per test file running
// build/index.js (the release worker) against a fresh local D1 with the real
// migrations and the SPEC fixtures, plus a cookie-jar "browser" and OAuth helpers.
import { Miniflare, Log, LogLevel } from "miniflare";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { fixtureStatements, DEV_API_KEY } from "../../scripts/fixtures.mjs";
import { CookieJar } from "./cookie_jar.mjs";

const root = new URL("../../", import.meta.url);
export { DEV_API_KEY, CookieJar };

/** The [vars] table of wrangler.toml. */
export function wranglerVars() {
  const text = readFileSync(new URL("wrangler.toml", root), "utf8");
  const vars = {};
  let inVars = false;
  for (const line of text.split("\n")) {
    const section = line.match(/^\s*\[([^\]]+)\]/);
    if (section) inVars = section[1].trim() === "vars";
    const m = inVars && line.match(/^\s*([A-Z0-9_]+)\s*=\s*"([^"]*)"/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

/** `compatibility_flags` of wrangler.toml, so the tests run the deployed flags. */
export function wranglerFlags() {
  const text = readFileSync(new URL("wrangler.toml", root), "utf8");
  const m = text.match(/^compatibility_flags\s*=\s*\[([^\]]*)\]/m);
  return m ? [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]) : [];
}

/** Captures miniflare's own messages and the worker's console output. */
class CaptureLog extends Log {
  constructor() {
    super(LogLevel.WARN);
    this.lines = [];
  }
  capture(stream) {
    let buf = "";
    stream.on("data", (chunk) => {
      // The benchmark turns capture off during timed runs.
      if (this.paused) return;
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop();
      this.lines.push(...parts);
    });
  }
}

/**
 * Start the worker with a fresh local D1. Tests reach the database through a
 * second, test-only worker bound to the same D1 and called over plain async
 * HTTP: miniflare's synchronous D1 proxy (`getD1Database`) has been seen to
 * trip an internal assertion under load. A failed start is disposed and
 * retried rather than left running (a live workerd would keep the test
 * process from exiting).
 */
/** undici's codes for a connection the other side closed before answering. */
const SOCKET_CLOSED = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

export async function startServer(vars = {}, options = {}) {
  // Every server has a signing key set (an RSA key for ID tokens, an EC key
  // for JWT access tokens), as `make dev` writes one to .dev.vars.
  if (!vars.JWT_SIGNING_KEYS) vars = { ...vars, JWT_SIGNING_KEYS: testSigningKeys() };
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startServerOnce(vars, options);
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
  throw lastError;
}

/**
 * A JWK set (JWT_SIGNING_KEYS) of a fresh EC P-256 private key with `kid`
 * and this process's RSA key (`testRsaKey`), which signs RS256 ID tokens.
 */
export function testSigningKeys(kid = "test-key") {
  const jwk = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  return JSON.stringify({ keys: [{ ...jwk, kid }, testRsaKey()] });
}

let rsaKey;
/** A 2048-bit RSA private JWK (kid `test-rsa`), made once per test process: generating one is slow. */
export function testRsaKey() {
  rsaKey ??= { ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), kid: "test-rsa" };
  return rsaKey;
}

// The test-only SQL endpoint; it exists only inside the test Miniflare.
const ADMIN_WORKER = `
export default {
  async fetch(req, env) {
    const { sql, params = [], mode = "run", kv } = await req.json();
    try {
      if (kv === "list") return Response.json({ ok: true, out: (await env.BEARER_KV.list()).keys.map((k) => k.name) });
      if (kv === "get") return Response.json({ ok: true, out: await env.BEARER_KV.get(params[0]) });
      if (kv === "delete") return Response.json({ ok: true, out: await env.BEARER_KV.delete(params[0]) });
      // Many statements in one request and one transaction (migrations, fixtures).
      if (mode === "batch") return Response.json({ ok: true, out: (await env.DB.batch(sql.map((q) => env.DB.prepare(q)))).length });
      const stmt = env.DB.prepare(sql).bind(...params);
      const out = mode === "first" ? await stmt.first() : mode === "all" ? await stmt.all() : await stmt.run();
      return Response.json({ ok: true, out });
    } catch (e) {
      return Response.json({ ok: false, error: String(e) });
    }
  },
};`;

/** A D1-shaped client (prepare/bind/run/all/first) over the admin worker. */
function sqlClient(mf) {
  const call = async (sql, params, mode, kv) => {
    const res = await mf.dispatchFetch("http://sql.test/", { method: "POST", body: JSON.stringify({ sql, params, mode, kv }) });
    const body = await res.json();
    if (!body.ok) throw new Error(`${body.error} in: ${Array.isArray(sql) ? sql.join(";\n") : sql}`);
    return body.out;
  };
  const statement = (sql, params = []) => ({
    bind: (...p) => statement(sql, p),
    run: () => call(sql, params, "run"),
    all: () => call(sql, params, "all"),
    first: () => call(sql, params, "first"),
  });
  return {
    prepare: (sql) => statement(sql),
    /** Statements without parameters, in one round trip and one transaction. */
    batch: (sqls) => call(sqls, [], "batch"),
    /** The bearer KV namespace (edge mode): its keys, or one value. */
    kvKeys: () => call(undefined, [], undefined, "list"),
    kvGet: (key) => call(undefined, [key], undefined, "get"),
    kvDelete: (key) => call(undefined, [key], undefined, "delete"),
  };
}

/** A migration file's statements; a trigger body's `;` does not end one. */
export function sqlStatements(text) {
  const out = [];
  let cur = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/--.*$/, "").trimEnd();
    if (!line.trim()) continue;
    cur.push(line);
    const stmt = cur.join("\n").trim();
    const inTrigger = /^CREATE\s+TRIGGER/i.test(stmt);
    if (inTrigger ? /\bEND;$/i.test(stmt) : stmt.endsWith(";")) {
      out.push(stmt.replace(/;$/, ""));
      cur = [];
    }
  }
  return out;
}

/**
 * The two workers as deployed (docs/architecture.md "Two workers"): the
 * public one first (the entry), its BACK_OFFICE service binding to the back
 * office, both on the same D1 and KV with the same vars. `worker`: extra
 * Miniflare options of both (e.g. an `outboundService`).
 */
export function workerPair({ vars = {}, worker = {}, d1 = "oauth-test-db", kv = "bearer-kv" } = {}) {
  const common = {
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-20",
    compatibilityFlags: wranglerFlags(),
    d1Databases: { DB: d1 },
    kvNamespaces: { BEARER_KV: kv },
    bindings: { ...wranglerVars(), ...vars },
    ...worker,
  };
  return [
    {
      name: "oauth",
      scriptPath: new URL("build/index.js", root).pathname,
      serviceBindings: { BACK_OFFICE: "back-office" },
      ...common,
    },
    { name: "back-office", scriptPath: new URL("build/back-office/index.js", root).pathname, ...common },
  ];
}

async function startServerOnce(vars, allOptions) {
  // `fixtures: false`: migrations only, as in production (the provisioning
  // suite puts fixtures/platform.json in through the API). `worker`: extra
  // Miniflare options of the OAuth worker itself (e.g. an `outboundService`
  // standing in for the internet); the rest are Miniflare's shared options.
  const { fixtures = true, worker = {}, ...options } = allOptions;
  const log = new CaptureLog();
  const mf = new Miniflare({
    workers: [
      ...workerPair({ vars, worker }),
      {
        name: "sql",
        modules: true,
        script: ADMIN_WORKER,
        compatibilityDate: "2026-04-20",
        d1Databases: { DB: "oauth-test-db" },
        kvNamespaces: { BEARER_KV: "bearer-kv" },
        routes: ["sql.test/*"],
      },
    ],
    host: "127.0.0.1",
    port: 0,
    // /cdn-cgi/handler/scheduled runs the cron handler.
    unsafeTriggerHandlers: true,
    ...options,
    log,
    // The worker's console.log (one JSON line per request) lands here, so
    // tests can read the logs and test output stays clean.
    handleRuntimeStdio(stdout, stderr) {
      log.capture(stdout);
      log.capture(stderr);
    },
  });
  try {
    const url = await mf.ready;
    const db = sqlClient(mf);
    const dir = new URL("migrations/", root);
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
      // One request per file (a request per statement was most of a start).
      await db.batch(sqlStatements(readFileSync(new URL(f, dir), "utf8")));
    }
    if (fixtures) await db.batch(fixtureStatements({ iterations: 1000 }));
    const base = url.href.replace(/\/$/, "");
    const serverFetch = async (path, init = {}) => {
      try {
        return await fetch(base + path, { redirect: "manual", ...init });
      } catch (e) {
        // A keep-alive socket that closed while idle, just as the next request
        // went out on it (seen once under heavy load in `make test`): the server
        // never read that request. Once more on a fresh socket, said aloud; a
        // server that is down fails again, with the cause in the message.
        if (!SOCKET_CLOSED.has(e?.cause?.code) || (init.body != null && typeof init.body !== "string" && !(init.body instanceof URLSearchParams))) {
          throw new Error(`fetch ${path} failed: ${e?.cause?.code ?? ""} ${e?.cause?.message ?? e.message}`, { cause: e });
        }
        console.error(`support: ${path}: ${e.cause.code} (${e.cause.message}) on a reused socket; retrying once`);
        try {
          return await fetch(base + path, { redirect: "manual", ...init });
        } catch (again) {
          throw new Error(`fetch ${path} failed twice: ${again?.cause?.code ?? ""} ${again?.cause?.message ?? again.message}`, { cause: again });
        }
      }
    };
    return {
      mf,
      db,
      base,
      log,
      fetch: serverFetch,
      /** Run the cron handler once, as the Cron Trigger would: the back office's. */
      async scheduled(cron = "* * * * *") {
        const backOffice = await mf.getWorker("back-office");
        const res = await backOffice.scheduled({ cron });
        if (res.outcome !== "ok") throw new Error(`scheduled: ${JSON.stringify(res)}`);
      },
      async close() {
        await mf.dispose();
      },
    };
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
}

export const b64url = (buf) => Buffer.from(buf).toString("base64url");

export function pkcePair() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  return { verifier, challenge };
}

export const basic = (id, secret) =>
  "Basic " + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64");

export const form = (obj) => new URLSearchParams(obj).toString();
export const FORM = { "content-type": "application/x-www-form-urlencoded" };

/**
 * A browser: keeps cookies (a [`CookieJar`]), never follows redirects by
 * itself. `init.crossSite`: the request comes from another site's page (a
 * link, a redirect, a form), so SameSite applies.
 */
export class Browser {
  constructor(server) {
    this.server = server;
    this.cookies = new CookieJar();
  }
  async fetch(path, init = {}) {
    const { crossSite = false, ...rest } = init;
    const headers = new Headers(rest.headers ?? {});
    const requestPath = new URL(path, "http://browser.test").pathname;
    const cookie = this.cookies.header(requestPath, { crossSite, method: (rest.method ?? "GET").toUpperCase() });
    if (cookie) headers.set("cookie", cookie);
    const res = await this.server.fetch(path, { ...rest, headers });
    for (const c of res.headers.getSetCookie()) this.cookies.store(c, requestPath);
    return res;
  }
  /**
   * A form POST. A sign-in POST first loads the sign-in form, as a browser
   * would, for its pre-session CSRF token and cookie (unless `csrf` is given).
   */
  async post(path, fields, extra = {}) {
    if (path === "/signin" && !("csrf" in fields)) {
      const page = await this.fetch("/signin", { headers: extra.headers ?? {} });
      const csrf = hidden(await page.text(), "csrf");
      if (csrf !== undefined) fields = { ...fields, csrf };
    }
    return this.fetch(path, { method: "POST", headers: { ...FORM, ...(extra.headers ?? {}) }, body: form(fields) });
  }
  async signIn(email, password) {
    const res = await this.post("/signin", { email, password, return_to: "/" });
    if (res.status !== 303) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
    return res;
  }
  /** The session's CSRF token, read from the signed-in home page. */
  async csrf() {
    return hidden(await (await this.fetch("/")).text(), "csrf");
  }
}

/** Undo HTML escaping of an attribute value. */
export const unescape = (s) =>
  s.replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** Value of a hidden input in a page. */
export function hidden(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return m ? unescape(m[1]) : undefined;
}

/** Every hidden input of the first form. */
export function hiddenFields(html) {
  const out = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    out[m[1]] = unescape(m[2]);
  }
  return out;
}

export async function registerApp(server, body = {}) {
  const res = await server.fetch("/api/v1/apps", {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({
      name: "Test App",
      redirect_uris: ["http://localhost:3000/callback"],
      scopes: ["profile:read", "posts:read", "posts:write"],
      ...body,
    }),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  return res.json();
}

export function api(server, method, path, body, key = DEV_API_KEY) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  return server.fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/**
 * An authorize query, with an S256 challenge unless `extra` names
 * `code_challenge` (PKCE is required of every client by default); a
 * parameter given as `undefined` is left out.
 */
export function authorizeQuery(app, extra = {}) {
  const all = {
    ...("code_challenge" in extra ? {} : { code_challenge: pkcePair().challenge, code_challenge_method: "S256" }),
    client_id: app.client_id,
    redirect_uri: app.redirect_uris[0],
    response_type: "code",
    scope: "profile:read posts:read",
    state: "st-" + b64url(randomBytes(6)),
    ...extra,
  };
  return new URLSearchParams(Object.entries(all).filter(([, v]) => v !== undefined)).toString();
}

// PKCE is required of every client by default (PKCE_REQUIRED=all): `consent`
// adds a challenge unless the query names `code_challenge` (even as
// `undefined`, for none), and `exchange` sends the matching verifier unless
// its options name `verifier`.
const autoVerifiers = new Map();

/**
 * GET authorize → consent page → POST approve; returns the redirect Location
 * as a URL. `choose` sets org/actor/decision.
 */
export async function consent(browser, app, query = {}, choose = {}) {
  let verifier;
  if (!("code_challenge" in query)) {
    const pair = pkcePair();
    verifier = pair.verifier;
    query = { ...query, code_challenge: pair.challenge, code_challenge_method: "S256" };
  }
  const page = await browser.fetch(`/oauth/authorize?${authorizeQuery(app, query)}`);
  if (page.status !== 200) throw new Error(`consent page: ${page.status} ${await page.text()}`);
  const fields = hiddenFields(await page.text());
  const res = await browser.post("/oauth/authorize", { ...fields, org: "org_acme", decision: "approve", ...choose });
  const location = res.headers.get("location") ? new URL(res.headers.get("location")) : null;
  const code = location?.searchParams.get("code");
  if (code && verifier) autoVerifiers.set(code, verifier);
  return { res, location, fields, verifier };
}

export async function exchange(server, app, code, opts = {}) {
  const { redirect_uri } = opts;
  const verifier = "verifier" in opts ? opts.verifier : autoVerifiers.get(code);
  const body = { grant_type: "authorization_code", code, redirect_uri: redirect_uri ?? app.redirect_uris[0] };
  if (verifier) body.code_verifier = verifier;
  const headers = { ...FORM };
  if (app.client_secret) headers.authorization = basic(app.client_id, app.client_secret);
  else body.client_id = app.client_id;
  return server.fetch("/oauth/token", { method: "POST", headers, body: form(body) });
}

/** A form POST to an OAuth endpoint as `app`: Basic with its secret, else client_id in the body. */
export function clientRequest(server, path, app, fields) {
  const headers = { ...FORM };
  const body = { ...fields };
  if (app.client_secret) headers.authorization = basic(app.client_id, app.client_secret);
  else body.client_id = app.client_id;
  return server.fetch(path, { method: "POST", headers, body: form(body) });
}

export const tokenRequest = (server, app, fields) => clientRequest(server, "/oauth/token", app, fields);

/** Signed-in alice approves `app` and exchanges the code: the token response. */
export async function tokensFor(server, browser, app, query = {}, choose = {}) {
  const { verifier, challenge } = pkcePair();
  const { location } = await consent(browser, app, { code_challenge: challenge, code_challenge_method: "S256", ...query }, choose);
  const res = await exchange(server, app, location.searchParams.get("code"), { verifier });
  if (res.status !== 200) throw new Error(`exchange: ${res.status} ${await res.text()}`);
  return res.json();
}

export function bearer(server, path, token, init = {}) {
  return server.fetch(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } });
}

/** A free loopback port (the issuer of a server that must name its own origin). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The `n` column of a one-row query (`SELECT count(*) AS n ...`). */
export const count = async (server, sql, ...params) => (await server.db.prepare(sql).bind(...params).first()).n;

/**
 * The last JSON log line the worker that served `route` wrote for it: for a
 * back-office route, the back office's own line, not the public worker's line
 * of the hand-over (`"forwarded"`).
 */
export const lastLine = (server, route) =>
  server.log.lines
    .map((l) => { try { return JSON.parse(l); } catch { return null; } })
    .filter((p) => p?.route === route && p.forwarded === undefined)
    .at(-1);

/** Deferred work (audit, webhooks) runs after the response: poll for it. */
export async function eventually(fn, { timeout = 3000, every = 50 } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  if (last) throw last;
  return fn();
}

/**
 * A fresh account with carol's password ("carol-password") and no membership,
 * so tests do not share failure counters.
 */
let freshUsers = 0;
export async function newUser(server, prefix = "user") {
  const name = `${prefix}${++freshUsers}`;
  await server.db
    .prepare(
      "INSERT INTO users (id, email, name, password_hash, created_at) SELECT 'u_' || ?1, ?1 || '@acme.test', ?1, password_hash, 0 FROM users WHERE email = 'carol@acme.test'",
    )
    .bind(name)
    .run();
  return `${name}@acme.test`;
}
