// richtext.js — splits a message's text into plain text, @mentions and web links, and reads a
// small markdown subset (**bold**, *italic* or _italic_, `code`, ``` code blocks ```,
// [text](https://…)), so the view can show them differently while still inserting every piece
// as text: no HTML from a message ever reaches the page. Pure: no DOM.

/**
 * @typedef {{ kind: 'text', text: string }
 *   | { kind: 'mention', text: string, username: string }
 *   | { kind: 'link', text: string, href: string }} Token
 */

/**
 * @typedef {Token
 *   | { kind: 'code', text: string }
 *   | { kind: 'codeblock', text: string }
 *   | { kind: 'strong' | 'em', children: Rich[] }} Rich
 */

const FENCE = /```[^\n`]*\n?([\s\S]*?)```/g;
const INLINE_CODE = /`([^`\n]+)`/g;
const MD_LINK = /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g;
// Emphasis opens after a non-word character and closes before one, around text that neither
// starts nor ends with a space: snake_case and 2*3*4 stay as they are.
const EMPHASIS = /(?<![\p{L}\p{N}*_])(\*\*|\*|_)(?=[^\s*_])([\s\S]*?[^\s*_])\1(?![\p{L}\p{N}*_])/gu;

/**
 * A message's text as rich pieces: code blocks, then inline code, links and emphasis, and
 * mentions and web links in what is left.
 * @param {string} content @param {ReadonlySet<string>} usernames @returns {Rich[]}
 */
export function parseRich(content, usernames) {
  return splitBy(content, FENCE, (m) => ({ kind: 'codeblock', text: m[1].replace(/\n$/, '') }), (text) => inline(text, usernames));
}

/** @param {string} text @param {ReadonlySet<string>} usernames @returns {Rich[]} */
function inline(text, usernames) {
  return splitBy(text, INLINE_CODE, (m) => ({ kind: 'code', text: m[1] }), (rest) =>
    splitBy(rest, MD_LINK, (m) => (safeUrl(m[2]) ? { kind: 'link', text: m[1], href: m[2] } : { kind: 'text', text: m[0] }), (plain) => emphasis(plain, usernames)),
  );
}

/** @param {string} text @param {ReadonlySet<string>} usernames @returns {Rich[]} */
function emphasis(text, usernames) {
  return splitBy(
    text,
    EMPHASIS,
    (m) => ({ kind: m[1] === '**' ? 'strong' : 'em', children: emphasis(m[2], usernames) }),
    (plain) => tokenize(plain, usernames),
  );
}

/**
 * Splits `text` at the matches of `pattern` (global): each match becomes `found(match)`, the
 * text between becomes `between(text)`.
 * @param {string} text @param {RegExp} pattern @param {(m: RegExpMatchArray) => Rich} found
 * @param {(text: string) => Rich[]} between @returns {Rich[]}
 */
function splitBy(text, pattern, found, between) {
  /** @type {Rich[]} */
  const out = [];
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    const at = m.index ?? 0;
    if (at > last) out.push(...between(text.slice(last, at)));
    out.push(found(m));
    last = at + m[0].length;
  }
  if (last < text.length) out.push(...between(text.slice(last)));
  return out;
}

const PATTERN = /https?:\/\/[^\s<>"'`]+|@[a-z0-9_.]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'")\]}>]+$/;

/**
 * @param {string} content
 * @param {ReadonlySet<string>} usernames lower-case usernames that count as mentions
 * @returns {Token[]}
 */
export function tokenize(content, usernames) {
  /** @type {Token[]} */
  const out = [];
  let plain = '';
  let last = 0;
  const flush = () => {
    if (plain) out.push({ kind: 'text', text: plain });
    plain = '';
  };
  for (const match of content.matchAll(PATTERN)) {
    const at = match.index ?? 0;
    let word = match[0];
    plain += content.slice(last, at);
    last = at;
    if (word.startsWith('@')) {
      const before = at > 0 ? content[at - 1] : '';
      // Trailing dots end the sentence, not the name (names may contain dots).
      let name = word.slice(1);
      while (name.endsWith('.') && !usernames.has(name.toLowerCase())) name = name.slice(0, -1);
      if (!/[\p{L}\p{N}_]/u.test(before) && usernames.has(name.toLowerCase())) {
        word = `@${name}`;
        flush();
        out.push({ kind: 'mention', text: word, username: name.toLowerCase() });
        last = at + word.length;
      }
      continue;
    }
    // A link: leave out closing punctuation that belongs to the sentence.
    const href = word.replace(TRAILING_PUNCTUATION, '');
    if (safeUrl(href)) {
      flush();
      out.push({ kind: 'link', text: href, href });
      last = at + href.length;
    }
  }
  plain += content.slice(last);
  flush();
  return out;
}

/** Only plain web addresses become links. @param {string} s */
export function safeUrl(s) {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}
