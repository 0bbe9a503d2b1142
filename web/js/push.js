// push.js — Web Push: the server sends new messages to this browser's push service, and the
// service worker (sw.js) shows them, even with Astral closed. The browser's permission is
// asked only when the user turns notifications on (a click), never when the page loads.

/** @typedef {'on' | 'off' | 'blocked' | 'unsupported'} PushState */

/** @typedef {{ endpoint: string, keys: { p256dh: string, auth: string } }} PushSubscriptionInfo */

/**
 * What turning push on needs from the server: its public key, and where to send the
 * subscription.
 * @typedef {{ key: () => Promise<string>, add: (sub: PushSubscriptionInfo) => Promise<void> }} PushServer
 */

/** Whether this browser can receive pushes here (a secure page with a service worker). */
export function pushSupported() {
  return (
    typeof window !== 'undefined' &&
    window.isSecureContext &&
    'serviceWorker' in navigator &&
    'PushManager' in window &&
    typeof Notification === 'function'
  );
}

/** A base64url key (the server's VAPID key) as bytes. @param {string} key */
export function keyBytes(key) {
  const b64 = key.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
}

/** @param {ArrayBuffer | null} a @param {Uint8Array} b */
function sameKey(a, b) {
  if (!a || a.byteLength !== b.length) return false;
  const bytes = new Uint8Array(a);
  return bytes.every((x, i) => x === b[i]);
}

/** This browser's subscription, if it has one (none without a service worker). */
async function currentSubscription() {
  const reg = await navigator.serviceWorker.getRegistration();
  return reg ? reg.pushManager.getSubscription() : null;
}

/** Whether notifications come to this browser now, and if not whether they can. @returns {Promise<PushState>} */
export async function pushState() {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'blocked';
  if (Notification.permission !== 'granted') return 'off';
  try {
    return (await currentSubscription()) ? 'on' : 'off';
  } catch {
    return 'off';
  }
}

/** Asks the browser's permission (the promise form, or what the permission is afterwards). */
async function askPermission() {
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission; // an old browser without the promise form
  }
}

/**
 * Turns notifications on for this browser: the permission (asked now), a subscription with the
 * push service for the server's key, and the server told where to send. Call from a click.
 * @param {PushServer} server @returns {Promise<PushState>}
 */
export async function turnOnPush(server) {
  if (!pushSupported()) return 'unsupported';
  const permission = await askPermission();
  if (permission !== 'granted') return permission === 'denied' ? 'blocked' : 'off';
  const reg = await navigator.serviceWorker.getRegistration();
  if (!reg) throw new Error('Notifications need Astral’s offline files, which are not installed yet: reload the page and try again.');
  const key = keyBytes(await server.key());
  let sub = await reg.pushManager.getSubscription();
  // One made for another key (the server's changed) cannot take this one's pushes.
  if (sub && !sameKey(sub.options.applicationServerKey, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = sub.toJSON();
  try {
    await server.add({ endpoint: json.endpoint ?? sub.endpoint, keys: { p256dh: json.keys?.p256dh ?? '', auth: json.keys?.auth ?? '' } });
  } catch (e) {
    await sub.unsubscribe().catch(() => false); // not half on: the server would never push to it
    throw e;
  }
  return 'on';
}

/**
 * Turns notifications off for this browser: the server forgets the subscription (when it can
 * still be asked: `remove` is null once signed out), then the push service does.
 * @param {((endpoint: string) => Promise<void>) | null} remove
 */
export async function turnOffPush(remove) {
  if (!pushSupported()) return;
  const sub = await currentSubscription().catch(() => null);
  if (!sub) return;
  // Unsubscribed anyway: the push service then refuses the server's pushes, which tells it too.
  if (remove) await remove(sub.endpoint).catch(() => {});
  await sub.unsubscribe().catch(() => false);
}
