// live.js — what the client does with the gateway's `ready` and events.

import { parseChat, parseUser, chatOf, chatIdOf, messageOf, presenceEventOf, readEventOf, parseSettings } from './model.js';
import { NO_ANSWER } from './api.js';
import { setChats, upsertChat, removeChat, countUnread, openChatId, startTyping, stopTyping, pruneTyping, TYPING_MS, setPresence, moveReadMarker, mergeSettings } from './store.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./timeline.js').Timelines} Timelines */
/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('./types.js').Message} Message */

/**
 * @param {{
 *   store: Store,
 *   timelines: Timelines,
 *   outbox: Outbox,
 *   refreshFriends: () => void,
 *   refreshChats: () => void,
 *   refreshBlocks: () => void,
 *   refreshSettings: () => void,
 *   onIncoming: (m: Message) => void,
 *   onChatLost: (chat: import('./types.js').Chat, wasOpen: boolean) => void,
 * }} deps
 * `onIncoming` hears of each new message from someone else (for notifications);
 * `onChatLost` of a chat the user knew and no longer belongs to (removed, or deleted;
 * leaving forgets the chat first), and whether it was on screen.
 */
export function createLive({ store, timelines, outbox, refreshFriends, refreshChats, refreshBlocks, refreshSettings, onIncoming, onChatLost }) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let typingTimer;

  /** Forgets typists whose time ran out, and comes back for the next. */
  function expireTyping() {
    clearTimeout(typingTimer);
    typingTimer = undefined;
    const now = Date.now();
    if (pruneTyping(store.state, now)) store.update(() => {});
    let next = Infinity;
    for (const m of store.state.typing.values()) for (const t of m.values()) next = Math.min(next, t.until);
    if (next !== Infinity) typingTimer = setTimeout(expireTyping, Math.max(50, next - now + 20));
  }

  /** @param {any} d */
  function onReady(d) {
    store.update((s) => {
      if (s.notice === NO_ANSWER) s.notice = null; // the server answers again
      if (d?.user) s.me = parseUser(d.user);
      if (Array.isArray(d?.chats)) setChats(s, d.chats.map(parseChat));
    });
    if (!Array.isArray(d?.chats)) refreshChats();
    // Whatever happened while disconnected: friend changes (and presence), settings changed on
    // another device, messages, unsent messages.
    refreshFriends();
    refreshBlocks();
    refreshSettings();
    timelines.resyncAll();
    outbox.flush();
  }

  /** The gateway may have missed events (its bus reconnected): fetch what changed. */
  function onCatchUp() {
    refreshFriends();
    refreshBlocks();
    refreshSettings();
    refreshChats();
    timelines.resyncAll();
  }

  /** @param {string} type @param {any} d */
  function onEvent(type, d) {
    switch (type) {
      case 'friend_request.created':
      case 'friend_request.declined':
      case 'friend_request.cancelled':
        refreshFriends();
        break;
      case 'friend_request.accepted':
      case 'friend.removed':
        // (Blocking someone also ends the friendship: the blocked list may have changed too.)
        if (type === 'friend.removed') refreshBlocks();
        // Becoming friends reopens an old direct chat; unfriending makes it read only.
        refreshFriends();
        refreshChats();
        break;
      case 'chat.created':
      case 'chat.updated': {
        const chat = chatOf(d);
        if (chat.id) store.update((s) => upsertChat(s, chat));
        else refreshChats();
        break;
      }
      case 'chat.deleted': {
        const chatId = chatIdOf(d);
        if (!chatId) break;
        const wasOpen = openChatId(store.state) === chatId;
        const lost = store.state.chats.get(chatId);
        store.update((s) => removeChat(s, chatId));
        if (lost) onChatLost(lost, wasOpen);
        break;
      }
      case 'message.created':
      case 'message.updated':
      case 'message.deleted': {
        const m = messageOf(d);
        if (!m.id || !m.chat_id) break;
        if (!store.state.chats.has(m.chat_id)) refreshChats(); // a chat this client has not heard of yet
        if (type === 'message.created') {
          const reading = openChatId(store.state) === m.chat_id && document.visibilityState === 'visible';
          const chat = store.state.chats.get(m.chat_id);
          const isNew = !!chat && !m.system && m.author_id !== store.state.me?.id && m.version > chat.last_seq;
          store.update((s) => {
            countUnread(s, m, reading);
            stopTyping(s, m.chat_id, m.author_id);
          });
          if (isNew) onIncoming(m);
        }
        timelines.receive(m);
        break;
      }
      case 'typing.started': {
        const chatId = chatIdOf(d);
        const user = parseUser(d?.user);
        if (!chatId || !user.id) break;
        store.update((s) => startTyping(s, chatId, user, Date.now()));
        if (!typingTimer) typingTimer = setTimeout(expireTyping, TYPING_MS + 20);
        break;
      }
      case 'presence.updated': {
        const { user_id, presence } = presenceEventOf(d);
        if (user_id) store.update((s) => setPresence(s, user_id, presence));
        break;
      }
      case 'read.updated': {
        const r = readEventOf(d);
        // Only a marker that moved forward changes the page ("Seen" under a message).
        if (moveReadMarker(store.state, r.chat_id, r.user_id, r.seq)) store.update(() => {});
        break;
      }
      case 'settings.updated': {
        // Changed on another device of the user's; the read markers shown change with sharing.
        let receiptsChanged = false;
        store.update((s) => {
          receiptsChanged = mergeSettings(s, parseSettings(d));
        });
        if (receiptsChanged) refreshChats();
        break;
      }
      default:
        break; // anything added later
    }
  }

  return { onReady, onEvent, onCatchUp };
}
