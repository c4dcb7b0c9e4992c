// The back-office worker's wrangler config, made from wrangler.toml at every
// build (build/back-office/wrangler.toml): the same vars, D1 database and KV
// namespace as the public worker, so the two can never drift; its own name
// and entry, no service binding, and the lines wrangler.toml keeps for it
// behind `# back-office: ` (the Cron Trigger). Its .dev.vars is the public
// worker's (a symlink), so `make dev` gives both the same secrets.
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";

const root = new URL("../", import.meta.url);
const source = process.env.WRANGLER_CONFIG ?? new URL("wrangler.toml", root).pathname;
const outDir = new URL("build/back-office/", root).pathname;

export function backOfficeConfig(text) {
  const out = [];
  let skipping = false;
  const own = [];
  for (const line of text.split("\n")) {
    const section = line.match(/^\s*\[\[?([^\]]+)\]\]?\s*$/);
    if (section) skipping = section[1] === "build" || section[1] === "services";
    const mine = line.match(/^# back-office: ?(.*)$/);
    if (mine) {
      own.push(mine[1]);
      continue;
    }
    if (skipping) continue;
    if (/^name\s*=/.test(line)) {
      const name = line.match(/"([^"]*)"/)?.[1];
      if (!name) throw new Error("wrangler.toml: the name must be a quoted string");
      out.push(`name = "${name}-back-office"`);
    } else if (/^main\s*=/.test(line)) {
      out.push('main = "index.js"');
    } else if (/^\s*migrations_dir\s*=/.test(line)) {
      out.push(line.replace(/"([^"]*)"/, (_, dir) => `"../../${dir}"`));
    } else {
      out.push(line);
    }
  }
  return [
    "# Made by scripts/back-office-config.mjs from wrangler.toml at every build: edit that file instead.",
    ...out,
    ...own,
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(outDir + "wrangler.toml", backOfficeConfig(readFileSync(source, "utf8")));
  const vars = outDir + ".dev.vars";
  if (!existsSync(vars) && !lstatExists(vars)) symlinkSync("../../.dev.vars", vars);
}

function lstatExists(p) {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
