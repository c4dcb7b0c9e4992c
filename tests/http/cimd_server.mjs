// A loopback web server for Client ID Metadata Document tests: each path
// answers as its route says (a JSON document with caching headers, a
// redirect, an oversized or wrongly typed body, or no answer at all), and
// every request is counted per path so tests can tell a cached document from
// a refetched one.
import http from "node:http";

export async function startDocumentServer() {
  const routes = new Map();
  const hits = new Map();
  const open = new Set();
  const srv = http.createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (!route) return res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    if (route.hang) {
      // Never answers: the caller must give up on its own clock.
      open.add(res);
      res.on("close", () => open.delete(res));
      return;
    }
    const headers = { "content-type": "application/json", ...(route.headers ?? {}) };
    const body = typeof route.body === "string" || Buffer.isBuffer(route.body) ? route.body : JSON.stringify(route.body ?? {});
    res.writeHead(route.status ?? 200, headers).end(body);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${srv.address().port}`;
  return {
    origin,
    /** The client_id URL of `path`. */
    url: (path) => origin + path,
    /** Serve `path` as `route` ({status, headers, body, hang}). */
    route(path, route) {
      routes.set(path, route);
      return origin + path;
    },
    hits: (path) => hits.get(path) ?? 0,
    async close() {
      for (const res of open) res.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

/** A client metadata document for `clientId`, as an MCP client publishes one. */
export function clientDocument(clientId, extra = {}) {
  return {
    client_id: clientId,
    client_name: "Example MCP Client",
    client_uri: "https://mcp-client.example/",
    redirect_uris: ["http://localhost:3000/callback"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
    scope: "profile:read posts:read",
    ...extra,
  };
}
