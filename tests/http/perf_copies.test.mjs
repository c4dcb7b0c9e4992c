// The public worker's entry answers discovery documents from a per-isolate
// copy once the worker has marked one (issue 18 item 2): the same status,
// headers and body as the worker's own answer, never the internal mark, a
// log line for every request, and nothing but a 200 GET is ever copied.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./support.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.close();
});

const lines = () => server.log.lines.map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
const headersOf = (res) => [...res.headers].filter(([k]) => k !== "date").sort();

for (const [path, route] of [
  ["/.well-known/oauth-authorization-server", "metadata"],
  ["/.well-known/openid-configuration", "openid_configuration"],
  ["/.well-known/jwks.json", "jwks"],
  ["/.well-known/oauth-protected-resource/api/v1", "resource_metadata"],
]) {
  test(`${route}: the second GET is the entry's copy, byte for byte, and logged`, async () => {
    const first = await server.fetch(path);
    assert.equal(first.status, 200);
    const n = lines().length;
    const second = await server.fetch(path);
    assert.equal(second.status, 200);
    assert.deepEqual(headersOf(second), headersOf(first));
    assert.equal(await second.text(), await first.text());
    for (const res of [first, second]) assert.equal(res.headers.get("x-edge-oauth-copy"), null, "the mark never leaves the worker");
    const line = lines().slice(n).find((l) => l.route === route);
    assert.deepEqual(
      { ...line, ms: 0 },
      { route, method: "GET", status: 200, ms: 0, app: null, org: null, d1: 0, deferred: 0, error: null, copy: true },
    );
    // HEAD is answered by the worker (no body), never from the copy.
    const head = await server.fetch(path, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    assert.notEqual(lines().filter((l) => l.route === route && l.method === "HEAD").at(-1)?.copy, true);
  });
}

test("errors and other routes are never copied: a 404 under /.well-known stays the worker's answer", async () => {
  for (let i = 0; i < 2; i++) {
    const res = await server.fetch("/.well-known/oauth-protected-resource/nothing-here");
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("x-edge-oauth-copy"), null);
  }
  assert.ok(!lines().some((l) => l.copy === true && l.status !== 200));
});
