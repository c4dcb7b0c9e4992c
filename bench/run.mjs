// `make bench`: our worker against @cloudflare/workers-oauth-provider (the
// peer, bench/peer/), both in workerd on loopback, driven by the same load
// generator in the same run, runs alternating between servers so machine
// drift hits both alike; medians of several runs. `--smoke` runs every case
// once, very briefly, to keep this script from rotting (`make test`); its
// numbers mean nothing and nothing asserts them.
import { Miniflare } from "miniflare";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { Browser, registerApp, tokensFor, basic, form, FORM, testSigningKeys } from "../tests/http/support.mjs";
import { client, measure, median } from "./load.mjs";
import { render } from "./report.mjs";
import { chart } from "./chart.mjs";
import { cpuMeter, withWorkerdPid } from "./cpu.mjs";
import { PEER_OPTIONS, sizes, startup } from "./footprint.mjs";
import { startOurs } from "./pair.mjs";

const root = new URL("../", import.meta.url);
// As `make bench` sets it: no fetch of Cloudflare's `request.cf` sample at
// each start (offline it fails after a DNS lookup; the placeholder is used).
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
const SMOKE = process.argv.includes("--smoke");
const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = SMOKE ? 0.3 : Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = SMOKE ? 2 : Number(process.env.BENCH_CONCURRENCY ?? 8);
const ONLY = process.env.BENCH_CASES?.split(",");

const b64url = (b) => Buffer.from(b).toString("base64url");
// A signing key made for this run only, for the `jwt` bearer mode rows.
const JWT = {
  ACCESS_TOKEN_FORMAT: "jwt",
  BEARER_MODE: "jwt",
  JWT_SIGNING_KEYS: testSigningKeys("bench"),
};
const VERIFIER = b64url(randomBytes(32));
const CHALLENGE = b64url(createHash("sha256").update(VERIFIER).digest());
const CALLBACK = "http://127.0.0.1:9/callback";

function expect(res, status, what) {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}
const json = (res) => JSON.parse(res.text);

// ------------------------------------------------------- the OAuth flows

/**
 * The same client behaviour against either server: `paths` names its
 * authorize, token and revocation endpoints, `scope` what to ask for, and
 * `headers` what the browser sends to authorize (our session cookie).
 */
function flows(http, name, { paths, scope, headers = {} }) {
  const auth = (app) => ({ ...FORM, authorization: basic(app.client_id, app.client_secret) });
  const query = (app) =>
    new URLSearchParams({
      response_type: "code",
      client_id: app.client_id,
      redirect_uri: CALLBACK,
      scope,
      state: "bench",
      code_challenge: CHALLENGE,
      code_challenge_method: "S256",
    }).toString();
  async function exchange(app) {
    const a = expect(await http.call("GET", `${paths.authorize}?${query(app)}`, { headers }), 302, `${name} authorize`);
    const code = new URL(a.headers.location).searchParams.get("code");
    const body = form({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: VERIFIER });
    return json(expect(await http.call("POST", paths.token, { headers: auth(app), body }), 200, `${name} code exchange`));
  }
  async function refresh(app) {
    const body = form({ grant_type: "refresh_token", refresh_token: app.refresh });
    const t = json(expect(await http.call("POST", paths.token, { headers: auth(app), body }), 200, `${name} refresh`));
    app.refresh = t.refresh_token;
    return t;
  }
  return {
    auth,
    ops: (apps) => ({
      metadata: async () => {
        expect(await http.call("GET", "/.well-known/oauth-authorization-server"), 200, `${name} metadata`);
      },
      bearer: async (i) => {
        const res = await http.call("GET", "/api/v1/me", { headers: { authorization: `Bearer ${apps[i].access}` } });
        expect(res, 200, `${name} bearer`);
      },
      exchange: async (i) => {
        return exchange(apps[i]);
      },
      refresh: async (i) => {
        await refresh(apps[i]);
      },
      revoke: async (i) => {
        const token = apps[i].pool.pop();
        if (!token) return false;
        const body = form({ token, token_type_hint: "access_token" });
        expect(await http.call("POST", paths.revoke, { headers: auth(apps[i]), body }), 200, `${name} revoke`);
      },
    }),
    prepare: (apps) => ({
      // A fresh authorization per loop: the refresh chains start clean, and
      // the access tokens of the bearer cases are live.
      async fresh() {
        for (const app of apps) {
          const t = await exchange(app);
          app.access = t.access_token;
          app.refresh = t.refresh_token;
        }
      },
      // Access tokens to revoke: rotations leave earlier access tokens live.
      async pool(n) {
        await Promise.all(
          apps.map(async (app) => {
            app.pool = [];
            while (app.pool.length < n) app.pool.push((await refresh(app)).access_token);
          }),
        );
      },
    }),
  };
}

