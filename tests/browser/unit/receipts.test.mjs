// Unit tests of who has seen the user's last message (web/js/receipts.js), run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seenLine, seenByText, lastOwnMessage } from '../../../web/js/receipts.js';

const people = ['me', 'ann', 'bob', 'cy', 'dee', 'eve'].map((name) => ({ id: name, username: name }));

/** A message by `author` at `seq`. */
const msg = (seq, author, extra = {}) => ({ id: `m${seq}`, chat_id: 'c', seq, version: seq, author_id: author, content: `${seq}`, deleted: false, kind: 'user', system: null, ...extra });

/** A chat of `kind` with everyone above, and read markers `{user: seq}`. */
const chat = (kind, reads, members = people) => ({
  id: 'c', kind, members, read_states: Object.entries(reads).map(([user_id, seq]) => ({ user_id, seq })),
});

test('in a direct chat the other member\'s marker at or past one\'s last message reads "Seen" under it', () => {
  const items = [msg(1, 'me'), msg(2, 'ann'), msg(3, 'me')];
  const direct = (reads) => chat('direct', reads, people.slice(0, 2));
  assert.deepEqual(seenLine(direct({ ann: 3 }), items, 'me', true), { message_id: 'm3', text: 'Seen' });
  assert.deepEqual(seenLine(direct({ ann: 7 }), items, 'me', true), { message_id: 'm3', text: 'Seen' });
  assert.equal(seenLine(direct({ ann: 2 }), items, 'me', true), null, 'read up to an earlier message only');
  assert.equal(seenLine(direct({}), items, 'me', true), null, 'no marker shared');
});

test('one\'s own read marker never counts as seen', () => {
  const items = [msg(1, 'ann'), msg(2, 'me')];
  assert.equal(seenLine(chat('direct', { me: 9 }, people.slice(0, 2)), items, 'me', true), null);
  assert.deepEqual(seenLine(chat('group', { me: 9, bob: 2 }), items, 'me', true)?.text, 'Seen by bob');
});

test('in a group the readers are named in the members\' order, the rest counted past three', () => {
  const items = [msg(4, 'me')];
  assert.equal(seenLine(chat('group', { bob: 4, ann: 5 }), items, 'me', true)?.text, 'Seen by ann, bob');
  assert.equal(seenLine(chat('group', { cy: 4, bob: 4, ann: 5 }), items, 'me', true)?.text, 'Seen by ann, bob, cy');
  assert.equal(seenLine(chat('group', { ann: 4, bob: 4, cy: 4, dee: 4, eve: 4 }), items, 'me', true)?.text, 'Seen by ann, bob and 3 others');
  assert.equal(seenLine(chat('group', { ann: 3, bob: 4 }), items, 'me', true)?.text, 'Seen by bob', 'ann stopped before it');
});

test('someone no longer a member is not named, even with a marker', () => {
  const items = [msg(1, 'me')];
  assert.equal(seenLine(chat('group', { zed: 5, ann: 1 }), items, 'me', true)?.text, 'Seen by ann');
  assert.equal(seenLine(chat('group', { zed: 5 }), items, 'me', true), null);
});

test('not sharing one\'s read receipts hides everyone else\'s', () => {
  assert.equal(seenLine(chat('direct', { ann: 5 }, people.slice(0, 2)), [msg(1, 'me')], 'me', false), null);
});

test('the line goes under one\'s newest message that is still there, never under a group change', () => {
  const items = [msg(1, 'me'), msg(2, 'me', { deleted: true }), msg(3, 'me', { kind: 'system', system: { type: 'renamed', name: 'G' } }), msg(4, 'ann')];
  assert.equal(lastOwnMessage(items, 'me')?.id, 'm1');
  assert.deepEqual(seenLine(chat('direct', { ann: 4 }, people.slice(0, 2)), items, 'me', true), { message_id: 'm1', text: 'Seen' });
  assert.equal(seenLine(chat('direct', { ann: 4 }, people.slice(0, 2)), [msg(1, 'ann')], 'me', true), null, 'nothing of one\'s own');
});

test('"Seen by" names up to three, then two and how many others', () => {
  assert.equal(seenByText(['a']), 'Seen by a');
  assert.equal(seenByText(['a', 'b', 'c']), 'Seen by a, b, c');
  assert.equal(seenByText(['a', 'b', 'c', 'd']), 'Seen by a, b and 2 others');
});
