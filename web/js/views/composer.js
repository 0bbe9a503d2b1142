// views/composer.js — the message box: Enter sends, Shift+Enter adds a line, grows with its
// text; shows the message being answered and who is typing.

import { h, setText } from '../dom.js';
import { icon } from '../icons.js';
import { typingText } from '../format.js';
import { emojiPicker, COMPOSER_EMOJIS } from './emoji.js';

/** @typedef {import('../types.js').Preview} Preview */

/** Drafts per chat, kept while the page lives. @type {Map<string, string>} */
const drafts = new Map();

const MAX_LENGTH = 4000;
/** The counter shows once this few characters are left. */
const COUNT_FROM_LEFT = 500;
/** The server passes on one typing notice per user per chat every 3 s: no use sending more. */
const TYPING_EVERY_MS = 3000;

/** Grows a textarea with its content, up to the CSS max-height. @param {HTMLTextAreaElement} ta */
export function autoGrow(ta) {
  ta.style.height = 'auto';
  ta.style.height = `${ta.scrollHeight}px`;
}

/**
 * @param {string} chatId @param {string} placeholder
 * @param {{ send: (content: string) => void, typing: () => void, cancelReply: () => void, editLast: () => boolean }} actions
 *   `editLast` starts editing one's last message (Arrow Up in an empty box); false if there is none.
 */
export function composerView(chatId, placeholder, actions) {
  const ta = h('textarea', {
    id: 'composer-input',
    class: 'composer-input',
    rows: '1',
    placeholder,
    autocomplete: 'off',
    'aria-describedby': 'composer-count',
  });
  ta.value = drafts.get(chatId) ?? '';
  const sendBtn = h('button', { type: 'submit', class: 'icon-btn send-btn', 'aria-label': 'Send' }, icon('send'));
  const emojiBtn = h('button', { type: 'button', class: 'icon-btn emoji-open', 'aria-label': 'Insert an emoji', title: 'Emoji', 'aria-expanded': 'false', onclick: () => togglePicker() }, icon('smile'));
  /** @type {HTMLElement | null} */
  let picker = null;

  function closePicker() {
    picker?.remove();
    picker = null;
    emojiBtn.setAttribute('aria-expanded', 'false');
  }

  function togglePicker() {
    if (picker) return closePicker();
    picker = emojiPicker(
      (emoji) => {
        closePicker();
        ta.focus();
        ta.setRangeText(emoji, ta.selectionStart, ta.selectionEnd, 'end');
        ta.dispatchEvent(new Event('input'));
      },
      () => {
        closePicker();
        emojiBtn.focus();
      },
      { emojis: COMPOSER_EMOJIS, verb: 'Insert', label: 'Pick an emoji', className: 'composer-emojis' },
    );
    emojiBtn.setAttribute('aria-expanded', 'true');
    el.append(picker);
  }
  const readOnly = h('p', { class: 'composer-readonly', hidden: true }, 'You can no longer send messages in this chat.');
  const replyWho = h('strong', {});
  const replyText = h('span', { class: 'replying-text' });
  const replyBar = h(
    'div',
    { class: 'replying', hidden: true },
    icon('reply'),
    h('span', { class: 'replying-label' }, 'Replying to ', replyWho),
    replyText,
    h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Cancel reply', title: 'Cancel reply', onclick: () => cancelReply() }, icon('close')),
  );
  const typing = h('p', { class: 'typing', 'aria-live': 'polite' });
  // Near the limit a counter shows; past it the text stays whole (a paste is never cut) and
  // sending waits until it is short enough.
  const count = h('p', { id: 'composer-count', class: 'char-count', hidden: true });
  let lastTyping = 0;
  let replying = false;
  let readOnlyNow = false;

  /** Whether the text is over the limit, showing the counter near it. */
  function measure() {
    const n = [...ta.value].length;
    const over = n > MAX_LENGTH;
    count.hidden = n < MAX_LENGTH - COUNT_FROM_LEFT;
    count.classList.toggle('over', over);
    const fmt = (/** @type {number} */ x) => x.toLocaleString('en-US');
    setText(count, over ? `Too long to send: ${fmt(n)} of ${fmt(MAX_LENGTH)} characters` : `${fmt(n)} / ${fmt(MAX_LENGTH)}`);
    sendBtn.disabled = over || readOnlyNow;
    return over;
  }

  function cancelReply() {
    actions.cancelReply();
    ta.focus();
  }

  function submit() {
    const content = ta.value.trim();
    if (!content || ta.disabled || measure()) return;
    actions.send(ta.value.replace(/^\s*\n|\s+$/g, ''));
    ta.value = '';
    drafts.delete(chatId);
    autoGrow(ta);
    measure();
  }

  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && replying) {
      e.preventDefault();
      cancelReply();
    } else if (e.key === 'ArrowUp' && ta.value === '' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      if (actions.editLast()) e.preventDefault();
    }
  });
  ta.addEventListener('input', () => {
    drafts.set(chatId, ta.value);
    autoGrow(ta);
    measure();
    if (ta.value.trim() && Date.now() - lastTyping >= TYPING_EVERY_MS) {
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
    replyBar,
    h('label', { for: 'composer-input', class: 'sr-only' }, 'Message'),
    h('div', { class: 'composer-box' }, ta, emojiBtn, sendBtn),
    count,
    readOnly,
    typing,
  );

  measure();

  return {
    el,
    focus() {
      ta.focus();
      queueMicrotask(() => autoGrow(ta));
    },
    /** Read only, saying `why` (a sentence), or writable with `why` null. @param {string | null} why */
    setReadOnly(why) {
      const ro = why !== null;
      ta.disabled = ro;
      emojiBtn.disabled = ro;
      if (ro) closePicker();
      readOnlyNow = ro;
      readOnly.hidden = !ro;
      setText(readOnly, why ?? '');
      measure();
    },
    /** Shows the message being answered, or nothing. @param {Preview | null} preview @param {string} author */
    setReply(preview, author) {
      const was = replying;
      replying = !!preview;
      replyBar.hidden = !preview;
      el.classList.toggle('has-reply', replying);
      setText(replyWho, author);
      setText(replyText, preview ? (preview.deleted ? 'a deleted message' : preview.content.replace(/\s+/g, ' ')) : '');
      if (replying && !was) ta.focus();
    },
    /** @param {readonly string[]} names */
    setTyping(names) {
      setText(typing, typingText(names));
    },
  };
}
