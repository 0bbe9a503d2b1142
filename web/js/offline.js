// offline.js — what the device keeps so the app opens without a network: a snapshot of the
// chats, their newest messages and the messages still to send, in IndexedDB, one per user,
// written a moment after each change and deleted on logging out. And the service worker,
// which keeps the app's own files (sw.js).

import { snapshotOf } from './store.js';

/** @typedef {import('./types.js').Snapshot} Snapshot */
/** @typedef {import('./types.js').State} State */

const DB = 'astral';
const STORE = 'snapshots';
/** Changes within this long are saved together. */
const SAVE_AFTER_MS = 1000;

/** @returns {Promise<IDBDatabase | null>} null where IndexedDB is unavailable (private modes) */
function open() {
  return new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
}

/** @template T @param {'readonly' | 'readwrite'} mode @param {(s: IDBObjectStore) => IDBRequest<T>} op @returns {Promise<T | null>} */
async function run(mode, op) {
  const db = await open();
  if (!db) return null;
  return new Promise((resolve) => {
    const tx = db.transaction(STORE, mode);
    const req = op(tx.objectStore(STORE));
    tx.oncomplete = () => {
      db.close();
      resolve(req.result ?? null);
    };
    tx.onerror = tx.onabort = () => {
      db.close();
      resolve(null);
    };
  });
}

/** The snapshot kept for `userId`, if any. @param {string} userId @returns {Promise<Snapshot | null>} */
export function loadSnapshot(userId) {
  return run('readonly', (s) => s.get(userId));
}

/** Forgets what the device kept for `userId` (logging out). @param {string} userId */
export async function forgetSnapshot(userId) {
  await run('readwrite', (s) => s.delete(userId));
}

/**
 * Keeps the signed-in user's snapshot up to date: saved a moment after changes, only once
 * the chat list came from the server (never a snapshot of a snapshot).
 * @param {{ subscribe: (l: (s: State) => void) => void }} store
 */
export function keepSnapshots(store) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  /** @type {State | null} */
  let latest = null;
  store.subscribe((s) => {
    latest = s;
    if (timer || !s.me || !s.chats_loaded || s.saved_at) return;
    timer = setTimeout(() => {
      timer = null;
      const s = latest;
      if (!s?.me || !s.chats_loaded || s.saved_at) return;
      const snap = snapshotOf(s, new Date().toISOString());
      void run('readwrite', (st) => st.put(snap, /** @type {string} */ (s.me?.id)));
    }, SAVE_AFTER_MS);
  });
}

/** Registers the service worker that keeps the app's files for opening offline. */
export function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => {
    // No offline start, but the app works: nothing to tell the user.
  });
}
