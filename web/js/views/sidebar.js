// views/sidebar.js — the left column: Friends, Search, the chat list (nav "Chats") and the
// signed-in user.

import { h, reconcile, setText, setAttr, avatar, updateAvatar, setBadge } from '../dom.js';
import { icon } from '../icons.js';
import { chatName, authorName, otherMember } from '../model.js';
import { sortedChats, pendingOf, presenceOf } from '../store.js';
import { badgeText, listTime, previewText, presenceText } from '../format.js';
import { withPresenceDot, showPresenceDot } from './presence.js';
import { describePreview, previewParts } from '../attachments.js';
import { setPreview } from './attachments.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').Chat} Chat */

/** @param {{ logout: () => void, closeSidebar: () => void, openCreateGroup: () => void, openAccount: () => void, confirm: (o: { title: string, text: string, confirm: string }) => Promise<boolean> }} actions */
export function sidebarView(actions) {
  const friendsBadge = h('span', { class: 'badge', hidden: true });
  const friendsLink = h(
    'a',
    { class: 'nav-item friends-link', href: '#/friends', onclick: () => actions.closeSidebar() },
    h('span', { class: 'nav-icon' }, icon('friends')),
    h('span', { class: 'nav-label' }, 'Friends'),
    friendsBadge,
  );
  const searchLink = h(
    'a',
    { class: 'nav-item search-link', href: '#/search', onclick: () => actions.closeSidebar() },
    h('span', { class: 'nav-icon' }, icon('search')),
    h('span', { class: 'nav-label' }, 'Search'),
  );
  const list = h('ul', { class: 'chat-list' });
  const empty = h('p', { class: 'empty small' }, 'No chats yet. Open one from your friends list, or create a group.');
  const meAvatar = avatar('?', '');
  const meName = h('span', { class: 'me-name' });
  const status = h('span', { class: 'status-dot', 'aria-hidden': 'true' });
  const logout = h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Log out', title: 'Log out', onclick: () => confirmLogout() }, icon('logout'));
  async function confirmLogout() {
    const ok = await actions.confirm({ title: 'Log out', text: 'Log out of Astral on this device? Your other devices stay signed in.', confirm: 'Log out' });
    if (ok) actions.logout();
  }
  const settings = h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Settings', title: 'Settings', onclick: () => actions.openAccount() }, icon('settings'));
  const newGroup = h(
    'button',
    { type: 'button', class: 'icon-btn small', 'aria-label': 'Create group', title: 'Create group', onclick: () => actions.openCreateGroup() },
    icon('plus'),
  );

  const el = h(
    'div',
    { class: 'sidebar' },
    h('header', { class: 'sidebar-header' }, h('span', { class: 'brand-mark small' }, icon('sparkle')), h('h1', { class: 'brand' }, 'Astral')),
    friendsLink,
    searchLink,
    h('nav', { class: 'chats-nav', 'aria-label': 'Chats' }, h('div', { class: 'section-head' }, h('h2', { class: 'section-title' }, 'Chats'), newGroup), list, empty),
    h('footer', { class: 'me' }, h('span', { class: 'me-avatar' }, meAvatar, status), meName, settings, logout),
  );

  /** @param {Chat} chat */
  function createItem(chat) {
    // The other member's presence: a dot on the avatar, in words after the name (the link's
    // name must still start with the chat's).
    const a = h(
      'a',
      { class: 'chat-item', href: '#', onclick: () => actions.closeSidebar() },
      withPresenceDot(avatar('?', chat.id)),
      h('span', { class: 'chat-text' }, h('span', { class: 'chat-name' }), h('span', { class: 'sr-only chat-presence' }), h('span', { class: 'chat-preview' })),
      h(
        'span',
        { class: 'chat-side' },
        h('time', { class: 'chat-time' }),
        h('span', { class: 'chat-flags' }, h('span', { class: 'chat-muted', title: 'Muted', hidden: true }, icon('bell-off'), h('span', { class: 'sr-only' }, 'muted')), h('span', { class: 'badge', hidden: true })),
      ),
    );
    return h('li', {}, a);
  }

  /** @param {State} s */
  function render(s) {
    const me = s.me;
    const incoming = s.friends.incoming.length;
    const noFriends = s.friends_loaded && s.friends.friends.length === 0;
    newGroup.disabled = noFriends;
    setAttr(newGroup, 'title', noFriends ? 'Add a friend first to create a group' : 'Create group');
    setBadge(friendsBadge, incoming, badgeText(incoming));
    setAttr(friendsLink, 'aria-current', s.route.name === 'friends' ? 'page' : null);
    setAttr(searchLink, 'aria-current', s.route.name === 'search' ? 'page' : null);

    const chats = sortedChats(s);
    const now = Date.now();
    empty.hidden = chats.length > 0 || !s.chats_loaded;
    reconcile(list, chats, (c) => c.id, createItem, (li, chat) => {
      const a = /** @type {HTMLAnchorElement} */ (li.firstElementChild);
      const name = chatName(chat, me?.id);
      const group = chat.kind === 'group';
      const other = group ? null : otherMember(chat, me?.id);
      setAttr(a, 'href', `#/chat/${encodeURIComponent(chat.id)}`);
      setAttr(a, 'aria-current', s.route.name === 'chat' && s.route.chat_id === chat.id ? 'page' : null);
      a.classList.toggle('unread', chat.unread > 0);
      const av = /** @type {HTMLElement} */ (a.querySelector('.avatar'));
      updateAvatar(av, name, other?.id ?? chat.id);
      av.classList.toggle('group', group);
      setText(/** @type {HTMLElement} */ (a.querySelector('.chat-name')), name);
      const presence = presenceOf(s, other?.id);
      showPresenceDot(/** @type {HTMLElement} */ (a.querySelector('.avatar-wrap')), presence, now);
      const said = presenceText(presence, now);
      setText(/** @type {HTMLElement} */ (a.querySelector('.chat-presence')), said ? `, ${said}` : '');
      a.classList.toggle('muted', chat.muted);
      /** @type {HTMLElement} */ (a.querySelector('.chat-muted')).hidden = !chat.muted;

      const pend = pendingOf(s, chat.id).at(-1);
      const last = chat.last_message;
      /** @type {import('../attachments.js').PreviewLine} */
      let line = { text: '', files: false };
      let who = '';
      if (pend) {
        who = 'You: ';
        line = previewParts(pend.content, pend.attachments.length, pend.attachments[0]?.filename);
      } else if (last) {
        who = last.deleted ? '' : last.author_id === me?.id ? 'You: ' : group ? `${authorName(chat, last.author_id, s.users)}: ` : '';
        line = last.deleted ? { text: 'Message deleted', files: false } : describePreview(last, s.timelines.get(chat.id)?.preview);
      } else if (chat.read_only) line.text = 'Read only';
      else if (group) line.text = `${chat.members.length} members`;
      setPreview(/** @type {HTMLElement} */ (a.querySelector('.chat-preview')), who, { ...line, text: previewText(line.text) });

      const time = /** @type {HTMLElement} */ (a.querySelector('.chat-time'));
      setText(time, last ? listTime(last.created_at) : '');
      setAttr(time, 'datetime', last ? last.created_at : null);
      const badge = /** @type {HTMLElement} */ (a.querySelector('.badge'));
      setBadge(badge, chat.unread, badgeText(chat.unread));
    });

    updateAvatar(meAvatar, me?.username ?? '?', me?.id ?? '');
    setText(meName, me?.username ?? '');
    status.dataset.state = s.connection;
    setAttr(status, 'title', s.connection === 'connected' ? 'Online' : 'Not connected');
  }

  return { el, render };
}
