// views/friends.js — the friends page: add a friend by username, pending requests both ways,
// and the friends list with a button to open the direct chat.

import { h, reconcile, setText, avatar, updateAvatar } from '../dom.js';
import { icon } from '../icons.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').User} User */
/** @typedef {import('../types.js').FriendRequest} FriendRequest */

/**
 * @typedef {{
 *   sendFriendRequest: (username: string) => Promise<string>,
 *   accept: (r: FriendRequest) => Promise<void>,
 *   decline: (r: FriendRequest) => Promise<void>,
 *   cancel: (r: FriendRequest) => Promise<void>,
 *   openDirect: (u: User) => Promise<void>,
 *   removeFriend: (u: User) => Promise<void>,
 *   openSidebar: () => void,
 * }} FriendsActions
 */

/** @param {FriendsActions} actions */
export function friendsView(actions) {
  const input = h('input', {
    id: 'add-friend-input',
    type: 'text',
    autocomplete: 'off',
    autocapitalize: 'none',
    spellcheck: 'false',
    placeholder: 'Enter a username',
    maxlength: '32',
  });
  const sendBtn = h('button', { type: 'submit', class: 'btn primary' }, 'Send friend request');
  const feedback = h('p', { class: 'form-feedback', role: 'status' });
  const form = h(
    'form',
    { class: 'add-friend-form', onsubmit: (e) => void submit(e) },
    h('label', { for: 'add-friend-input' }, 'Add friend'),
    h('p', { class: 'hint' }, 'You can add friends with their username.'),
    h('div', { class: 'inline-form' }, input, sendBtn),
    feedback,
  );

  /** @param {Event} e */
  async function submit(e) {
    e.preventDefault();
    const username = input.value.trim();
    if (!username) {
      feedback.className = 'form-feedback error';
      feedback.textContent = 'Enter the username of the person to add.';
      return;
    }
    sendBtn.disabled = true;
    try {
      feedback.className = 'form-feedback success';
      feedback.textContent = await actions.sendFriendRequest(username);
      input.value = '';
    } catch (err) {
      feedback.className = 'form-feedback error';
      feedback.textContent = err instanceof Error ? err.message : 'Could not send the request.';
    } finally {
      sendBtn.disabled = false;
    }
  }

  const incoming = section('incoming-title');
  const outgoing = section('outgoing-title');
  const friends = section('friends-title');
  const noFriends = h('p', { class: 'empty' }, 'No friends yet. Add someone by their username above.');

  /**
   * A button that runs an action, disabled while it runs; errors go to the feedback line.
   * @param {string} text @param {string} label @param {string} cls @param {() => Promise<void>} run
   */
  function actionButton(text, label, cls, run) {
    const b = h('button', { type: 'button', class: `btn small ${cls}`, 'aria-label': label }, text);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await run();
      } catch (err) {
        feedback.className = 'form-feedback error';
        feedback.textContent = err instanceof Error ? err.message : 'That did not work.';
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  /** @param {User} user @param {string} note @param {HTMLElement[]} buttons */
  function row(user, note, buttons) {
    return h(
      'li',
      { class: 'person' },
      avatar(user.username, user.id),
      h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, user.username), h('span', { class: 'person-note' }, note)),
      h('span', { class: 'person-actions' }, ...buttons),
    );
  }

  const el = h(
    'section',
    { class: 'pane friends-pane', 'aria-labelledby': 'friends-heading' },
    h(
      'header',
      { class: 'pane-header' },
      h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Show chats', onclick: () => actions.openSidebar() }, icon('menu')),
      h('span', { class: 'nav-icon' }, icon('friends')),
      h('h1', { id: 'friends-heading' }, 'Friends'),
    ),
    h('div', { class: 'pane-body' }, h('div', { class: 'card' }, form), incoming.el, outgoing.el, friends.el, noFriends),
  );

  /** @param {State} s */
  function render(s) {
    const f = s.friends;
    incoming.show(f.incoming.length, 'Friend requests');
    reconcile(incoming.list, f.incoming, (r) => r.id, (r) =>
      row(r.from, 'Incoming friend request', [
        actionButton('Accept', `Accept friend request from ${r.from.username}`, 'success', () => actions.accept(r)),
        actionButton('Decline', `Decline friend request from ${r.from.username}`, 'danger-ghost', () => actions.decline(r)),
      ]), () => {});
    outgoing.show(f.outgoing.length, 'Sent requests');
    reconcile(outgoing.list, f.outgoing, (r) => r.id, (r) =>
      row(r.to, 'Outgoing friend request', [
        actionButton('Cancel', `Cancel friend request to ${r.to.username}`, 'ghost', () => actions.cancel(r)),
      ]), () => {});
    friends.show(f.friends.length, 'All friends');
    reconcile(friends.list, f.friends, (u) => u.id, (u) =>
      row(u, 'Friend', [
        actionButton('Open chat', `Open chat with ${u.username}`, 'primary', () => actions.openDirect(u)),
        actionButton('Remove', `Remove friend ${u.username}`, 'danger-ghost', () => actions.removeFriend(u)),
      ]), (li, u) => {
        updateAvatar(/** @type {HTMLElement} */ (li.querySelector('.avatar')), u.username, u.id);
        setText(/** @type {HTMLElement} */ (li.querySelector('.person-name')), u.username);
      });
    noFriends.hidden = !s.friends_loaded || f.friends.length > 0 || f.incoming.length > 0 || f.outgoing.length > 0;
  }

  return { el, render };
}

/** A titled list that hides itself when empty. @param {string} id */
function section(id) {
  const heading = h('h2', { class: 'section-title', id });
  const list = h('ul', { class: 'people', 'aria-labelledby': id });
  const el = h('section', { class: 'people-section', hidden: true }, heading, list);
  return {
    el,
    list,
    /** @param {number} n @param {string} label */
    show(n, label) {
      el.hidden = n === 0;
      setText(heading, `${label} — ${n}`);
    },
  };
}
