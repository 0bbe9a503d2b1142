// Unit tests of the web client's state rules (web/js/store.js), run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  initialState, mergeMessages, receiveMessages, countUnread, setChats, timelineOf, sortedChats, putPending, removeChat,
  snapshotOf, restoreSnapshot, SAVED_MESSAGES,
} from '../../../web/js/store.js';

/** @returns {import('../../../web/js/types.js').Message} */
const msg = (id, seq, version = seq, extra = {}) => ({
  id, chat_id: 'a_b', seq, version, author_id: 'b', content: `m${id}`, nonce: null,
  created_at: new Date(Date.UTC(2026, 0, 1, 12, seq)).toISOString(), edited_at: null, deleted: false, attachments: [], ...extra,
});
const chat = (id, extra = {}) => ({
  id, kind: 'direct', name: '', owner_id: null, members: [{ id: 'a', username: 'alice' }, { id: 'b', username: 'bob' }],
  last_seq: 0, unread: 0, read_only: false, muted: false, read_states: [], ...extra,
});

test('merging keeps one entry per id, ordered by seq, highest version winning', () => {
  const merged = mergeMessages([msg('1', 1), msg('3', 3)], [msg('2', 2), msg('1', 1, 4, { content: 'edited' }), msg('3', 3)]);
  assert.deepEqual(merged.map((m) => m.id), ['1', '2', '3']);
  assert.equal(merged[0].content, 'edited');
});

test('a reply quotes what it answers as it is now: edited, then deleted for everyone', () => {
  const quote = { id: '1', author_id: 'b', content: 'm1', created_at: '', deleted: false };
  let items = mergeMessages([msg('1', 1)], [msg('2', 2, 2, { reply_to: quote })]);
  items = mergeMessages(items, [msg('1', 1, 3, { content: 'better' })]);
  assert.equal(items[1].reply_to?.content, 'better');
  items = mergeMessages(items, [msg('1', 1, 4, { content: '', deleted: true })]);
  assert.deepEqual([items[1].reply_to?.content, items[1].reply_to?.deleted], ['', true]);
});

test('merging an older version of a message changes nothing', () => {
  const items = [msg('1', 1, 5, { content: 'new' })];
  assert.equal(mergeMessages(items, [msg('1', 1, 2, { content: 'old' })]), items);
});

test('messages older than the loaded window are left out', () => {
  assert.deepEqual(mergeMessages([msg('10', 10)], [msg('2', 2), msg('11', 11)], 10).map((m) => m.id), ['10', '11']);
});

test('a message delivered twice is counted unread once', () => {
  const s = initialState();
  s.me = { id: 'a', username: 'alice' };
  setChats(s, [chat('a_b')]);
  for (let i = 0; i < 2; i++) {
    const m = msg('1', 1);
    countUnread(s, m, false);
    receiveMessages(s, 'a_b', [m]);
  }
  assert.equal(s.chats.get('a_b')?.unread, 1);
});

test('one\'s own messages and the chat being read are not unread', () => {
  const s = initialState();
  s.me = { id: 'a', username: 'alice' };
  setChats(s, [chat('a_b')]);
  countUnread(s, msg('1', 1, 1, { author_id: 'a' }), false);
  countUnread(s, msg('2', 2), true);
  assert.equal(s.chats.get('a_b')?.unread, 0);
});

test('the server\'s answer to a send clears the pending message with the same nonce', () => {
  const s = initialState();
  setChats(s, [chat('a_b')]);
  timelineOf(s, 'a_b').loaded = true;
  putPending(s, { nonce: 'n1', chat_id: 'a_b', content: 'hi', created_at: '', state: 'sending', error: null });
  receiveMessages(s, 'a_b', [msg('1', 1, 1, { nonce: 'n1', author_id: 'a' })]);
  assert.equal(s.pending.size, 0);
  assert.equal(timelineOf(s, 'a_b').items.length, 1);
  assert.equal(s.chats.get('a_b')?.last_seq, 1);
});

test('chats are listed by latest activity, unknown activity keeping the server order', () => {
  const s = initialState();
  setChats(s, [chat('x'), chat('y'), chat('z')]);
  receiveMessages(s, 'z', [{ ...msg('1', 1), chat_id: 'z' }]);
  assert.deepEqual(sortedChats(s).map((c) => c.id), ['z', 'x', 'y']);
});

test('removing the open chat goes back to the friends page', () => {
  const s = initialState();
  setChats(s, [chat('a_b')]);
  s.route = { name: 'chat', chat_id: 'a_b' };
  removeChat(s, 'a_b');
  assert.equal(s.route.name, 'friends');
  assert.equal(s.chats.size, 0);
});

test('chat events keep the client\'s unread count and the newer last message', async () => {
  const { upsertChat } = await import('../../../web/js/store.js');
  const s = initialState();
  setChats(s, [chat('a_b', { unread: 3, last_message: { id: '200', author_id: 'b', content: 'new', created_at: '', deleted: false } })]);
  upsertChat(s, chat('a_b', { name: 'renamed', unread: 0, last_message: { id: '100', author_id: 'b', content: 'old', created_at: '', deleted: false } }));
  const c = s.chats.get('a_b');
  assert.equal(c?.unread, 3);
  assert.equal(c?.name, 'renamed');
  assert.equal(c?.last_message?.content, 'new');
});

