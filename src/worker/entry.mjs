// The public worker's entry (scripts/build.sh puts it at build/index.js and
// the generated wasm-bindgen entry beside it as inner.mjs). Discovery documents
// (RFC 8414 and OpenID metadata, the JWK set, RFC 9728 resource metadata) are
// fetched by every client and change only with the configuration and the
// scope catalogue: once the worker has answered one with a 200 and marked it
// `x-edge-oauth-copy: <route> <seconds>`, this isolate answers the same GET
// URL from its copy for that long without entering wasm, and writes the same
// log line the worker would (the operator's evidence), flagged `"copy":true`.
// The worker marks a document listing scopes for no longer than its own
// copy of the catalogue lives (a minute), the JWK set for the isolate's life.
import Inner from "./inner.mjs";

const MARK = "x-edge-oauth-copy";
// Copies are per URL (the origin and path decide a document); past the bound
// they are all dropped, so odd query strings cannot grow the isolate's memory.
const MAX = 16;
const copies = new Map();

export default class extends Inner {
  async fetch(request) {
    if (request.method === "GET") {
      const hit = copies.get(request.url);
      if (hit !== undefined) {
        if (Date.now() < hit.until) {
          console.log(hit.line);
          return new Response(hit.body, { headers: hit.headers });
        }
        copies.delete(request.url);
      }
    }
    const response = await super.fetch(request);
    const mark = response.headers.get(MARK);
    if (mark === null) return response;
    const headers = new Headers(response.headers);
    headers.delete(MARK);
    const body = await response.text();
    const [route, seconds] = mark.split(" ");
    if (request.method === "GET" && response.status === 200 && Number(seconds) > 0) {
      if (copies.size >= MAX) copies.clear();
      const line = JSON.stringify({ route, method: "GET", status: 200, ms: 0, app: null, org: null, d1: 0, deferred: 0, error: null, copy: true });
      copies.set(request.url, { until: Date.now() + Number(seconds) * 1000, headers: [...headers], body, line });
    }
    return new Response(body, { status: response.status, headers });
  }
}
