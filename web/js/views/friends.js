// views/friends.js — the friends page, in tabs: All (open a chat, unfriend, block), Pending
// (accept, decline, cancel), Blocked (unblock) and Add friend (by username).

import { h, reconcile, setText, setAttr, avatar, updateAvatar, setBadge } from '../dom.js';
import { icon } from '../icons.js';
import { backButton } from './back.js';
import { badgeText, presenceText, capitalized } from '../format.js';
import { presenceOf } from '../store.js';
import { withPresenceDot, showPresenceDot } from './presence.js';

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
 *   block: (u: User) => Promise<void>,
 *   unblock: (u: User) => Promise<void>,
 *   confirm: (o: { title: string, text: string, confirm: string }) => Promise<boolean>,
 *   openSidebar: () => void,
 * }} FriendsActions
 */

/** @typedef {'all' | 'pending' | 'blocked' | 'add'} Tab */

/** @type {{ id: Tab, label: string, panel: string }[]} */
const TABS = [
  { id: 'all', label: 'All', panel: 'All friends' },
  { id: 'pending', label: 'Pending', panel: 'Pending requests' },
  { id: 'blocked', label: 'Blocked', panel: 'Blocked people' },
  { id: 'add', label: 'Add friend', panel: 'Add by username' },
];

/**
 * The tab to show until the user picks one: requests waiting for an answer first, then the
 * friends, and for someone with neither, the form to add one.
 * @param {State} s @returns {Tab}
 */
export function autoTab(s) {
  if (s.friends.incoming.length > 0) return 'pending';
  if (s.friends.friends.length > 0) return 'all';
  return 'add';
}

