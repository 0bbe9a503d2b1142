// views/emoji.js — the emoji pickers: eight common reactions on a message, and a larger set
// for the message box; arrow keys to move, Escape to close.

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

/** What the message box offers. */
export const COMPOSER_EMOJIS = /** @type {const} */ ([
  ...QUICK_REACTIONS,
  ['😀', 'grinning'],
  ['😊', 'smiling'],
  ['😉', 'winking'],
  ['😍', 'heart eyes'],
  ['🤔', 'thinking'],
  ['😅', 'sweat smile'],
  ['🙏', 'thank you'],
  ['👏', 'clapping'],
  ['🙌', 'raised hands'],
  ['💪', 'strong'],
  ['👋', 'waving'],
  ['🤝', 'handshake'],
  ['✅', 'check mark'],
  ['❌', 'cross mark'],
  ['⭐', 'star'],
  ['☕', 'coffee'],
]);

/** Words for an emoji (for names and tooltips). @param {string} emoji */
export function emojiName(emoji) {
  return COMPOSER_EMOJIS.find(([e]) => e === emoji)?.[1] ?? emoji;
}

/**
 * @param {(emoji: string, byKeyboard: boolean) => void} onPick @param {() => void} onClose
 * @param {{ emojis: readonly (readonly [string, string])[], verb: string, label: string, className?: string }} [options]
 *   what to offer, the verb of each button's name ("React with thumbs up") and the group's name
 * @returns {HTMLElement}
 */
export function emojiPicker(onPick, onClose, options = { emojis: QUICK_REACTIONS, verb: 'React with', label: 'Pick a reaction' }) {
  const buttons = options.emojis.map(([emoji, name]) =>
    h('button', { type: 'button', class: 'emoji-btn', 'aria-label': `${options.verb} ${name}`, title: name, onclick: (e) => onPick(emoji, /** @type {MouseEvent} */ (e).detail === 0) }, emoji),
  );
  const el = h('div', { class: `emoji-picker ${options.className ?? ''}`.trim(), role: 'group', 'aria-label': options.label }, ...buttons);
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
