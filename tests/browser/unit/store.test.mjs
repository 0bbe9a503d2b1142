// Unit tests of the web client's state rules (web/js/store.js), run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  initialState, mergeMessages, receiveMessages, countUnread, setChats, timelineOf, sortedChats, putPending, removeChat,
} from '../../../web/js/store.js';

/** @returns {import('../../../web/js/types.js').Message} */
const msg = (id, seq, version = seq, extra = {}) => ({
  id, chat_id: 'a_b', seq, version, author_id: 'b', content: `m${id}`, nonce: null,
  created_at: new Date(Date.UTC(2026, 0, 1, 12, seq)).toISOString(), edited_at: null, deleted: false, ...extra,
});
const chat = (id, extra = {}) => ({
  id, kind: 'direct', name: '', owner_id: null, members: [{ id: 'a', username: 'alice' }, { id: 'b', username: 'bob' }],
  last_seq: 0, unread: 0, read_only: false, ...extra,
});

test('merging keeps one entry per id, ordered by seq, highest version winning', () => {
  const merged = mergeMessages([msg('1', 1), msg('3', 3)], [msg('2', 2), msg('1', 1, 4, { content: 'edited' }), msg('3', 3)]);
  assert.deepEqual(merged.map((m) => m.id), ['1', '2', '3']);
  assert.equal(merged[0].content, 'edited');
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
