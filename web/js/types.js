// types.js — the shapes the API sends and the client's own state, as JSDoc types only.
// Nothing here runs; modules import these names with `@typedef {import('./types.js').X} X`.

/** @typedef {{ id: string, username: string }} User */

/**
 * Whether a friend is at a device: `online`, `idle` (away from it, or the page hidden), or
 * `offline` since `last_seen_at` (null: never seen, or not told).
 * @typedef {{ status: 'online' | 'idle' | 'offline', last_seen_at: string | null }} Presence
 */

/** A member has read a chat up to message `seq`. @typedef {{ user_id: string, seq: number }} ReadState */

/**
 * What the user shares with others: presence with friends, read receipts with the members of
 * their chats (not sharing them also hides other people's).
 * @typedef {{ share_presence: boolean, share_read_receipts: boolean }} Settings
 */

/** @typedef {{ id: string, from: User, to: User, created_at: string }} FriendRequest */

/**
 * `presence`: each friend's, by user id, as the list was read.
 * @typedef {{ friends: User[], incoming: FriendRequest[], outgoing: FriendRequest[], presence: Map<string, Presence> }} FriendsList
 */

/**
 * A file a message carries (or one uploaded to be sent). `width` and `height`: a picture's
 * size in pixels, null for any other file; `size` in bytes.
 * @typedef {{ id: string, filename: string, content_type: string, size: number, width: number | null, height: number | null }} Attachment
 */

/**
 * A short form of a message: a chat's last message, or the message a reply answers.
 * `content` is cut to 100 characters by the server (empty when deleted); `attachment_count`
 * says how many files the message carries.
 * @typedef {{ id: string, author_id: string, content: string, created_at: string, deleted: boolean, attachment_count: number }} Preview
 */

/** @typedef {{ emoji: string, count: number, user_ids: string[] }} Reaction */

/**
 * @typedef {{
 *   id: string,
 *   kind: 'direct' | 'group',
 *   name: string,
 *   owner_id: string | null,
 *   members: User[],
 *   last_seq: number,
 *   unread: number,
 *   read_only: boolean,
 *   last_activity_at: string,
 *   last_message: Preview | null,
 *   muted: boolean,
 *   read_states: ReadState[],
 * }} Chat
 * `muted`: the viewer's choice (events do not carry it); `read_states`: how far the members who
 * share read receipts have read (events do not carry them; empty when the viewer does not share).
 */

/**
 * @typedef {{
 *   id: string,
 *   chat_id: string,
 *   seq: number,
 *   version: number,
 *   author_id: string,
 *   content: string,
 *   nonce: string | null,
 *   created_at: string,
 *   edited_at: string | null,
 *   deleted: boolean,
 *   reply_to: Preview | null,
 *   mentions: string[],
 *   reactions: Reaction[],
 *   attachments: Attachment[],
 *   kind?: 'user' | 'system',
 *   system?: SystemChange | null,
 * }} Message
 * `kind` `system` (with `system` set): a change to a group, recorded in its history.
 */

/**
 * @typedef {{
 *   type: 'created' | 'renamed' | 'member_added' | 'member_removed' | 'member_left' | 'owner_changed',
 *   user_id?: string,
 *   name?: string,
 * }} SystemChange
 */

/** @typedef {{ token: string, user: User }} AuthResponse */

/** A saved login: what register/login/refresh returned, and when. */
/** @typedef {AuthResponse & { obtained_at: number }} Session */

/**
 * A message the user sent that the server has not confirmed yet; its files are already
 * uploaded (`attachments`, sent by their ids).
 * @typedef {{
 *   nonce: string,
 *   chat_id: string,
 *   content: string,
 *   created_at: string,
 *   state: 'queued' | 'sending' | 'failed',
 *   error: string | null,
 *   reply_to: Preview | null,
 *   attachments: Attachment[],
 * }} PendingMessage
 */

/**
 * A file chosen for the message being written in a chat: `waiting` its turn to upload,
 * `uploading` (`loaded` of `size` bytes sent so far), `done` (`attachment` is what the server
 * kept) or `failed` (`error` says why). `preview` is a local `blob:` address of a picture,
 * for its card.
 * @typedef {{
 *   key: string,
 *   chat_id: string,
 *   file: File,
 *   name: string,
 *   size: number,
 *   preview: string | null,
 *   state: 'waiting' | 'uploading' | 'done' | 'failed',
 *   loaded: number,
 *   error: string | null,
 *   attachment: Attachment | null,
 * }} Upload
 */

/**
 * What the client holds of one chat's messages.
 * `known` is the last version it is sure to have seen everything up to (for `after=`);
 * `max_seen` the highest version any event showed (above `known` means something may be missing).
 * `preview` is the newest message seen, for the chat list.
 * @typedef {{
 *   items: Message[],
 *   loaded: boolean,
 *   loading: boolean,
 *   loading_older: boolean,
 *   has_more: boolean,
 *   known: number,
 *   max_seen: number,
 *   preview: Message | null,
 * }} Timeline
 */

/**
 * A page: friends, search, or a chat (`message_id`: a message to show, loading history back
 * to it, as a search result links to it).
 * @typedef {{ name: 'friends' } | { name: 'search' } | { name: 'chat', chat_id: string, message_id?: string }} Route
 */

/** Where a search result matched, in characters of its content. @typedef {{ start: number, end: number }} Highlight */

/** @typedef {{ message: Message, highlights: Highlight[] }} SearchResult */

/** @typedef {{ results: SearchResult[], next_before: string | null }} SearchPage */

/** @typedef {{ id: string, user_agent: string, created_at: string, last_used_at: string, current: boolean }} SessionInfo */

/** Someone typing in a chat, until when (ms since the epoch). @typedef {{ user: User, until: number }} Typist */

/** @typedef {'offline' | 'connecting' | 'connected' | 'reconnecting'} ConnectionState */

/**
 * `users`: everyone the client has heard of, by id (to name authors who have left a group);
 * `typing`: who is typing, per chat; `replying`: the message the composer answers, per chat;
 * `uploads`: the files chosen for the message being written, per chat;
 * `saved_at`: set while the chats shown are what the device saved then (opened offline);
 * `presence`: friends' presence, by user id; `settings`: the user's own (null until read, or
 * when the server has none).
 * @typedef {{
 *   me: User | null,
 *   route: Route,
 *   sidebar_open: boolean,
 *   connection: ConnectionState,
 *   chats: Map<string, Chat>,
 *   chats_loaded: boolean,
 *   timelines: Map<string, Timeline>,
 *   pending: Map<string, PendingMessage>,
 *   activity: Map<string, number>,
 *   friends: FriendsList,
 *   friends_loaded: boolean,
 *   blocked: User[],
 *   blocked_loaded: boolean,
 *   users: Map<string, User>,
 *   typing: Map<string, Map<string, Typist>>,
 *   replying: Map<string, Preview>,
 *   uploads: Map<string, Upload[]>,
 *   notice: string | null,
 *   saved_at: string | null,
 *   presence: Map<string, Presence>,
 *   settings: Settings | null,
 * }} State
 */

/**
 * What the device keeps to open without a network (IndexedDB, per user; `offline.js`).
 * @typedef {{
 *   v: 1,
 *   saved_at: string,
 *   chats: Chat[],
 *   timelines: { chat_id: string, items: Message[], has_more: boolean, known: number, max_seen: number }[],
 *   users: User[],
 *   pending: PendingMessage[],
 * }} Snapshot
 */

export {};
