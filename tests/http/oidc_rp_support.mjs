// What the relying-party journeys of issue 17 share (openid-client, Authlib,
// Chromium, the bench): the signing keys an OpenID Provider needs, a loopback
// "RP web server" to land on, and the user's part of the code flow (sign in,
// consent) driven through support.mjs's cookie-jar browser.
import { generateKeyPairSync } from "node:crypto";
import http from "node:http";
import { hiddenFields } from "./support.mjs";

/**
 * JWT_SIGNING_KEYS with an RSA key (RS256, the algorithm OIDC Core §15.1
 * requires) and an EC P-256 key (ES256) side by side, made for this run only.
 */
export function rpSigningKeys() {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  return JSON.stringify({ keys: [{ ...rsa, kid: "rp-rsa" }, { ...ec, kid: "rp-ec" }] });
}

/**
 * A loopback web server standing in for the relying party's own pages (its
 * redirect_uri and post_logout_redirect_uri): answers 200 and records every
 * URL it was sent to.
 */
export async function rpWebServer() {
  const hits = [];
  const srv = http.createServer((req, res) => {
    hits.push(new URL(req.url, `http://${req.headers.host}`));
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end("<!doctype html><title>RP</title><p id=rp>relying party page</p>");
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${srv.address().port}`;
  return { origin, hits, close: () => new Promise((r) => srv.close(r)) };
}

/**
 * The user's part of the code flow for an authorization URL an RP library
 * built: the browser (support.mjs `Browser`, signed in already) opens it,
 * approves on the consent page for `org` when one is shown, and the redirect
 * back to the RP is returned as a URL.
 */
export async function userApproves(browser, authorizationUrl, { org = "org_acme" } = {}) {
  const u = new URL(authorizationUrl);
  let res = await browser.fetch(u.pathname + u.search);
  if (res.status === 200) {
    const fields = hiddenFields(await res.text());
    res = await browser.post("/oauth/authorize", { ...fields, org, decision: "approve" });
  }
  const location = res.headers.get("location");
  if (!location || res.status < 300 || res.status > 399) {
    throw new Error(`authorization did not redirect back: ${res.status} ${await res.text()}`);
  }
  return new URL(location, browser.server.base);
}
