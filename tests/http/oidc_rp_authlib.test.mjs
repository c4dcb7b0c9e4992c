// Issue 17 "Done when": a second relying-party library, from another
// language: Authlib's OpenID Connect client (Python; pinned in
// tests/rp/requirements.txt, installed into .venv-rp by `make tools`). The RP
// side is tests/rp/authlib_rp.py (discovery, PKCE + nonce, the ID token
// validated by Authlib against the JWKS with CodeIDToken: iss, aud, exp,
// nonce, at_hash; userinfo; refresh with a new ID token of the same sub);
// this file starts the server and plays the browser between them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync } from "node:fs";
import { startServer, Browser, registerApp } from "./support.mjs";
import { rpSigningKeys, rpWebServer, userApproves } from "./oidc_rp_support.mjs";

const root = new URL("../../", import.meta.url);
const PYTHON = new URL(".venv-rp/bin/python", root).pathname;
const SCRIPT = new URL("tests/rp/authlib_rp.py", root).pathname;

let server, rp;
before(async () => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`make tools\` (scripts/tools.sh installs Authlib)`);
  rp = await rpWebServer();
  server = await startServer({ JWT_SIGNING_KEYS: rpSigningKeys() });
});
after(async () => {
  await server?.close();
  await rp?.close();
});

/** The Python RP as a process speaking one JSON object per line. */
function authlibRp(args) {
  const child = spawn(PYTHON, [SCRIPT, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  return {
    async next() {
      const { value, done } = await lines.next();
      if (done) throw new Error(`the Authlib RP stopped (exit ${await exited}):\n${stderr}`);
      return JSON.parse(value);
    },
    send: (obj) => child.stdin.write(JSON.stringify(obj) + "\n"),
    async exit() {
      const code = await exited;
      return { code, stderr };
    },
    kill: () => child.kill(),
  };
}

test("Authlib's OIDC client: discovery, code flow with PKCE and nonce, ID token validated against the JWKS, userinfo, refresh", async () => {
  const callback = `${rp.origin}/callback`;
  // Registered without id_token_signed_response_alg: RS256 by default.
  const reg = await registerApp(server, { name: "Authlib RP", redirect_uris: [callback], scopes: ["profile:read"] });
  const python = authlibRp([server.base, reg.client_id, reg.client_secret, callback]);
  try {
    const { authorize } = await python.next();
    const url = new URL(authorize);
    assert.equal(url.origin + url.pathname, `${server.base}/oauth/authorize`);
    assert.equal(url.searchParams.get("code_challenge_method"), "S256");
    assert.ok(url.searchParams.get("nonce"));

    const browser = new Browser(server);
    await browser.signIn("alice@acme.test", "alice-password");
    const back = await userApproves(browser, url);
    assert.equal(back.origin + back.pathname, callback);
    python.send({ callback: back.href });

    const result = await python.next();
    const { code, stderr } = await python.exit();
    assert.equal(code, 0, stderr);
    assert.equal(result.ok, true);
    const { claims, refreshed_claims: again, userinfo } = result;
    assert.equal(claims.iss, server.base);
    assert.deepEqual([claims.aud].flat(), [reg.client_id]);
    assert.equal(claims.nonce, url.searchParams.get("nonce"));
    assert.equal(JSON.parse(Buffer.from(result.id_token.split(".")[0], "base64url")).alg, "RS256");
    assert.equal(again.sub, claims.sub);
    assert.equal(userinfo.sub, claims.sub);
    assert.equal(userinfo.email, "alice@acme.test");
    assert.equal(result.forged_nonce, "InvalidClaimError", "Authlib refused an ID token checked against another nonce");
  } finally {
    python.kill();
  }
});
