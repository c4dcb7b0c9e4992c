// The test browser's cookie jar (`Browser` in support.mjs).
/**
 * The cookies of one browser, kept and sent as RFC 6265 (and SameSite) has a
 * browser do it: one cookie per name and path, sent only to paths under its
 * own (most specific first), a `Max-Age=0` or empty value deletes it, and a
 * cross-site request carries no `SameSite=Strict` cookie and `Lax` ones only
 * on a GET navigation. A jar that sent every cookie everywhere hid a binding
 * cookie that never reached /oauth/authorize (issue 15 §8).
 * `get`/`set`/`delete`/iteration by name keep the Map-like use of the tests;
 * `set` plants a cookie on `/` unless told otherwise.
 */
export class CookieJar {
  #all = new Map(); // `${name};${path}` -> { name, value, path, sameSite }
  get size() {
    return this.#all.size;
  }
  get(name) {
    return this.#matching(null).find((c) => c.name === name)?.value;
  }
  has(name) {
    return this.get(name) !== undefined;
  }
  set(name, value, { path = "/", sameSite = "lax" } = {}) {
    this.#all.set(`${name};${path}`, { name, value, path, sameSite });
    return this;
  }
  delete(name) {
    let any = false;
    for (const [k, c] of this.#all) if (c.name === name) any = this.#all.delete(k);
    return any;
  }
  *[Symbol.iterator]() {
    for (const c of this.#all.values()) yield [c.name, c.value];
  }
  /** The cookies stored with their attributes (for assertions). */
  entries() {
    return [...this.#all.values()].map((c) => ({ ...c }));
  }
  /** Keep a `Set-Cookie` line received in answer to a request for `requestPath`. */
  store(line, requestPath) {
    const [pair, ...attrs] = line.split(";");
    const i = pair.indexOf("=");
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    let path = null, sameSite = "lax", gone = !value;
    for (const a of attrs) {
      const j = a.indexOf("=");
      const key = (j < 0 ? a : a.slice(0, j)).trim().toLowerCase();
      const v = j < 0 ? "" : a.slice(j + 1).trim();
      if (key === "path" && v.startsWith("/")) path = v;
      if (key === "samesite") sameSite = v.toLowerCase();
      if (key === "max-age" && Number(v) <= 0) gone = true;
      if (key === "expires" && Date.parse(v) <= Date.now()) gone = true;
    }
    // RFC 6265 §5.1.4: without a Path, the request path's directory.
    if (path === null) path = requestPath.lastIndexOf("/") > 0 ? requestPath.slice(0, requestPath.lastIndexOf("/")) : "/";
    if (gone) this.#all.delete(`${name};${path}`);
    else this.#all.set(`${name};${path}`, { name, value, path, sameSite });
  }
  /** The Cookie header for a request to `requestPath` (`null`: every path). */
  header(requestPath, { crossSite = false, method = "GET" } = {}) {
    return this.#matching(requestPath)
      .filter((c) => !crossSite || c.sameSite === "none" || (c.sameSite === "lax" && ["GET", "HEAD"].includes(method)))
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }
  #matching(requestPath) {
    const under = (p, cp) => p === cp || (p.startsWith(cp) && (cp.endsWith("/") || p[cp.length] === "/"));
    return [...this.#all.values()]
      .filter((c) => requestPath === null || under(requestPath, c.path))
      .sort((a, b) => b.path.length - a.path.length);
  }
}
