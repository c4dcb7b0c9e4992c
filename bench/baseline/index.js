// The baseline of `make bench`: what the runtime costs with no OAuth at all.
// /floor answers JSON with no storage (/floor-log also writes a log line); /d1 does one indexed D1 read, the
// least a server that keeps its tokens in D1 can do per request.
// What a server that logs one JSON line per request (as ours must) pays.
function log(req, started) {
  console.log(JSON.stringify({ route: "baseline", method: req.method, status: 200, ms: Date.now() - started, app: null, org: null }));
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname === "/floor") return Response.json({ ok: true });
    if (url.pathname === "/floor-log") {
      log(req, Date.now());
      return Response.json({ ok: true });
    }
    if (url.pathname === "/d1" || url.pathname === "/d1-log") {
      const started = Date.now();
      const k = `key-${url.searchParams.get("k") ?? "0"}`;
      const row = await env.DB.prepare("SELECT k, v FROM t WHERE k = ?1").bind(k).first();
      if (url.pathname === "/d1-log") log(req, started);
      return row ? Response.json(row) : new Response("missing", { status: 404 });
    }
    if (url.pathname === "/setup" && req.method === "POST") {
      await env.DB.prepare("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL)").run();
      const stmts = [];
      for (let i = 0; i < 1000; i++) stmts.push(env.DB.prepare("INSERT OR REPLACE INTO t VALUES (?1, ?2)").bind(`key-${i}`, "x".repeat(64)));
      await env.DB.batch(stmts);
      return new Response("ok");
    }
    return new Response("not found", { status: 404 });
  },
};
