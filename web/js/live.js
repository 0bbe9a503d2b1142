// live.js — what the client does with the gateway's `ready` and events.

import { parseChat, parseUser, chatOf, chatIdOf, messageOf } from './model.js';
import { setChats, upsertChat, removeChat, countUnread, openChatId } from './store.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./timeline.js').Timelines} Timelines */
/** @typedef {import('./outbox.js').Outbox} Outbox */

/**
 * @param {{
 *   store: Store,
 *   timelines: Timelines,
 *   outbox: Outbox,
 *   refreshFriends: () => void,
 *   refreshChats: () => void,
 * }} deps
 */
export function createLive({ store, timelines, outbox, refreshFriends, refreshChats }) {
  /** @param {any} d */
  function onReady(d) {
    store.update((s) => {
      if (d?.user) s.me = parseUser(d.user);
      if (Array.isArray(d?.chats)) setChats(s, d.chats.map(parseChat));
    });
    if (!Array.isArray(d?.chats)) refreshChats();
    // Whatever happened while disconnected: friend changes, messages, unsent messages.
    refreshFriends();
    timelines.resyncAll();
    outbox.retryAll();
  }

  /** The gateway may have missed events (its bus reconnected): fetch what changed. */
  function onCatchUp() {
    refreshFriends();
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
        if (chatId) store.update((s) => removeChat(s, chatId));
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
          store.update((s) => countUnread(s, m, reading));
        }
        timelines.receive(m);
        break;
      }
      default:
        break; // typing and anything added later
    }
  }

  return { onReady, onEvent, onCatchUp };
}
