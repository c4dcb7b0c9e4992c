// CPU time of a server's workerd process (Linux /proc), so `make bench` can
// report what a request costs in CPU, not only how many fit in a second. Each
// Miniflare runs one workerd child of this node process; the load generator
// runs in node and is therefore never counted.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let ticks;
/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
function clockTicks() {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** /proc/<pid>/stat's fields after the command name (which may hold spaces), or null if gone. */
function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    return { comm: text.slice(text.indexOf("(") + 1, close), rest: text.slice(close + 2).split(" ") };
  } catch {
    return null;
  }
}
// Offsets in `rest`: field 3 (state) is rest[0], so field n is rest[n - 3].
const PPID = 4 - 3;
const UTIME = 14 - 3;
const STIME = 15 - 3;
const CUTIME = 16 - 3;
const CSTIME = 17 - 3;

/** Every live process as pid → parent pid (empty where /proc is absent). */
function parents() {
  const out = new Map();
  let names = [];
  try {
    names = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (s) out.set(Number(name), { ppid: Number(s.rest[PPID]), comm: s.comm });
  }
  return out;
}

/** The workerd processes this node process has started and that still run. */
export function workerdChildren() {
  const out = new Set();
  for (const [pid, p] of parents()) if (p.ppid === process.pid && p.comm.startsWith("workerd")) out.add(pid);
  return out;
}

/**
 * Run `start` (which starts one Miniflare) and return `[its result, the pid
 * of the workerd it started]`: the one workerd child that is new afterwards.
 * Servers are started one at a time, so that child is this Miniflare's. The
 * pid is null where it cannot be told (no /proc, or not exactly one new child).
 */
export async function withWorkerdPid(start) {
  const before = workerdChildren();
  const result = await start();
  const fresh = [...workerdChildren()].filter((pid) => !before.has(pid));
  return [result, fresh.length === 1 ? fresh[0] : null];
}

/**
 * CPU seconds (user + system) of `pid` and of every live descendant, plus
 * the children it has already reaped (cutime + cstime). null if `pid` is gone.
 */
export function cpuSeconds(pid) {
  const root = stat(pid);
  if (!root) return null;
  const tree = parents();
  let total = Number(root.rest[UTIME]) + Number(root.rest[STIME]) + Number(root.rest[CUTIME]) + Number(root.rest[CSTIME]);
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift();
    for (const [child, p] of tree) {
      if (p.ppid !== parent) continue;
      const s = stat(child);
      if (s) total += Number(s.rest[UTIME]) + Number(s.rest[STIME]) + Number(s.rest[CUTIME]) + Number(s.rest[CSTIME]);
      queue.push(child);
    }
  }
  return total / clockTicks();
}

/** Start a CPU reading of `pid`; `stop()` returns the CPU seconds since (null if unknown). */
export function cpuMeter(pid) {
  const start = pid ? cpuSeconds(pid) : null;
  return {
    stop() {
      if (start === null) return null;
      const end = cpuSeconds(pid);
      return end === null ? null : end - start;
    },
  };
}
