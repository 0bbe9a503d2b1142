// views/emoji.js — the small reaction picker: eight common emojis, arrow keys to move,
// Escape to close.

import { h } from '../dom.js';

/** The emojis offered, with the words a screen reader says for each. */
export const QUICK_REACTIONS = /** @type {const} */ ([
  ['👍', 'thumbs up'],
  ['❤️', 'heart'],
  ['😂', 'laughing'],
  ['😮', 'surprised'],
  ['😢', 'sad'],
  ['🎉', 'party'],
  ['🔥', 'fire'],
  ['👀', 'eyes'],
]);

/** Words for an emoji (for names and tooltips). @param {string} emoji */
export function emojiName(emoji) {
  return QUICK_REACTIONS.find(([e]) => e === emoji)?.[1] ?? emoji;
}

/**
 * @param {(emoji: string, byKeyboard: boolean) => void} onPick @param {() => void} onClose
 * @returns {HTMLElement}
 */
export function emojiPicker(onPick, onClose) {
  const buttons = QUICK_REACTIONS.map(([emoji, name]) =>
    h('button', { type: 'button', class: 'emoji-btn', 'aria-label': `React with ${name}`, title: name, onclick: (e) => onPick(emoji, /** @type {MouseEvent} */ (e).detail === 0) }, emoji),
  );
  const el = h('div', { class: 'emoji-picker', role: 'group', 'aria-label': 'Pick a reaction' }, ...buttons);
  el.addEventListener('keydown', (e) => {
    const i = buttons.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      onClose();
    } else if ((e.key === 'ArrowRight' || e.key === 'ArrowLeft') && i >= 0) {
      e.preventDefault();
      buttons[(i + (e.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length].focus();
    }
  });
  el.addEventListener('focusout', (e) => {
    // Focus went elsewhere on the page (not into the picker, not away from the window).
    const to = /** @type {FocusEvent} */ (e).relatedTarget;
    if (to instanceof Node && !el.contains(to)) onClose();
  });
  queueMicrotask(() => buttons[0].focus());
  return el;
}
