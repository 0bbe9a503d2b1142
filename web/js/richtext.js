// richtext.js — splits a message's text into plain text, @mentions and web links, so the view
// can show them differently while still inserting every piece as text. Pure: no DOM.

/**
 * @typedef {{ kind: 'text', text: string }
 *   | { kind: 'mention', text: string, username: string }
 *   | { kind: 'link', text: string, href: string }} Token
 */

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
