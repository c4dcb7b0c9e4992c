// Prints `--var KEY:VALUE` flags for wrangler from profiles/<name>.toml, so
// `make dev PROFILE=featureos` runs the server the way that platform does.
import { readFileSync } from "node:fs";

export function profileVars(name) {
  const text = readFileSync(new URL(`../profiles/${name}.toml`, import.meta.url), "utf8");
  const vars = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*"([^"]*)"\s*$/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const name = process.argv[2];
  if (name) console.log(Object.entries(profileVars(name)).map(([k, v]) => `--var ${k}:${v}`).join(" "));
}
