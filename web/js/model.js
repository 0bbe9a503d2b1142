// model.js — parses what the server sends into the client's types, and derives names from them.
// Pure: no DOM, no network. Parsing happens once, at the edge (api.js and socket events).

/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Chat} Chat */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').FriendRequest} FriendRequest */
/** @typedef {import('./types.js').FriendsList} FriendsList */
/** @typedef {import('./types.js').AuthResponse} AuthResponse */
/** @typedef {import('./types.js').Preview} Preview */
/** @typedef {import('./types.js').Reaction} Reaction */
/** @typedef {import('./types.js').Attachment} Attachment */
/** @typedef {import('./types.js').SessionInfo} SessionInfo */
/** @typedef {import('./types.js').SystemChange} SystemChange */
/** @typedef {import('./types.js').Presence} Presence */
/** @typedef {import('./types.js').ReadState} ReadState */
/** @typedef {import('./types.js').Settings} Settings */

/** @param {unknown} v @returns {Record<string, any>} */
function obj(v) {
  return v !== null && typeof v === 'object' ? /** @type {Record<string, any>} */ (v) : {};
}

/** IDs are strings in the contract; accept numbers too rather than break. @param {unknown} v */
function id(v) {
  return v === null || v === undefined ? '' : String(v);
}

/** Counters (seq, version, unread) may come as numbers or numeric strings. @param {unknown} v */
function count(v) {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** @param {unknown} v @returns {string | null} */
function optString(v) {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** @param {unknown} v */
function list(v) {
  return Array.isArray(v) ? v : [];
}

/** @param {unknown} raw @returns {User} */
export function parseUser(raw) {
  const o = obj(raw);
  return { id: id(o.id), username: String(o.username ?? '') };
}

/** @param {unknown} raw @returns {FriendRequest} */
export function parseRequest(raw) {
  const o = obj(raw);
  return {
    id: id(o.id),
    from: parseUser(o.from),
    to: parseUser(o.to),
    created_at: String(o.created_at ?? ''),
  };
}

/** A presence as the server sends it; an unknown status reads as offline. @param {unknown} raw @returns {Presence} */
export function parsePresence(raw) {
  const o = obj(raw);
  const status = o.status === 'online' || o.status === 'idle' ? o.status : 'offline';
  return { status, last_seen_at: optString(o.last_seen_at) };
}

/** A friend list page; each friend's presence, when it came with them, by user id. @param {unknown} raw @returns {FriendsList} */
export function parseFriends(raw) {
  const o = obj(raw);
  /** @type {Map<string, Presence>} */
  const presence = new Map();
  for (const f of list(o.friends)) if (obj(f).presence) presence.set(id(obj(f).id), parsePresence(obj(f).presence));
  return {
    friends: list(o.friends).map(parseUser),
    incoming: list(o.incoming).map(parseRequest),
    outgoing: list(o.outgoing).map(parseRequest),
    presence,
  };
}

/** `presence.updated`: whose presence, and what it is now. @param {unknown} d */
export function presenceEventOf(d) {
  return { user_id: id(obj(d).user_id), presence: parsePresence(d) };
}

/** `read.updated`: one member's read marker in one chat. @param {unknown} d */
export function readEventOf(d) {
  const o = obj(d);
  return { chat_id: id(o.chat_id), user_id: id(o.user_id), seq: count(o.seq) };
}

/** @param {unknown} raw @returns {ReadState[]} */
function parseReadStates(raw) {
  return list(raw)
    .map((r) => ({ user_id: id(obj(r).user_id), seq: count(obj(r).seq) }))
    .filter((r) => r.user_id);
}

/**
 * The settings in an answer or an event: only the switches it names (an event may carry one
 * service's share alone); the answer to `GET` names both.
 * @param {unknown} raw @returns {Partial<Settings>}
 */
export function parseSettings(raw) {
  const o = obj(raw);
  /** @type {Partial<Settings>} */
  const out = {};
  if (typeof o.share_presence === 'boolean') out.share_presence = o.share_presence;
  if (typeof o.share_read_receipts === 'boolean') out.share_read_receipts = o.share_read_receipts;
  return out;
}

/** @param {unknown} raw @returns {Preview | null} */
export function parsePreview(raw) {
  if (raw === null || typeof raw !== 'object') return null;
  const o = obj(raw);
  return {
    id: id(o.id),
    author_id: id(o.author_id),
    content: String(o.content ?? ''),
    created_at: String(o.created_at ?? ''),
    deleted: o.deleted === true,
    attachment_count: count(o.attachment_count),
  };
}

/** A size in pixels: a positive whole number, or null (not a picture). @param {unknown} v */
function pixels(v) {
  const n = typeof v === 'number' ? v : Number(v);
  return v !== null && v !== undefined && Number.isInteger(n) && n > 0 ? n : null;
}

/** @param {unknown} raw @returns {Attachment} */
export function parseAttachment(raw) {
  const o = obj(raw);
  const width = pixels(o.width);
  const height = pixels(o.height);
  return {
    id: id(o.id),
    filename: String(o.filename ?? '') || 'file',
    content_type: String(o.content_type ?? '') || 'application/octet-stream',
    size: count(o.size),
    // Both or neither: a picture is drawn in a box of its own proportions.
    width: width && height ? width : null,
    height: width && height ? height : null,
  };
}

/** @param {unknown} raw @returns {Reaction} */
function parseReaction(raw) {
  const o = obj(raw);
  const userIds = list(o.user_ids).map(id);
  return { emoji: String(o.emoji ?? ''), count: count(o.count ?? userIds.length), user_ids: userIds };
}

/** @param {unknown} raw @returns {SessionInfo} */
export function parseSession(raw) {
  const o = obj(raw);
  return {
    id: id(o.id),
    user_agent: String(o.user_agent ?? ''),
    created_at: String(o.created_at ?? ''),
    last_used_at: String(o.last_used_at ?? ''),
    current: o.current === true,
  };
}

/** The short form of a message, as the server sends for replies and chat lists. @param {Message} m @returns {Preview} */
export function previewOf(m) {
  return {
    id: m.id,
    author_id: m.author_id,
    content: m.deleted ? '' : m.content.slice(0, 100),
    created_at: m.created_at,
    deleted: m.deleted,
    attachment_count: m.deleted ? 0 : m.attachments.length,
  };
}

/**
 * Whether id `a` is newer than id `b`: ids are time-ordered decimal strings, so the longer
 * one is larger, and among equal lengths the string order is the numeric order.
 * @param {string} a @param {string} b
 */
export function newerId(a, b) {
  return a.length !== b.length ? a.length > b.length : a > b;
}

/** @param {unknown} raw @returns {Chat} */
export function parseChat(raw) {
  const o = obj(raw);
  return {
    id: id(o.id),
    kind: o.kind === 'group' ? 'group' : 'direct',
    name: String(o.name ?? ''),
    owner_id: o.owner_id == null ? null : id(o.owner_id),
    members: Array.isArray(o.members) ? o.members.map(parseUser) : [],
    last_seq: count(o.last_seq),
    unread: count(o.unread),
    read_only: o.read_only === true,
    last_activity_at: String(o.last_activity_at ?? ''),
    last_message: parsePreview(o.last_message),
    muted: o.muted === true,
    read_states: parseReadStates(o.read_states),
  };
}

/** @param {unknown} raw @returns {Message} */
export function parseMessage(raw) {
  const o = obj(raw);
  return {
    id: id(o.id),
    chat_id: id(o.chat_id),
    seq: count(o.seq),
    version: count(o.version),
    author_id: id(o.author_id),
    content: String(o.content ?? ''),
    nonce: optString(o.nonce),
    created_at: String(o.created_at ?? ''),
    edited_at: optString(o.edited_at),
    deleted: o.deleted === true,
    reply_to: parsePreview(o.reply_to),
    mentions: list(o.mentions).map(id),
    reactions: list(o.reactions).map(parseReaction).filter((r) => r.emoji && r.count > 0),
    attachments: o.deleted === true ? [] : list(o.attachments).map(parseAttachment).filter((a) => a.id),
    kind: o.kind === 'system' ? 'system' : 'user',
    system: o.kind === 'system' ? parseSystemChange(o.system) : null,
  };
}

const SYSTEM_TYPES = /** @type {const} */ (['created', 'renamed', 'member_added', 'member_removed', 'member_left', 'owner_changed']);

/** @param {unknown} raw @returns {SystemChange | null} */
function parseSystemChange(raw) {
  const o = obj(raw);
  const type = SYSTEM_TYPES.find((t) => t === o.type);
  if (!type) return null;
  return { type, user_id: o.user_id === undefined ? undefined : id(o.user_id), name: o.name === undefined ? undefined : String(o.name) };
}

/**
 * What a system message says, e.g. "ann renamed the group to “Trip”". `who(id, first)`
 * names a user ("You"/"you" for the reader; `first` when the name starts the sentence).
 * @param {string} authorId @param {SystemChange} change @param {(id: string, first: boolean) => string} who
 */
export function systemText(authorId, change, who) {
  const actor = who(authorId, true);
  const user = who(change.user_id ?? '', false);
  switch (change.type) {
    case 'created':
      return `${actor} created the group “${change.name ?? ''}”`;
    case 'renamed':
      return `${actor} renamed the group to “${change.name ?? ''}”`;
    case 'member_added':
      return `${actor} added ${user}`;
    case 'member_removed':
      return `${actor} removed ${user}`;
    case 'member_left':
      return `${actor} left the group`;
    case 'owner_changed': {
      const owner = who(change.user_id ?? '', true);
      return `${owner} now ${owner === 'You' ? 'own' : 'owns'} the group`;
    }
  }
}

/** @param {unknown} raw @returns {AuthResponse} */
export function parseAuth(raw) {
  const o = obj(raw);
  return { token: String(o.token ?? ''), user: parseUser(o.user) };
}

/**
 * The chat id an event is about, whatever shape its payload has
 * (`{chat_id}`, `{id}` or `{chat: {id}}`).
 * @param {unknown} d
 */
export function chatIdOf(d) {
  const o = obj(d);
  return id(o.chat_id ?? o.id ?? obj(o.chat).id);
}

/** A message event's payload: the message itself, or `{message}`. @param {unknown} d */
export function messageOf(d) {
  const o = obj(d);
  return parseMessage(o.message && typeof o.message === 'object' ? o.message : o);
}

/**
 * A page of search results; highlights outside the content are dropped.
 * @param {unknown} raw @returns {import('./types.js').SearchPage}
 */
export function parseSearch(raw) {
  const o = obj(raw);
  const results = Array.isArray(o.results) ? o.results : [];
  return {
    results: results.map((r) => {
      const ro = obj(r);
      const message = parseMessage(ro.message);
      const length = [...message.content].length;
      const highlights = (Array.isArray(ro.highlights) ? ro.highlights : [])
        .map((hl) => ({ start: count(obj(hl).start), end: count(obj(hl).end) }))
        .filter((hl) => hl.start < hl.end && hl.end <= length);
      return { message, highlights };
    }),
    next_before: typeof o.next_before === 'string' ? o.next_before : null,
  };
}

/** A chat event's payload: the chat itself, or `{chat}`. @param {unknown} d */
export function chatOf(d) {
  const o = obj(d);
  return parseChat(o.chat && typeof o.chat === 'object' ? o.chat : o);
}

/**
 * For a direct chat, the other person (or yourself, for a chat with yourself).
 * @param {Chat} chat @param {string | undefined} meId @returns {User | null}
 */
export function otherMember(chat, meId) {
  return chat.members.find((m) => m.id !== meId) ?? chat.members[0] ?? null;
}

/** What to call a chat: a group's name, or the other person's username. @param {Chat} chat @param {string | undefined} meId */
export function chatName(chat, meId) {
  if (chat.kind === 'group') {
    if (chat.name) return chat.name;
    return chat.members.filter((m) => m.id !== meId).map((m) => m.username).join(', ') || 'Group';
  }
  return otherMember(chat, meId)?.username || chat.name || 'Direct message';
}

/**
 * The username of a message's author: from the chat's members, else from everyone the
 * client has heard of (an author who has left the group).
 * @param {Chat | undefined} chat @param {string} authorId @param {ReadonlyMap<string, User>} [known]
 */
export function authorName(chat, authorId, known) {
  return chat?.members.find((m) => m.id === authorId)?.username ?? known?.get(authorId)?.username ?? 'Unknown user';
}

/** Whether the user owns a group chat. @param {Chat | undefined} chat @param {string | undefined} meId */
export function isOwner(chat, meId) {
  return !!chat && chat.kind === 'group' && !!meId && chat.owner_id === meId;
}
