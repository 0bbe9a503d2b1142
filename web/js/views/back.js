// views/back.js — the "Show chats" button of a pane's header on a phone, with a badge counting
// the unread messages of the chats not on screen (otherwise invisible there).

import { h, setAttr, setBadge } from '../dom.js';
import { icon } from '../icons.js';
import { totalUnread, openChatId } from '../store.js';
import { badgeText } from '../format.js';

/** @typedef {import('../types.js').State} State */

/** @param {() => void} openSidebar */
export function backButton(openSidebar) {
  const badge = h('span', { class: 'badge back-badge', hidden: true, 'aria-hidden': 'true' });
  const el = h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Show chats', onclick: openSidebar }, icon('menu'), badge);

  /** @param {State} s */
  function render(s) {
    const open = openChatId(s);
    const n = totalUnread(s) - (open ? s.chats.get(open)?.unread ?? 0 : 0);
    setBadge(badge, n, badgeText(n));
    setAttr(el, 'aria-label', n > 0 ? `Show chats (${n} unread)` : 'Show chats');
  }

  return { el, render };
}
