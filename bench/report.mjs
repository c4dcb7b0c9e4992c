// The markdown report of `make bench` (stdout and bench/results/): a row per
// case and server with its CPU per request, ours/peer ratios, each worker's
// bundle, fresh starts, D1 round trips, and a link to the chart.

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const us = (x) => (x === null || x === undefined ? "n/a" : x.toFixed(0));

/** Each file's raw and gzip size, and the worker's sum when it has several files. */
function bundleLine(name, b) {
  if (!b) return `${name}: not built`;
  const files = Object.values(b.files).map((f) => `\`${f.path}\` ${kb(f.raw)} (${kb(f.gzip)} gzip)`);
  return files.length > 1 ? `${name}: ${files.join(" + ")}; together ${kb(b.raw)}, **${kb(b.gzip)} gzip**` : `${name}: ${files[0]}`;
}

export function render(r, { chart } = {}) {
  const byCase = new Map();
  for (const row of r.rows) {
    if (!byCase.has(row.case)) byCase.set(row.case, []);
    byCase.get(row.case).push(row);
  }
  const floor = r.rows.find((x) => x.case === "runtime floor (JSON, no storage)");
  const floorLog = r.rows.find((x) => x.case.startsWith("runtime floor + one log"));
  const d1 = r.rows.find((x) => x.case.startsWith("one bare D1"));
  const d1Log = r.rows.find((x) => x.case.startsWith("one D1 read + one log"));
  const out = [];
  out.push(`Benchmark ${r.date}${r.smoke ? " (SMOKE: numbers meaningless)" : ""}: ${r.settings.rounds} alternating runs of ${r.settings.seconds} s per server per case, ${r.settings.concurrency} connections, medians; ${r.machine.cpus} cores, Node ${r.machine.node}.`);
  out.push("");
  if (chart) out.push(`Chart: [${chart}](${chart}) (ours ÷ the peer in req/s per case, and CPU µs per request).`, "");
  out.push("| case | server | req/s | p50 ms | p99 ms | CPU µs/req | req/CPU-s | ours/peer req/s | ours/peer CPU/req | vs baseline |");
  out.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const [c, rows] of byCase) {
    const peerRow = rows.find((x) => x.server === "peer");
    for (const row of rows) {
      const ratio = peerRow && row !== peerRow ? `${(row.rate / peerRow.rate).toFixed(2)}×` : "";
      const cpuRatio = peerRow && row !== peerRow && row.cpuUsPerOp && peerRow.cpuUsPerOp ? `${(row.cpuUsPerOp / peerRow.cpuUsPerOp).toFixed(2)}×` : "";
      const perCpuSecond = row.opsPerCpuSecond ? row.opsPerCpuSecond.toFixed(0) : "n/a";
      let vs = "";
      if (c.startsWith("2 bearer") && row.server !== "peer" && d1 && floor)
        vs = `${(row.rate / d1.rate).toFixed(2)}× D1 read, ${((100 * row.rate) / floor.rate).toFixed(0)} % of floor`;
      if (c.startsWith("1 discovery") && floor) vs = `${((100 * row.rate) / floor.rate).toFixed(0)} % of floor`;
      if (floorLog && row.server !== "peer" && (c.startsWith("1 discovery") || c.startsWith("2 bearer")))
        vs += `, ${((100 * row.rate) / floorLog.rate).toFixed(0)} % of floor+log`;
      if (d1Log && c.startsWith("2 bearer") && row.server === "ours strict")
        vs += `, ${(row.rate / d1Log.rate).toFixed(2)}× D1 read+log`;
      out.push(`| ${c} | ${row.server} | ${row.rate.toFixed(0)} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${us(row.cpuUsPerOp)} | ${perCpuSecond} | ${ratio} | ${cpuRatio} | ${vs} |`);
    }
  }
  out.push("");
  out.push("Case 3 is one authorize redirect plus one token request per operation; every other case is one request. Its row \"ours openid\" is the code exchange with an ID token (scope `openid`: an RS256 ID token signed in each token response); the peer, which has no OpenID Connect, runs its plain code exchange.");
  out.push("");
  out.push(cpuNote(r));
  out.push("");
  const s = r.sizes;
  out.push("Bundles (raw, and gzip -9 of each file, summed):");
  out.push("");
  out.push(`- ${bundleLine("ours, public worker", s.public)}`);
  out.push(`- ${s.backOffice ? bundleLine("ours, back-office worker", s.backOffice) : "ours, back-office worker: not built (build/back-office/ absent): the public worker holds everything"}`);
  if (s.peer) out.push(`- ${bundleLine("peer", s.peer)}`);
  out.push("");
  out.push(startupTable(r.startup));
  out.push("");
  out.push(targets(r));
  out.push("");
  out.push("D1 round trips per request on our response path (most common count, from the log line's `d1` field; deferred work excluded):");
  out.push("");
  for (const [k, n] of Object.entries(r.d1RoundTrips).sort()) out.push(`- \`${k}\`: ${n}`);
  return out.join("\n");
}

