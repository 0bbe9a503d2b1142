// store.js — the client's state, the changes made to it, and a tiny change notification.
// No DOM and no network here, so every rule can be unit-tested under node.

/** @typedef {import('./types.js').State} State */
/** @typedef {import('./types.js').Chat} Chat */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').Timeline} Timeline */
/** @typedef {import('./types.js').PendingMessage} PendingMessage */
/** @typedef {import('./types.js').FriendsList} FriendsList */

/** @returns {State} */
export function initialState() {
  return {
    me: null,
    route: { name: 'friends' },
    sidebar_open: false,
    connection: 'offline',
    chats: new Map(),
    chats_loaded: false,
    timelines: new Map(),
    pending: new Map(),
    activity: new Map(),
    friends: { friends: [], incoming: [], outgoing: [] },
    friends_loaded: false,
    notice: null,
  };
}

/** A state holder that tells its listeners, once per burst of changes, that something changed. */
export function createStore() {
  let state = initialState();
  /** @type {Set<(s: State) => void>} */
  const listeners = new Set();
  let scheduled = false;

  function notify() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      for (const l of listeners) l(state);
    });
  }

  return {
    get state() {
      return state;
    },
    /** Changes the state in place and schedules a render. @param {(s: State) => void} fn */
    update(fn) {
      fn(state);
      notify();
    },
    /** Back to nothing (log out). */
    reset() {
      state = initialState();
      notify();
    },
    /** @param {(s: State) => void} listener @returns {() => void} */
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** @typedef {ReturnType<typeof createStore>} Store */

/** @returns {Timeline} */
function emptyTimeline() {
  return { items: [], loaded: false, loading: false, loading_older: false, has_more: true, known: 0, max_seen: 0, preview: null };
}

/** The timeline of a chat, made empty if there is none yet. @param {State} s @param {string} chatId */
export function timelineOf(s, chatId) {
  let t = s.timelines.get(chatId);
  if (!t) {
    t = emptyTimeline();
    s.timelines.set(chatId, t);
  }
  return t;
}

/**
 * Merges messages into a list sorted by `seq`: one entry per id, the highest version wins.
 * Messages older than `floorSeq` are left out (they belong to history not loaded yet).
 * @param {readonly Message[]} items @param {readonly Message[]} incoming @param {number} [floorSeq]
 * @returns {Message[]}
 */
export function mergeMessages(items, incoming, floorSeq = -Infinity) {
  /** @type {Map<string, Message>} */
  const byId = new Map(items.map((m) => [m.id, m]));
  let changed = false;
  for (const m of incoming) {
    const old = byId.get(m.id);
    if (old ? m.version > old.version : m.seq >= floorSeq) {
      byId.set(m.id, m);
      changed = true;
    }
  }
  if (!changed) return /** @type {Message[]} */ (items);
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** @param {State} s */
export function setChats(s, /** @type {Chat[]} */ chats) {
  s.chats = new Map(chats.map((c) => [c.id, c]));
  s.chats_loaded = true;
}

/** @param {State} s @param {Chat} chat */
export function upsertChat(s, chat) {
  const old = s.chats.get(chat.id);
  // Keep the higher change count: an event may be older than what messages already told us.
  s.chats.set(chat.id, old ? { ...chat, last_seq: Math.max(chat.last_seq, old.last_seq) } : chat);
  if (!old && !s.activity.has(chat.id)) s.activity.set(chat.id, Date.now());
}

/** @param {State} s @param {string} chatId */
export function removeChat(s, chatId) {
  s.chats.delete(chatId);
  s.timelines.delete(chatId);
  s.activity.delete(chatId);
  for (const [nonce, p] of s.pending) if (p.chat_id === chatId) s.pending.delete(nonce);
  if (s.route.name === 'chat' && s.route.chat_id === chatId) s.route = { name: 'friends' };
}

/**
 * Takes messages from the server (a page, a catch-up, an event or a send's answer) into a chat.
 * Returns the messages that were new to the client (not seen before under that id).
 * @param {State} s @param {string} chatId @param {readonly Message[]} messages
 * @returns {Message[]}
 */
export function receiveMessages(s, chatId, messages) {
  const t = timelineOf(s, chatId);
  const known = new Set(t.items.map((m) => m.id));
  const fresh = messages.filter((m) => !known.has(m.id) && (!t.preview || m.id !== t.preview.id));
  if (t.loaded) {
    const floor = t.has_more && t.items.length > 0 ? t.items[0].seq : -Infinity;
    t.items = mergeMessages(t.items, messages, floor);
  }
  for (const m of messages) {
    if (m.nonce) s.pending.delete(m.nonce);
    if (!t.preview || m.seq > t.preview.seq || (m.id === t.preview.id && m.version > t.preview.version)) {
      t.preview = m;
      if (!m.deleted) s.activity.set(chatId, Date.parse(m.created_at) || Date.now());
    }
  }
  const chat = s.chats.get(chatId);
  if (chat) {
    const top = Math.max(chat.last_seq, ...messages.map((m) => m.version));
    if (top !== chat.last_seq) s.chats.set(chatId, { ...chat, last_seq: top });
  }
  return fresh;
}

/**
 * Counts a newly created message as unread unless it is one's own or the chat is being read.
 * `message.created` can arrive more than once, so a message at or below the chat's known
 * change count is not counted again. Call before `receiveMessages`.
 * @param {State} s @param {Message} m @param {boolean} reading
 */
export function countUnread(s, m, reading) {
  const chat = s.chats.get(m.chat_id);
  if (!chat || reading || m.author_id === s.me?.id || m.deleted) return;
  if (m.version <= chat.last_seq) return;
  s.chats.set(chat.id, { ...chat, unread: chat.unread + 1 });
}

/** @param {State} s @param {string} chatId */
export function clearUnread(s, chatId) {
  const chat = s.chats.get(chatId);
  if (chat && chat.unread !== 0) s.chats.set(chatId, { ...chat, unread: 0 });
}

/** @param {State} s @param {PendingMessage} p */
export function putPending(s, p) {
  s.pending.set(p.nonce, p);
  s.activity.set(p.chat_id, Date.now());
}

/** Pending messages of one chat, oldest first. @param {State} s @param {string} chatId */
export function pendingOf(s, chatId) {
  return [...s.pending.values()].filter((p) => p.chat_id === chatId);
}

/** Chats by latest activity; chats with none known keep the server's order. @param {State} s */
export function sortedChats(s) {
  const order = [...s.chats.values()];
  return order
    .map((c, i) => ({ c, i, at: s.activity.get(c.id) ?? -Infinity }))
    .sort((a, b) => (b.at === a.at ? a.i - b.i : b.at - a.at))
    .map((x) => x.c);
}

/** @param {State} s */
export function totalUnread(s) {
  let n = 0;
  for (const c of s.chats.values()) n += c.unread;
  return n;
}

/** The chat on screen, if any. @param {State} s */
export function openChatId(s) {
  return s.route.name === 'chat' ? s.route.chat_id : null;
}
