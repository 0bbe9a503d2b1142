// views/shell.js — the signed-in layout: sidebar, connection banner, and the friends page or
// the open conversation. Collapses to one column on a phone.

import { h } from '../dom.js';
import { sidebarView } from './sidebar.js';
import { friendsView } from './friends.js';
import { conversationView } from './conversation.js';
import { statusView, noticeView } from './status.js';
import { totalUnread } from '../store.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('./friends.js').FriendsActions} FriendsActions */
/** @typedef {import('./conversation.js').ConversationActions} ConversationActions */

/**
 * @typedef {FriendsActions & ConversationActions & {
 *   logout: () => void,
 *   closeSidebar: () => void,
 *   dismissNotice: () => void,
 * }} ShellActions
 */

/** @param {ShellActions} actions */
export function shellView(actions) {
  const sidebar = sidebarView(actions);
  const friends = friendsView(actions);
  const status = statusView();
  const notice = noticeView(actions.dismissNotice);
  const main = h('main', { class: 'main' });
  const el = h('div', { class: 'app' }, sidebar.el, h('div', { class: 'main-column' }, status.el, notice.el, main));

  /** @type {ReturnType<typeof conversationView> | null} */
  let conversation = null;

  /** @param {State} s */
  function render(s) {
    el.classList.toggle('sidebar-open', s.sidebar_open);
    sidebar.render(s);
    status.render(s);
    notice.render(s);
    if (s.route.name === 'chat') {
      if (conversation?.chatId !== s.route.chat_id) {
        conversation = conversationView(s.route.chat_id, actions);
        main.replaceChildren(conversation.el);
        conversation.render(s);
        if (!s.sidebar_open) conversation.focus();
      } else conversation.render(s);
    } else {
      conversation = null;
      if (main.firstElementChild !== friends.el) main.replaceChildren(friends.el);
      friends.render(s);
    }
    const unread = totalUnread(s);
    document.title = unread > 0 ? `(${unread}) Astral` : 'Astral';
  }

  return { el, render };
}