function cpuNote(r) {
  const ours = r.ours?.pair ? "the public worker and its back office (one workerd runs the pair)" : "our worker";
  if (r.ours && !r.ours.cpuMeasured)
    return "CPU columns: n/a, the servers' workerd processes could not be read (no /proc, or a process not told apart).";
  return (
    "CPU µs/req: user + system CPU time (`utime` + `stime` of `/proc/<pid>/stat`, plus any child processes, live or reaped; 10 ms ticks) of the " +
    "server's own workerd process, read just before and just after each timed window and divided by the operations completed in it " +
    "(case 3: an operation is two requests); median over the rounds. req/CPU-s is its inverse; ours/peer CPU/req below 1.0× means ours spends less. " +
    `Each server has its own Miniflare and so its own workerd, and everything in it is counted: ${ours}, Miniflare's entry worker that routes ` +
    "each request, workerd's loopback HTTP server, the local D1 and KV simulators (SQLite inside workerd: in production that work is not the " +
    "worker's, so on storage cases the figure is an upper bound), writing the log lines to a pipe; for ours also the test suites' idle SQL helper worker. " +
    "Not counted: the load generator and Miniflare's node side (they run in the bench's node process), and startup, preparation and the one logged request after each window."
  );
}

function startupTable(st) {
  const ms = (x, k, d) => (x && x[k] !== null ? x[k].toFixed(d) : "n/a");
  const rows = [
    `Fresh starts (median of ${st.ours?.starts ?? 0}, alternating ours and the peer; each a new Miniflare with in-memory storage): ` +
      `ours is the public worker${st.pair ? " with its back office beside it (the pair)" : ""} answering \`/health\`, the peer its RFC 8414 metadata.`,
    "",
    "| server | new Miniflare → first 200, ms | first request's latency, ms | workerd CPU to first 200, ms |",
    "|---|---:|---:|---:|",
  ];
  for (const [name, x] of [["ours", st.ours], ["peer", st.peer]]) {
    if (!x) continue;
    rows.push(`| ${name} | ${ms(x, "firstResponse", 0)} | ${ms(x, "firstRequest", 1)} | ${ms(x, "cpuMs", 0)} |`);
  }
  return rows.join("\n");
}

/** Issue 18's two footprint targets, as this run measured them. */
function targets(r) {
  const pub = r.sizes.public;
  const parts = [];
  if (pub) parts.push(`public worker ≤ 250 KB gzip: ${(pub.gzip / 1000).toFixed(1)} KB (${pub.gzip} bytes, wasm + JS) — ${pub.gzip <= 250_000 ? "met" : "missed"}`);
  const o = r.startup.ours;
  const p = r.startup.peer;
  if (o && p)
    parts.push(
      `first request after start ≤ the peer's + 5 ms: ${o.firstRequest.toFixed(1)} ms against ${p.firstRequest.toFixed(1)} + 5 ms — ${o.firstRequest <= p.firstRequest + 5 ? "met" : "missed"}`,
    );
  return `Footprint targets (issue 18): ${parts.join("; ")}.`;
}
