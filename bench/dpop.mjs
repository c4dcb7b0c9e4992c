// The benchmark's DPoP client (RFC 9449): `make bench`'s two DPoP cases.
import { createHash, randomUUID } from "node:crypto";
import { SignJWT, generateKeyPair, exportJWK } from "jose";

/**
 * A DPoP client (RFC 9449) of one ES256 key: each request carries a fresh
 * proof (made by this process, as a client would), with the server's last
 * nonce; a `use_dpop_nonce` answer is retried once with the new one (§8).
 */
export async function dpopClient(base) {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  let nonce;
  const proof = (htm, path, token) =>
    new SignJWT({
      htm,
      htu: base + path,
      jti: randomUUID(),
      iat: Math.floor(Date.now() / 1000),
      ...(nonce ? { nonce } : {}),
      ...(token ? { ath: createHash("sha256").update(token).digest("base64url") } : {}),
    })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
      .sign(privateKey);
  // Proofs signed ahead of a timed window (each with its own jti): a client
  // signs on its own machine, so the load generator's CPU is not charged
  // with it; a stale one (a nonce rotated) is answered use_dpop_nonce and
  // the request is made again with a fresh proof.
  const pools = new Map();
  async function presign(method, path, token, n) {
    const key = `${method} ${path} ${token ?? ""}`;
    const pool = [];
    for (let i = 0; i < n; i++) pool.push(await proof(method, path, token));
    pools.set(key, pool);
  }
  async function send(http, method, path, { headers = {}, body, token } = {}) {
    const pooled = pools.get(`${method} ${path} ${token ?? ""}`);
    for (let attempt = 0; ; attempt++) {
      const p = (attempt === 0 && pooled?.pop()) || (await proof(method, path, token));
      const res = await http.call(method, path, { headers: { ...headers, dpop: p }, body });
      if (res.headers["dpop-nonce"]) nonce = res.headers["dpop-nonce"];
      if (attempt === 0 && (res.status === 400 || res.status === 401) && res.text.includes("use_dpop_nonce")) continue;
      return res;
    }
  }
  return { send, presign };
}

