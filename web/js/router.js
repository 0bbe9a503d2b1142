// router.js — the address bar's hash as a route: `#/friends` or `#/chat/<chat id>`.

/** @typedef {import('./types.js').Route} Route */

/** @param {string} hash @returns {Route | null} null when the hash names nothing */
export function parseRoute(hash) {
  const m = /^#\/chat\/(.+)$/.exec(hash);
  if (m) {
    try {
      return { name: 'chat', chat_id: decodeURIComponent(m[1]) };
    } catch {
      return null;
    }
  }
  if (hash === '#/friends') return { name: 'friends' };
  return null;
}

/** @param {Route} route */
export function routeHash(route) {
  return route.name === 'chat' ? `#/chat/${encodeURIComponent(route.chat_id)}` : '#/friends';
}

/** @param {Route} a @param {Route} b */
export function sameRoute(a, b) {
  return routeHash(a) === routeHash(b);
}
