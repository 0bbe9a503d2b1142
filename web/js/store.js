// store.js — the client's state, the changes made to it, and a tiny change notification.
// No DOM and no network here, so every rule can be unit-tested under node.

/** @typedef {import('./types.js').State} State */
/** @typedef {import('./types.js').Chat} Chat */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').Timeline} Timeline */
/** @typedef {import('./types.js').PendingMessage} PendingMessage */
/** @typedef {import('./types.js').FriendsList} FriendsList */
/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Preview} Preview */
/** @typedef {import('./types.js').Presence} Presence */
/** @typedef {import('./types.js').ReadState} ReadState */
/** @typedef {import('./types.js').Settings} Settings */

import { newerId, previewOf, parseChat, parseMessage } from './model.js';

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
    friends: { friends: [], incoming: [], outgoing: [], presence: new Map() },
    friends_loaded: false,
    blocked: [],
    blocked_loaded: false,
    users: new Map(),
    typing: new Map(),
    replying: new Map(),
    uploads: new Map(),
    notice: null,
    saved_at: null,
    presence: new Map(),
    settings: null,
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
  // A reply quotes what it answers as it is now: edited, or deleted for everyone.
  const now = new Map(incoming.filter((m) => byId.get(m.id) === m).map((m) => [m.id, m]));
  for (const [id, m] of byId) {
    const answered = m.reply_to ? now.get(m.reply_to.id) : undefined;
    if (answered) byId.set(id, { ...m, reply_to: previewOf(answered) });
  }
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** Remembers people's names, to name authors and typists later. @param {State} s @param {readonly User[]} users */
export function rememberUsers(s, users) {
  for (const u of users) if (u.id && u.username) s.users.set(u.id, u);
}

/** Moves a chat's activity time forward to `iso` (never back). @param {State} s @param {string} chatId @param {string} iso */
function touch(s, chatId, iso) {
  const at = Date.parse(iso);
  if (Number.isFinite(at) && at > (s.activity.get(chatId) ?? -Infinity)) s.activity.set(chatId, at);
}

/** The newer of two last-message previews; `a` wins a tie. @param {Preview | null} a @param {Preview | null} b */
function newerPreview(a, b) {
  if (!a) return b;
  if (!b) return a;
  return newerId(b.id, a.id) ? b : a;
}

/**
 * Read markers only move forward: each of `incoming` at the higher of its seq and the known
 * one. `keep` also keeps the known markers `incoming` does not name (an event's chat names
 * none); without it they go (the server's list leaves out who stopped sharing).
 * @param {readonly ReadState[]} known @param {readonly ReadState[]} incoming @param {boolean} keep
 * @returns {ReadState[]}
 */
export function mergeReadStates(known, incoming, keep) {
  /** @type {Map<string, number>} */
  const seqs = new Map(keep ? known.map((r) => [r.user_id, r.seq]) : []);
  const before = new Map(known.map((r) => [r.user_id, r.seq]));
  for (const r of incoming) seqs.set(r.user_id, Math.max(r.seq, before.get(r.user_id) ?? 0));
  return [...seqs].map(([user_id, seq]) => ({ user_id, seq }));
}

/** Takes the whole chat list from the server (its unread counts are the truth). @param {State} s @param {Chat[]} chats */
export function setChats(s, chats) {
  const old = s.chats;
  s.chats = new Map(
    chats.map((c) => {
      const before = old.get(c.id);
      if (!before) return [c.id, c];
      return [
        c.id,
        {
          ...c,
          last_seq: Math.max(c.last_seq, before.last_seq),
          last_message: newerPreview(c.last_message, before.last_message),
          read_states: mergeReadStates(before.read_states, c.read_states, false),
        },
      ];
    }),
  );
  for (const c of chats) {
    rememberUsers(s, c.members);
    touch(s, c.id, c.last_activity_at);
  }
  s.chats_loaded = true;
  s.saved_at = null;
}

/**
 * Takes one chat from an event (or an answer about one chat). Chat events carry `unread` 0,
 * and neither the viewer's `muted` nor read markers, so what the client knows of those stays.
 * @param {State} s @param {Chat} chat
 */
export function upsertChat(s, chat) {
  const old = s.chats.get(chat.id);
  // Keep the higher change count: an event may be older than what messages already told us.
  s.chats.set(
    chat.id,
    old
      ? {
          ...chat,
          unread: old.unread,
          last_seq: Math.max(chat.last_seq, old.last_seq),
          last_message: newerPreview(old.last_message, chat.last_message),
          muted: old.muted,
          read_states: mergeReadStates(old.read_states, chat.read_states, true),
        }
      : chat,
  );
  rememberUsers(s, chat.members);
  touch(s, chat.id, chat.last_activity_at);
  if (!s.activity.has(chat.id)) s.activity.set(chat.id, Date.now());
}

