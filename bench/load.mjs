// A closed-loop load generator: `concurrency` loops, each running one
// operation (one or more HTTP requests) after another until the time is up.
// Both servers are driven by this same code in the same run, so its own cost
// (it shares the machine's two cores with workerd) hits both alike.
import { Pool } from "undici";

/** An HTTP client for one server: keep-alive connections, bodies always read. */
export function client(base, connections) {
  const pool = new Pool(base, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  async function call(method, path, { headers = {}, body } = {}) {
    const res = await pool.request({ method, path, headers, body });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  }
  return { call, close: () => pool.close() };
}

const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);

/**
 * Run `op(loopIndex)` from `concurrency` loops for `durationMs`. An op
 * returns false when it has nothing left to do (a pre-minted pool ran out),
 * and throws on an unexpected answer: a benchmark of errors measures nothing.
 */
export async function measure({ durationMs, concurrency, op }) {
  const latencies = [];
  const started = performance.now();
  const end = started + durationMs;
  let stoppedEarly = false;
  const loop = async (i) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const more = await op(i);
      if (more === false) {
        stoppedEarly = true;
        return;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    seconds: elapsed,
    rate: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    stoppedEarly,
  };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
