// A local enterprise identity provider for the ID-JAG tests (issue 20 item 2):
// tenants on one loopback web server, each an issuer (`<origin>/<tenant>`)
// with its JWK set at `<issuer>/jwks`, signing ID-JAGs with `jose` the way
// Okta or Entra would after their own token exchange. Also the provisioning
// call that makes a tenant an org's trusted issuer.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { startDocumentServer } from "./cimd_server.mjs";

export const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
export const ID_JAG_TYP = "oauth-id-jag+jwt";

/** A signing key: the private key and its public JWK (with `kid`). */
export function idpKey(kid = `k-${randomUUID().slice(0, 8)}`) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" } };
}

export async function startIdp() {
  const docs = await startDocumentServer();
  const tenants = new Map();
  return {
    docs,
    /** A tenant: its issuer, JWKS URL and key; `sign(claims, header)` makes an ID-JAG. */
    tenant(name) {
      if (tenants.has(name)) return tenants.get(name);
      const issuer = `${docs.origin}/${name}`;
      const key = idpKey();
      const jwksUri = docs.route(`/${name}/jwks`, { body: { keys: [key.jwk] }, headers: { "cache-control": "max-age=300" } });
      const t = {
        issuer,
        jwksUri,
        key,
        /**
         * An ID-JAG of this tenant for `as` (the AS issuer), `clientId`,
         * `sub` and `resource`; `claims`/`header` override, `key` signs.
         */
        sign({ as, clientId, sub, resource, scope, claims = {}, header = {}, key: k = key, now = Math.floor(Date.now() / 1000) }) {
          const body = { iss: issuer, sub, aud: as, client_id: clientId, jti: randomUUID(), iat: now, exp: now + 120, ...(resource ? { resource } : {}), ...(scope ? { scope } : {}), ...claims };
          return new SignJWT(body).setProtectedHeader({ alg: "ES256", typ: ID_JAG_TYP, kid: k.kid, ...header }).sign(k.privateKey);
        },
      };
      tenants.set(name, t);
      return t;
    },
    close: () => docs.close(),
  };
}

/** PUT /admin/v1/orgs/{org}/trusted-issuers/{name} with the platform's token. */
export async function trustIssuer(server, adminToken, org, name, body) {
  const res = await server.fetch(`/admin/v1/orgs/${org}/trusted-issuers/${name}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}
