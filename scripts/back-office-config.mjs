// The back-office worker's wrangler config, made from wrangler.toml at every
// build and deploy (build/back-office/wrangler.toml, beside its build): the
// same vars, D1 database and KV namespace as the public worker, so the two can
// never drift; its own name (`<name>-back-office`, which the public worker's
// BACK_OFFICE service binding must name) and entry, no service binding, and
// the lines wrangler.toml keeps for it behind `# back-office: ` (the Cron
// Trigger). Its .dev.vars is the public worker's (a symlink), so `make dev`
// gives both the same secrets.
import { existsSync, lstatSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";

const root = new URL("../", import.meta.url).pathname;

/** `{ path, text }` of the back office's config for the public one at `configPath`. */
export function backOfficeConfig(text, configPath) {
  const configDir = dirname(resolve(configPath));
  const quoted = (line) => line.match(/"([^"]*)"/)?.[1];
  const name = quoted(text.match(/^name\s*=.*$/m)?.[0] ?? "") ?? fail("wrangler.toml: no quoted name");
  const main = quoted(text.match(/^main\s*=.*$/m)?.[0] ?? "") ?? fail("wrangler.toml: no quoted main");
  const outDir = join(dirname(resolve(configDir, main)), "back-office");
  const service = text.match(/\[\[services\]\][^[]*?binding\s*=\s*"BACK_OFFICE"[^[]*?service\s*=\s*"([^"]*)"/)?.[1];
  // No binding at all: the back office is kept on its own hostname
  // (docs/operators.md "The back office apart").
  if (service !== undefined && service !== `${name}-back-office`)
    fail(`wrangler.toml: the BACK_OFFICE service binding must name "${name}-back-office" (the back-office worker), not ${JSON.stringify(service)}`);
  const out = [];
  const own = [];
  let skipping = false;
  for (const line of text.split("\n")) {
    const section = line.match(/^\s*\[\[?([^\]]+)\]\]?\s*$/);
    if (section) skipping = section[1] === "build" || section[1] === "services";
    const mine = line.match(/^# back-office: ?(.*)$/);
    if (mine) own.push(mine[1]);
    else if (skipping) continue;
    else if (/^name\s*=/.test(line)) out.push(`name = "${name}-back-office"`);
    else if (/^main\s*=/.test(line)) out.push('main = "index.js"');
    else if (/^\s*migrations_dir\s*=/.test(line)) {
      const dir = quoted(line);
      out.push(line.replace(/"[^"]*"/, JSON.stringify(relative(outDir, isAbsolute(dir) ? dir : resolve(configDir, dir)))));
    } else out.push(line);
  }
  const header = `# Made by scripts/back-office-config.mjs from ${relative(outDir, resolve(configPath))} at every build: edit that file instead.`;
  return { path: join(outDir, "wrangler.toml"), text: [header, ...out, ...own, ""].join("\n") };
}

function fail(msg) {
  throw new Error(msg);
}

/** Writes it; a missing .dev.vars beside it becomes a link to the public one's. */
export function writeBackOfficeConfig(configPath) {
  const { path, text } = backOfficeConfig(readFileSync(configPath, "utf8"), configPath);
  // `make test` runs its steps side by side, and each `make build` comes
  // here: a reader must never see a half-written file.
  if (!existsSync(path) || readFileSync(path, "utf8") !== text) {
    writeFileSync(`${path}.${process.pid}`, text);
    renameSync(`${path}.${process.pid}`, path);
  }
  const vars = join(dirname(path), ".dev.vars");
  if (!existsSync(vars) && !linkExists(vars)) {
    try {
      symlinkSync(relative(dirname(path), join(dirname(resolve(configPath)), ".dev.vars")), vars);
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
  }
  return path;
}

function linkExists(p) {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    writeBackOfficeConfig(process.env.WRANGLER_CONFIG ?? join(root, "wrangler.toml"));
  } catch (e) {
    console.error(`back-office-config: ${e.message}`);
    process.exit(1);
  }
}
