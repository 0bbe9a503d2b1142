// views/shell.js — the signed-in layout: sidebar, connection banner, and the friends page or
// the open conversation; and the dialogs opened over them. Collapses to one column on a phone.

import { h } from '../dom.js';
import { sidebarView } from './sidebar.js';
import { friendsView } from './friends.js';
import { conversationView } from './conversation.js';
import { searchView } from './search.js';
import { statusView, noticeView } from './status.js';
import { confirmDialog } from './dialog.js';
import { createGroupDialog, groupSettingsDialog } from './groups.js';
import { accountDialog } from './account.js';
import { totalUnread } from '../store.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('./friends.js').FriendsActions} FriendsActions */
/** @typedef {import('./conversation.js').ConversationActions} ConversationActions */
/** @typedef {import('./groups.js').GroupActions} GroupActions */
/** @typedef {import('./account.js').AccountActions} AccountActions */
/** @typedef {import('./search.js').SearchActions} SearchActions */
/** @typedef {import('./groups.js').OpenDialog} OpenDialog */

/** What the shell adds for its views: dialogs. */
/** @typedef {'confirm' | 'openGroupSettings'} ShellProvided */

/**
 * @typedef {Omit<FriendsActions & ConversationActions & GroupActions & AccountActions & SearchActions, ShellProvided> & {
 *   closeSidebar: () => void,
 *   dismissNotice: () => void,
 * }} ShellActions
 */

/** @param {ShellActions} base */
export function shellView(base) {
  /** @type {OpenDialog | null} the dialog open now, kept up to date with the state */
  let dialog = null;
  /** @type {State | null} */
  let last = null;

  /** @param {(onClose: () => void) => OpenDialog} open */
  function show(open) {
    dialog?.close();
    const d = open(() => {
      if (dialog === d) dialog = null;
    });
    dialog = d;
    if (last) d.render(last);
  }

  const actions = {
    ...base,
    confirm: confirmDialog,
    /** @param {string} chatId */
    openGroupSettings: (chatId) => show((onClose) => groupSettingsDialog(chatId, actions, onClose)),
    openCreateGroup: () => show((onClose) => createGroupDialog(actions, onClose)),
    openAccount: () => show((onClose) => accountDialog(actions, onClose)),
  };

  const sidebar = sidebarView(actions);
  const friends = friendsView(actions);
  /** @type {ReturnType<typeof searchView> | null} made when first shown, kept with its results */
  let search = null;
  const status = statusView();
  const notice = noticeView(actions.dismissNotice);
  // The whole app is the page's main landmark (the sidebar alone is what a phone shows of it
  // on the chat list); the pane beside the sidebar is a region of it.
  const main = h('div', { class: 'main', tabindex: '-1' });
  // The first stop of the keyboard: past the chat list, to the conversation's message box (or
  // the page beside the list).
  const skip = h('a', { class: 'skip-link', href: '#', onclick: (/** @type {Event} */ e) => {
    e.preventDefault();
    actions.closeSidebar();
    const box = /** @type {HTMLElement | null} */ (main.querySelector('textarea.composer-input'));
    (box && box.offsetParent !== null ? box : main).focus();
  } }, 'Skip to content');
  const el = h('main', { class: 'app' }, skip, sidebar.el, h('div', { class: 'main-column' }, status.el, notice.el, main));

  /** @type {ReturnType<typeof conversationView> | null} */
  let conversation = null;

  // "Last seen 5 minutes ago" moves on even while nothing else changes.
  const ticker = setInterval(() => {
    if (last) render(last);
  }, 60_000);

  /** @param {State} s */
  function render(s) {
    last = s;
    el.classList.toggle('sidebar-open', s.sidebar_open);
    sidebar.render(s);
    status.render(s);
    notice.render(s);
    if (s.route.name === 'chat') {
      if (conversation?.chatId !== s.route.chat_id) {
        conversation = conversationView(s.route.chat_id, actions);
        main.replaceChildren(conversation.el);
        conversation.render(s);
        if (!s.sidebar_open && !dialog) conversation.focus();
      } else conversation.render(s);
    } else if (s.route.name === 'search') {
      conversation = null;
      search ??= searchView(actions);
      if (main.firstElementChild !== search.el) {
        main.replaceChildren(search.el);
        search.render(s);
        if (!s.sidebar_open && !dialog) search.focus();
      } else search.render(s);
    } else {
      conversation = null;
      if (main.firstElementChild !== friends.el) main.replaceChildren(friends.el);
      friends.render(s);
    }
    dialog?.render(s);
    const unread = totalUnread(s);
    document.title = unread > 0 ? `(${unread}) Astral` : 'Astral';
  }

  /** Closes whatever dialog is open (signing out). */
  function dispose() {
    clearInterval(ticker);
    dialog?.close();
    dialog = null;
  }

  return { el, render, dispose };
}
