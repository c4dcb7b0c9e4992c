// `make profile`: where our worker's CPU goes under load. Starts the worker
// (an unstripped build, so wasm functions keep their names) with workerd's V8
// inspector, samples CPU while the load generator runs one case, and prints
// self time per function. Run `make bench` for the numbers, this for the why.
// Cases: metadata, bearer, bearer-cache, bearer-jwt, revoke.
import { WebSocket } from "undici";
import { startServer, Browser, registerApp, tokensFor, basic, form, FORM, testSigningKeys } from "../tests/http/support.mjs";
import { client, measure } from "./load.mjs";

const CASE = process.argv[2] ?? "metadata";
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 3);
const PORT = 9230;

// `bearer-jwt`: JWT access tokens checked offline (`BEARER_MODE=jwt`), with a
// key made for this run only.
const JWT = {
  ACCESS_TOKEN_FORMAT: "jwt",
  BEARER_MODE: "jwt",
  JWT_SIGNING_KEYS: testSigningKeys("profile"),
};
const vars = { BEARER_CACHE_TTL_SECONDS: CASE === "bearer-cache" ? "30" : "0", ...(CASE === "bearer-jwt" ? JWT : {}) };
const server = await startServer(vars, { inspectorPort: PORT });
const http = client(server.base, 8);
let op;
if (CASE === "metadata") {
  op = async () => void (await http.call("GET", "/.well-known/oauth-authorization-server"));
} else if (CASE === "revoke") {
  // Revoking tokens the client does not hold runs the same statements.
  const app = await registerApp(server, { scopes: ["profile:read"] });
  const headers = { ...FORM, authorization: basic(app.client_id, app.client_secret) };
  let n = 0;
  op = async () => void (await http.call("POST", "/oauth/revoke", { headers, body: form({ token: `at_unknown${n++}` }) }));
} else {
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  const app = await registerApp(server, { scopes: ["profile:read"] });
  const { access_token } = await tokensFor(server, alice, app, { scope: "profile:read" });
  op = async () => void (await http.call("GET", "/api/v1/me", { headers: { authorization: `Bearer ${access_token}` } }));
}

const targets = await (await fetch(`http://127.0.0.1:${PORT}/json/list`)).json();
const target = targets.find((t) => t.title?.includes("oauth") || t.url?.includes("oauth")) ?? targets[0];
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r, e) => ((ws.onopen = r), (ws.onerror = e)));
let id = 0;
const pending = new Map();
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
};
const send = (method, params = {}) =>
  new Promise((resolve) => {
    const i = ++id;
    pending.set(i, resolve);
    ws.send(JSON.stringify({ id: i, method, params }));
  });

server.log.paused = true;
await measure({ durationMs: 1000, concurrency: 8, op }); // warm up (JIT tiers)
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 100 });
await send("Profiler.start");
const result = await measure({ durationMs: SECONDS * 1000, concurrency: 8, op });
const { result: { profile } } = await send("Profiler.stop");
ws.close();

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  const dt = profile.timeDeltas[i] ?? 0;
  const f = node.callFrame;
  const name = `${f.functionName || "(anonymous)"}${f.url ? ` ${f.url.split("/").pop()}` : ""}`;
  self.set(name, (self.get(name) ?? 0) + dt);
  total += dt;
}
const idle = self.get("(idle)") ?? 0;
console.log(`case ${CASE}: ${result.rate.toFixed(0)} req/s while profiling; ${(total / 1000).toFixed(0)} ms sampled, ${((100 * (total - idle)) / total).toFixed(0)} % busy`);
console.log("self time, share of busy time:");
for (const [name, t] of [...self].filter(([n]) => n !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, 30)) {
  console.log(`${((100 * t) / (total - idle)).toFixed(1).padStart(5)} %  ${name.slice(0, 110)}`);
}
await http.close();
await server.close();