/** @param {State} s @param {string} chatId */
export function removeChat(s, chatId) {
  s.chats.delete(chatId);
  s.timelines.delete(chatId);
  s.activity.delete(chatId);
  s.typing.delete(chatId);
  s.replying.delete(chatId);
  s.uploads.delete(chatId);
  for (const [nonce, p] of s.pending) if (p.chat_id === chatId) s.pending.delete(nonce);
  if (s.route.name === 'chat' && s.route.chat_id === chatId) s.route = { name: 'friends' };
}

/** The viewer (un)muted a chat: the server's answer says which. @param {State} s @param {string} chatId @param {boolean} muted */
export function setMuted(s, chatId, muted) {
  const chat = s.chats.get(chatId);
  if (chat && chat.muted !== muted) s.chats.set(chatId, { ...chat, muted });
}

/**
 * `read.updated`: a member read a chat up to `seq`. Markers never move back (events may come
 * out of order). Returns whether anything changed.
 * @param {State} s @param {string} chatId @param {string} userId @param {number} seq
 */
export function moveReadMarker(s, chatId, userId, seq) {
  const chat = s.chats.get(chatId);
  if (!chat || !userId) return false;
  const known = chat.read_states.find((r) => r.user_id === userId);
  if (known && known.seq >= seq) return false;
  s.chats.set(chatId, { ...chat, read_states: mergeReadStates(chat.read_states, [{ user_id: userId, seq }], true) });
  return true;
}

/** `presence.updated`: a friend's presence now. @param {State} s @param {string} userId @param {Presence} p */
export function setPresence(s, userId, p) {
  if (userId) s.presence.set(userId, p);
}

/** What a friend's presence is known to be, if they are one. @param {State} s @param {string | undefined} userId */
export function presenceOf(s, userId) {
  return userId ? s.presence.get(userId) ?? null : null;
}

/** What a new account shares until it says otherwise (the server's defaults). */
export const DEFAULT_SETTINGS = Object.freeze({ share_presence: true, share_read_receipts: true });

/**
 * Takes the user's settings, whole (an answer) or in part (an event may name one switch).
 * Returns whether sharing read receipts changed (the chats' read markers then change too).
 * @param {State} s @param {Partial<Settings>} changed
 */
export function mergeSettings(s, changed) {
  const before = s.settings;
  s.settings = { ...DEFAULT_SETTINGS, ...before, ...changed };
  return !!before && before.share_read_receipts !== s.settings.share_read_receipts;
}

/** @param {State} s @param {FriendsList} f */
export function setFriends(s, f) {
  s.friends = f;
  s.friends_loaded = true;
  s.presence = new Map(f.presence ?? []);
  rememberUsers(s, f.friends);
  rememberUsers(s, [...f.incoming, ...f.outgoing].flatMap((r) => [r.from, r.to]));
}

/** @param {State} s @param {User[]} blocked */
export function setBlocked(s, blocked) {
  s.blocked = blocked;
  s.blocked_loaded = true;
  rememberUsers(s, blocked);
}

/** How long a `typing.started` counts: the server sends one every 3 s at most while typing goes on. */
export const TYPING_MS = 6000;

/** @param {State} s @param {string} chatId @param {User} user @param {number} now */
export function startTyping(s, chatId, user, now) {
  if (!user.id || user.id === s.me?.id) return;
  let m = s.typing.get(chatId);
  if (!m) s.typing.set(chatId, (m = new Map()));
  m.set(user.id, { user, until: now + TYPING_MS });
  rememberUsers(s, [user]);
}

/** Someone's message arrived: they stopped typing it. @param {State} s @param {string} chatId @param {string} userId */
export function stopTyping(s, chatId, userId) {
  const m = s.typing.get(chatId);
  if (!m?.delete(userId)) return false;
  if (m.size === 0) s.typing.delete(chatId);
  return true;
}

/** Forgets typists whose time ran out. Returns whether any was. @param {State} s @param {number} now */
export function pruneTyping(s, now) {
  let changed = false;
  for (const [chatId, m] of s.typing) {
    for (const [userId, t] of m) {
      if (t.until <= now) {
        m.delete(userId);
        changed = true;
      }
    }
    if (m.size === 0) s.typing.delete(chatId);
  }
  return changed;
}

