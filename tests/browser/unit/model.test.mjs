// Unit tests of parsing and naming (web/js/model.js), formatting (format.js) and routes (router.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChat, parseMessage, chatName, messageOf, chatIdOf } from '../../../web/js/model.js';
import { initials, badgeText, hueOf, AVATAR_HUES } from '../../../web/js/format.js';
import { parseRoute, routeHash } from '../../../web/js/router.js';
import { backoffMs } from '../../../web/js/socket.js';

test('ids stay strings and counters become numbers, whatever the JSON had', () => {
  const m = parseMessage({ id: 12345678901234567890n.toString(), chat_id: 'a_b', seq: '7', version: 9, author_id: 3 });
  assert.equal(m.id, '12345678901234567890');
  assert.equal(m.author_id, '3');
  assert.equal(m.seq, 7);
  assert.equal(m.version, 9);
  assert.equal(m.deleted, false);
});

test('a direct chat is named after the other member', () => {
  const c = parseChat({ id: 'a_b', kind: 'direct', members: [{ id: 'a', username: 'alice' }, { id: 'b', username: 'bob' }] });
  assert.equal(chatName(c, 'a'), 'bob');
  assert.equal(chatName(c, 'b'), 'alice');
});

test('event payloads are read whether wrapped or not', () => {
  assert.equal(messageOf({ message: { id: '1', chat_id: 'c' } }).id, '1');
  assert.equal(messageOf({ id: '2', chat_id: 'c' }).id, '2');
  assert.equal(chatIdOf({ chat_id: 'x' }), 'x');
  assert.equal(chatIdOf({ chat: { id: 'y' } }), 'y');
});

test('initials take the first letters of the first two words', () => {
  assert.equal(initials('alice_smith'), 'AS');
  assert.equal(initials('bob'), 'B');
  assert.equal(initials('bob_42'), 'B');
  assert.equal(initials(''), '?');
});

test('badges stop at 99+ and avatar hues stay in range', () => {
  assert.equal(badgeText(5), '5');
  assert.equal(badgeText(150), '99+');
  for (const k of ['', '1', 'abc', 'a_b']) assert.ok(hueOf(k) >= 0 && hueOf(k) < 360);
});

test('routes round-trip through the hash, chat ids with _ included', () => {
  assert.deepEqual(parseRoute(routeHash({ name: 'chat', chat_id: '12_34' })), { name: 'chat', chat_id: '12_34' });
  assert.deepEqual(parseRoute('#/friends'), { name: 'friends' });
  assert.equal(parseRoute('#/nonsense'), null);
});

test('reconnect back-off grows and stays under 15 s, jittered over the whole window', () => {
  for (let n = 0; n < 20; n++) {
    const ceiling = Math.min(15_000, 500 * 2 ** n);
    for (let i = 0; i < 50; i++) {
      const ms = backoffMs(n);
      assert.ok(ms >= 0 && ms <= ceiling && ms <= 15_000, `attempt ${n}: ${ms}`);
    }
  }
  // Full jitter: clients dropped together spread over the window, low and high.
  const waits = Array.from({ length: 400 }, () => backoffMs(5));
  assert.ok(waits.some((ms) => ms < 15_000 / 4) && waits.some((ms) => ms > (15_000 * 3) / 4), 'spread');
});

test('replies, mentions and reactions are parsed; a missing reply is null', async () => {
  const m = parseMessage({
    id: '5', chat_id: 'c', seq: 3, version: 4, author_id: 'b', content: 'yo',
    reply_to: { id: '1', author_id: 'a', content: 'hi', created_at: 't', deleted: false },
    mentions: ['a'], reactions: [{ emoji: '👍', count: 2, user_ids: ['a', 'b'] }, { emoji: '', count: 1, user_ids: [] }],
  });
  assert.equal(m.reply_to?.content, 'hi');
  assert.deepEqual(m.mentions, ['a']);
  assert.deepEqual(m.reactions, [{ emoji: '👍', count: 2, user_ids: ['a', 'b'] }]);
  assert.equal(parseMessage({ id: '6' }).reply_to, null);
  assert.deepEqual(parseMessage({ id: '6' }).reactions, []);
});

test('ids compare as numbers, whatever their length', async () => {
  const { newerId } = await import('../../../web/js/model.js');
  assert.equal(newerId('7531257920502988800', '7531257920037421056'), true);
  assert.equal(newerId('999', '1000'), false);
  assert.equal(newerId('5', '5'), false);
});

test('a chat\'s last message and activity time are parsed', () => {
  const c = parseChat({ id: 'g', kind: 'group', name: 'Team', last_activity_at: '2026-01-01T00:00:00.000Z', last_message: { id: '9', author_id: 'a', content: 'x', created_at: '', deleted: false } });
  assert.equal(c.kind, 'group');
  assert.equal(c.last_message?.id, '9');
  assert.equal(c.last_activity_at, '2026-01-01T00:00:00.000Z');
  assert.equal(parseChat({ id: 'd' }).last_message, null);
});

test('a system message says what changed in the group, with "you" for the reader', async () => {
  const { systemText } = await import('../../../web/js/model.js');
  const m = parseMessage({ id: 9, author_id: 1, content: '', kind: 'system', system: { type: 'member_added', user_id: 2 } });
  assert.equal(m.kind, 'system');
  assert.deepEqual(m.system, { type: 'member_added', user_id: '2', name: undefined });
  const names = { 1: 'ann', 2: 'ben' };
  const who = (id, first) => (id === '2' ? (first ? 'You' : 'you') : names[id]);
  assert.equal(systemText(m.author_id, m.system, who), 'ann added you');
  assert.equal(systemText('2', { type: 'renamed', name: 'Trip' }, who), 'You renamed the group to “Trip”');
  assert.equal(systemText('1', { type: 'owner_changed', user_id: '2' }, who), 'You now own the group');
  assert.equal(parseMessage({ kind: 'system', system: { type: 'nonsense' } }).system, null);
  assert.equal(parseMessage({ content: 'hi' }).kind, 'user');
});

test('avatar colours are one of twelve hues at least 25 degrees apart, spread over ids', () => {
  const sorted = [...AVATAR_HUES].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i] - sorted[i - 1] >= 25);
  assert.ok(360 - sorted.at(-1) + sorted[0] >= 20);
  const used = new Set(Array.from({ length: 200 }, (_, i) => hueOf(String(7533451057224007680n + BigInt(i)))));
  assert.equal(used.size, AVATAR_HUES.length, 'consecutive ids use every hue');
});
