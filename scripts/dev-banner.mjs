import { DEV_API_KEY, USERS } from "./fixtures.mjs";
import { adminToken } from "./provision.mjs";
const base = "http://127.0.0.1:8787";
delete process.env.PLATFORM_ADMIN_TOKEN;
// Our org ids are generated when the fixtures go in through the API.
let orgs = "";
try {
  const res = await fetch(`${base}/admin/v1/orgs`, { headers: { authorization: `Bearer ${adminToken()}` } });
  orgs = (await res.json()).items.map((o) => `${o.name} ${o.id}`).join(", ");
} catch {
  orgs = "(GET /admin/v1/orgs with the admin token lists them)";
}
const delegated = process.env.SIGNIN === "delegated";
console.log(`
  Edge OAuth — local development
  Server:      ${base}
  Discovery:   ${base}/.well-known/oauth-authorization-server
  OpenID:      ${base}/.well-known/openid-configuration   ("Sign in with": docs/openid-connect.md)
  Sign in:     ${delegated ? "through the stand-in platform's page, http://127.0.0.1:8788/login (started by authorize)" : `${base}/signin`}   (${USERS.map((u) => `${u.email} / ${u.password}`).join(", ")})
  Orgs:        ${orgs}
  API key:     ${DEV_API_KEY}   (Acme admin, local only)
  Admin token: ${adminToken()}   (PLATFORM_ADMIN_TOKEN in .dev.vars, local only)
  Register an app:
    curl -s ${base}/api/v1/apps -H "Authorization: Bearer ${DEV_API_KEY}" -H 'Content-Type: application/json' \\
      -d '{"name":"My App","redirect_uris":["http://localhost:3000/callback"],"scopes":["profile:read","posts:read"]}'
  Provision your own platform:
    make provision FILE=fixtures/platform.json   (add DRY_RUN=1 to see the diff first)
`);