/** @param {FriendsActions} actions */
export function friendsView(actions) {
  /** @type {Tab | null} the tab the user picked (null: follow `autoTab`) */
  let chosen = null;
  /** @type {Tab | null} the tab shown by the last render */
  let shown = null;
  /** @type {State | null} */
  let last = null;

  // ---- the add-friend form ----
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

  /** The add-friend form's answer. @param {string} text @param {'error' | 'success'} kind */
  function say(text, kind) {
    feedback.className = `form-feedback ${kind}`;
    feedback.textContent = text;
  }

  /** @param {Event} e */
  async function submit(e) {
    e.preventDefault();
    const username = input.value.trim();
    if (!username) {
      say('Enter the username of the person to add.', 'error');
      return;
    }
    sendBtn.disabled = true;
    try {
      say(await actions.sendFriendRequest(username), 'success');
      input.value = '';
    } catch (err) {
      say(err instanceof Error ? err.message : 'Could not send the request.', 'error');
    } finally {
      sendBtn.disabled = false;
    }
  }

  /**
   * A button that runs an action, disabled while it runs; errors go to the feedback line.
   * @param {string} text @param {string} label @param {string} cls @param {() => Promise<void>} run
   */
  function actionButton(text, label, cls, run) {
    const b = h('button', { type: 'button', class: `btn small ${cls}`, 'aria-label': label, title: label }, text);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        listFeedback.textContent = '';
        await run();
      } catch (err) {
        listFeedback.textContent = err instanceof Error ? err.message : 'That did not work.';
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  /**
   * @param {User} user @param {string} note @param {HTMLElement[]} buttons
   * @param {boolean} [dot] room for a presence dot (friends)
   */
  function row(user, note, buttons, dot = false) {
    const av = avatar(user.username, user.id);
    return h(
      'li',
      { class: 'person' },
      dot ? withPresenceDot(av) : av,
      h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, user.username), h('span', { class: 'person-note' }, note)),
      h('span', { class: 'person-actions' }, ...buttons),
    );
  }

  /** @param {User} u */
  const askUnfriend = async (u) => {
    const ok = await actions.confirm({
      title: 'Remove friend',
      text: `Remove ${u.username} from your friends? Your chat history stays, read only.`,
      confirm: 'Remove friend',
    });
    if (ok) await actions.removeFriend(u);
  };
  /** @param {User} u */
  const askBlock = async (u) => {
    const ok = await actions.confirm({
      title: `Block ${u.username}`,
      text: `Block ${u.username}? They will no longer be your friend, cannot send you requests, and your chat turns read only.`,
      confirm: 'Block',
    });
    if (ok) await actions.block(u);
  };

  // ---- the tabs ----
  /** @type {Map<Tab, { tab: HTMLButtonElement, panel: HTMLElement, badge: HTMLElement }>} */
  const tabs = new Map();
  const tabList = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Friends' });
  for (const t of TABS) {
    const badge = h('span', { class: 'badge', hidden: true });
    const tab = h(
      'button',
      { type: 'button', role: 'tab', id: `friends-tab-${t.id}`, class: t.id === 'add' ? 'tab tab-add' : 'tab', 'aria-controls': `friends-panel-${t.id}` },
      h('span', {}, t.label),
      badge,
    );
    tab.addEventListener('click', () => pick(t.id, false));
    tabList.append(tab);
    // (Not aria-labelledby the tab: the add-friend panel would then be a second "Add friend" label.)
    const panel = h('div', { role: 'tabpanel', id: `friends-panel-${t.id}`, class: 'tab-panel', 'aria-label': t.panel });
    tabs.set(t.id, { tab, panel, badge });
  }
  tabList.addEventListener('keydown', (e) => {
    const order = TABS.map((t) => t.id);
    const i = order.indexOf(current());
    let to = -1;
    if (e.key === 'ArrowRight') to = (i + 1) % order.length;
    else if (e.key === 'ArrowLeft') to = (i + order.length - 1) % order.length;
    else if (e.key === 'Home') to = 0;
    else if (e.key === 'End') to = order.length - 1;
    if (to < 0) return;
    e.preventDefault();
    pick(order[to], true);
  });

  /** @param {Tab} id @param {boolean} focusTab */
  function pick(id, focusTab) {
    chosen = id;
    listFeedback.textContent = '';
    if (last) render(last);
    if (focusTab) tabs.get(id)?.tab.focus();
    if (id === 'add') input.focus();
  }

  /** @returns {Tab} */
  function current() {
    if (chosen) return chosen;
    // The automatic tab holds still while a name is being typed: a request that arrives
    // then must not switch the tab under the keystrokes.
    if (shown && document.activeElement === input && input.value !== '') return shown;
    return last ? autoTab(last) : 'all';
  }

  const allTitle = h('h2', { class: 'section-title', id: 'all-friends-title' });
  const allList = h('ul', { class: 'people', 'aria-labelledby': 'all-friends-title' });
  const allSection = h('div', { class: 'people-section' }, allTitle, allList);
  const noFriends = h(
    'div',
    { class: 'empty-state' },
    h('p', {}, 'No friends yet.'),
    h('button', { type: 'button', class: 'btn primary small', onclick: () => pick('add', false) }, 'Add a friend'),
  );
  const listFeedback = h('p', { class: 'form-feedback error', role: 'alert' });

  const inTitle = h('h2', { class: 'section-title', id: 'incoming-title' });
  const inList = h('ul', { class: 'people', 'aria-labelledby': 'incoming-title' });
  const outTitle = h('h2', { class: 'section-title', id: 'outgoing-title' });
  const outList = h('ul', { class: 'people', 'aria-labelledby': 'outgoing-title' });
  const noPending = h('p', { class: 'empty' }, 'No pending friend requests.');
  const sentTitle = h('h2', { class: 'section-title', id: 'sent-title' });
  const sentList = h('ul', { class: 'people', 'aria-labelledby': 'sent-title' });
  const sentSection = h('div', { class: 'people-section' }, sentTitle, sentList);

  const blockedTitle = h('h2', { class: 'section-title', id: 'blocked-title' });
  const blockedList = h('ul', { class: 'people', 'aria-labelledby': 'blocked-title' });
  const blockedSection = h('div', { class: 'people-section' }, blockedTitle, blockedList);
  const noBlocked = h('p', { class: 'empty' }, 'You have not blocked anyone.');

  /** @param {Tab} id */
  const panelOf = (id) => /** @type {HTMLElement} */ (tabs.get(id)?.panel);
  panelOf('all').append(allSection, noFriends);
  const inSection = h('div', { class: 'people-section' }, inTitle, inList);
  const outSection = h('div', { class: 'people-section' }, outTitle, outList);
  panelOf('pending').append(inSection, outSection, noPending);
  panelOf('blocked').append(blockedSection, noBlocked);
  panelOf('add').append(h('div', { class: 'card' }, form), sentSection);

  const back = backButton(() => actions.openSidebar());
  const el = h(
    'section',
    { class: 'pane friends-pane', 'aria-labelledby': 'friends-heading' },
    h(
      'header',
      { class: 'pane-header' },
      back.el,
      h('span', { class: 'nav-icon' }, icon('friends')),
      h('h1', { id: 'friends-heading' }, 'Friends'),
      tabList,
    ),
    h('div', { class: 'pane-body' }, listFeedback, ...[...tabs.values()].map((t) => t.panel)),
  );

  /** @param {FriendRequest} r */
  const outgoingRow = (r) => row(r.to, 'Outgoing friend request', [actionButton('Cancel', `Cancel friend request to ${r.to.username}`, 'ghost', () => actions.cancel(r))]);

  /** @param {State} s */
  function render(s) {
    last = s;
    back.render(s);
    const f = s.friends;
    const shownTab = current();
    shown = shownTab;
    for (const [id, t] of tabs) {
      const on = id === shownTab;
      setAttr(t.tab, 'aria-selected', on ? 'true' : 'false');
      setAttr(t.tab, 'tabindex', on ? '0' : '-1');
      t.panel.hidden = !on;
    }
    const pendingBadge = /** @type {HTMLElement} */ (tabs.get('pending')?.badge);
    setBadge(pendingBadge, f.incoming.length, badgeText(f.incoming.length));

    // All
    const now = Date.now();
    setText(allTitle, `All friends — ${f.friends.length}`);
    allSection.hidden = f.friends.length === 0;
    noFriends.hidden = !s.friends_loaded || f.friends.length > 0;
    reconcile(
      allList,
      f.friends,
      (u) => u.id,
      (u) =>
        row(
          u,
          'Friend',
          [
            actionButton('Open chat', `Open chat with ${u.username}`, 'primary', () => actions.openDirect(u)),
            actionButton('Remove', `Remove friend ${u.username}`, 'ghost', () => askUnfriend(u)),
            actionButton('Block', `Block ${u.username}`, 'danger-ghost', () => askBlock(u)),
          ],
          true,
        ),
      (li, u) => {
        updateAvatar(/** @type {HTMLElement} */ (li.querySelector('.avatar')), u.username, u.id);
        setText(/** @type {HTMLElement} */ (li.querySelector('.person-name')), u.username);
        // The dot in words, for everyone: "Online", "Last seen 5 minutes ago".
        const p = presenceOf(s, u.id);
        showPresenceDot(/** @type {HTMLElement} */ (li.querySelector('.avatar-wrap')), p, now);
        setText(/** @type {HTMLElement} */ (li.querySelector('.person-note')), capitalized(presenceText(p, now)) || 'Friend');
      },
    );

    // Pending
    inSection.hidden = f.incoming.length === 0;
    setText(inTitle, `Friend requests — ${f.incoming.length}`);
    reconcile(inList, f.incoming, (r) => r.id, (r) =>
      row(r.from, 'Incoming friend request', [
        actionButton('Accept', `Accept friend request from ${r.from.username}`, 'success', () => actions.accept(r)),
        actionButton('Decline', `Decline friend request from ${r.from.username}`, 'danger-ghost', () => actions.decline(r)),
      ]), () => {});
    outSection.hidden = f.outgoing.length === 0;
    setText(outTitle, `Sent requests — ${f.outgoing.length}`);
    reconcile(outList, f.outgoing, (r) => r.id, outgoingRow, () => {});
    noPending.hidden = !s.friends_loaded || f.incoming.length + f.outgoing.length > 0;

    // Add friend: the requests just sent stay in view, to cancel one sent by mistake.
    sentSection.hidden = f.outgoing.length === 0;
    setText(sentTitle, `Sent requests — ${f.outgoing.length}`);
    reconcile(sentList, f.outgoing, (r) => r.id, outgoingRow, () => {});

    // Blocked
    setText(blockedTitle, `Blocked — ${s.blocked.length}`);
    blockedSection.hidden = s.blocked.length === 0;
    noBlocked.hidden = !s.blocked_loaded || s.blocked.length > 0;
    reconcile(blockedList, s.blocked, (u) => u.id, (u) =>
      row(u, 'Blocked', [actionButton('Unblock', `Unblock ${u.username}`, 'ghost', () => actions.unblock(u))]), () => {});
  }

  return { el, render };
}
