// Unit tests of search results: parsing (web/js/model.js), marked snippets (format.js) and
// the routes that link to a message (router.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSearch } from '../../../web/js/model.js';
import { snippetParts } from '../../../web/js/format.js';
import { parseRoute, routeHash } from '../../../web/js/router.js';

test('matches are marked by characters, not UTF-16 units', () => {
  // 😀 is one character but two UTF-16 units: a slice by units would cut "LUNCH" wrong.
  assert.deepEqual(snippetParts('😀 LUNCH, lunchtime', [{ start: 2, end: 7 }, { start: 9, end: 18 }]), [
    { text: '😀 ', mark: false },
    { text: 'LUNCH', mark: true },
    { text: ', ', mark: false },
    { text: 'lunchtime', mark: true },
  ]);
});

test('a long message is shown around its first match, cut with ellipses', () => {
  const content = `${'a '.repeat(200)}needle${' b'.repeat(200)}`;
  const start = 400;
  const parts = snippetParts(content, [{ start, end: start + 6 }]);
  assert.equal(parts[0].text, '…');
  assert.equal(parts.at(-1)?.text, '…');
  assert.deepEqual(parts.filter((p) => p.mark).map((p) => p.text), ['needle']);
  const shown = parts.map((p) => p.text).join('');
  assert.ok([...shown].length <= 242, 'a window, not the whole message');
});

test('search pages are parsed; highlights outside the content are dropped', () => {
  const page = parseSearch({
    results: [{ message: { id: '1', chat_id: 'c', content: 'hi there' }, highlights: [{ start: 0, end: 2 }, { start: 5, end: 99 }, { start: 3, end: 3 }] }],
    next_before: '1',
  });
  assert.equal(page.results[0].message.id, '1');
  assert.deepEqual(page.results[0].highlights, [{ start: 0, end: 2 }]);
  assert.equal(page.next_before, '1');
  assert.deepEqual(parseSearch({}), { results: [], next_before: null });
});

test('a message has an address in its chat, and search one of its own', () => {
  const route = { name: 'chat', chat_id: '1_2', message_id: '42' };
  assert.equal(routeHash(route), '#/chat/1_2/m/42');
  assert.deepEqual(parseRoute('#/chat/1_2/m/42'), route);
  assert.deepEqual(parseRoute('#/chat/1_2'), { name: 'chat', chat_id: '1_2' });
  assert.deepEqual(parseRoute('#/search'), { name: 'search' });
  assert.equal(routeHash({ name: 'search' }), '#/search');
  assert.equal(parseRoute('#/chat/1_2/x/42'), null);
});
