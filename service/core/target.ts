/**
 * One view of a request target for routing, admission, metering and tracing alike: the path of
 * an origin-form (`/v1/chat/completions?x=1`) or absolute-form (`http://host/v1/...`) target,
 * and the key a route table is looked up by (case and one trailing slash folded, as the Express
 * routes match them).
 */

const ABSOLUTE = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/** The path of a request target, without its query (absolute-form: without its scheme and authority). */
export function targetPath(url: string): string {
  let path = url;
  if (path.charCodeAt(0) !== 47 /* / */) {
    const m = ABSOLUTE.exec(path);
    if (m) path = path.slice(m[0].length) || '/';
  }
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** The key a route table is looked up by: lower case, without one trailing slash. */
export function routeKey(path: string): string {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return p.toLowerCase();
}