// ---------------------------------------------------------------- our worker

/** Our worker (build/, release; the pair when built) with a fresh local D1; `vars` pick the mode. */
async function ours(label, vars = {}, scope = "profile:read posts:read") {
  const [server, pid] = await withWorkerdPid(() => startOurs(vars));
  const http = client(server.base, CONCURRENCY);
  const alice = new Browser(server);
  await alice.signIn("alice@acme.test", "alice-password");
  const cookie = [...alice.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  // One app per loop: a new authorization replaces the app's previous token
  // set for that user, so loops must not share an app.
  const apps = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const app = await registerApp(server, { name: `Bench ${i}`, redirect_uris: [CALLBACK], scopes: ["profile:read", "posts:read"] });
    await tokensFor(server, alice, app, { scope }); // consent, once
    apps.push({ ...app, pool: [] });
  }
  const bot = await registerApp(server, { name: "Bench bot", scopes: ["posts:read"], actor_modes: ["app"] });
  const f = flows(http, label, {
    paths: { authorize: "/oauth/authorize", token: "/oauth/token", revoke: "/oauth/revoke" },
    scope,
    headers: { cookie },
  });
  return {
    name: label,
    server,
    pid,
    http,
    ops: {
      ...f.ops(apps),
      introspect: async (i) => {
        const res = await http.call("POST", "/oauth/introspect", { headers: f.auth(apps[i]), body: form({ token: apps[i].access }) });
        if (!json(expect(res, 200, "introspect")).active) throw new Error("introspect: inactive");
      },
      client_credentials: async () => {
        const body = form({ grant_type: "client_credentials" });
        expect(await http.call("POST", "/oauth/token", { headers: f.auth(bot), body }), 200, "client_credentials");
      },
    },
    prepare: f.prepare(apps),
    logs: () => server.log.lines,
    close: async () => {
      await http.close();
      await server.close();
    },
  };
}

// ------------------------------------------------------------------ the peer

/** A JS worker on a loopback port, its output drained; `[mf, http client, workerd pid]`. */
async function jsWorker(options) {
  const [mf, pid] = await withWorkerdPid(async () => {
    const mf = new Miniflare({
      ...options,
      host: "127.0.0.1",
      port: 0,
      handleRuntimeStdio(stdout, stderr) {
        stdout.resume();
        stderr.resume();
      },
    });
    await mf.ready;
    return mf;
  });
  const base = (await mf.ready).href.replace(/\/$/, "");
  return [mf, client(base, CONCURRENCY), pid];
}

async function peer() {
  const [mf, http, pid] = await jsWorker(PEER_OPTIONS);
  const apps = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const res = await http.call("POST", "/oauth/register", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: `Bench ${i}`,
        redirect_uris: [CALLBACK],
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
      }),
    });
    const c = json(expect(res, 201, "peer registration"));
    apps.push({ client_id: c.client_id, client_secret: c.client_secret, pool: [] });
  }
  // RFC 7009 at the peer's advertised revocation endpoint: its token endpoint.
  const f = flows(http, "peer", { paths: { authorize: "/authorize", token: "/oauth/token", revoke: "/oauth/token" }, scope: "read" });
  return {
    name: "peer",
    pid,
    http,
    ops: f.ops(apps),
    prepare: f.prepare(apps),
    close: async () => {
      await http.close();
      await mf.dispose();
    },
  };
}

// -------------------------------------------------------------- the baseline

