// views/conversation.js — the open chat: its header, the Messages list and the composer.

import { h, reconcile, setText, avatar, updateAvatar } from '../dom.js';
import { icon } from '../icons.js';
import { backButton } from './back.js';
import { chatName, authorName, otherMember, systemText } from '../model.js';
import { pendingOf, typistsIn, firstUnread, presenceOf } from '../store.js';
import { dayLabel, sameDayIso, msBetween, presenceText, capitalized } from '../format.js';
import { seenLine } from '../receipts.js';
import { withPresenceDot, showPresenceDot } from './presence.js';
import { composerView } from './composer.js';
import { createMessageItem, updateMessageItem } from './message.js';
import { openViewer } from './viewer.js';
import { reloadBroken } from './attachments.js';
import { dropZone } from './drop.js';
import { uploadsOf } from '../uploads.js';
import { describePreview } from '../attachments.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').Chat} Chat */
/** @typedef {import('../types.js').Message} Message */
/** @typedef {import('../types.js').PendingMessage} PendingMessage */
/** @typedef {import('./message.js').Entry} Entry */

/**
 * @typedef {{
 *   send: (chatId: string, content: string) => boolean,
 *   attach: (chatId: string, files: readonly File[]) => string | null,
 *   removeUpload: (key: string) => void,
 *   retryUpload: (key: string) => void,
 *   renewSession: () => Promise<unknown>,
 *   typing: (chatId: string) => void,
 *   loadOlder: (chatId: string) => void,
 *   editMessage: (m: Message, content: string) => Promise<void>,
 *   deleteMessage: (m: Message) => Promise<void>,
 *   startReply: (m: Message) => void,
 *   cancelReply: (chatId: string) => void,
 *   react: (m: Message, emoji: string) => Promise<void>,
 *   retry: (nonce: string) => void,
 *   discard: (nonce: string) => void,
 *   openSidebar: () => void,
 *   openGroupSettings: (chatId: string) => void,
 *   setMuted: (chatId: string, muted: boolean) => Promise<void>,
 *   confirm: (o: { title: string, text: string, confirm: string }) => Promise<boolean>,
 * }} ConversationActions
 */

const GROUP_WITHIN_MS = 7 * 60 * 1000;
const NEAR_BOTTOM_PX = 120;

