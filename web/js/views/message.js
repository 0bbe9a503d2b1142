// views/message.js — one entry of the Messages list: a message (with its reply quote, files,
// reactions and action buttons), or one being sent.

import { h, setText, setAttr, updateAvatar, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { messageTime, fullTime } from '../format.js';
import { parseRich } from '../richtext.js';
import { autoGrow } from './composer.js';
import { emojiPicker, emojiName } from './emoji.js';
import { renderAttachments, setPreview } from './attachments.js';

/** @typedef {import('../types.js').Message} Message */
/** @typedef {import('../types.js').PendingMessage} PendingMessage */
/** @typedef {import('../types.js').Preview} Preview */
/** @typedef {import('../types.js').Attachment} Attachment */

/**
 * A reaction as shown: `mine` when the user is among those who reacted, `who` their names.
 * @typedef {{ emoji: string, count: number, mine: boolean, who: string }} ShownReaction
 */

/**
 * What one row shows, worked out by the conversation view.
 * @typedef {{
 *   key: string,
 *   message: Message | null,
 *   pending: PendingMessage | null,
 *   author: string,
 *   authorId: string,
 *   mine: boolean,
 *   grouped: boolean,
 *   day: string | null,
 *   unreadStart: boolean,
 *   editing: boolean,
 *   picking: boolean,
 *   canAnswer: boolean,
 *   mentionsMe: boolean,
 *   meName: string,
 *   names: string,
 *   reply: { author: string, preview: Preview, line: import('../attachments.js').PreviewLine } | null,
 *   reactions: ShownReaction[],
 *   system: string | null,
 *   seen: string | null,
 * }} Entry
 * `canAnswer`: replies and reactions are possible (not a read-only chat); `names`: the
 * members' usernames, space-separated, for @mentions; `system`: what a system message says
 * (a change to the group), null for a message someone wrote; `reply.line`: what the message
 * answered says, in one line (its file's name when it has no text); `seen`: who has read this
 * far ("Seen", "Seen by ann, bob"), under the user's last message only.
 */

/**
 * @typedef {{
 *   startEdit: (m: Message) => void,
 *   saveEdit: (m: Message, content: string) => Promise<void>,
 *   cancelEdit: () => void,
 *   remove: (m: Message) => void,
 *   reply: (m: Message) => void,
 *   openPicker: (m: Message) => void,
 *   closePicker: () => void,
 *   react: (m: Message, emoji: string) => void,
 *   jumpTo: (messageId: string) => void,
 *   retry: (nonce: string) => void,
 *   discard: (nonce: string) => void,
 *   openAttachment: (a: Attachment) => void,
 *   renew: () => Promise<unknown>,
 * }} MessageActions
 */

/** @param {Entry} e */
function signature(e) {
  const m = e.message;
  const p = e.pending;
  return JSON.stringify([
    e.author, e.grouped, e.day, e.unreadStart, e.editing, e.picking, e.canAnswer, e.mentionsMe, e.names, e.mine,
    m?.id, m?.version, m?.deleted, m?.content, m?.edited_at, p?.state, p?.error, e.reply, e.reactions, e.system, e.seen,
    filesOf(e).map((a) => a.id),
  ]);
}

/** The files an entry shows: its message's (none once deleted), or those of one being sent. @param {Entry} e */
function filesOf(e) {
  return e.message ? e.message.attachments : e.pending?.attachments ?? [];
}

/** What a message not yet confirmed says under it. @type {Record<PendingMessage['state'], (p: PendingMessage) => string>} */
const STATUS_TEXT = {
  queued: () => 'Waiting for the connection: it will send when you are back online.',
  sending: () => 'Sending…',
  failed: (p) => `Not sent: ${p.error ?? 'the server refused it.'}`,
};

/** @param {HTMLElement} li */
const retryButton = (li) => q(li, '[data-status="retry"]');
/** @param {HTMLElement} li */
const discardButton = (li) => q(li, '[data-status="discard"]');

/** The entry each row shows now, for its buttons. @type {WeakMap<HTMLElement, Entry>} */
const shown = new WeakMap();

/** @param {HTMLElement} li @param {string} sel */
function q(li, sel) {
  return /** @type {HTMLElement} */ (li.querySelector(sel));
}

/** @param {MessageActions} actions @returns {(e: Entry) => HTMLElement} */
export function createMessageItem(actions) {
  return (entry) => {
    const run = (/** @type {(m: Message) => void} */ f) => () => {
      const m = shown.get(li)?.message;
      if (m) f(m);
    };
    const withNonce = (/** @type {(nonce: string) => void} */ f) => () => {
      const p = shown.get(li)?.pending;
      if (p) f(p.nonce);
    };
    /** @param {string} name @param {import('../icons.js').IconName} ic @param {(m: Message) => void} f @param {string} [cls] */
    const tool = (name, ic, f, cls = '') =>
      h('button', { type: 'button', class: `icon-btn small ${cls}`.trim(), 'aria-label': name, title: name, dataset: { tool: name }, onclick: run(f) }, icon(ic));
    const retry = h('button', { type: 'button', class: 'link-btn', dataset: { status: 'retry' }, onclick: withNonce(actions.retry) }, 'Retry');
    const discard = h('button', { type: 'button', class: 'link-btn', dataset: { status: 'discard' }, onclick: withNonce(actions.discard) }, 'Discard');
    const quote = h(
      'button',
      {
        type: 'button',
        class: 'reply-quote',
        onclick: () => {
          const r = shown.get(li)?.reply;
          if (r) actions.jumpTo(r.preview.id);
        },
      },
      icon('reply'),
      h('span', { class: 'reply-author' }),
      h('span', { class: 'reply-text' }),
    );
    const reactions = h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' });
    reactions.addEventListener('click', (ev) => {
      const chip = ev.target instanceof Element ? ev.target.closest('.reaction') : null;
      const m = shown.get(li)?.message;
      if (chip instanceof HTMLElement && m && chip.dataset.emoji) actions.react(m, chip.dataset.emoji);
    });
    const li = h(
      'li',
      { class: 'msg' },
      h(
        'div',
        { class: 'msg-row', tabindex: '-1' },
        avatar(entry.author, entry.authorId),
        h(
          'div',
          { class: 'msg-body' },
          quote,
          h(
            'div',
            { class: 'msg-meta' },
            h('span', { class: 'msg-author' }),
            ' ',
            h('time', { class: 'msg-time' }),
          ),
          h('div', { class: 'msg-content' }),
          h('div', { class: 'msg-attachments', hidden: true }),
          reactions,
          h('div', { class: 'msg-status' }, h('span', { class: 'msg-status-text' }), ' ', retry, ' ', discard),
          h('p', { class: 'msg-seen', hidden: true }),
        ),
        h(
          'div',
          { class: 'msg-actions', role: 'group', 'aria-label': 'Message actions' },
          tool('React', 'smile', actions.openPicker),
          tool('Reply', 'reply', actions.reply),
          tool('Edit', 'edit', actions.startEdit),
          tool('Delete', 'trash', actions.remove, 'danger'),
        ),
      ),
    );
    shown.set(li, entry);
    return li;
  };
}

/** Brings a row up to date with its entry. @param {HTMLElement} li @param {Entry} e @param {MessageActions} actions */
export function updateMessageItem(li, e, actions) {
  shown.set(li, e);
  const sig = signature(e);
  if (li.dataset.sig === sig) return;
  li.dataset.sig = sig;

  const m = e.message;
  const p = e.pending;
  const content = m ? m.content : p?.content ?? '';
  const created = m ? m.created_at : p?.created_at ?? '';
  li.className = 'msg';
  li.classList.toggle('grouped', e.grouped);
  li.classList.toggle('mine', e.mine);
  li.classList.toggle('pending', p?.state === 'sending');
  li.classList.toggle('queued', p?.state === 'queued');
  li.classList.toggle('failed', p?.state === 'failed');
  li.classList.toggle('deleted', !!m?.deleted);
  li.classList.toggle('editing', e.editing);
  li.classList.toggle('mentions-me', e.mentionsMe);
  li.classList.toggle('picking', e.picking);
  li.classList.toggle('system', !!e.system);
  if (m) li.dataset.messageId = m.id;

  // Separators exist only where they show (hidden copies would be found by text searches).
  let daySep = li.querySelector('.day-sep');
  if (e.day && !daySep) li.prepend((daySep = h('div', { class: 'day-sep' }, h('span', { class: 'day-label' }))));
  if (!e.day && daySep) daySep.remove();
  if (e.day && daySep) setText(q(li, '.day-label'), e.day);
  const newSep = li.querySelector('.new-sep');
  if (e.unreadStart && !newSep) q(li, '.msg-row').before(h('div', { class: 'new-sep' }, h('span', {}, 'New messages')));
  if (!e.unreadStart && newSep) newSep.remove();

  updateAvatar(q(li, '.avatar'), e.author, e.authorId);
  setText(q(li, '.msg-author'), e.author);
  const time = q(li, '.msg-time');
  setText(time, messageTime(created));
  setAttr(time, 'datetime', created);
  setAttr(time, 'title', fullTime(created));

  const quote = q(li, '.reply-quote');
  quote.hidden = !e.reply;
  if (e.reply) {
    const r = e.reply.preview;
    setText(q(quote, '.reply-author'), e.reply.author);
    setPreview(q(quote, '.reply-text'), '', r.deleted ? { text: 'Original message was deleted', files: false } : e.reply.line);
    quote.classList.toggle('gone', r.deleted);
    setAttr(quote, 'title', r.deleted ? 'The original message was deleted' : 'Show the original message');
  }

  if (e.system) setText(q(li, '.msg-content'), e.system);
  else renderContent(q(li, '.msg-content'), m?.deleted ? null : content, e, m?.edited_at ?? null);

  renderAttachments(q(li, '.msg-attachments'), filesOf(e), { open: actions.openAttachment, renew: actions.renew });
  renderReactions(q(li, '.reactions'), m && !m.deleted ? e.reactions : [], e.canAnswer);

  const status = q(li, '.msg-status');
  status.hidden = !p;
  setText(q(li, '.msg-status-text'), !p ? '' : STATUS_TEXT[p.state](p));
  retryButton(li).hidden = p?.state !== 'failed';
  discardButton(li).hidden = p?.state !== 'failed' && p?.state !== 'queued';

  const seen = q(li, '.msg-seen');
  seen.hidden = !e.seen;
  setText(seen, e.seen ?? '');

  const tools = q(li, '.msg-actions');
  tools.hidden = !m || m.deleted || e.editing || !!e.system;
  for (const b of /** @type {NodeListOf<HTMLElement>} */ (tools.querySelectorAll('[data-tool]'))) {
    const own = b.dataset.tool === 'Edit' || b.dataset.tool === 'Delete';
    b.hidden = own ? !e.mine : !e.canAnswer;
    if (b.dataset.tool === 'React') setAttr(b, 'aria-expanded', e.picking ? 'true' : 'false');
  }

  const picker = li.querySelector('.emoji-picker');
  if (e.picking && m && !picker) {
    const reactBtn = () => /** @type {HTMLElement | null} */ (tools.querySelector('[data-tool="React"]'));
    const el = emojiPicker(
      (emoji, byKeyboard) => {
        const cur = shown.get(li)?.message;
        actions.closePicker();
        if (byKeyboard) reactBtn()?.focus(); // keyboard users stay where they were
        if (cur) actions.react(cur, emoji);
      },
      () => {
        actions.closePicker();
        reactBtn()?.focus();
      },
    );
    q(li, '.msg-row').append(el);
    queueMicrotask(() => el.scrollIntoView({ block: 'nearest' }));
  }
  if (!e.picking && picker) picker.remove();

  const editor = li.querySelector('.msg-editor');
  if (e.editing && m && !editor) q(li, '.msg-content').after(editorFor(m, actions));
  if (!e.editing && editor) editor.remove();
}

/**
 * The message's text, with @mentions and links marked (still inserted only as text), and the
 * "edited" marker; or the deleted marker when `content` is null.
 * @param {HTMLElement} el @param {string | null} content @param {Entry} e @param {string | null} editedAt
 */
function renderContent(el, content, e, editedAt) {
  if (content === null) {
    el.replaceChildren(h('span', { class: 'deleted-text' }, 'This message was deleted.'));
    return;
  }
  const names = new Set(e.names.split(' ').filter(Boolean));
  const me = e.meName.toLowerCase();
  /** Every piece as elements made here and text nodes: never HTML from the message. @param {import('../richtext.js').Rich} t @returns {Node} */
  const node = (t) => {
    switch (t.kind) {
      case 'mention':
        return h('span', { class: t.username === me ? 'mention mention-self' : 'mention' }, t.text);
      case 'link':
        return h('a', { href: t.href, target: '_blank', rel: 'noopener noreferrer nofollow' }, t.text);
      case 'code':
        return h('code', {}, t.text);
      case 'codeblock':
        return h('pre', { class: 'code-block' }, h('code', {}, t.text));
      case 'strong':
      case 'em':
        return h(t.kind, {}, ...t.children.map(node));
      default:
        return document.createTextNode(t.text);
    }
  };
  const parts = parseRich(content, names).map(node);
  if (editedAt) parts.push(h('span', { class: 'msg-edited', title: `Edited ${fullTime(editedAt)}` }, ' (edited)'));
  el.replaceChildren(...parts);
}

/** The reaction chips: each toggles the user's own reaction. @param {HTMLElement} el @param {ShownReaction[]} list @param {boolean} canAnswer */
function renderReactions(el, list, canAnswer) {
  el.hidden = list.length === 0;
  el.replaceChildren(
    ...list.map((r) =>
      h(
        'button',
        {
          type: 'button',
          class: r.mine ? 'reaction mine' : 'reaction',
          'aria-pressed': r.mine ? 'true' : 'false',
          'aria-label': `${r.emoji} ${emojiName(r.emoji)}: ${r.count}`,
          title: `${r.who} reacted with ${emojiName(r.emoji)}`,
          disabled: !canAnswer,
          dataset: { emoji: r.emoji },
        },
        h('span', { class: 'reaction-emoji' }, r.emoji),
        h('span', { class: 'reaction-count' }, String(r.count)),
      ),
    ),
  );
}

/** The inline editor: Enter saves, Shift+Enter adds a line, Escape cancels. @param {Message} m @param {MessageActions} actions */
function editorFor(m, actions) {
  const ta = h('textarea', { class: 'edit-input', 'aria-label': 'Edit message', rows: '1', maxlength: '4000' });
  ta.value = m.content;
  const error = h('p', { class: 'form-error small', role: 'alert' });
  const save = async () => {
    const content = ta.value.trim();
    if (!content && m.attachments.length === 0) return; // a message with files may lose its text
    if (content === m.content.trim()) return actions.cancelEdit();
    ta.disabled = true;
    try {
      await actions.saveEdit(m, ta.value);
    } catch (err) {
      ta.disabled = false;
      error.textContent = err instanceof Error ? err.message : 'Could not save.';
    }
  };
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      actions.cancelEdit();
    } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void save();
    }
  });
  ta.addEventListener('input', () => autoGrow(ta));
  queueMicrotask(() => {
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
    autoGrow(ta);
  });
  return h(
    'div',
    { class: 'msg-editor' },
    ta,
    error,
    h(
      'p',
      { class: 'hint small' },
      'Escape to ',
      h('button', { type: 'button', class: 'link-btn', onclick: () => actions.cancelEdit() }, 'cancel'),
      ' • Enter to ',
      h('button', { type: 'button', class: 'link-btn', onclick: () => void save() }, 'save'),
    ),
  );
}
