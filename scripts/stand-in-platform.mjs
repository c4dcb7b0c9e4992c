// A stand-in for the platform's own login page, for delegated sign-in
// (`SIGNIN_MODE=delegated`) in local development and in the tests. It plays
// what a SaaS platform's app does: it owns the login page at LOGIN_URL, signs
// people in against *its own* user table, then accepts the login challenge
// server-to-server with the admin token and sends the browser to `redirect_to`
// (docs/operators.md "Run it for your platform").
//
//   node scripts/stand-in-platform.mjs [--server http://127.0.0.1:8787] [--port 8788] [FILE]
//
// FILE is a platform document (default fixtures/platform.json); its users and
// passwords are the platform's accounts. The admin token comes from
// $PLATFORM_ADMIN_TOKEN, else .dev.vars. Development only: plain http on loopback.
import http from "node:http";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { adminToken } from "./provision.mjs";

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const same = (a, b) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function page(challenge, message = "") {
  return `<!doctype html><meta charset="utf-8"><title>Platform sign-in</title>
<style>body{font:16px system-ui;max-width:22rem;margin:4rem auto}input,button{font:inherit;margin:.3rem 0;width:100%}</style>
<h1>Example Platform</h1><p>Sign in with your platform account.</p>
${message ? `<p role="alert">${esc(message)}</p>` : ""}
<form method="post" action="/login">
<input type="hidden" name="login_challenge" value="${esc(challenge)}">
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button name="action" value="accept">Sign in</button>
<button name="action" value="deny" formnovalidate>Cancel</button>
</form>`;
}

/**
 * Start the stand-in platform. `server`: the authorization server's origin;
 * `users`: [{external_id, email, password}] the platform's own accounts.
 * Resolves to { url (the LOGIN_URL), close(), accepted: [...] }.
 */
export function startStandInPlatform({ server, adminToken: token, users, port = 0, host = "127.0.0.1" }) {
  const accepted = [];
  const call = (verb, challenge, body) =>
    fetch(`${server}/admin/v1/login/${verb}?login_challenge=${encodeURIComponent(challenge)}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const srv = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://platform.local");
    const send = (status, headers, body = "") => {
      res.writeHead(status, { "cache-control": "no-store", ...headers });
      res.end(body);
    };
    try {
      if (url.pathname !== "/login") return send(404, { "content-type": "text/plain" }, "not found");
      if (req.method === "GET") {
        return send(200, { "content-type": "text/html; charset=utf-8" }, page(url.searchParams.get("login_challenge") ?? ""));
      }
      if (req.method !== "POST") return send(405, { allow: "GET, POST" });
      let raw = "";
      for await (const chunk of req) {
        raw += chunk;
        if (raw.length > 16384) return send(413, {});
      }
      const f = new URLSearchParams(raw);
      const challenge = f.get("login_challenge") ?? "";
      if (f.get("action") === "deny") {
        const r = await call("reject", challenge, { error_description: "the user cancelled the sign-in" });
        const body = await r.json();
        return r.ok ? send(302, { location: body.redirect_to }) : send(400, { "content-type": "application/json" }, JSON.stringify(body));
      }
      const user = users.find((u) => u.email.toLowerCase() === (f.get("email") ?? "").toLowerCase());
      if (!user || !user.password || !same(user.password, f.get("password") ?? "")) {
        return send(401, { "content-type": "text/html; charset=utf-8" }, page(challenge, "Wrong email or password."));
      }
      const r = await call("accept", challenge, { external_id: user.external_id });
      const body = await r.json();
      if (!r.ok) return send(400, { "content-type": "application/json" }, JSON.stringify(body));
      accepted.push(user.external_id);
      return send(302, { location: body.redirect_to });
    } catch (e) {
      return send(502, { "content-type": "text/plain" }, `platform error: ${e.message}`);
    }
  });
  return new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, host, () =>
      resolve({
        url: `http://${host}:${srv.address().port}/login`,
        accepted,
        close: () => new Promise((r) => srv.close(r)),
      }),
    );
  });
}

// Run as a command (make dev SIGNIN=delegated).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : dflt;
  };
  const server = opt("--server", "http://127.0.0.1:8787");
  const port = Number(opt("--port", "8788"));
  const file = args[0] ?? "fixtures/platform.json";
  const token = process.env.PLATFORM_ADMIN_TOKEN || adminToken(".dev.vars");
  if (!token) throw new Error("no admin token: set PLATFORM_ADMIN_TOKEN or run make dev once (it writes .dev.vars)");
  const users = JSON.parse(readFileSync(file, "utf8")).users ?? [];
  const p = await startStandInPlatform({ server, adminToken: token, users, port });
  console.log(`stand-in platform: login page at ${p.url} (accounts from ${file})`);
}
