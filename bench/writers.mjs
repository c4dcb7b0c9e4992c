// `make bench-writers` (issue 15 §3): every request that writes a row without
// anyone having authenticated, hammered from one source for a bounded time,
// against the release worker in workerd with a fresh local D1 (loopback only).
// For each writer it prints the rows written per request in every table it
// touches, then sends a tail of further requests and fails if any table still
// grows: once the source's budget is spent, rows must stop growing.
//
// Each writer runs for BENCH_WRITER_SECONDS (default 5) and until its budget
// answered 429 at least once (a slow machine must not end the run before the
// budget is spent), never past BENCH_WRITER_MAX (default 400) requests;
// BENCH_WRITER_TAIL (default 25) is the tail that must write nothing.
import assert from "node:assert/strict";
import { startServer, registerApp, basic, form, FORM, Browser } from "../tests/http/support.mjs";
import { startDocumentServer, clientDocument } from "../tests/http/cimd_server.mjs";

const SECONDS = Number(process.env.BENCH_WRITER_SECONDS ?? 5);
const MAX = Number(process.env.BENCH_WRITER_MAX ?? 400);
const TAIL = Number(process.env.BENCH_WRITER_TAIL ?? 25);
const ADMIN = "adm_bench_writers_0123456789abcdefghijklmnopqrstuvwxyz";
const SOURCE = "198.51.100.77"; // every request: one sender
const TABLES = ["login_challenges", "rate_limits", "apps", "client_registrations", "audit_events", "sessions", "signin_devices", "codes", "tokens"];

const docs = await startDocumentServer();
// Loopback only: the worker's outbound fetches reach the document server, and
// any other host answers 404 here without leaving the machine.
const outboundService = (req) =>
  new URL(req.url).origin === docs.origin ? fetch(req.url) : new Response("not found", { status: 404 });
const delegated = await startServer(
  {
    SIGNIN_MODE: "delegated",
    LOGIN_URL: "http://127.0.0.1:9/login",
    PLATFORM_ADMIN_TOKEN: ADMIN,
    DCR: "open",
    CIMD: "on",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    CIMD_FETCH_TIMEOUT_SECONDS: "1",
  },
  { worker: { outboundService } },
);
const password = await startServer({});
const failures = [];

async function rows(server) {
  const out = {};
  for (const t of TABLES) out[t] = (await server.db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).first()).n;
  return out;
}
const diff = (a, b) => Object.fromEntries(TABLES.map((t) => [t, b[t] - a[t]]));

/** Run `request(i)` until the time bound has passed and the budget refused once (or the count bound), then the tail; report and check. */
async function writer(name, server, request) {
  const start = await rows(server);
  const statuses = new Map();
  const until = Date.now() + SECONDS * 1000;
  let i = 0;
  for (; i < MAX && (Date.now() < until || !statuses.has(429)); i++) {
    const res = await request(i);
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  }
  const mid = await rows(server);
  for (let j = 0; j < TAIL; j++) await (await request(i + j)).arrayBuffer();
  const end = await rows(server);
  const grown = diff(start, mid);
  const tail = diff(mid, end);
  const perRequest = Object.entries(grown)
    .filter(([, n]) => n)
    .map(([t, n]) => `${t} ${n} (${(n / i).toFixed(3)}/req)`)
    .join(", ");
  const codes = [...statuses].map(([s, n]) => `${s}×${n}`).join(" ");
  console.log(`${name.padEnd(26)} ${String(i).padStart(4)} requests [${codes}]  rows: ${perRequest || "none"}`);
  const still = Object.entries(tail).filter(([, n]) => n > 0);
  if (still.length) {
    const msg = `${name}: after the budget, ${TAIL} more requests still wrote ${still.map(([t, n]) => `${n} ${t}`).join(", ")}`;
    console.log(`  FAIL ${msg}`);
    failures.push(msg);
  }
}

const at = (server, path, init = {}) =>
  server.fetch(path, { ...init, headers: { "cf-connecting-ip": SOURCE, ...(init.headers ?? {}) } });

try {
  const app = await registerApp(delegated, { redirect_uris: ["http://localhost:3000/callback"] });
  const authorize = (clientId, extra = {}) =>
    "/oauth/authorize?" +
    new URLSearchParams({
      client_id: clientId, redirect_uri: "http://localhost:3000/callback", response_type: "code",
      scope: "profile:read", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256", state: "s", ...extra,
    });
  console.log(`bench-writers: ${SECONDS}s / ${MAX} requests per writer from ${SOURCE}, then ${TAIL} that must write nothing`);

  // Delegated sign-in: a challenge per anonymous visit.
  await writer("signin (delegated)", delegated, (i) => at(delegated, `/signin?return_to=${encodeURIComponent(`/settings?i=${i}`)}`));
  await writer("authorize, no session", delegated, (i) => at(delegated, authorize(app.client_id, { state: `s${i}` }), { headers: { "cf-connecting-ip": "198.51.100.78" } }));
  // Dynamic registration (DCR=open).
  await writer("register (DCR open)", delegated, () =>
    at(delegated, "/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:8976/callback"], token_endpoint_auth_method: "none", client_name: "bench" }),
    }));
  // Metadata documents: a new document URL each time (a fetch and an upsert).
  await writer("authorize, new CIMD URL", delegated, (i) => {
    const url = docs.route(`/c/${i}`, { body: clientDocument(docs.url(`/c/${i}`)), headers: { "cache-control": "max-age=3600" } });
    return at(delegated, authorize(url), { headers: { "cf-connecting-ip": "198.51.100.79" } });
  });
  // A new document host each time (no document there): the per-host
  // counter's key is the sender's choice.
  await writer("authorize, new CIMD host", delegated, (i) =>
    at(delegated, authorize(`https://h${i}.bench.example/client.json`), { headers: { "cf-connecting-ip": "198.51.100.80" } }));
  // Failed credentials: the counters themselves.
  await writer("admin token, wrong", delegated, () => at(delegated, "/admin/v1/orgs", { headers: { authorization: "Bearer wrong-token" } }));
  const confidential = await registerApp(password, { redirect_uris: ["http://localhost:3000/callback"] });
  await writer("client secret, wrong", password, () =>
    at(password, "/oauth/token", {
      method: "POST",
      headers: { ...FORM, authorization: basic(confidential.client_id, "wrong-secret") },
      body: form({ grant_type: "client_credentials" }),
    }));
  // Password sign-in failures, a new email each time (the per-account counter's key).
  const guesser = new Browser(password);
  await writer("sign-in, wrong password", password, (i) =>
    guesser.post("/signin", { email: `nobody${i}@example.test`, password: "wrong", return_to: "/" }, { headers: { "cf-connecting-ip": SOURCE } }));
} finally {
  await delegated.close();
  await password.close();
  await docs.close();
}
assert.deepEqual(failures, [], "every anonymous writer stops writing once its budget is spent");
console.log("bench-writers: every anonymous writer stops writing once its sender's budget is spent");
