// `make dev`: make sure .dev.vars (git-ignored; wrangler dev reads it as
// secrets) holds a PLATFORM_ADMIN_TOKEN, creating a random one on first use,
// so the local back office is on and provisioning can run against it; and a
// JWT_SIGNING_KEYS JWK set (one RSA key for RS256 ID tokens, OPENID=on, and
// one EC P-256 key for ACCESS_TOKEN_FORMAT=jwt and ES256 ID tokens). A set
// from before OpenID (no RSA key) gets one appended, nothing else changed.
// And a SUBJECT_SALT, so SUBJECT_TYPE=pairwise can be tried locally.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { adminToken } from "./provision.mjs";

const file = ".dev.vars";
const text = existsSync(file) ? readFileSync(file, "utf8") : "";
if (!/^\s*PLATFORM_ADMIN_TOKEN\s*=\s*\S/m.test(text)) {
  const token = `adm_${randomBytes(32).toString("base64url")}`;
  const line = `PLATFORM_ADMIN_TOKEN="${token}"\n`;
  if (text) appendFileSync(file, (text.endsWith("\n") ? "" : "\n") + line);
  else writeFileSync(file, "# Local secrets for wrangler dev (git-ignored). Created by `make dev`.\n" + line, { mode: 0o600 });
  console.log(`dev-vars: wrote a new PLATFORM_ADMIN_TOKEN to ${file}`);
}
const stamp = () => `${new Date().toISOString().slice(0, 10)}-${randomBytes(3).toString("hex")}`;
const rsaKey = () => ({ ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), kid: `dev-rsa-${stamp()}` });
const KEYS_LINE = /^(\s*JWT_SIGNING_KEYS\s*=\s*)'(.*)'\s*$/m;
if (!/^\s*JWT_SIGNING_KEYS\s*=\s*\S/m.test(readFileSync(file, "utf8"))) {
  // Never committed: .dev.vars is git-ignored, and production keys are a
  // `wrangler secret put JWT_SIGNING_KEYS` of their own.
  const jwk = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  const kid = `dev-${stamp()}`;
  const rsa = rsaKey();
  const now = readFileSync(file, "utf8");
  appendFileSync(file, (now.endsWith("\n") ? "" : "\n") + `JWT_SIGNING_KEYS='${JSON.stringify({ keys: [{ ...jwk, kid }, rsa] })}'\n`);
  console.log(`dev-vars: wrote a new JWT_SIGNING_KEYS (kids ${kid}, ${rsa.kid}) to ${file}`);
} else {
  // A set written before OpenID Connect: append an RSA key (OPENID=on needs
  // one), keeping every existing key and line as it was.
  const now = readFileSync(file, "utf8");
  const m = now.match(KEYS_LINE);
  let set;
  try {
    set = m && JSON.parse(m[2]);
  } catch {
    set = undefined;
  }
  if (set && Array.isArray(set.keys) && !set.keys.some((k) => k.kty === "RSA")) {
    const rsa = rsaKey();
    set.keys.push(rsa);
    writeFileSync(file, now.replace(KEYS_LINE, (_, head) => `${head}'${JSON.stringify(set)}'`), { mode: 0o600 });
    console.log(`dev-vars: added an RSA key (kid ${rsa.kid}) to JWT_SIGNING_KEYS in ${file}`);
  }
}
if (!/^\s*SUBJECT_SALT\s*=\s*\S/m.test(readFileSync(file, "utf8"))) {
  // The key of pairwise subjects (SUBJECT_TYPE=pairwise); production's is a
  // `wrangler secret put SUBJECT_SALT` of its own, never changed once used.
  const now = readFileSync(file, "utf8");
  appendFileSync(file, (now.endsWith("\n") ? "" : "\n") + `SUBJECT_SALT="${randomBytes(32).toString("base64url")}"\n`);
  console.log(`dev-vars: wrote a new SUBJECT_SALT to ${file}`);
}
delete process.env.PLATFORM_ADMIN_TOKEN;
if (!adminToken(file)) throw new Error(`${file} has no usable PLATFORM_ADMIN_TOKEN`);
