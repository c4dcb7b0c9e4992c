// The markdown report of `make bench` (stdout and bench/results/): a row per
// case and server, ours/peer ratios, bundle sizes, startup, D1 round trips.

export function render(r) {
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
  out.push("| case | server | req/s | p50 ms | p99 ms | ours/peer req/s | vs baseline |");
  out.push("|---|---|---:|---:|---:|---:|---:|");
  for (const [c, rows] of byCase) {
    const peerRow = rows.find((x) => x.server === "peer");
    for (const row of rows) {
      const ratio = peerRow && row !== peerRow ? `${(row.rate / peerRow.rate).toFixed(2)}×` : "";
      let vs = "";
      if (c.startsWith("2 bearer") && row.server !== "peer" && d1 && floor)
        vs = `${(row.rate / d1.rate).toFixed(2)}× D1 read, ${((100 * row.rate) / floor.rate).toFixed(0)} % of floor`;
      if (c.startsWith("1 discovery") && floor) vs = `${((100 * row.rate) / floor.rate).toFixed(0)} % of floor`;
      if (floorLog && row.server !== "peer" && (c.startsWith("1 discovery") || c.startsWith("2 bearer")))
        vs += `, ${((100 * row.rate) / floorLog.rate).toFixed(0)} % of floor+log`;
      if (d1Log && c.startsWith("2 bearer") && row.server === "ours strict")
        vs += `, ${(row.rate / d1Log.rate).toFixed(2)}× D1 read+log`;
      out.push(`| ${c} | ${row.server} | ${row.rate.toFixed(0)} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${ratio} | ${vs} |`);
    }
  }
  out.push("");
  out.push("Case 3 is one authorize redirect plus one token request per operation; every other case is one request. Its row \"ours openid\" is the code exchange with an ID token (scope `openid`: an RS256 ID token signed in each token response); the peer, which has no OpenID Connect, runs its plain code exchange.");
  out.push("");
  const s = r.sizes;
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  out.push(`Bundle: ours ${kb(s.ours_wasm.raw)} wasm (${kb(s.ours_wasm.gzip)} gzip) + ${kb(s.ours_js.raw)} JS (${kb(s.ours_js.gzip)} gzip)${s.peer_js ? `; peer ${kb(s.peer_js.raw)} JS (${kb(s.peer_js.gzip)} gzip)` : ""}.`);
  const st = (x) => (x ? `${x.firstResponse.toFixed(0)} ms (first request ${x.firstRequest.toFixed(1)} ms)` : "n/a");
  out.push(`Startup, \`new Miniflare\` to first 200 (median): ours ${st(r.startup.ours)}, peer ${st(r.startup.peer)}.`);
  out.push("");
  out.push("D1 round trips per request on our response path (most common count, from the log line's `d1` field; deferred work excluded):");
  out.push("");
  for (const [k, n] of Object.entries(r.d1RoundTrips).sort()) out.push(`- \`${k}\`: ${n}`);
  return out.join("\n");
}
