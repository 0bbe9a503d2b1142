// views/status.js — the connection banner: "Connecting…" / "Reconnecting…" (and, opened
// offline, that what shows is what the device saved), hidden when live.

import { h, setText } from '../dom.js';
import { icon } from '../icons.js';

/** @typedef {import('../types.js').State} State */

export function statusView() {
  const text = h('span', { class: 'conn-text' });
  const el = h('div', { class: 'conn-status', role: 'status', 'aria-live': 'polite' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);

  /** @param {State} s */
  function render(s) {
    let words = { connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: '', connected: '' }[s.connection];
    if (words && s.saved_at) {
      const at = new Date(s.saved_at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
      words = `Offline: showing what this device saved (${at}). Reconnecting…`;
    }
    el.hidden = !words;
    setText(text, words);
  }
  return { el, render };
}

/** A dismissable line for errors that belong to no form (a failed load, a failed delete). */
export function noticeView(/** @type {() => void} */ dismiss) {
  const text = h('span', {});
  const el = h(
    'div',
    { class: 'notice', role: 'alert', hidden: true },
    text,
    h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Dismiss', onclick: dismiss }, icon('close')),
  );
  /** @param {State} s */
  function render(s) {
    el.hidden = !s.notice;
    setText(text, s.notice ?? '');
  }
  return { el, render };
}