test('a message received becomes the chat\'s last message when newer', () => {
  const s = initialState();
  setChats(s, [chat('a_b', { last_message: { id: '1000000000000000001', author_id: 'b', content: 'old', created_at: '', deleted: false } })]);
  receiveMessages(s, 'a_b', [msg('1000000000000000002', 2, 2, { content: 'newer' })]);
  assert.equal(s.chats.get('a_b')?.last_message?.content, 'newer');
  receiveMessages(s, 'a_b', [msg('1000000000000000002', 2, 3, { content: '', deleted: true })]);
  assert.equal(s.chats.get('a_b')?.last_message?.deleted, true);
});

test('typists are listed until their time runs out or their message arrives', async () => {
  const { startTyping, stopTyping, pruneTyping, typistsIn, TYPING_MS } = await import('../../../web/js/store.js');
  const s = initialState();
  s.me = { id: 'a', username: 'alice' };
  startTyping(s, 'c', { id: 'a', username: 'alice' }, 0); // oneself: ignored
  startTyping(s, 'c', { id: 'b', username: 'bob' }, 0);
  startTyping(s, 'c', { id: 'd', username: 'dan' }, 1000);
  assert.deepEqual(typistsIn(s, 'c', 10).map((u) => u.username), ['bob', 'dan']);
  assert.equal(stopTyping(s, 'c', 'd'), true);
  assert.equal(pruneTyping(s, TYPING_MS + 1), true);
  assert.deepEqual(typistsIn(s, 'c', TYPING_MS + 1), []);
  assert.equal(s.typing.size, 0);
});

test('the "New messages" line goes above the oldest unread message from others', async () => {
  const { firstUnread } = await import('../../../web/js/store.js');
  const items = [msg('1', 1), msg('2', 2, 2, { author_id: 'a' }), msg('3', 3), msg('4', 4, 4, { deleted: true }), msg('5', 5)];
  assert.equal(firstUnread(items, 0, 'a'), null);
  assert.equal(firstUnread(items, 1, 'a'), '5');
  assert.equal(firstUnread(items, 2, 'a'), '3');
  assert.equal(firstUnread(items, 9, 'a'), '1');
});

test('people named in chats and friend lists are remembered (authors who left a group)', async () => {
  const { setFriends } = await import('../../../web/js/store.js');
  const { authorName } = await import('../../../web/js/model.js');
  const s = initialState();
  setFriends(s, { friends: [{ id: 'z', username: 'zoe' }], incoming: [], outgoing: [] });
  assert.equal(authorName(undefined, 'z', s.users), 'zoe');
  assert.equal(authorName(undefined, 'q', s.users), 'Unknown user');
});

test('a snapshot whose newest message is a group change opens with the message before it as the chat\'s last', () => {
  const s = initialState();
  setChats(s, [chat('a_b', { kind: 'group', last_seq: 3 })]);
  timelineOf(s, 'a_b').loaded = true;
  receiveMessages(s, 'a_b', [msg('1', 1), msg('2', 2, 2, { author_id: 'a', content: '', kind: 'system', system: { type: 'renamed', name: 'G' } })]);
  const offline = initialState();
  restoreSnapshot(offline, structuredClone(snapshotOf(s, '2026-12-01T08:00:00.000Z')));
  assert.equal(offline.timelines.get('a_b')?.preview?.id, '1');
  setChats(offline, [chat('a_b', { kind: 'group', last_message: { id: '1', author_id: 'b', content: 'm1', created_at: '', deleted: false } })]);
  receiveMessages(offline, 'a_b', [msg('1', 1)]);
  assert.equal(offline.chats.get('a_b')?.last_message?.content, 'm1');
});

test('a snapshot keeps the newest messages and what is still to send; it opens only an unloaded state', () => {
  const s = initialState();
  setChats(s, [chat('a_b', { last_seq: 60 })]);
  timelineOf(s, 'a_b').loaded = true;
  receiveMessages(s, 'a_b', Array.from({ length: 60 }, (_, i) => msg(String(i + 1), i + 1)));
  putPending(s, { nonce: 'n1', chat_id: 'a_b', content: 'later', created_at: '', state: 'sending', error: null, reply_to: null });
  const snap = structuredClone(snapshotOf(s, '2026-12-01T08:00:00.000Z'));
  assert.equal(snap.timelines[0].items.length, SAVED_MESSAGES);
  assert.equal(snap.timelines[0].items.at(-1).id, '60');
  assert.equal(snap.timelines[0].has_more, true);
  assert.equal(snap.pending[0].state, 'queued', 'a send cut off by the reload goes again');

  const offline = initialState();
  restoreSnapshot(offline, snap);
  assert.equal(offline.saved_at, '2026-12-01T08:00:00.000Z');
  assert.equal(offline.chats.get('a_b')?.id, 'a_b');
  assert.equal(offline.timelines.get('a_b')?.items.length, SAVED_MESSAGES);
  assert.equal(offline.timelines.get('a_b')?.loaded, true);
  assert.equal(offline.pending.get('n1')?.content, 'later');
  setChats(offline, [chat('a_b')]);
  assert.equal(offline.saved_at, null, 'the server\'s list replaces the saved one');

  const fresh = initialState();
  setChats(fresh, [chat('c_d')]);
  restoreSnapshot(fresh, snap);
  assert.equal(fresh.chats.has('a_b'), false, 'never over what the server already said');
});
