// views/composer.js — the message box: Enter sends, Shift+Enter adds a line, grows with its text.

import { h } from '../dom.js';
import { icon } from '../icons.js';

/** Drafts per chat, kept while the page lives. @type {Map<string, string>} */
const drafts = new Map();

const MAX_LENGTH = 4000;

/** Grows a textarea with its content, up to the CSS max-height. @param {HTMLTextAreaElement} ta */
export function autoGrow(ta) {
  ta.style.height = 'auto';
  ta.style.height = `${ta.scrollHeight}px`;
}

/**
 * @param {string} chatId @param {string} placeholder
 * @param {{ send: (content: string) => void, typing: () => void }} actions
 */
export function composerView(chatId, placeholder, actions) {
  const ta = h('textarea', {
    id: 'composer-input',
    class: 'composer-input',
    rows: '1',
    placeholder,
    maxlength: String(MAX_LENGTH),
    autocomplete: 'off',
  });
  ta.value = drafts.get(chatId) ?? '';
  const sendBtn = h('button', { type: 'submit', class: 'icon-btn send-btn', 'aria-label': 'Send' }, icon('send'));
  const readOnly = h('p', { class: 'composer-readonly', hidden: true }, 'You can no longer send messages in this chat.');
  let lastTyping = 0;

  function submit() {
    const content = ta.value.trim();
    if (!content || ta.disabled) return;
    actions.send(ta.value.replace(/^\s*\n|\s+$/g, ''));
    ta.value = '';
    drafts.delete(chatId);
    autoGrow(ta);
  }

  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  ta.addEventListener('input', () => {
    drafts.set(chatId, ta.value);
    autoGrow(ta);
    if (ta.value && Date.now() - lastTyping > 5000) {
      lastTyping = Date.now();
      actions.typing();
    }
  });

  const el = h(
    'form',
    {
      class: 'composer',
      onsubmit: (e) => {
        e.preventDefault();
        submit();
        ta.focus();
      },
    },
    h('label', { for: 'composer-input', class: 'sr-only' }, 'Message'),
    h('div', { class: 'composer-box' }, ta, sendBtn),
    readOnly,
  );

  return {
    el,
    focus() {
      ta.focus();
      queueMicrotask(() => autoGrow(ta));
    },
    /** @param {boolean} ro */
    setReadOnly(ro) {
      ta.disabled = ro;
      sendBtn.disabled = ro;
      readOnly.hidden = !ro;
    },
  };
}
