// views/search.js — searching one's messages: a box, the results grouped by chat with the
// matching words marked, each a link to the message in its place in the conversation.

import { h, setText, avatar, updateAvatar } from '../dom.js';
import { icon } from '../icons.js';
import { backButton } from './back.js';
import { chatName, authorName } from '../model.js';
import { listTime, fullTime, snippetParts } from '../format.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').SearchPage} SearchPage */
/** @typedef {import('../types.js').SearchResult} SearchResult */
/** @typedef {import('../types.js').Highlight} Highlight */

/**
 * @typedef {{
 *   search: (q: string, before: string | null) => Promise<SearchPage>,
 *   openSidebar: () => void,
 * }} SearchActions
 */

/** How long typing pauses before a search goes out. */
const DEBOUNCE_MS = 300;
/**
 * The content as text and marked matches (a window around the first match when long).
 * @param {string} content @param {Highlight[]} highlights @returns {(string | HTMLElement)[]}
 */
function markedSnippet(content, highlights) {
  return snippetParts(content, highlights).map((p) => (p.mark ? h('mark', {}, p.text) : p.text));
}

/** Whether `q` has something to search for (a letter or a digit). @param {string} q */
function searchable(q) {
  return /[\p{L}\p{N}]/u.test(q);
}

/** @param {SearchActions} actions */
export function searchView(actions) {
  const back = backButton(() => actions.openSidebar());
  const input = h('input', {
    type: 'search',
    class: 'search-input',
    placeholder: 'Search your messages',
    'aria-label': 'Search your messages',
    autocomplete: 'off',
    maxlength: '200',
  });
  const status = h('p', { class: 'search-status', role: 'status' });
  const groups = h('div', { class: 'search-results' });
  const more = h('button', { type: 'button', class: 'btn secondary search-more', hidden: true }, 'More results');
  const el = h(
    'section',
    { class: 'pane search-pane', 'aria-labelledby': 'search-title' },
    h('header', { class: 'pane-header' }, back.el, h('span', { class: 'nav-icon' }, icon('search')), h('h1', { id: 'search-title' }, 'Search')),
    h(
      'div',
      { class: 'pane-body search-body' },
      h('form', { class: 'search-form', role: 'search', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); run(); } }, input),
      status,
      groups,
      more,
    ),
  );

  /** @type {SearchResult[]} */
  let results = [];
  /** @type {string | null} */
  let nextBefore = null;
  /** The query the results are for, and the latest asked (answers to older ones are dropped). */
  let shownQ = '';
  let asked = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {State | null} */
  let last = null;

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  });
  more.addEventListener('click', () => void load(shownQ, nextBefore));

  function run() {
    clearTimeout(timer);
    const q = input.value.trim();
    if (q === shownQ && results.length > 0) return;
    results = [];
    nextBefore = null;
    shownQ = q;
    if (!searchable(q)) {
      asked++;
      setText(status, q ? 'Type a word to search for.' : 'Find messages in your chats by the words they hold.');
      draw();
      return;
    }
    void load(q, null);
  }

  /** @param {string} q @param {string | null} before */
  async function load(q, before) {
    const mine = ++asked;
    setText(status, 'Searching…');
    more.disabled = true;
    try {
      const page = await actions.search(q, before);
      if (mine !== asked) return;
      results = before ? [...results, ...page.results] : page.results;
      nextBefore = page.next_before;
      const n = results.length;
      setText(status, n === 0 ? `No messages found for “${q}”.` : `${n}${nextBefore ? '+' : ''} message${n === 1 ? '' : 's'} found for “${q}”.`);
    } catch (e) {
      if (mine !== asked) return;
      setText(status, e instanceof Error ? e.message : 'The search failed.');
    } finally {
      more.disabled = false;
    }
    draw();
  }

  /** Draws the results, grouped by chat in the order of each chat's newest match. */
  function draw() {
    more.hidden = !nextBefore;
    /** @type {Map<string, SearchResult[]>} */
    const byChat = new Map();
    for (const r of results) {
      const list = byChat.get(r.message.chat_id) ?? [];
      list.push(r);
      byChat.set(r.message.chat_id, list);
    }
    const s = last;
    groups.replaceChildren(
      ...[...byChat].map(([chatId, found]) => {
        const chat = s?.chats.get(chatId);
        const name = chat ? chatName(chat, s?.me?.id) : 'A chat you left';
        const face = avatar('?', chatId, 'small');
        updateAvatar(face, name, chatId);
        return h(
          'section',
          { class: 'search-group' },
          h('h2', { class: 'search-chat' }, face, h('span', {}, name)),
          h(
            'ul',
            { class: 'search-list' },
            ...found.map(({ message, highlights }) =>
              h(
                'li',
                {},
                h(
                  'a',
                  { class: 'search-hit', href: `#/chat/${encodeURIComponent(chatId)}/m/${encodeURIComponent(message.id)}` },
                  h(
                    'span',
                    { class: 'search-meta' },
                    h('span', { class: 'search-author' }, authorName(chat, message.author_id, s?.users ?? new Map())),
                    h('time', { datetime: message.created_at, title: fullTime(message.created_at) }, listTime(message.created_at)),
                  ),
                  h('span', { class: 'search-snippet' }, ...markedSnippet(message.content, highlights)),
                ),
              ),
            ),
          ),
        );
      }),
    );
  }

  /** @param {State} s */
  function render(s) {
    const first = last === null;
    last = s;
    back.render(s);
    if (first) {
      run();
    }
  }

  function focus() {
    input.focus();
  }

  return { el, render, focus };
}