/** @param {string} chatId @param {ConversationActions} actions */
export function conversationView(chatId, actions) {
  /** @type {string | null} the message being edited */
  let editing = null;
  /** @type {string | null} the message whose reaction picker is open */
  let picking = null;
  /** @type {string | null | undefined} the first unread message when the chat opened (undefined: not known yet) */
  let unreadFrom;
  let stickToBottom = true;
  let shownUnread = false;
  /** @type {string | undefined} the message the address named, once shown */
  let revealed;
  /** @type {State | null} */
  let last = null;
  let connected = false;

  const title = h('h1', { id: 'conversation-title', class: 'pane-title' });
  const subtitle = h('span', { class: 'pane-subtitle' });
  const headAvatar = avatar('?', chatId);
  const headFace = withPresenceDot(headAvatar);
  const readOnlyTag = h('span', { class: 'tag', hidden: true }, 'Read only');
  // Muting silences the chat's notifications only: its unread messages are still counted.
  const muteBtn = h('button', {
    type: 'button',
    class: 'icon-btn mute-btn',
    hidden: true,
    onclick: () => {
      const chat = last?.chats.get(chatId);
      if (chat) void actions.setMuted(chatId, !chat.muted);
    },
  });
  const settingsBtn = h(
    'button',
    { type: 'button', class: 'icon-btn', 'aria-label': 'Group settings', title: 'Group settings', hidden: true, onclick: () => actions.openGroupSettings(chatId) },
    icon('settings'),
  );
  const intro = h('div', { class: 'conversation-intro', hidden: true }, h('div', { class: 'intro-avatar' }), h('h2', {}), h('p', {}));
  const loading = h('p', { class: 'loading', role: 'status' });
  const list = h('ul', { class: 'messages', 'aria-label': 'Messages' });
  const scroller = h('div', { class: 'scroller', tabindex: '0', 'aria-labelledby': 'conversation-title' }, intro, loading, list);
  const jump = h(
    'button',
    { type: 'button', class: 'jump-btn', hidden: true, onclick: () => scrollToBottom(true) },
    icon('down'),
    'Jump to latest',
  );

  /** @type {string | undefined} the row the arrow keys are on (the newest when unset) */
  let activeKey;

  const rows = () => /** @type {HTMLElement[]} */ ([...list.children]);

  /**
   * The message list is one tab stop (roving tabindex): the active row and its controls are
   * reachable with Tab, every other row by the arrow keys only.
   */
  function rove() {
    const all = rows();
    const active = all.find((li) => li.dataset.key === activeKey) ?? all.at(-1);
    for (const li of all) {
      const on = li === active;
      const mark = `${on}|${li.dataset.sig}`;
      if (li.dataset.rove === mark) continue;
      li.dataset.rove = mark;
      li.tabIndex = on ? 0 : -1;
      for (const c of /** @type {NodeListOf<HTMLElement>} */ (li.querySelectorAll('button, a[href], textarea, input'))) c.tabIndex = on ? 0 : -1;
    }
    // An empty conversation still scrolls by keyboard.
    if (all.length > 0) scroller.removeAttribute('tabindex');
    else scroller.tabIndex = 0;
  }

  list.addEventListener('keydown', (e) => {
    const li = e.target;
    if (!(li instanceof HTMLElement) || li.parentElement !== list) return;
    const all = rows();
    const i = all.indexOf(li);
    const to = { ArrowUp: i - 1, ArrowDown: i + 1, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = all[Math.max(0, Math.min(all.length - 1, to))];
    activeKey = next.dataset.key;
    rove();
    next.focus();
    next.scrollIntoView({ block: 'nearest' });
  });
  list.addEventListener('focusin', (e) => {
    const li = e.target instanceof HTMLElement ? e.target.closest('li') : null;
    if (li instanceof HTMLElement && li.parentElement === list && li.dataset.key !== activeKey) {
      activeKey = li.dataset.key;
      rove();
    }
  });

  /** @param {string} messageId */
  function findRow(messageId) {
    return /** @type {HTMLElement | null} */ (list.querySelector(`li[data-message-id="${CSS.escape(messageId)}"]`));
  }

  /** @type {import('./message.js').MessageActions} */
  const itemActions = {
    startEdit: (m) => {
      editing = m.id;
      picking = null;
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
    remove: async (m) => {
      const ok = await actions.confirm({ title: 'Delete message', text: 'Delete this message for everyone? This cannot be undone.', confirm: 'Delete' });
      if (ok) await actions.deleteMessage(m);
      composer.focus(); // the message's buttons are gone
    },
    reply: (m) => {
      picking = null;
      actions.startReply(m);
    },
    openPicker: (m) => {
      picking = picking === m.id ? null : m.id;
      rerender();
    },
    closePicker: () => {
      if (picking === null) return;
      picking = null;
      rerender();
    },
    react: (m, emoji) => void actions.react(m, emoji),
    jumpTo: (messageId) => {
      const row = findRow(messageId);
      if (!row) return;
      row.scrollIntoView({ block: 'center', behavior: 'smooth' });
      row.classList.remove('flash');
      void row.offsetWidth; // restart the animation
      row.classList.add('flash');
    },
    retry: actions.retry,
    discard: actions.discard,
    openAttachment: (a) => openViewer(a, actions.renewSession),
    renew: actions.renewSession,
  };
  const createItem = createMessageItem(itemActions);

  const composer = composerView(chatId, 'Message', {
    send: (content) => {
      if (!actions.send(chatId, content)) return false;
      stickToBottom = true;
      unreadFrom = null; // answering is reading: the "New messages" line goes
      shownUnread = true;
      return true;
    },
    attach: (files) => actions.attach(chatId, files),
    removeUpload: actions.removeUpload,
    retryUpload: actions.retryUpload,
    typing: () => actions.typing(chatId),
    cancelReply: () => actions.cancelReply(chatId),
    editLast: () => {
      const me = last?.me?.id;
      const mine = [...(last?.timelines.get(chatId)?.items ?? [])].reverse().find((m) => m.author_id === me && !m.deleted);
      if (!mine) return false;
      itemActions.startEdit(mine);
      return true;
    },
  });

  /** @param {boolean} smooth */
  function scrollToBottom(smooth) {
    stickToBottom = true;
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    jump.hidden = true;
  }

  // A window resized (a phone turned, its keyboard opened) keeps the newest messages in view.
  new ResizeObserver(() => {
    if (stickToBottom) scroller.scrollTop = scroller.scrollHeight;
  }).observe(scroller);

  scroller.addEventListener('scroll', () => {
    stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    jump.hidden = stickToBottom;
    if (scroller.scrollTop < 300) actions.loadOlder(chatId);
  });

  const back = backButton(() => actions.openSidebar());
  const el = h(
    'section',
    { class: 'pane conversation', 'aria-labelledby': 'conversation-title' },
    h(
      'header',
      { class: 'pane-header' },
      back.el,
      headFace,
      h('div', { class: 'pane-titles' }, title, subtitle),
      readOnlyTag,
      h('span', { class: 'spacer' }),
      muteBtn,
      settingsBtn,
    ),
    h('div', { class: 'scroller-wrap' }, scroller, jump),
    composer.el,
  );
  // Files dragged over the chat go to the composer (not while the chat is read only).
  dropZone(el, (files) => composer.addFiles(files), () => {
    const chat = last?.chats.get(chatId);
    return !!chat && !chat.read_only;
  });

  function rerender() {
    if (last) render(last);
  }

  /** The header's mute switch: its name and bell say what a press does. @param {Chat | undefined} chat */
  function renderMute(chat) {
    muteBtn.hidden = !chat;
    const muted = !!chat?.muted;
    const label = muted ? 'Unmute chat' : 'Mute chat';
    if (muteBtn.getAttribute('aria-label') === label) return;
    muteBtn.setAttribute('aria-label', label);
    muteBtn.title = muted ? 'Unmute chat: notify me of new messages again' : 'Mute chat: no notifications (unread messages are still counted)';
    muteBtn.replaceChildren(icon(muted ? 'bell-off' : 'bell'));
  }

  /** @param {State} s @param {Chat | undefined} chat @returns {Entry[]} */
  function entries(s, chat) {
    const me = s.me?.id ?? '';
    const t = s.timelines.get(chatId);
    const names = (chat?.members ?? []).map((m) => m.username.toLowerCase()).join(' ');
    const canAnswer = !!chat && !chat.read_only;
    /** @param {string} id */
    const nameOf = (id) => (id === me ? s.me?.username ?? 'You' : authorName(chat, id, s.users));
    const byId = new Map((t?.items ?? []).map((m) => [m.id, m]));
    /** @param {string} id @param {boolean} first */
    const who = (id, first) => {
      if (id === me) return first ? 'You' : 'you';
      const name = authorName(chat, id, s.users);
      return name !== 'Unknown user' ? name : first ? 'A former member' : 'a former member';
    };
    const seen = chat && t ? seenLine(chat, t.items, me, s.settings?.share_read_receipts !== false) : null;
    /** @type {Entry[]} */
    const out = [];
    const keys = new Set();
    /** @type {{ authorId: string, created: string, deleted: boolean, system: boolean } | null} */
    let prev = null;
    /** @param {Message | null} m @param {PendingMessage | null} p */
    const add = (m, p) => {
      const authorId = m ? m.author_id : me;
      const created = m ? m.created_at : p?.created_at ?? '';
      const nonce = m ? (m.author_id === me ? m.nonce : null) : p?.nonce ?? null;
      let key = nonce ? `n:${nonce}` : `m:${m?.id}`;
      if (keys.has(key)) key = `m:${m?.id ?? key}`;
      keys.add(key);
      const replyTo = m ? m.reply_to : p?.reply_to ?? null;
      const unreadStart = !!m && m.id === unreadFrom;
      const newDay = !prev || !sameDayIso(prev.created, created);
      const system = m?.system ? systemText(m.author_id, m.system, who) : null;
      const grouped =
        !!prev && !newDay && !unreadStart && !replyTo && !system && !prev.system && prev.authorId === authorId && !prev.deleted && !m?.deleted && msBetween(prev.created, created) < GROUP_WITHIN_MS;
      out.push({
        key,
        message: m,
        pending: p,
        author: nameOf(authorId),
        authorId,
        mine: authorId === me,
        grouped,
        day: newDay ? dayLabel(created) : null,
        unreadStart,
        editing: !!m && m.id === editing,
        picking: !!m && m.id === picking,
        canAnswer,
        mentionsMe: !!m && !m.deleted && m.author_id !== me && m.mentions.includes(me),
        meName: s.me?.username ?? '',
        names,
        reply: replyTo ? { author: nameOf(replyTo.author_id), preview: replyTo, line: describePreview(replyTo, byId.get(replyTo.id)) } : null,
        reactions: (m?.reactions ?? []).map((r) => ({
          emoji: r.emoji,
          count: r.count,
          mine: r.user_ids.includes(me),
          who: r.user_ids.map(nameOf).join(', ') || `${r.count}`,
        })),
        system,
        seen: m && seen?.message_id === m.id ? seen.text : null,
      });
      prev = { authorId, created, deleted: !!m?.deleted, system: !!system };
    };
    for (const m of t?.items ?? []) add(m, null);
    for (const p of pendingOf(s, chatId)) add(null, p);
    return out;
  }

  /** @param {State} s */
  function render(s) {
    last = s;
    back.render(s);
    // Pictures that failed while the server was away are asked for again once it is back.
    if (s.connection === 'connected' && !connected) reloadBroken(list);
    connected = s.connection === 'connected';
    const chat = s.chats.get(chatId);
    const t = s.timelines.get(chatId);
    const name = chat ? chatName(chat, s.me?.id) : '';
    const group = chat?.kind === 'group';
    const other = chat && !group ? otherMember(chat, s.me?.id) : null;
    setText(title, chat ? name : s.chats_loaded ? 'Chat not found' : 'Loading…');
    // A group counts its members; a direct chat says where the friend is ("Last seen …").
    const presence = presenceOf(s, other?.id);
    const now = Date.now();
    setText(subtitle, group ? `${chat.members.length} ${chat.members.length === 1 ? 'member' : 'members'}` : capitalized(presenceText(presence, now)));
    subtitle.hidden = !subtitle.textContent;
    updateAvatar(headAvatar, name || '?', other?.id ?? chatId);
    headAvatar.classList.toggle('group', group);
    showPresenceDot(headFace, presence, now);
    readOnlyTag.hidden = !chat?.read_only;
    settingsBtn.hidden = !group;
    renderMute(chat);
    // Nothing to write in while the chat loads or when there is no such chat.
    composer.el.hidden = !chat;
    composer.setReadOnly(!chat?.read_only ? null : other ? `You can no longer send messages to ${other.username}: you are not friends any more.` : 'You can no longer send messages in this chat.');
    const replying = s.replying.get(chatId) ?? null;
    const answered = replying ? t?.items.find((m) => m.id === replying.id) : undefined;
    composer.setReply(
      replying,
      replying ? (replying.author_id === s.me?.id ? 'yourself' : authorName(chat, replying.author_id, s.users)) : '',
      replying ? describePreview(replying, answered) : { text: '', files: false },
    );
    composer.setUploads(uploadsOf(s, chatId));
    composer.setTyping(typistsIn(s, chatId, Date.now()).map((u) => u.username));

    if (unreadFrom === undefined && chat && t?.loaded) unreadFrom = firstUnread(t.items, chat.unread, s.me?.id ?? '');

    intro.hidden = !t?.loaded || t.has_more;
    if (!intro.hidden) {
      const [ia, ih, ip] = /** @type {HTMLElement[]} */ (Array.from(intro.children));
      const big = avatar(name || '?', other?.id ?? chatId, 'large');
      big.classList.toggle('group', group);
      ia.replaceChildren(big);
      setText(ih, name);
      setText(
        ip,
        !chat ? '' : group ? `This is the beginning of the group ${name}.` : `This is the beginning of your direct message history with ${name}.`,
      );
    }
    const missing = !chat && s.chats_loaded;
    const busy = missing ? 'This chat does not exist, or you are not a member of it.' : !t?.loaded ? 'Loading messages…' : t.loading_older ? 'Loading older messages…' : '';
    setText(loading, busy);
    loading.hidden = !busy;

    const firstKey = list.firstElementChild instanceof HTMLElement ? list.firstElementChild.dataset.key : undefined;
    const oldHeight = scroller.scrollHeight;
    const oldTop = scroller.scrollTop;
    const items = entries(s, chat);
    if (editing && !items.some((e) => e.editing)) editing = null; // deleted meanwhile
    if (picking && !items.some((e) => e.picking)) picking = null;
    reconcile(list, items, (e) => e.key, createItem, (li, e) => updateMessageItem(li, e, itemActions));
    rove();

    if (stickToBottom) scroller.scrollTop = scroller.scrollHeight;
    if (!shownUnread && unreadFrom !== undefined) {
      // Opening with more unread than fits: start at the "New messages" line, not the bottom.
      shownUnread = true;
      const row = unreadFrom ? findRow(unreadFrom) : null;
      const above = row ? row.getBoundingClientRect().top - scroller.getBoundingClientRect().top : 0;
      if (row && above < 0) {
        scroller.scrollTop += above - 48;
        stickToBottom = false;
        jump.hidden = false;
      }
    } else if (!stickToBottom && firstKey !== undefined && items.length > 0 && items[0].key !== firstKey) {
      scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight); // older page added above
    }
    // A first page that does not fill the screen cannot be scrolled: fetch more right away.
    if (t?.loaded && t.has_more && !t.loading_older && scroller.scrollHeight <= scroller.clientHeight) actions.loadOlder(chatId);
    revealTarget(s);
  }

  /**
   * Shows the message the address names (a search result's) once its row is there: in the
   * middle of the list, flashed, and the row the arrow keys start from.
   * @param {State} s
   */
  function revealTarget(s) {
    const target = s.route.name === 'chat' ? s.route.message_id : undefined;
    if (!target || target === revealed) return;
    const row = findRow(target);
    if (!row) return;
    revealed = target;
    shownUnread = true;
    activeKey = row.dataset.key;
    rove();
    // At once, not smoothly: a smooth scroll starts at the bottom, where the scroll handler
    // would still see the list as stuck to it and a render in between would pull it back.
    stickToBottom = false;
    row.scrollIntoView({ block: 'center' });
    row.classList.remove('flash');
    void row.offsetWidth; // restart the animation
    row.classList.add('flash');
    jump.hidden = false;
  }

  return {
    el,
    chatId,
    render,
    focus: () => composer.focus(),
  };
}