/** The runtime floor and one bare D1 read, from a few lines of JS. */
async function baseline() {
  const [mf, http, pid] = await jsWorker({
    modules: true,
    scriptPath: new URL("bench/baseline/index.js", root).pathname,
    compatibilityDate: "2026-04-20",
    d1Databases: { DB: "baseline-db" },
  });
  expect(await http.call("POST", "/setup"), 200, "baseline setup");
  return {
    name: "baseline",
    pid,
    http,
    ops: {
      floor: async () => {
        expect(await http.call("GET", "/floor"), 200, "floor");
      },
      floorLog: async () => {
        expect(await http.call("GET", "/floor-log"), 200, "floor with a log line");
      },
      d1: async (i) => {
        expect(await http.call("GET", `/d1?k=${i}`), 200, "d1 read");
      },
      d1Log: async (i) => {
        expect(await http.call("GET", `/d1-log?k=${i}`), 200, "d1 read with a log line");
      },
    },
    close: async () => {
      await http.close();
      await mf.dispose();
    },
  };
}

// ------------------------------------------------------------------- running

async function runCase(label, entries, prepare) {
  entries = entries.filter(([, target]) => target);
  const samples = new Map(entries.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...entries].reverse() : entries;
    for (const [name, target, op] of order) {
      if (prepare) await prepare(target);
      // Our log lines reach this process through a pipe; storing them during
      // a timed run would tax the load generator, which shares its thread.
      if (target.server) target.server.log.paused = true;
      // The server's workerd CPU over exactly the timed window (see cpu.mjs).
      const meter = cpuMeter(target.pid);
      const sample = await measure({ durationMs: SECONDS * 1000, concurrency: CONCURRENCY, op });
      sample.cpu = meter.stop();
      samples.get(name).push(sample);
      if (target.server) {
        target.server.log.paused = false;
        await op(0); // one logged request: its D1 round trips go in the report
      }
    }
  }
  const rows = entries.map(([name]) => {
    const s = samples.get(name);
    const cpu = s.every((x) => x.cpu !== null && x.ops > 0);
    return {
      case: label,
      server: name,
      rate: median(s.map((x) => x.rate)),
      p50: median(s.map((x) => x.p50)),
      p99: median(s.map((x) => x.p99)),
      ops: s.reduce((a, x) => a + x.ops, 0),
      // Medians over the rounds of each round's workerd CPU ÷ its operations.
      cpuUsPerOp: cpu ? median(s.map((x) => (1e6 * x.cpu) / x.ops)) : null,
      opsPerCpuSecond: cpu ? 1e6 / median(s.map((x) => (1e6 * x.cpu) / x.ops)) : null,
      cpuSeconds: s.map((x) => x.cpu),
      stoppedEarly: s.some((x) => x.stoppedEarly),
    };
  });
  for (const r of rows) {
    const cpu = r.cpuUsPerOp === null ? "" : `  cpu ${r.cpuUsPerOp.toFixed(0)} µs/req`;
    process.stderr.write(`  ${label.padEnd(34)} ${r.server.padEnd(14)} ${r.rate.toFixed(0).padStart(6)}/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${cpu}\n`);
  }
  return rows;
}

const want = (key) => !ONLY || ONLY.includes(key);

/** D1 round trips per request on each hot path, from our log lines. */
function roundTrips(logs) {
  const per = {};
  for (const line of logs) {
    if (!line.startsWith("{")) continue;
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      continue;
    }
    if (l.d1 === undefined) continue;
    const k = `${l.method} ${l.route}`;
    per[k] ??= new Map();
    per[k].set(l.d1, (per[k].get(l.d1) ?? 0) + 1);
  }
  return Object.fromEntries(
    Object.entries(per).map(([k, m]) => [k, [...m].sort((a, b) => b[1] - a[1])[0][0]]),
  );
}

