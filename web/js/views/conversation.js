// views/conversation.js — the open chat: its header, the Messages list and the composer.

import { h, reconcile, setText, avatar, updateAvatar } from '../dom.js';
import { icon } from '../icons.js';
import { chatName, authorName } from '../model.js';
import { pendingOf } from '../store.js';
import { dayLabel, sameDayIso, msBetween } from '../format.js';
import { composerView } from './composer.js';
import { createMessageItem, updateMessageItem } from './message.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').Message} Message */
/** @typedef {import('./message.js').Entry} Entry */

/**
 * @typedef {{
 *   send: (chatId: string, content: string) => void,
 *   typing: (chatId: string) => void,
 *   loadOlder: (chatId: string) => void,
 *   editMessage: (m: Message, content: string) => Promise<void>,
 *   deleteMessage: (m: Message) => Promise<void>,
 *   retry: (nonce: string) => void,
 *   discard: (nonce: string) => void,
 *   openSidebar: () => void,
 * }} ConversationActions
 */

const GROUP_WITHIN_MS = 7 * 60 * 1000;
const NEAR_BOTTOM_PX = 120;

/** @param {string} chatId @param {ConversationActions} actions */
export function conversationView(chatId, actions) {
  /** @type {string | null} the message being edited */
  let editing = null;
  let stickToBottom = true;
  /** @type {State | null} */
  let last = null;

  const title = h('h1', { id: 'conversation-title', class: 'pane-title' });
  const headAvatar = avatar('?', chatId);
  const readOnlyTag = h('span', { class: 'tag', hidden: true }, 'Read only');
  const intro = h('div', { class: 'conversation-intro', hidden: true }, h('div', { class: 'intro-avatar' }), h('h2', {}), h('p', {}));
  const loading = h('p', { class: 'loading', role: 'status' });
  const list = h('ul', { class: 'messages', 'aria-label': 'Messages' });
  const scroller = h('div', { class: 'scroller', tabindex: '0', 'aria-labelledby': 'conversation-title' }, intro, loading, list);

  /** @type {import('./message.js').MessageActions} */
  const itemActions = {
    startEdit: (m) => {
      editing = m.id;
      rerender();
    },
    saveEdit: async (m, content) => {
      await actions.editMessage(m, content);
      editing = null;
      rerender();
      composer.focus();
    },
    cancelEdit: () => {
      editing = null;
      rerender();
      composer.focus();
    },
    remove: (m) => {
      if (window.confirm('Delete this message? This cannot be undone.')) void actions.deleteMessage(m);
    },
    retry: actions.retry,
    discard: actions.discard,
  };
  const createItem = createMessageItem(itemActions);

  const composer = composerView(chatId, 'Message', {
    send: (content) => {
      stickToBottom = true;
      actions.send(chatId, content);
    },
    typing: () => actions.typing(chatId),
  });

  scroller.addEventListener('scroll', () => {
    stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    if (scroller.scrollTop < 300) actions.loadOlder(chatId);
  });

  const el = h(
    'section',
    { class: 'pane conversation', 'aria-labelledby': 'conversation-title' },
    h(
      'header',
      { class: 'pane-header' },
      h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Show chats', onclick: () => actions.openSidebar() }, icon('menu')),
      headAvatar,
      title,
      readOnlyTag,
    ),
    scroller,
    composer.el,
  );

  function rerender() {
    if (last) render(last);
  }

  /** @param {State} s @returns {Entry[]} */
  function entries(s) {
    const chat = s.chats.get(chatId);
    const me = s.me?.id ?? '';
    const t = s.timelines.get(chatId);
    /** @type {Entry[]} */
    const out = [];
    const keys = new Set();
    /** @type {{ authorId: string, created: string, deleted: boolean } | null} */
    let prev = null;
    /** @param {Message | null} m @param {import('../types.js').PendingMessage | null} p */
    const add = (m, p) => {
      const authorId = m ? m.author_id : me;
      const created = m ? m.created_at : p?.created_at ?? '';
      const nonce = m ? (m.author_id === me ? m.nonce : null) : p?.nonce ?? null;
      let key = nonce ? `n:${nonce}` : `m:${m?.id}`;
      if (keys.has(key)) key = `m:${m?.id ?? key}`;
      keys.add(key);
      const newDay = !prev || !sameDayIso(prev.created, created);
      const grouped = !!prev && !newDay && prev.authorId === authorId && !prev.deleted && !m?.deleted && msBetween(prev.created, created) < GROUP_WITHIN_MS;
      out.push({
        key,
        message: m,
        pending: p,
        author: authorId === me ? s.me?.username ?? 'You' : authorName(chat, authorId),
        authorId,
        mine: authorId === me,
        grouped,
        day: newDay ? dayLabel(created) : null,
        editing: !!m && m.id === editing,
      });
      prev = { authorId, created, deleted: !!m?.deleted };
    };
    for (const m of t?.items ?? []) add(m, null);
    for (const p of pendingOf(s, chatId)) add(null, p);
    return out;
  }

  /** @param {State} s */
  function render(s) {
    last = s;
    const chat = s.chats.get(chatId);
    const t = s.timelines.get(chatId);
    const name = chat ? chatName(chat, s.me?.id) : '';
    const other = chat?.kind === 'direct' ? chat.members.find((m) => m.id !== s.me?.id) : undefined;
    setText(title, chat ? name : s.chats_loaded ? 'Chat not found' : 'Loading…');
    updateAvatar(headAvatar, name || '?', other?.id ?? chatId);
    readOnlyTag.hidden = !chat?.read_only;
    composer.setReadOnly(!chat || chat.read_only);

    intro.hidden = !t?.loaded || t.has_more;
    if (!intro.hidden) {
      const [ia, ih, ip] = /** @type {HTMLElement[]} */ (Array.from(intro.children));
      ia.replaceChildren(avatar(name || '?', other?.id ?? chatId, 'large'));
      setText(ih, name);
      setText(ip, chat?.kind === 'direct' ? `This is the beginning of your direct message history with ${name}.` : `This is the beginning of ${name}.`);
    }
    const busy = !t?.loaded ? 'Loading messages…' : t.loading_older ? 'Loading older messages…' : '';
    setText(loading, busy);
    loading.hidden = !busy;

    const firstKey = list.firstElementChild instanceof HTMLElement ? list.firstElementChild.dataset.key : undefined;
    const oldHeight = scroller.scrollHeight;
    const oldTop = scroller.scrollTop;
    const items = entries(s);
    reconcile(list, items, (e) => e.key, createItem, (li, e) => updateMessageItem(li, e, itemActions));

    if (stickToBottom) scroller.scrollTop = scroller.scrollHeight;
    else if (firstKey !== undefined && items.length > 0 && items[0].key !== firstKey) {
      scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight); // older page added above
    }
    // A first page that does not fill the screen cannot be scrolled: fetch more right away.
    if (t?.loaded && t.has_more && !t.loading_older && scroller.scrollHeight <= scroller.clientHeight) actions.loadOlder(chatId);
  }

  return {
    el,
    chatId,
    render,
    focus: () => composer.focus(),
  };
}
