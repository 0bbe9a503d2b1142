// views/back.js — the "Show chats" button of a pane's header on a phone, with a badge counting
// the unread messages of the chats not on screen (otherwise invisible there).

import { h, setText, setBadge } from '../dom.js';
import { icon } from '../icons.js';
import { totalUnread, openChatId } from '../store.js';
import { badgeText } from '../format.js';

/** @typedef {import('../types.js').State} State */

/** @param {() => void} openSidebar */
export function backButton(openSidebar) {
  const badge = h('span', { class: 'badge back-badge', hidden: true, 'aria-hidden': 'true' });
  // The name is hidden text rather than an aria-label: a label that did not hold the badge's
  // visible number would tell speech-input users a name they cannot see.
  const name = h('span', { class: 'sr-only' }, 'Show chats');
  const el = h('button', { type: 'button', class: 'icon-btn back-btn', onclick: openSidebar }, icon('menu'), badge, name);

  /** @param {State} s */
  function render(s) {
    const open = openChatId(s);
    const n = totalUnread(s) - (open ? s.chats.get(open)?.unread ?? 0 : 0);
    setBadge(badge, n, badgeText(n));
    setText(name, n > 0 ? `Show chats (${n} unread)` : 'Show chats');
  }

  return { el, render };
}