async function main() {
  const started = new Date();
  process.stderr.write(`bench: ${ROUNDS} round(s) × ${SECONDS}s per server per case, ${CONCURRENCY} connections${SMOKE ? " (smoke)" : ""}\n`);
  const strict = await ours("ours");
  const peerT = process.env.BENCH_PEER === "0" ? null : await peer();
  const base = await baseline();
  const rows = [];
  try {
    if (want("floor")) rows.push(...(await runCase("runtime floor (JSON, no storage)", [["baseline", base, base.ops.floor]])));
    if (want("floor")) rows.push(...(await runCase("runtime floor + one log line (JS)", [["baseline", base, base.ops.floorLog]])));
    if (want("d1")) rows.push(...(await runCase("one bare D1 read (JS)", [["baseline", base, base.ops.d1]])));
    if (want("d1")) rows.push(...(await runCase("one D1 read + one log line (JS)", [["baseline", base, base.ops.d1Log]])));
    if (want("metadata"))
      rows.push(...(await runCase("1 discovery metadata GET", [["ours", strict, strict.ops.metadata], ["peer", peerT, peerT?.ops.metadata]])));
    if (want("bearer")) {
      await strict.prepare.fresh();
      await peerT?.prepare.fresh();
      rows.push(...(await runCase("2 bearer API GET", [["ours strict", strict, strict.ops.bearer], ["peer", peerT, peerT?.ops.bearer]])));
    }
    if (want("modes")) {
      for (const [label, vars] of [
        ["ours edge", { BEARER_MODE: "edge" }],
        ["ours cache", { BEARER_CACHE_TTL_SECONDS: "30" }],
        ["ours edge+cache", { BEARER_MODE: "edge", BEARER_CACHE_TTL_SECONDS: "30" }],
        // JWT access tokens checked offline (WebCrypto ES256, no storage read).
        ["ours jwt", JWT],
        ["ours jwt+cache", { ...JWT, BEARER_CACHE_TTL_SECONDS: "30" }],
      ]) {
        const t = await ours(label, vars);
        try {
          await t.prepare.fresh();
          // Edge mode copies to KV after the response: let the copies land.
          await new Promise((r) => setTimeout(r, 300));
          rows.push(...(await runCase("2 bearer API GET", [[label, t, t.ops.bearer]])));
        } finally {
          await t.close();
        }
      }
    }
    if (want("introspect")) {
      await strict.prepare.fresh();
      rows.push(...(await runCase("2 introspection (ours only)", [["ours", strict, strict.ops.introspect]])));
    }
    if (want("exchange")) {
      // "ours openid": the same exchange with `openid`, an RS256 ID token
      // signed through WebCrypto in each response (issue 17), in the same run
      // as the peer's plain exchange.
      const oidc = await ours("ours openid", {}, "openid profile:read posts:read");
      const withIdToken = async (i) => {
        if (!(await oidc.ops.exchange(i)).id_token) throw new Error("ours openid: no id_token");
      };
      try {
        rows.push(
          ...(await runCase("3 code exchange (authorize + token)", [
            ["ours", strict, strict.ops.exchange],
            ["ours openid", oidc, withIdToken],
            ["peer", peerT, peerT?.ops.exchange],
          ])),
        );
      } finally {
        await oidc.close();
      }
    }
    if (want("refresh"))
      rows.push(
        ...(await runCase("4 refresh rotation", [["ours", strict, strict.ops.refresh], ["peer", peerT, peerT?.ops.refresh]], (t) => t.prepare.fresh())),
      );
    if (want("revoke")) {
      const perLoop = SMOKE ? 3 : Math.ceil((1500 * SECONDS) / CONCURRENCY);
      rows.push(
        ...(await runCase("5 revocation (access token)", [["ours", strict, strict.ops.revoke], ["peer", peerT, peerT?.ops.revoke]], async (t) => {
          await t.prepare.fresh();
          await t.prepare.pool(perLoop);
        })),
      );
    }
    if (want("client_credentials"))
      rows.push(...(await runCase("6 client_credentials (ours only)", [["ours", strict, strict.ops.client_credentials]])));
  } finally {
    await base.close();
    await peerT?.close();
  }
  const trips = roundTrips(strict.logs());
  await strict.close();

  // Fresh starts: 5 per server (1 in smoke), alternating, medians.
  const cold = await startup(SMOKE ? 1 : 5, { peer: process.env.BENCH_PEER !== "0" });
  const report = {
    date: started.toISOString(),
    smoke: SMOKE,
    settings: { rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY },
    machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
    rows,
    ours: { pair: strict.server.pair, cpuMeasured: rows.some((r) => r.cpuUsPerOp !== null) },
    sizes: sizes({ peer: process.env.BENCH_PEER !== "0" }),
    startup: cold,
    d1RoundTrips: trips,
  };
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const name = `${SMOKE ? "smoke-" : ""}${stamp}`;
  const md = render(report, { chart: `${name}.svg` });
  process.stdout.write(md + "\n");
  mkdirSync(new URL("bench/results/", root), { recursive: true });
  writeFileSync(new URL(`bench/results/${name}.md`, root), md + "\n");
  writeFileSync(new URL(`bench/results/${name}.json`, root), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(new URL(`bench/results/${name}.svg`, root), chart(report));
  process.stderr.write(`bench: wrote bench/results/${name}.{md,json,svg}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
