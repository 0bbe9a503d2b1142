// views/message.js — one entry of the Messages list: a message, or one being sent.

import { h, setText, setAttr, updateAvatar, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { messageTime, fullTime } from '../format.js';
import { autoGrow } from './composer.js';

/** @typedef {import('../types.js').Message} Message */
/** @typedef {import('../types.js').PendingMessage} PendingMessage */

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
 *   editing: boolean,
 * }} Entry
 */

/**
 * @typedef {{
 *   startEdit: (m: Message) => void,
 *   saveEdit: (m: Message, content: string) => Promise<void>,
 *   cancelEdit: () => void,
 *   remove: (m: Message) => void,
 *   retry: (nonce: string) => void,
 *   discard: (nonce: string) => void,
 * }} MessageActions
 */

/** @param {Entry} e */
function signature(e) {
  const m = e.message;
  const p = e.pending;
  return [e.author, e.grouped, e.day, e.editing, m?.id, m?.version, m?.deleted, p?.state, p?.error].join('\u0000');
}

/** The entry each row shows now, for its buttons. @type {WeakMap<HTMLElement, Entry>} */
const shown = new WeakMap();

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
    const retry = h('button', { type: 'button', class: 'link-btn', onclick: withNonce(actions.retry) }, 'Retry');
    const discard = h('button', { type: 'button', class: 'link-btn', onclick: withNonce(actions.discard) }, 'Discard');
    const li = h(
      'li',
      { class: 'msg' },
      h('div', { class: 'day-sep', role: 'presentation' }, h('span', { class: 'day-label' })),
      h(
        'div',
        { class: 'msg-row' },
        avatar(entry.author, entry.authorId),
        h(
          'div',
          { class: 'msg-body' },
          h('div', { class: 'msg-meta' }, h('span', { class: 'msg-author' }), ' ', h('time', { class: 'msg-time' }), h('span', { class: 'msg-edited' }, ' (edited)')),
          h('div', { class: 'msg-content' }),
          h('div', { class: 'msg-status' }, h('span', { class: 'msg-status-text' }), ' ', retry, ' ', discard),
        ),
        h(
          'div',
          { class: 'msg-actions' },
          h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Edit', title: 'Edit', onclick: run(actions.startEdit) }, icon('edit')),
          h('button', { type: 'button', class: 'icon-btn small danger', 'aria-label': 'Delete', title: 'Delete', onclick: run(actions.remove) }, icon('trash')),
        ),
      ),
    );
    shown.set(li, entry);
    return li;
  };
}

/** @param {HTMLElement} li @param {string} sel */
function q(li, sel) {
  return /** @type {HTMLElement} */ (li.querySelector(sel));
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
  li.classList.toggle('failed', p?.state === 'failed');
  li.classList.toggle('deleted', !!m?.deleted);
  li.classList.toggle('editing', e.editing);

  const sep = q(li, '.day-sep');
  sep.hidden = !e.day;
  setText(q(li, '.day-label'), e.day ?? '');

  updateAvatar(q(li, '.avatar'), e.author, e.authorId);
  setText(q(li, '.msg-author'), e.author);
  const time = q(li, '.msg-time');
  setText(time, messageTime(created));
  setAttr(time, 'datetime', created);
  setAttr(time, 'title', fullTime(created));
  q(li, '.msg-edited').hidden = !m?.edited_at || m.deleted;

  const body = q(li, '.msg-content');
  setText(body, m?.deleted ? 'This message was deleted.' : content);

  const status = q(li, '.msg-status');
  status.hidden = !p;
  setText(q(li, '.msg-status-text'), p?.state === 'failed' ? `Not sent: ${p.error ?? 'failed'}.` : 'Sending…');
  for (const b of status.querySelectorAll('button')) b.hidden = p?.state !== 'failed';

  q(li, '.msg-actions').hidden = !m || !e.mine || m.deleted || e.editing;

  const editor = li.querySelector('.msg-editor');
  if (e.editing && m && !editor) body.after(editorFor(m, actions));
  if (!e.editing && editor) editor.remove();
}

/** The inline editor: Enter saves, Shift+Enter adds a line, Escape cancels. @param {Message} m @param {MessageActions} actions */
function editorFor(m, actions) {
  const ta = h('textarea', { class: 'edit-input', 'aria-label': 'Edit message', rows: '1' });
  ta.value = m.content;
  const error = h('p', { class: 'form-error small', role: 'alert' });
  const save = async () => {
    const content = ta.value.trim();
    if (!content) return;
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
