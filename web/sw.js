// sw.js — the service worker: keeps the app's own files (the page, its styles, scripts and
// icons) so the app opens at once, and without a network. The gateway writes the version of
// the whole client below; any change to any file is a new worker, which copies every file of
// the new version at install and then replaces the old copy at once, so one version is never
// mixed with another. The API, the WebSocket and anything from another origin are never
// touched.

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
