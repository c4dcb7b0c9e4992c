// Benchmark peer: one Worker that is both the OAuth 2.1 authorization server and
// its only protected resource, built on @cloudflare/workers-oauth-provider@1.2.3
// (`OAuthProvider`, the combined role).
//
// Endpoints (all relative to the origin the peer is served at):
//   GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (library)
//   GET  /.well-known/oauth-protected-resource/api RFC 9728 metadata (library)
//   POST /oauth/register                           RFC 7591 DCR (library)
//   GET  /authorize                                auto-approve, 302 to redirect_uri (ours)
//   POST /oauth/token                              code / refresh_token grants AND RFC 7009
//                                                  revocation; metadata advertises
//                                                  revocation_endpoint == token_endpoint (library)
//   GET  /api/v1/me                                protected, bearer token (ours)
//
// Bindings: OAUTH_KV (KV namespace, required). Optional PEER_ORIGIN (string var),
// e.g. "http://127.0.0.1:8787".
//
// Local http / resource identity
// ------------------------------
// 1.x requires `resourceMetadata.resource` at construction: it is every token's
// audience. It must be https, EXCEPT that plain http is accepted when the host is a
// loopback address (localhost, 127.0.0.0/8, ::1) - "so wrangler dev works". So
// `http://127.0.0.1:<port>/api` is fine, no flag needed.
// The catch is that the audience check at the API compares the token audience with
// the *request URL* exactly, including the port (path-boundary prefix match on the
// path). A resource fixed at module scope therefore only works on one known port.
// Because the benchmark may start the peer on an ephemeral port (miniflare port: 0),
// the provider is built lazily per origin: `env.PEER_ORIGIN` if set, otherwise the
// origin of the incoming request (the library's own docs suggest building it per
// request with `${new URL(request.url).origin}/mcp` for multi-hostname Workers).
// The issuer in OAuthProvider mode is always derived from the request origin.
// Set PEER_ORIGIN in anything other than a loopback benchmark so the Host header
// can't choose the audience.
//
// Refresh tokens: on by default (refreshTokenTTL defaults to 30 days; only 0 disables
// them). No `offline_access` scope is needed. DCR'd clients get refresh_token implied
// by authorization_code.

import { OAuthProvider } from '@cloudflare/workers-oauth-provider';

const USER = { userId: 'user_bench', org: 'org_bench' };

// Protected resource handler: only reached with a valid, unexpired, audience-bound
// access token. ctx.props is what completeAuthorization() stored; ctx.auth is the
// verified token (scope is an array).
const apiHandler = {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (request.method === 'GET' && pathname === '/api/v1/me') {
      return Response.json({ user: ctx.props.userId, org: ctx.props.org, scope: ctx.auth.scope });
    }
    return Response.json({ error: 'not_found' }, { status: 404 });
  },
};

// Everything that is not a library endpoint or under /api/: owns /authorize.
// Auto-approves: no sign-in, no consent page. Bench only.
const defaultHandler = {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/authorize') {
      let oauthReq;
      try {
        oauthReq = await env.OAUTH_PROVIDER.parseAuthRequest(request);
      } catch (err) {
        // AuthorizationError: redirectTo is only present once client + redirect_uri
        // were validated; otherwise render locally and never redirect.
        if (err && err.redirectTo) return Response.redirect(err.redirectTo, 302);
        return Response.json(
          { error: err?.code ?? 'server_error', error_description: err?.description ?? String(err) },
          { status: 400 },
        );
      }
      const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
        request: oauthReq,
        userId: USER.userId,
        metadata: {},
        scope: oauthReq.scope,
        props: { ...USER },
      });
      return Response.redirect(redirectTo, 302);
    }
    if (pathname === '/' || pathname === '/healthz') return new Response('ok\n');
    return new Response('not found\n', { status: 404 });
  },
};

function makeProvider(origin) {
  return new OAuthProvider({
    apiRoute: '/api/',
    apiHandler,
    defaultHandler,
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/oauth/token',
    clientRegistrationEndpoint: '/oauth/register',
    scopesSupported: ['read', 'write'],
    requiredScopes: ['read'],
    resourceMetadata: {
      resource: `${origin}/api`,
      authorization_servers: [origin],
    },
    // Default TTLs: access 3600 s, refresh 30 d (refresh tokens on), DCR clients 90 d.
  });
}

// origin -> { provider, env }. Each provider gets its own env copy because the
// library caches its helpers on env.OAUTH_PROVIDER, and those helpers are bound to
// one provider (one resource).
const providers = new Map();

export default {
  fetch(request, env, ctx) {
    const origin = (env.PEER_ORIGIN || new URL(request.url).origin).replace(/\/+$/, '');
    let entry = providers.get(origin);
    if (!entry) {
      if (providers.size >= 16) providers.clear();
      entry = { provider: makeProvider(origin), env: { ...env } };
      providers.set(origin, entry);
    }
    return entry.provider.fetch(request, entry.env, ctx);
  },
};
