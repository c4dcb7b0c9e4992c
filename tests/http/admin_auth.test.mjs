// The back office (/admin/v1/): off (404) without PLATFORM_ADMIN_TOKEN, and
// otherwise only for that token; never CORS.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./support.mjs";

const TOKEN = "adm_test_0123456789abcdefghijklmnopqrstuvwxyz";
const servers = [];
after(() => Promise.all(servers.map((s) => s.close())));

test("without PLATFORM_ADMIN_TOKEN the back office does not exist", async () => {
  const s = await startServer({ PLATFORM_ADMIN_TOKEN: "" });
  servers.push(s);
  const res = await s.fetch("/admin/v1/orgs", { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 404);
});

test("the back office needs the admin token, compared exactly, and sends no CORS", async () => {
  const s = await startServer({ PLATFORM_ADMIN_TOKEN: TOKEN });
  servers.push(s);
  for (const auth of [undefined, "Bearer nope", `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`]) {
    const res = await s.fetch("/admin/v1/orgs", { headers: auth ? { authorization: auth } : {} });
    assert.equal(res.status, 401, String(auth));
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  }
  const ok = await s.fetch("/admin/v1/no-such-thing", { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(ok.status, 404);
  assert.equal(ok.headers.get("access-control-allow-origin"), null);
  // The token never reaches the log.
  assert.ok(!s.log.lines.some((l) => l.includes(TOKEN)));
});

test("a short PLATFORM_ADMIN_TOKEN is a configuration error", async () => {
  const s = await startServer({ PLATFORM_ADMIN_TOKEN: "short" });
  servers.push(s);
  assert.equal((await s.fetch("/health")).status, 500);
});

test("failed admin tokens are limited per source address; the right token and other sources are not locked out", async () => {
  const s = await startServer({ PLATFORM_ADMIN_TOKEN: TOKEN, CLIENT_AUTH_MAX_FAILURES: "5" });
  servers.push(s);
  const call = (token, ip) =>
    s.fetch("/admin/v1/orgs", { headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": ip } });
  for (let i = 0; i < 5; i++) assert.equal((await call("wrong-token", "203.0.113.9")).status, 401);
  const limited = await call("wrong-token", "203.0.113.9");
  assert.equal(limited.status, 429);
  assert.match(limited.headers.get("retry-after") ?? "", /^\d+$/);
  // The right token is checked first: others' failures never refuse it (issue 15 §12).
  assert.equal((await call(TOKEN, "203.0.113.9")).status, 200);
  // The same /64 is the same source.
  assert.equal((await call(TOKEN, "2001:db8:1:2::1")).status, 200);
  for (let i = 0; i < 5; i++) await call("wrong-token", "2001:db8:1:2::1");
  assert.equal((await call("wrong-token", "2001:db8:1:2:ffff::7")).status, 429);
  assert.equal((await call(TOKEN, "2001:db8:1:2:ffff::7")).status, 200);
  // The platform's own servers elsewhere go on working.
  assert.equal((await call(TOKEN, "198.51.100.20")).status, 200);
});
