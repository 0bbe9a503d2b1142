// router.js — the address bar's hash as a route: `#/friends`, `#/search`, `#/chat/<chat id>`,
// or `#/chat/<chat id>/m/<message id>` (a message shown in its place in the history).

/** @typedef {import('./types.js').Route} Route */

/** @param {string} hash @returns {Route | null} null when the hash names nothing */
export function parseRoute(hash) {
  const m = /^#\/chat\/([^/]+)(?:\/m\/([^/]+))?$/.exec(hash);
  if (m) {
    try {
      const chat_id = decodeURIComponent(m[1]);
      return m[2] ? { name: 'chat', chat_id, message_id: decodeURIComponent(m[2]) } : { name: 'chat', chat_id };
    } catch {
      return null;
    }
  }
  if (hash === '#/friends') return { name: 'friends' };
  if (hash === '#/search') return { name: 'search' };
  return null;
}

/** @param {Route} route */
export function routeHash(route) {
  if (route.name === 'chat') {
    const chat = `#/chat/${encodeURIComponent(route.chat_id)}`;
    return route.message_id ? `${chat}/m/${encodeURIComponent(route.message_id)}` : chat;
  }
  return route.name === 'search' ? '#/search' : '#/friends';
}

/** @param {Route} a @param {Route} b */
export function sameRoute(a, b) {
  return routeHash(a) === routeHash(b);
}
