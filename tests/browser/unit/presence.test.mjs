// Unit tests of presence, read receipts, settings and muting as the client parses and keeps
// them (web/js/model.js, store.js, format.js) and as the gateway's events change them
// (live.js), run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChat, parseFriends, parseSettings } from '../../../web/js/model.js';
import { presenceText, lastSeenText } from '../../../web/js/format.js';
import { initialState, createStore, setChats, setFriends, upsertChat, mergeReadStates, mergeSettings, setMuted } from '../../../web/js/store.js';
import { createLive } from '../../../web/js/live.js';
import { keyBytes } from '../../../web/js/push.js';

const NOW = Date.parse('2026-03-10T12:00:00Z');
const ago = (ms) => new Date(NOW - ms).toISOString();

test('presence in words: online, idle, or how long ago the friend was last seen', () => {
  assert.equal(presenceText({ status: 'online', last_seen_at: null }, NOW), 'online');
  assert.equal(presenceText({ status: 'idle', last_seen_at: ago(1000) }, NOW), 'idle');
  assert.equal(presenceText({ status: 'offline', last_seen_at: ago(5 * 60_000 + 30_000) }, NOW), 'last seen 5 minutes ago');
  assert.equal(presenceText({ status: 'offline', last_seen_at: null }, NOW), 'offline');
  assert.equal(presenceText(null, NOW), '', 'not a friend: nothing known');
  assert.equal(lastSeenText(ago(20_000), NOW), 'last seen just now');
  assert.equal(lastSeenText(ago(60_000), NOW), 'last seen 1 minute ago');
  assert.equal(lastSeenText(ago(3 * 3_600_000), NOW), 'last seen 3 hours ago');
  assert.equal(lastSeenText(ago(26 * 3_600_000), NOW), 'last seen 1 day ago');
  assert.match(lastSeenText(ago(30 * 86_400_000), NOW), /^last seen on \S/);
  assert.equal(lastSeenText(new Date(NOW + 5000).toISOString(), NOW), 'last seen just now', 'a clock a little ahead');
  assert.equal(lastSeenText('not a time', NOW), 'offline');
});

test('friends come with their presence; an unknown status reads as offline', () => {
  const f = parseFriends({
    friends: [
      { id: 1, username: 'ann', presence: { status: 'online', last_seen_at: null } },
      { id: 2, username: 'bob', presence: { status: 'away?', last_seen_at: '2026-03-10T11:00:00Z' } },
      { id: 3, username: 'cy' },
    ],
  });
  assert.deepEqual(f.friends.map((u) => u.username), ['ann', 'bob', 'cy']);
  assert.deepEqual(f.presence.get('1'), { status: 'online', last_seen_at: null });
  assert.deepEqual(f.presence.get('2'), { status: 'offline', last_seen_at: '2026-03-10T11:00:00Z' });
  assert.equal(f.presence.has('3'), false, 'a server without presence: nothing known');
  const s = initialState();
  setFriends(s, f);
  assert.equal(s.presence.get('1')?.status, 'online');
});

test('chats carry the viewer\'s mute and the read markers; a chat without them has none', () => {
  const c = parseChat({ id: 'c', kind: 'group', muted: true, read_states: [{ user_id: 7, seq: '12' }, { seq: 3 }] });
  assert.equal(c.muted, true);
  assert.deepEqual(c.read_states, [{ user_id: '7', seq: 12 }]);
  const bare = parseChat({ id: 'c', kind: 'direct' });
  assert.equal(bare.muted, false);
  assert.deepEqual(bare.read_states, []);
});

test('settings are read switch by switch: an event may name only one', () => {
  assert.deepEqual(parseSettings({ share_presence: false, share_read_receipts: true }), { share_presence: false, share_read_receipts: true });
  assert.deepEqual(parseSettings({ user_id: '1', share_read_receipts: false }), { share_read_receipts: false });
  assert.deepEqual(parseSettings({ share_presence: 'no' }), {});
  const s = initialState();
  assert.equal(mergeSettings(s, { share_read_receipts: false }), false, 'the first settings known are no change');
  assert.deepEqual(s.settings, { share_presence: true, share_read_receipts: false });
  assert.equal(mergeSettings(s, { share_presence: false }), false, 'read receipts untouched');
  assert.deepEqual(s.settings, { share_presence: false, share_read_receipts: false });
  assert.equal(mergeSettings(s, { share_read_receipts: true }), true);
});

test('read markers only move forward; the server\'s list drops who stopped sharing, an event\'s chat drops no one', () => {
  const known = [{ user_id: 'a', seq: 5 }, { user_id: 'b', seq: 9 }];
  assert.deepEqual(mergeReadStates(known, [{ user_id: 'a', seq: 3 }], true), [{ user_id: 'a', seq: 5 }, { user_id: 'b', seq: 9 }]);
  assert.deepEqual(mergeReadStates(known, [{ user_id: 'a', seq: 3 }], false), [{ user_id: 'a', seq: 5 }]);
  assert.deepEqual(mergeReadStates(known, [{ user_id: 'c', seq: 1 }], true), [...known, { user_id: 'c', seq: 1 }]);
});

