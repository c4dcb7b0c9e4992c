// Issue 20 item 2: the jwt-bearer grant type is shared by two forms, told
// apart by the assertion's JWS header alone: `typ: oauth-id-jag+jwt` is an
// ID-JAG (ID_JAG), anything else the Azure DevOps profile's code exchange
// (AZURE_DEVOPS_COMPAT). Each is refused where its switch is off, whatever
// the other's. ag_idjag.test.mjs covers ID_JAG=on with the profile off; here
// are the other three combinations, one server each, started together.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { profileVars } from "../../scripts/profile-vars.mjs";
import { startServer, Browser, registerApp, consent, count, basic, form, FORM } from "./support.mjs";
import { startIdp, trustIssuer, JWT_BEARER } from "./ag_idjag_idp.mjs";

const ADMIN = "idjag-switch-admin-token-0123456789abcdefghijklmn";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ASSERTION_INVALID = "The client assertion is invalid.";
const REDIRECT = "http://localhost:3000/callback";
const ADO = profileVars("azure-devops");
const COMMON = { PLATFORM_ADMIN_TOKEN: ADMIN, CIMD_ALLOW_HTTP_LOOPBACK: "true" };

let idp, both, adoOnly, neither;

/** A server, its registered app, and (ID_JAG on) the acme IdP as a trusted issuer. */
async function setUp(vars, tenant) {
  const server = await startServer({ ...COMMON, ...vars });
  const app = await registerApp(server, { name: "Switch test", redirect_uris: [REDIRECT] });
  const t = idp.tenant(tenant);
  const trusted = await trustIssuer(server, ADMIN, "acme", "idp", {
    issuer: t.issuer,
    jwks_uri: t.jwksUri,
    allowed_clients: [app.client_id],
    resources: [`${server.base}/api/v1`],
    scopes: ["profile:read"],
  });
  assert.equal(trusted.status, 201, JSON.stringify(trusted.body));
  const jag = () => t.sign({ as: server.base, clientId: app.client_id, sub: "alice", resource: `${server.base}/api/v1` });
  return { server, app, jag };
}

before(async () => {
  idp = await startIdp();
  [both, adoOnly, neither] = await Promise.all([
    setUp({ ...ADO, ID_JAG: "on" }, "both"),
    setUp({ ...ADO, ID_JAG: "off" }, "ado-only"),
    setUp({ ID_JAG: "off" }, "neither"),
  ]);
});
after(() => Promise.all([both?.server.close(), adoOnly?.server.close(), neither?.server.close(), idp?.close()]));

const issued = (s) => count(s.server, "SELECT COUNT(*) AS n FROM grants");

/** The ID-JAG request: client authentication, the grant type, the ID-JAG. */
async function idJagRequest(s) {
  return s.server.fetch("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(s.app.client_id, s.app.client_secret) },
    body: form({ grant_type: JWT_BEARER, assertion: await s.jag() }),
  });
}

/** The Azure DevOps document's exchange: the code as `assertion`, the secret as `client_assertion`. */
function adoExchange(s, code) {
  return s.server.fetch("/oauth/token", {
    method: "POST",
    headers: FORM,
    body: form({ client_assertion_type: ASSERTION_TYPE, client_assertion: s.app.client_secret, grant_type: JWT_BEARER, assertion: code, redirect_uri: REDIRECT }),
  });
}

async function adoCode(s) {
  const alice = new Browser(s.server);
  await alice.signIn("alice@acme.test", "alice-password");
  const { location } = await consent(alice, s.app, { response_type: "Assertion", code_challenge: undefined, scope: "profile:read", prompt: "consent" });
  const code = location?.searchParams.get("code");
  assert.ok(code, `no code: ${location}`);
  return code;
}

test("both on: an ID-JAG is the ID-JAG grant's, the Azure DevOps assertion the profile's", async () => {
  const res = await idJagRequest(both);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, "Bearer", "the core's answer, not the profile's token_type \"jwt\"");
  assert.equal(body.refresh_token, undefined);
  const ado = await adoExchange(both, await adoCode(both));
  const adoBody = await ado.json();
  assert.equal(ado.status, 200, JSON.stringify(adoBody));
  assert.equal(adoBody.token_type, "jwt", "the profile's own answer");
});

test("ID_JAG off, profile on: an ID-JAG is refused (unsupported_grant_type), not taken for a code; the profile still works", async () => {
  const before = await issued(adoOnly);
  const res = await idJagRequest(adoOnly);
  const body = await res.json();
  assert.equal(res.status, 400, JSON.stringify(body));
  assert.equal(body.error, "unsupported_grant_type");
  assert.match(body.error_description, /ID_JAG=off/);
  assert.equal(await issued(adoOnly), before, "nothing issued");
  // Sent in the profile's form (no client authentication but the secret as
  // client_assertion), an ID-JAG is still not the profile's.
  const asAdo = await adoExchange(adoOnly, await adoOnly.jag());
  assert.notEqual((await asAdo.json()).error_description, ASSERTION_INVALID);
  assert.equal(await issued(adoOnly), before);
  const ado = await adoExchange(adoOnly, await adoCode(adoOnly));
  assert.equal(ado.status, 200, await ado.clone().text());
});

test("both off: an ID-JAG is refused (unsupported_grant_type), the Azure DevOps assertion too, nothing issued", async () => {
  const before = await issued(neither);
  const res = await idJagRequest(neither);
  const body = await res.json();
  assert.equal(res.status, 400, JSON.stringify(body));
  assert.equal(body.error, "unsupported_grant_type");
  const ado = await adoExchange(neither, "some-code");
  const adoBody = await ado.json();
  assert.ok(ado.status >= 400 && ado.status < 500, JSON.stringify(adoBody));
  assert.notEqual(adoBody.error_description, ASSERTION_INVALID, "not the profile's answer");
  assert.equal(await issued(neither), before);
});
