// The benchmark peer: @cloudflare/workers-oauth-provider (npm, TypeScript,
// KV storage) set up as a platform team would for this product: one Worker
// that is both the authorization server and the API, dynamic client
// registration on, refresh tokens on, and an authorize handler that approves
// at once (no sign-in page: neither server's UI is what `make bench` measures).
import { OAuthProvider } from "@cloudflare/workers-oauth-provider";

const api = {
  async fetch(request, env, ctx) {
    return Response.json({ user: ctx.props.userId, org: ctx.props.org, scope: ctx.auth?.scope ?? null });
  },
};

const authorize = {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/authorize") return new Response("not found", { status: 404 });
    const oauthReq = await env.OAUTH_PROVIDER.parseAuthRequest(request);
    const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
      request: oauthReq,
      userId: "user_bench",
      metadata: {},
      scope: oauthReq.scope,
      props: { userId: "user_bench", org: "org_bench" },
    });
    return Response.redirect(redirectTo, 302);
  },
};

// In production the worker is reached over https; on loopback the bench
// speaks http, so requests are seen as https (the library binds tokens to an
// https resource URL and compares it with the request URL). One URL rewrite
// per request is all this adds.
let provider;
function make(origin) {
  return new OAuthProvider({
    apiRoute: "/api/",
    apiHandler: api,
    defaultHandler: authorize,
    authorizeEndpoint: "/authorize",
    tokenEndpoint: "/oauth/token",
    clientRegistrationEndpoint: "/oauth/register",
    scopesSupported: ["read", "write"],
    resourceMetadata: { resource: `${origin}/api/`, authorization_servers: [origin] },
  });
}

export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    url.protocol = "https:";
    provider ??= make(url.origin);
    return provider.fetch(new Request(url, request), env, ctx);
  },
};
