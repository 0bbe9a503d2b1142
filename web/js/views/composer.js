// views/composer.js — the message box: Enter sends, Shift+Enter adds a line, grows with its
// text; takes files (the paperclip, a paste; drops come from the conversation) and shows them
// uploading; shows the message being answered and who is typing.

import { h, setText } from '../dom.js';
import { icon } from '../icons.js';
import { typingText } from '../format.js';
import { emojiPicker, COMPOSER_EMOJIS } from './emoji.js';
import { trayView, traySummary } from './tray.js';
import { setPreview } from './attachments.js';
import { uploaded } from '../uploads.js';

/** @typedef {import('../types.js').Preview} Preview */
/** @typedef {import('../types.js').Upload} Upload */

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
 * @typedef {{
 *   send: (content: string) => boolean,
 *   typing: () => void,
 *   cancelReply: () => void,
 *   editLast: () => boolean,
 *   attach: (files: readonly File[]) => string | null,
 *   removeUpload: (key: string) => void,
 *   retryUpload: (key: string) => void,
 * }} ComposerActions
 * `send` sends the text with the chosen files (false: not while a file is uploading or failed);
 * `editLast` starts editing one's last message (Arrow Up in an empty box), false if there is
 * none; `attach` chooses files and says why any was refused.
 */

/**
 * @param {string} chatId @param {string} placeholder @param {ComposerActions} actions
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
  // The paperclip opens the browser's file picker through this input, which never shows.
  const fileInput = h('input', { type: 'file', multiple: true, class: 'attach-input', hidden: true });
  const attachBtn = h('button', { type: 'button', class: 'icon-btn attach-btn', 'aria-label': 'Attach files', title: 'Attach files', onclick: () => fileInput.click() }, icon('paperclip'));
  const tray = trayView({ remove: (key) => actions.removeUpload(key), retry: (key) => actions.retryUpload(key) });
  // What Send waits for (files still uploading or failed), or why chosen files were refused.
  const fileNote = h('p', { class: 'attach-note', 'aria-live': 'polite', hidden: true });
  /** @type {readonly Upload[]} */
  let files = [];
  /** @type {string | null} why the last files chosen were refused, until the next choice or send */
  let refusal = null;
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

  /** Chooses files (picked, pasted or dropped) for the message. @param {readonly File[]} chosen */
  function addFiles(chosen) {
    if (readOnlyNow || chosen.length === 0) return;
    refusal = actions.attach(chosen);
    showFileNote();
  }

  function showFileNote() {
    const text = refusal ?? traySummary(files);
    fileNote.hidden = !text;
    fileNote.classList.toggle('error', !!refusal);
    setText(fileNote, text);
  }

  fileInput.addEventListener('change', () => {
    addFiles(Array.from(fileInput.files ?? []));
    fileInput.value = ''; // the same file may be chosen again
  });

  /** Whether the text is over the limit, showing the counter near it. */
  function measure() {
    const n = [...ta.value].length;
    const over = n > MAX_LENGTH;
    count.hidden = n < MAX_LENGTH - COUNT_FROM_LEFT;
    count.classList.toggle('over', over);
    const fmt = (/** @type {number} */ x) => x.toLocaleString('en-US');
    setText(count, over ? `Too long to send: ${fmt(n)} of ${fmt(MAX_LENGTH)} characters` : `${fmt(n)} / ${fmt(MAX_LENGTH)}`);
    // Send waits for the files: it comes back once every one is uploaded (or removed).
    sendBtn.disabled = over || readOnlyNow || uploaded(files) === null;
    return over;
  }

  function cancelReply() {
    actions.cancelReply();
    ta.focus();
  }

  function submit() {
    const content = ta.value.trim();
    if ((!content && files.length === 0) || ta.disabled || measure()) return;
    if (!actions.send(content ? ta.value.replace(/^\s*\n|\s+$/g, '') : '')) return;
    refusal = null;
    showFileNote();
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
  // A pasted picture (a screenshot, an image copied from a page) is attached. A paste that
  // also has text is text: word processors put a picture of the copied text alongside it.
  ta.addEventListener('paste', (e) => {
    const data = e.clipboardData;
    if (!data || data.files.length === 0 || data.types.includes('text/plain')) return;
    e.preventDefault();
    addFiles(Array.from(data.files));
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
    h('div', { class: 'composer-box' }, tray.el, h('div', { class: 'composer-row' }, attachBtn, fileInput, ta, emojiBtn, sendBtn)),
    fileNote,
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
      attachBtn.disabled = ro;
      if (ro) closePicker();
      readOnlyNow = ro;
      readOnly.hidden = !ro;
      setText(readOnly, why ?? '');
      measure();
    },
    /**
     * Shows the message being answered, or nothing; `line` is what it says in one line.
     * @param {Preview | null} preview @param {string} author @param {import('../attachments.js').PreviewLine} line
     */
    setReply(preview, author, line) {
      const was = replying;
      replying = !!preview;
      replyBar.hidden = !preview;
      el.classList.toggle('has-reply', replying);
      setText(replyWho, author);
      setPreview(replyText, '', preview?.deleted ? { text: 'a deleted message', files: false } : line);
      if (replying && !was) ta.focus();
    },
    /** Shows the files chosen for the message. @param {readonly Upload[]} list */
    setUploads(list) {
      if (list === files || (list.length === 0 && files.length === 0)) return;
      files = list;
      tray.render(list);
      showFileNote();
      measure();
    },
    addFiles,
    /** @param {readonly string[]} names */
    setTyping(names) {
      setText(typing, typingText(names));
    },
  };
}
