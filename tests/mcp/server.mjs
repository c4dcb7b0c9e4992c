// A small MCP server, protected by the OAuth server under test, built the way
// a third-party MCP developer would build one: the MCP SDK's own server
// classes (McpServer, StreamableHTTPServerTransport, its Express app and
// bearer middleware), RFC 9728 metadata of its own naming our issuer, and
// tokens checked like any resource server elsewhere: with `jose` against the
// issuer's `jwks_uri`, or by RFC 7662 introspection. It knows nothing of the
// OAuth server but its issuer URL (and, for introspection, its own client
// credentials).
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import { InvalidTokenError, ServerError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as z from "zod/v4";

export const MCP_PATH = "/mcp";
const PRM_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`;

/**
 * Start the MCP server on a loopback port.
 * - `issuer`: the authorization server (it need not be up yet: its metadata
 *   is read on the first token).
 * - `validation`: "jwt" (jose + jwks_uri) or "introspection" (RFC 7662 with
 *   `introspectionClient` = {client_id, client_secret}, or a function
 *   returning it once known).
 * - `scopes`: what the tools need; advertised in the metadata, and the
 *   middleware answers 403 insufficient_scope without them.
 * - `exchange` (optional): {client, target} adds the tool `platform_me`,
 *   which trades the incoming token for one for `target` (RFC 8693 token
 *   exchange as this server's confidential `client` = {client_id,
 *   client_secret} or a function returning it) with plain `fetch`, then
 *   calls `${issuer}/api/v1/me` with it: a server acting downstream for its
 *   user without forwarding the user's token.
 * Returns {url, resource, metadataUrl, seen, close}; `seen` records each
 * verification's outcome, for the tests.
 */
export async function startMcpServer({ issuer, validation = "jwt", introspectionClient, scopes = ["profile:read"], port = 0, exchange }) {
  const app = createMcpExpressApp({ host: "127.0.0.1" });
  const listener = await new Promise((resolve, reject) => {
    const l = app.listen(port, "127.0.0.1", (err) => (err ? reject(err) : resolve(l)));
  });
  const origin = `http://127.0.0.1:${listener.address().port}`;
  const resource = `${origin}${MCP_PATH}`;
  const metadataUrl = `${origin}${PRM_PATH}`;
  const seen = [];

  // RFC 8414 metadata of the issuer, fetched once; its `issuer` must be the
  // one this server trusts (RFC 8414 §3.3), or nothing it names is used.
  let asMetadata;
  const discover = async () => {
    if (asMetadata) return asMetadata;
    const res = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
    if (!res.ok) throw new ServerError(`authorization server metadata: HTTP ${res.status}`);
    const doc = await res.json();
    if (doc.issuer !== issuer) throw new ServerError(`issuer mismatch: ${doc.issuer}`);
    asMetadata = { doc, jwks: doc.jwks_uri ? createRemoteJWKSet(new URL(doc.jwks_uri)) : undefined };
    return asMetadata;
  };

  const verifyJwt = async (token) => {
    const { jwks } = await discover();
    if (!jwks) throw new ServerError("the issuer publishes no jwks_uri (ACCESS_TOKEN_FORMAT is not jwt)");
    let payload;
    try {
      // RFC 9068 §4: signature, alg, typ, iss, aud (this resource) and exp.
      ({ payload } = await jwtVerify(token, jwks, { issuer, audience: resource, typ: "at+jwt", algorithms: ["ES256"] }));
    } catch (e) {
      throw new InvalidTokenError(`${e.code ?? "invalid"}: ${e.message}`);
    }
    return { clientId: payload.client_id, scope: payload.scope, exp: payload.exp, aud: payload.aud, sub: payload.sub, org: payload.org_id };
  };

  const introspect = async (token) => {
    const { doc } = await discover();
    const { client_id, client_secret } = typeof introspectionClient === "function" ? introspectionClient() : introspectionClient;
    const res = await fetch(doc.introspection_endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: "Basic " + Buffer.from(`${encodeURIComponent(client_id)}:${encodeURIComponent(client_secret)}`).toString("base64"),
      },
      body: new URLSearchParams({ token, token_type_hint: "access_token" }),
    });
    if (!res.ok) throw new ServerError(`introspection: HTTP ${res.status}`);
    const r = await res.json();
    if (r.active !== true) throw new InvalidTokenError("inactive token");
    if (r.iss !== undefined && r.iss !== issuer) throw new InvalidTokenError("token from another issuer");
    // RFC 8707 / MCP: only a token whose audience names this server is accepted;
    // a token that names no audience is not known to be meant for it.
    const aud = Array.isArray(r.aud) ? r.aud : r.aud === undefined ? [] : [r.aud];
    if (!aud.includes(resource)) throw new InvalidTokenError(`token audience ${JSON.stringify(r.aud)} is not ${resource}`);
    return { clientId: r.client_id, scope: r.scope, exp: r.exp, aud: r.aud, sub: r.sub, org: r.org_id };
  };

  const verifier = {
    async verifyAccessToken(token) {
      try {
        const c = validation === "jwt" ? await verifyJwt(token) : await introspect(token);
        seen.push({ ok: true, ...c });
        return {
          token,
          clientId: c.clientId,
          scopes: typeof c.scope === "string" ? c.scope.split(" ").filter(Boolean) : [],
          expiresAt: c.exp,
          // Checked above; the middleware checks it again (`expectedResource`).
          resource: new URL(resource),
          extra: { sub: c.sub, org: c.org, aud: c.aud },
        };
      } catch (e) {
        seen.push({ ok: false, error: e.message });
        throw e;
      }
    },
  };

  app.get(PRM_PATH, (_req, res) => {
    // RFC 9728 §3.2; the resource is this server's MCP endpoint, exactly the
    // URL clients connect to (the SDK refuses any other).
    res.json({
      resource,
      authorization_servers: [issuer],
      scopes_supported: scopes,
      bearer_methods_supported: ["header"],
      resource_name: "Test MCP server",
    });
  });

  const auth = requireBearerAuth({ verifier, requiredScopes: scopes, resourceMetadataUrl: metadataUrl, expectedResource: new URL(resource) });

  app.post(MCP_PATH, auth, async (req, res) => {
    // Stateless: one McpServer and transport per request.
    const server = new McpServer({ name: "oauth-test-mcp", version: "1.0.0" });
    server.registerTool(
      "whoami",
      { description: "Who the bearer token speaks for", inputSchema: {} },
      async (_args, extra) => {
        const a = extra.authInfo;
        const out = { sub: a.extra.sub, org: a.extra.org, client_id: a.clientId, scopes: a.scopes, aud: a.extra.aud };
        return { content: [{ type: "text", text: JSON.stringify(out) }], structuredContent: out };
      },
    );
    if (exchange) {
      server.registerTool(
        "platform_me",
        { description: "Who the platform says the user is, asked with an exchanged token", inputSchema: { scope: z.string().optional() } },
        async ({ scope }, extra) => {
          const { doc } = await discover();
          const { client_id, client_secret } = typeof exchange.client === "function" ? exchange.client() : exchange.client;
          const body = new URLSearchParams({
            grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
            subject_token: extra.authInfo.token,
            subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
            resource: exchange.target,
            requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
          });
          if (scope) body.set("scope", scope);
          const res = await fetch(doc.token_endpoint, {
            method: "POST",
            headers: {
              "content-type": "application/x-www-form-urlencoded",
              authorization: "Basic " + Buffer.from(`${encodeURIComponent(client_id)}:${encodeURIComponent(client_secret)}`).toString("base64"),
            },
            body,
          });
          const exchanged = await res.json();
          if (!res.ok) {
            const out = { error: exchanged };
            return { isError: true, content: [{ type: "text", text: JSON.stringify(out) }], structuredContent: out };
          }
          const me = await fetch(new URL("/api/v1/me", issuer), { headers: { authorization: `Bearer ${exchanged.access_token}` } });
          // The exchanged token is returned only because this is a test server.
          const out = { status: me.status, me: await me.json(), exchanged };
          return { content: [{ type: "text", text: JSON.stringify(out) }], structuredContent: out };
        },
      );
    }
    server.registerTool(
      "add",
      { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } },
      async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  // No server-initiated stream and no sessions in stateless mode; still behind
  // the bearer check, as every MCP endpoint must be.
  const notAllowed = (_req, res) => res.status(405).set("allow", "POST").json({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed." }, id: null });
  app.get(MCP_PATH, auth, notAllowed);
  app.delete(MCP_PATH, auth, notAllowed);

  return {
    origin,
    url: new URL(resource),
    resource,
    metadataUrl,
    seen,
    close: () =>
      new Promise((resolve) => {
        listener.closeAllConnections?.();
        listener.close(() => resolve());
      }),
  };
}
