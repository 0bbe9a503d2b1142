// Unit tests of message text splitting (web/js/richtext.js) and the words made from data (format.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenize, safeUrl, parseRich } from '../../../web/js/richtext.js';
import { typingText, deviceName } from '../../../web/js/format.js';

const names = new Set(['alice', 'bob', 'j.doe']);

test('plain text stays one text token, HTML included', () => {
  const html = '<img src=x onerror=alert(1)> <b>hi</b>';
  assert.deepEqual(tokenize(html, names), [{ kind: 'text', text: html }]);
});

test('mentions of members are marked; unknown names and e-mail addresses are not', () => {
  assert.deepEqual(tokenize('hi @bob and @carol', names), [
    { kind: 'text', text: 'hi ' },
    { kind: 'mention', text: '@bob', username: 'bob' },
    { kind: 'text', text: ' and @carol' },
  ]);
  assert.deepEqual(tokenize('mail alice@bob.com', names), [{ kind: 'text', text: 'mail alice@bob.com' }]);
  assert.deepEqual(tokenize('@Alice!', names).map((t) => t.kind), ['mention', 'text']);
});

test('a dot ends the sentence, not a name, unless the name has it', () => {
  assert.deepEqual(tokenize('thanks @bob.', names), [
    { kind: 'text', text: 'thanks ' },
    { kind: 'mention', text: '@bob', username: 'bob' },
    { kind: 'text', text: '.' },
  ]);
  assert.equal(tokenize('@j.doe.', names)[0].text, '@j.doe');
});

test('web links become links without their closing punctuation; other schemes stay text', () => {
  assert.deepEqual(tokenize('see https://example.org/a?b=1).', names), [
    { kind: 'text', text: 'see ' },
    { kind: 'link', text: 'https://example.org/a?b=1', href: 'https://example.org/a?b=1' },
    { kind: 'text', text: ').' },
  ]);
  assert.deepEqual(tokenize('javascript:alert(1)', names), [{ kind: 'text', text: 'javascript:alert(1)' }]);
  assert.equal(safeUrl('http://'), false);
  assert.equal(safeUrl('data:text/html,hi'), false);
});

test('the text of all tokens is the message, unchanged', () => {
  const s = 'a @bob b https://x.io, c @nobody @alice.';
  assert.equal(tokenize(s, names).map((t) => t.text).join(''), s);
});

test('typing indicator words', () => {
  assert.equal(typingText([]), '');
  assert.equal(typingText(['alice']), 'alice is typing…');
  assert.equal(typingText(['alice', 'bob']), 'alice and bob are typing…');
  assert.equal(typingText(['a', 'b', 'c', 'd']), 'Several people are typing…');
});

test('sessions are named after their browser and system', () => {
  assert.equal(deviceName('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'), 'Chrome on Linux');
  assert.equal(deviceName('Mozilla/5.0 (Windows NT 10.0; rv:121.0) Gecko/20100101 Firefox/121.0'), 'Firefox on Windows');
  assert.equal(deviceName(''), 'Unknown device');
});

test('a small markdown subset: bold, italic, code, code blocks, links; nothing else', () => {
  assert.deepEqual(parseRich('a **big** and *small* _too_ `x<b>` end', names), [
    { kind: 'text', text: 'a ' },
    { kind: 'strong', children: [{ kind: 'text', text: 'big' }] },
    { kind: 'text', text: ' and ' },
    { kind: 'em', children: [{ kind: 'text', text: 'small' }] },
    { kind: 'text', text: ' ' },
    { kind: 'em', children: [{ kind: 'text', text: 'too' }] },
    { kind: 'text', text: ' ' },
    { kind: 'code', text: 'x<b>' },
    { kind: 'text', text: ' end' },
  ]);
  assert.deepEqual(parseRich('look:\n```js\nlet a = **1**;\n```\ndone', names), [
    { kind: 'text', text: 'look:\n' },
    { kind: 'codeblock', text: 'let a = **1**;' },
    { kind: 'text', text: '\ndone' },
  ]);
  assert.deepEqual(parseRich('[the docs](https://example.com/a) and [bad](javascript:alert(1))', names), [
    { kind: 'link', text: 'the docs', href: 'https://example.com/a' },
    { kind: 'text', text: ' and [bad](javascript:alert(1))' },
  ]);
  assert.deepEqual(parseRich('**hi @bob**', names), [
    { kind: 'strong', children: [{ kind: 'text', text: 'hi ' }, { kind: 'mention', text: '@bob', username: 'bob' }] },
  ]);
});

test('markdown-looking text that is not emphasis stays text', () => {
  for (const plain of ['snake_case_name', '2*3*4', 'a * b * c', '** nothing **', 'file_name.txt and other_name', '<script>alert(1)</script>']) {
    assert.deepEqual(parseRich(plain, names), [{ kind: 'text', text: plain }], plain);
  }
  assert.deepEqual(parseRich('@j.doe_x', new Set(['j.doe_x'])), [{ kind: 'mention', text: '@j.doe_x', username: 'j.doe_x' }]);
});
