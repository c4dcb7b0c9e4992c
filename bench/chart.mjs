// The chart beside `make bench`'s table (bench/results/<stamp>.svg), drawn
// as plain SVG text: per case with a peer row, ours ÷ the peer in req/s (a
// bar per server of ours, a line at 1.0×), and the CPU µs per request of
// every server in those cases.

const W = 1000;
const LABEL = 330; // left column: "case · server"
const PLOT = W - LABEL - 240; // bar area; the rest holds the value text
const ROW = 22;
const BAR = 14;
const GAP = 10; // between cases
const FONT = `font-family="DejaVu Sans, Arial, Helvetica, sans-serif"`;
const COLOR = { ahead: "#2e7d32", behind: "#e65100", ours: "#1565c0", peer: "#757575", grid: "#cccccc", text: "#212121" };

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const text = (x, y, s, attrs = "") => `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
const rect = (x, y, w, h, fill) => `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, w).toFixed(1)}" height="${h}" fill="${fill}"/>`;
const line = (x1, y1, x2, y2, stroke, extra = "") =>
  `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}" ${extra}/>`;

/** Round tick steps (1, 2, 5 × 10^k) giving at most `n` ticks up to `max`. */
function ticks(max, n = 6) {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The smallest multiple of a round tick step at or above `v` (1 if nothing was measured). */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const step = ticks(v)[1] ?? v;
  return Math.ceil(v / step) * step;
}

/** Cases that have a peer row, in the table's order, each with its rows. */
function compared(rows) {
  const byCase = new Map();
  for (const r of rows) {
    if (!byCase.has(r.case)) byCase.set(r.case, []);
    byCase.get(r.case).push(r);
  }
  return [...byCase].filter(([, rs]) => rs.some((r) => r.server === "peer"));
}

/**
 * A horizontal bar panel at `top`: `groups` is [caseLabel, [{label, value,
 * fill, note}]]; `scaleMax` the value at the plot's right edge; `marker` an
 * optional value drawn as a dashed reference line. Returns [svg, height].
 */
function panel(top, title, subtitle, groups, { scaleMax, marker, unit }) {
  const out = [];
  out.push(text(10, top + 18, title, `font-size="16" font-weight="bold" fill="${COLOR.text}"`));
  const notes = [subtitle].flat();
  notes.forEach((n, i) => out.push(text(10, top + 36 + 15 * i, n, `font-size="12" fill="#555555"`)));
  const plotTop = top + 50 + 15 * (notes.length - 1);
  let y = plotTop;
  const x = (v) => LABEL + (PLOT * Math.min(v, scaleMax)) / scaleMax;
  const bars = [];
  for (const [caseLabel, items] of groups) {
    for (const it of items) {
      bars.push(text(LABEL - 8, y + BAR - 2, `${caseLabel} · ${it.label}`, `font-size="12" text-anchor="end" fill="${COLOR.text}"`));
      if (it.value === null || !Number.isFinite(it.value)) {
        bars.push(text(LABEL + 4, y + BAR - 2, "not measured", `font-size="12" fill="#555555"`));
      } else {
        bars.push(rect(LABEL, y, x(it.value) - LABEL, BAR, it.fill));
        const clipped = it.value > scaleMax ? " ▸" : "";
        bars.push(text(x(it.value) + 5, y + BAR - 2, `${it.note}${clipped}`, `font-size="12" font-weight="bold" fill="${COLOR.text}"`));
      }
      y += ROW;
    }
    y += GAP;
  }
  const bottom = y - GAP + 4;
  // Grid first, so the bars paint over it.
  for (const t of ticks(scaleMax)) {
    out.push(line(x(t), plotTop - 4, x(t), bottom, COLOR.grid));
    out.push(text(x(t), bottom + 16, `${t}${unit}`, `font-size="11" text-anchor="middle" fill="#555555"`));
  }
  out.push(...bars);
  if (marker !== undefined) {
    out.push(line(x(marker), plotTop - 8, x(marker), bottom, COLOR.text, `stroke-width="2" stroke-dasharray="6 4"`));
    out.push(text(x(marker) + 4, plotTop - 10, `${marker.toFixed(1)}× = the peer`, `font-size="11" fill="${COLOR.text}"`));
  }
  return [out.join("\n"), bottom + 26 - top];
}

/** The SVG text for a bench report (`report.rows` as rendered in the table). */
export function chart(report) {
  const cases = compared(report.rows);
  const ratioGroups = [];
  const cpuGroups = [];
  let maxRatio = 1;
  let maxCpu = 0;
  for (const [c, rs] of cases) {
    const peer = rs.find((r) => r.server === "peer");
    const ratios = rs
      .filter((r) => r !== peer)
      .map((r) => {
        const v = r.rate / peer.rate;
        maxRatio = Math.max(maxRatio, v);
        return { label: r.server, value: v, fill: v >= 1 ? COLOR.ahead : COLOR.behind, note: `${v.toFixed(2)}×` };
      });
    ratioGroups.push([c, ratios]);
    cpuGroups.push([
      c,
      rs.map((r) => {
        const v = r.cpuUsPerOp ?? null;
        if (v !== null) maxCpu = Math.max(maxCpu, v);
        const vsPeer = r !== peer && v !== null && peer.cpuUsPerOp ? ` (${(v / peer.cpuUsPerOp).toFixed(2)}× the peer's)` : "";
        return { label: r.server, value: v, fill: r === peer ? COLOR.peer : COLOR.ours, note: v === null ? "" : `${v.toFixed(0)} µs${vsPeer}` };
      }),
    ]);
  }
  const head = [
    text(10, 22, `make bench ${report.date}${report.smoke ? " — SMOKE: numbers meaningless" : ""}`, `font-size="18" font-weight="bold" fill="${COLOR.text}"`),
    text(
      10,
      42,
      `${report.settings.rounds} alternating run(s) × ${report.settings.seconds} s per server per case, ${report.settings.concurrency} connections, medians; ${report.machine.cpus} cores`,
      `font-size="12" fill="#555555"`,
    ),
  ];
  if (cases.length === 0) {
    head.push(text(10, 80, "No case with a peer row in this run.", `font-size="14" fill="${COLOR.text}"`));
    return svg(head.join("\n"), 110);
  }
  const [p1, h1] = panel(
    60,
    "Throughput: ours ÷ the peer (req/s, same run)",
    "Longer is better; green at or past the dashed 1.0× line, orange behind the peer.",
    ratioGroups,
    { scaleMax: Math.max(2, Math.ceil(maxRatio * 2) / 2), marker: 1, unit: "×" },
  );
  const [p2, h2] = panel(
    60 + h1 + 10,
    "CPU per request: µs of the server's workerd process (utime + stime ÷ requests)",
    [
      "Shorter is better; blue ours, grey the peer; case 3 per authorize + token pair.",
      "Counts the whole workerd of each server (its worker(s), Miniflare's router, the local D1/KV simulators), not the load generator.",
    ],
    cpuGroups,
    { scaleMax: niceMax(maxCpu), unit: "" },
  );
  return svg([...head, p1, p2].join("\n"), 60 + h1 + 10 + h2);
}

const svg = (body, height) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Math.ceil(height)}" viewBox="0 0 ${W} ${Math.ceil(height)}" ${FONT}>
<rect width="100%" height="100%" fill="#ffffff"/>
${body}
</svg>
`;
