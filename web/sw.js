// sw.js — the service worker: keeps the app's own files (the page, its styles, scripts and
// icons) so the app opens at once, and without a network. The gateway writes the version of
// the whole client below; any change to any file is a new worker, which copies every file of
// the new version at install and then replaces the old copy at once, so one version is never
// mixed with another. The API, the WebSocket and anything from another origin are never
// touched. It also shows the notifications the server pushes (push.js subscribes), and opens
// their chat when one is clicked.

const VERSION = '__WEB_VERSION__';
const CACHE = `astral-shell-${VERSION}`;

/** The page and every file it names (its preloaded modules, styles, icons, manifest). */
async function shellFiles() {
  const page = await fetch('./', { cache: 'no-cache' });
  const html = await page.text();
  const named = [...html.matchAll(/(?:href|src)="([^"#?]+)"/g)].map((m) => m[1]);
  return [...new Set(['./', 'js/main.js', ...named])];
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll((await shellFiles()).map((url) => new Request(url, { cache: 'no-cache' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

/** Whether a request is for one of the app's own files. @param {Request} request */
function isShell(request) {
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return false;
  const path = url.pathname.slice(new URL(self.registration.scope).pathname.length);
  return !/^(api|ws|healthz|readyz|metrics)(\/|$)/.test(path);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (!isShell(request)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // A page address (`/`, `/#/chat/…` arrive as `/`) is the page.
      const key = request.mode === 'navigate' ? './' : request;
      const kept = await cache.match(key, { ignoreSearch: true });
      if (kept) return kept;
      const fresh = await fetch(request);
      if (fresh.ok) await cache.put(key, fresh.clone());
      return fresh;
    })(),
  );
});

/** The app's windows (the page, whichever chat it shows; not the API's documentation). */
async function appWindows() {
  const app = new URL(self.registration.scope).pathname;
  const all = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  return all.filter((w) => new URL(w.url).pathname === app);
}

/**
 * A pushed message (`{"type":"message","chat_id","message_id","author_id","title","body"}`),
 * shown unless the user is looking at Astral already (the page tells of it itself). Chrome
 * may show a notice of its own for a push left unshown; rarely, and only while they read.
 */
self.addEventListener('push', (event) => {
  let d = null;
  try {
    d = event.data ? event.data.json() : null;
  } catch {
    return; // not ours to show
  }
  if (!d || d.type !== 'message' || !d.chat_id) return;
  event.waitUntil(
    (async () => {
      const windows = await appWindows();
      if (windows.some((w) => w.focused && w.visibilityState === 'visible')) return;
      await self.registration.showNotification(String(d.title || 'Astral'), {
        body: String(d.body || ''),
        // One per chat: a newer message replaces the one before.
        tag: `chat-${d.chat_id}`,
        data: { chat_id: String(d.chat_id), message_id: d.message_id ? String(d.message_id) : null },
        icon: new URL('favicon.svg', self.registration.scope).href,
      });
    })(),
  );
});

/**
 * A notification clicked: its chat, in the app's window if one is open (told by message, so
 * the page changes its route without loading again), else in a new one.
 */
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const chatId = event.notification.data && event.notification.data.chat_id;
  const route = chatId ? `#/chat/${encodeURIComponent(chatId)}` : '';
  event.waitUntil(
    (async () => {
      const windows = await appWindows();
      const win = windows.find((w) => w.focused) || windows.find((w) => w.visibilityState === 'visible') || windows[0];
      if (win) {
        await win.focus().catch(() => win); // focusing may be refused; the route still changes
        if (chatId) win.postMessage({ type: 'open-chat', chat_id: String(chatId) });
        return;
      }
      await self.clients.openWindow(new URL(route, self.registration.scope).href);
    })(),
  );
});
