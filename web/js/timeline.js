// timeline.js — loads each chat's messages and keeps them complete: the latest page, older
// pages on scroll, catch-up with `after=` when a change may have been missed, and read markers.

import { receiveMessages, timelineOf, clearUnread, openChatId } from './store.js';
import { ApiError } from './api.js';

/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./store.js').Store} Store */

const PAGE = 50;
const CATCH_UP_PAGE = 100;
/** Pages of history loaded at most to show a message (2,500 messages back). */
const REVEAL_PAGES = 50;

/** The highest version among messages, or `floor`. @param {readonly Message[]} ms @param {number} floor */
function topVersion(ms, floor) {
  return ms.reduce((v, m) => Math.max(v, m.version), floor);
}

/** @param {{ api: Api, store: Store, onError: (e: unknown) => void }} deps */
export function createTimelines({ api, store, onError }) {
  /** @type {Set<string>} chats with a catch-up running */
  const syncing = new Set();
  /** @type {Map<string, number>} the last read marker sent per chat */
  const readSent = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let readTimer;

  /**
   * Fetches everything changed since the last version known, as often as needed until
   * nothing newer has been seen than what was fetched.
   * @param {string} chatId
   */
  async function catchUp(chatId) {
    const t = store.state.timelines.get(chatId);
    if (!t?.loaded || syncing.has(chatId)) return;
    syncing.add(chatId);
    try {
      for (let round = 0; round < 20; round++) {
        const after = timelineOf(store.state, chatId).known;
        const page = await api.messages(chatId, { after, limit: CATCH_UP_PAGE });
        store.update((s) => {
          const tl = timelineOf(s, chatId);
          receiveMessages(s, chatId, page);
          tl.known = topVersion(page, tl.known);
          tl.max_seen = Math.max(tl.max_seen, tl.known);
        });
        const tl = timelineOf(store.state, chatId);
        if (page.length < CATCH_UP_PAGE && tl.max_seen <= tl.known) break;
      }
    } catch (e) {
      onError(e);
    } finally {
      syncing.delete(chatId);
    }
    scheduleRead();
  }

  /** Loads the newest page of a chat the first time it is opened, else catches up. @param {string} chatId */
  async function open(chatId) {
    const t = timelineOf(store.state, chatId);
    if (t.loaded) return catchUp(chatId);
    if (t.loading) return;
    store.update(() => {
      t.loading = true;
    });
    try {
      const page = await api.messages(chatId, { limit: PAGE });
      store.update((s) => {
        const tl = timelineOf(s, chatId);
        tl.loading = false;
        tl.loaded = true;
        tl.has_more = page.length >= PAGE;
        receiveMessages(s, chatId, page);
        tl.known = topVersion(page, 0);
      });
      // Events that came in while the page was on its way may have skipped a version.
      const tl = timelineOf(store.state, chatId);
      if (tl.max_seen > tl.known) await catchUp(chatId);
    } catch (e) {
      store.update((s) => {
        timelineOf(s, chatId).loading = false;
      });
      // No such chat (or no longer one's own): the conversation says so in place.
      if (!(e instanceof ApiError && e.status === 404)) onError(e);
    }
    scheduleRead();
  }

  /** Loads the page before the oldest message held. @param {string} chatId */
  async function loadOlder(chatId) {
    const t = timelineOf(store.state, chatId);
    if (!t.loaded || !t.has_more || t.loading_older || t.items.length === 0) return;
    const before = t.items[0].seq;
    store.update(() => {
      t.loading_older = true;
    });
    try {
      const page = await api.messages(chatId, { before, limit: PAGE });
      store.update((s) => {
        const tl = timelineOf(s, chatId);
        tl.loading_older = false;
        tl.has_more = false; // lets the older page in below the current floor
        receiveMessages(s, chatId, page);
        tl.has_more = page.length >= PAGE;
      });
    } catch (e) {
      store.update((s) => {
        timelineOf(s, chatId).loading_older = false;
      });
      onError(e);
    }
  }

  /**
   * Opens a chat and loads its history back to `messageId` (a search result's), at most
   * [`REVEAL_PAGES`] pages: the history stays one piece from the newest message down.
   * @param {string} chatId @param {string} messageId
   */
  async function reveal(chatId, messageId) {
    await open(chatId);
    for (let page = 0; page < REVEAL_PAGES; page++) {
      const t = timelineOf(store.state, chatId);
      if (!t.loaded || !t.has_more || t.items.some((m) => m.id === messageId)) return;
      await loadOlder(chatId);
    }
  }

  /**
   * Takes a message from an event. A version more than one above the last known means a
   * change was missed: the open chat catches up now, others when they are next opened.
   * @param {Message} m
   */
  function receive(m) {
    store.update((s) => {
      const tl = timelineOf(s, m.chat_id);
      receiveMessages(s, m.chat_id, [m]);
      tl.max_seen = Math.max(tl.max_seen, m.version);
      if (tl.loaded && !tl.loading && !syncing.has(m.chat_id) && m.version === tl.known + 1) tl.known = m.version;
    });
    const tl = timelineOf(store.state, m.chat_id);
    if (tl.loaded && !tl.loading && tl.max_seen > tl.known && openChatId(store.state) === m.chat_id) void catchUp(m.chat_id);
    if (openChatId(store.state) === m.chat_id) scheduleRead();
  }

  /** After a reconnect: every chat whose messages are held catches up; the others load when opened. */
  function resyncAll() {
    for (const [chatId, t] of store.state.timelines) if (t.loaded) void catchUp(chatId);
  }

  /** Sends a read marker for the open chat (if the page is visible), at most twice a second. */
  function scheduleRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 400);
  }

  async function markRead() {
    const chatId = openChatId(store.state);
    if (!chatId || document.visibilityState !== 'visible') return;
    const t = store.state.timelines.get(chatId);
    const newest = t?.items.at(-1);
    if (!newest) return;
    const chat = store.state.chats.get(chatId);
    if ((readSent.get(chatId) ?? 0) >= newest.seq && !chat?.unread) return;
    readSent.set(chatId, newest.seq);
    store.update((s) => clearUnread(s, chatId));
    try {
      await api.markRead(chatId, newest.seq);
    } catch {
      readSent.delete(chatId); // try again next time
    }
  }

  return { open, reveal, loadOlder, catchUp, receive, resyncAll, scheduleRead };
}

/** @typedef {ReturnType<typeof createTimelines>} Timelines */
