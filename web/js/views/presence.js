// views/presence.js — a friend's presence on their avatar: a green dot when online, a hollow
// amber ring when idle, nothing when offline. The dot is only a picture: each place that shows
// one also says it in words (a visible note, or hidden text after the name).

import { h, setAttr } from '../dom.js';
import { presenceText } from '../format.js';

/** @typedef {import('../types.js').Presence} Presence */

/** An avatar with room for a presence dot on its corner. @param {HTMLElement} av */
export function withPresenceDot(av) {
  return h('span', { class: 'avatar-wrap' }, av, h('span', { class: 'presence-dot', 'aria-hidden': 'true', hidden: true }));
}

/**
 * Shows a presence on an avatar made by `withPresenceDot` (null: not a friend, nothing known).
 * @param {HTMLElement} wrap @param {Presence | null} p @param {number} now
 */
export function showPresenceDot(wrap, p, now) {
  const dot = /** @type {HTMLElement} */ (wrap.querySelector('.presence-dot'));
  const shown = !!p && p.status !== 'offline';
  dot.hidden = !shown;
  if (dot.dataset.status !== (p?.status ?? '')) dot.dataset.status = p?.status ?? '';
  setAttr(dot, 'title', shown ? presenceText(p, now) : null);
}
