// What a deployment weighs and how fast it answers from cold, for `make
// bench`: each worker's bundle (raw and gzip -9), and fresh starts of ours
// (the public worker, with its back office when built) and of the peer.
import { Miniflare } from "miniflare";
import { existsSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { median } from "./load.mjs";
import { cpuSeconds, withWorkerdPid } from "./cpu.mjs";
import { BACK_OFFICE, PUBLIC, hasBackOffice, ourBindings, ourWorkers } from "./pair.mjs";

const root = new URL("../", import.meta.url);

/** Raw and gzip -9 bytes of each file of a worker, and their sums (null if it is not built). */
function bundle(files) {
  if (!Object.values(files).every((p) => existsSync(new URL(p, root)))) return null;
  const out = { files: {}, raw: 0, gzip: 0 };
  for (const [kind, p] of Object.entries(files)) {
    const b = readFileSync(new URL(p, root));
    const f = { path: p, raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
    out.files[kind] = f;
    out.raw += f.raw;
    out.gzip += f.gzip;
  }
  return out;
}

/** Each worker's bundle: ours (public), our back office (null until built), the peer (null when not run). */
export function sizes({ peer = true } = {}) {
  return {
    public: bundle(PUBLIC),
    backOffice: hasBackOffice() ? bundle(BACK_OFFICE) : null,
    peer: peer ? bundle({ js: "bench/peer/build/index.js" }) : null,
  };
}

/**
 * One fresh start: ms from `new Miniflare` to the first 200 of `path`, that
 * first request's own latency (from `ready` to its body), and the CPU seconds
 * workerd had spent by then (its whole life: start, compile, first request).
 */
async function startOnce(options, path) {
  const t0 = performance.now();
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
  try {
    const base = (await mf.ready).href.replace(/\/$/, "");
    const t1 = performance.now();
    const res = await fetch(base + path);
    await res.text();
    const t2 = performance.now();
    const cpu = pid ? cpuSeconds(pid) : null;
    if (res.status !== 200) throw new Error(`startup probe ${path}: ${res.status}`);
    return { firstResponse: t2 - t0, firstRequest: t2 - t1, cpuMs: cpu === null ? null : cpu * 1000 };
  } finally {
    await mf.dispose();
  }
}

export const PEER_OPTIONS = {
  modules: true,
  scriptPath: new URL("bench/peer/build/index.js", root).pathname,
  compatibilityDate: "2026-04-20",
  kvNamespaces: ["OAUTH_KV"],
};

const middle = (xs) =>
  xs.length === 0
    ? null
    : {
        starts: xs.length,
        firstResponse: median(xs.map((x) => x.firstResponse)),
        firstRequest: median(xs.map((x) => x.firstRequest)),
        cpuMs: xs.every((x) => x.cpuMs !== null) ? median(xs.map((x) => x.cpuMs)) : null,
      };

/**
 * Medians of `n` fresh starts per server, alternating ours and the peer.
 * Ours answers /health through its public worker (with the back office
 * beside it when built, as deployed); the peer its RFC 8414 metadata.
 */
export async function startup(n, { peer = true } = {}) {
  const ours = { workers: ourWorkers({ bindings: ourBindings({}, "startup"), db: "startup-db", kv: "startup-kv" }) };
  const runs = { ours: [], peer: [] };
  for (let i = 0; i < n; i++) {
    runs.ours.push(await startOnce(ours, "/health"));
    if (peer) runs.peer.push(await startOnce(PEER_OPTIONS, "/.well-known/oauth-authorization-server"));
  }
  return { pair: hasBackOffice(), ours: middle(runs.ours), peer: middle(runs.peer) };
}