/** A chat as parsed from the server. */
const chat = (extra = {}) => parseChat({ id: 'c', kind: 'group', members: [{ id: 'me', username: 'me' }, { id: 'a', username: 'ann' }], ...extra });

test('a chat event keeps what only the viewer\'s own answers tell: muted and the read markers', () => {
  const s = initialState();
  setChats(s, [chat({ muted: true, read_states: [{ user_id: 'a', seq: 4 }] })]);
  upsertChat(s, chat({ name: 'renamed' })); // an event: neither field
  assert.equal(s.chats.get('c')?.muted, true);
  assert.deepEqual(s.chats.get('c')?.read_states, [{ user_id: 'a', seq: 4 }]);
  setMuted(s, 'c', false);
  assert.equal(s.chats.get('c')?.muted, false);
  setChats(s, [chat({ muted: true, read_states: [] })]);
  assert.equal(s.chats.get('c')?.muted, true, 'the list is the truth about muting');
  assert.deepEqual(s.chats.get('c')?.read_states, [], 'and about who shares');
});

/** The client's reaction to events, with a real store and nothing else behind it. */
function live() {
  const store = createStore();
  const calls = { chats: 0 };
  const noop = () => {};
  const l = createLive({
    store,
    timelines: /** @type {any} */ ({ receive: noop, resyncAll: noop }),
    outbox: /** @type {any} */ ({ flush: noop }),
    refreshFriends: noop,
    refreshChats: () => calls.chats++,
    refreshBlocks: noop,
    refreshSettings: noop,
    onIncoming: noop,
    onChatLost: noop,
  });
  return { store, l, calls };
}

test('read.updated moves a member\'s marker forward and never back; unknown chats are ignored', () => {
  const { store, l } = live();
  store.update((s) => setChats(s, [chat({ read_states: [{ user_id: 'a', seq: 4 }] })]));
  l.onEvent('read.updated', { chat_id: 'c', user_id: 'a', seq: 6 });
  assert.deepEqual(store.state.chats.get('c')?.read_states, [{ user_id: 'a', seq: 6 }]);
  l.onEvent('read.updated', { chat_id: 'c', user_id: 'a', seq: 5 });
  assert.deepEqual(store.state.chats.get('c')?.read_states, [{ user_id: 'a', seq: 6 }], 'a lower seq is ignored');
  l.onEvent('read.updated', { chat_id: 'c', user_id: 'b', seq: '2' });
  assert.deepEqual(store.state.chats.get('c')?.read_states, [{ user_id: 'a', seq: 6 }, { user_id: 'b', seq: 2 }]);
  l.onEvent('read.updated', { chat_id: 'nope', user_id: 'a', seq: 9 });
  assert.equal(store.state.chats.has('nope'), false);
});

test('presence.updated replaces a friend\'s presence', () => {
  const { store, l } = live();
  store.update((s) => setFriends(s, parseFriends({ friends: [{ id: 'a', username: 'ann', presence: { status: 'online', last_seen_at: null } }] })));
  l.onEvent('presence.updated', { user_id: 'a', status: 'idle', last_seen_at: null });
  assert.deepEqual(store.state.presence.get('a'), { status: 'idle', last_seen_at: null });
  l.onEvent('presence.updated', { user_id: 'a', status: 'offline', last_seen_at: '2026-03-10T11:59:00Z' });
  assert.deepEqual(store.state.presence.get('a'), { status: 'offline', last_seen_at: '2026-03-10T11:59:00Z' });
});

test('settings.updated from another device merges, and fetches the chats when read receipts changed', () => {
  const { store, l, calls } = live();
  store.update((s) => mergeSettings(s, { share_presence: true, share_read_receipts: true }));
  l.onEvent('settings.updated', { share_presence: false });
  assert.deepEqual(store.state.settings, { share_presence: false, share_read_receipts: true });
  assert.equal(calls.chats, 0);
  l.onEvent('settings.updated', { share_presence: false, share_read_receipts: false });
  assert.deepEqual(store.state.settings, { share_presence: false, share_read_receipts: false });
  assert.equal(calls.chats, 1, 'the markers shown change with it');
});

test('a chat event leaves the viewer\'s mute as it was', () => {
  const { store, l } = live();
  store.update((s) => setChats(s, [chat({ muted: true })]));
  l.onEvent('chat.updated', { chat: { id: 'c', kind: 'group', name: 'new name', members: [] } });
  assert.equal(store.state.chats.get('c')?.name, 'new name');
  assert.equal(store.state.chats.get('c')?.muted, true);
});

test('the server\'s push key (base64url, unpadded) becomes its bytes', () => {
  const bytes = Uint8Array.from({ length: 65 }, (_, i) => (i * 37 + 4) % 256);
  const key = Buffer.from(bytes).toString('base64url');
  assert.ok(!key.includes('='), 'the padding left out');
  assert.deepEqual(keyBytes(key), bytes);
});