/** The people typing in a chat now, by name. @param {State} s @param {string} chatId @param {number} now */
export function typistsIn(s, chatId, now) {
  return [...(s.typing.get(chatId)?.values() ?? [])].filter((t) => t.until > now).map((t) => t.user);
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
    if (m.system) continue; // a group change is never the chat's last message
    if (!t.preview || m.seq > t.preview.seq || (m.id === t.preview.id && m.version > t.preview.version)) {
      t.preview = m;
      if (!m.deleted) s.activity.set(chatId, Date.parse(m.created_at) || Date.now());
    }
  }
  const chat = s.chats.get(chatId);
  if (chat) {
    const top = Math.max(chat.last_seq, ...messages.map((m) => m.version));
    const lm = chat.last_message;
    const last = t.preview && (!lm || lm.id === t.preview.id || newerId(t.preview.id, lm.id)) ? previewOf(t.preview) : lm;
    if (top !== chat.last_seq || last !== lm) s.chats.set(chatId, { ...chat, last_seq: top, last_message: last });
  }
  return fresh;
}

/**
 * Counts a newly created message as unread unless it is one's own, a group change (a system
 * message) or the chat is being read.
 * `message.created` can arrive more than once, so a message at or below the chat's known
 * change count is not counted again. Call before `receiveMessages`.
 * @param {State} s @param {Message} m @param {boolean} reading
 */
export function countUnread(s, m, reading) {
  const chat = s.chats.get(m.chat_id);
  if (!chat || reading || m.author_id === s.me?.id || m.deleted || m.system) return;
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

/**
 * Where the "New messages" line goes when a chat opens with `unread` messages: above the
 * oldest of the last `unread` messages from others. Null when nothing is unread.
 * @param {readonly Message[]} items @param {number} unread @param {string} meId
 * @returns {string | null} the id of the first unread message
 */
export function firstUnread(items, unread, meId) {
  if (unread <= 0) return null;
  let n = 0;
  for (let i = items.length - 1; i >= 0; i--) {
    const m = items[i];
    if (m.author_id === meId || m.deleted || m.system) continue;
    n += 1;
    if (n === unread) return m.id;
  }
  return items[0]?.id ?? null;
}

/** How many of each chat's newest messages are kept on the device. */
export const SAVED_MESSAGES = 50;

/**
 * What this device keeps of the state for opening without a network: the chats, their newest
 * messages, the people named in them, and the messages still to send.
 * @param {State} s @param {string} savedAt
 * @returns {import('./types.js').Snapshot}
 */
export function snapshotOf(s, savedAt) {
  return {
    v: 1,
    saved_at: savedAt,
    chats: [...s.chats.values()],
    timelines: [...s.timelines]
      .filter(([, t]) => t.loaded)
      .map(([id, t]) => {
        const items = t.items.slice(-SAVED_MESSAGES);
        return { chat_id: id, items, has_more: t.has_more || items.length < t.items.length, known: t.known, max_seen: t.max_seen };
      }),
    users: [...s.users.values()],
    pending: [...s.pending.values()].map((p) => (p.state === 'sending' ? { ...p, state: 'queued' } : p)),
  };
}

/**
 * Opens with what the device kept, while the server cannot be reached. Never over fresher
 * data: only before the chat list has loaded. Marks the state as saved (`saved_at`) until the
 * server's chat list replaces it. An older version of the client may have saved it, without
 * fields added since (files): its chats and messages are parsed again, like the server's.
 * @param {State} s @param {import('./types.js').Snapshot} snap
 */
export function restoreSnapshot(s, snap) {
  if (s.chats_loaded || snap?.v !== 1) return;
  for (const u of snap.users) s.users.set(u.id, u);
  setChats(s, snap.chats.map(parseChat));
  for (const t of snap.timelines) {
    if (s.timelines.get(t.chat_id)?.loaded) continue;
    const items = t.items.map(parseMessage);
    s.timelines.set(t.chat_id, {
      items,
      loaded: true,
      loading: false,
      loading_older: false,
      has_more: t.has_more,
      known: t.known,
      max_seen: t.max_seen,
      preview: items.findLast((m) => !m.system) ?? null, // a group change is never the last message
    });
  }
  for (const p of snap.pending) if (!s.pending.has(p.nonce)) s.pending.set(p.nonce, { ...p, attachments: p.attachments ?? [] });
  s.saved_at = snap.saved_at;
}
