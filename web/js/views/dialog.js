// views/dialog.js — modal dialogs on the platform's <dialog>: the rest of the page is inert
// while one is open, Tab goes round inside it, Escape or a click outside closes it, and focus
// goes back where it was.

import { h } from '../dom.js';
import { icon } from '../icons.js';

let counter = 0;

/**
 * Opens a modal dialog titled `title` around `content`.
 * @param {{ title: string, content: Node[], className?: string, onClose?: () => void }} opts
 * @returns {{ el: HTMLDialogElement, close: () => void, setTitle: (t: string) => void }}
 */
export function openModal({ title, content, className = '', onClose }) {
  const id = `dialog-title-${++counter}`;
  const heading = h('h2', { id, class: 'dialog-title' }, title);
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const el = h(
    'dialog',
    { class: `dialog ${className}`.trim(), 'aria-labelledby': id },
    h(
      'div',
      { class: 'dialog-panel' },
      h('header', { class: 'dialog-header' }, heading, h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Close', onclick: () => close() }, icon('close'))),
      h('div', { class: 'dialog-body' }, ...content),
    ),
  );
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    if (el.open) el.close();
    el.remove();
    onClose?.();
    if (opener?.isConnected) opener.focus();
  }
  el.addEventListener('close', close);
  // The page behind is inert, but Tab past the last control would still leave the dialog for
  // the browser's own controls (or the bare page, headless): it goes round instead.
  el.addEventListener('keydown', (e) => {
    if (e.key !== 'Tab') return;
    const stops = /** @type {HTMLElement[]} */ ([...el.querySelectorAll('button, a[href], input, textarea, select')]).filter(
      (c) => !c.matches(':disabled') && c.tabIndex >= 0 && c.getClientRects().length > 0,
    );
    const first = stops[0];
    const last = stops.at(-1);
    if (!first || !last) return;
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  });
  // A click on the backdrop lands on the <dialog> itself, outside its panel.
  el.addEventListener('click', (e) => {
    if (e.target === el) close();
  });
  document.body.append(el);
  el.showModal();
  return {
    el,
    close,
    setTitle: (t) => {
      if (heading.textContent !== t) heading.textContent = t;
    },
  };
}

/**
 * Asks to confirm something that cannot be undone. Resolves true when confirmed.
 * @param {{ title: string, text: string, confirm: string, danger?: boolean }} opts
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, text, confirm, danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', { type: 'submit', class: `btn ${danger ? 'danger' : 'primary'}` }, confirm);
    const no = h('button', { type: 'button', class: 'btn secondary', onclick: () => modal.close() }, 'Cancel');
    const form = h(
      'form',
      {
        class: 'confirm-form',
        method: 'dialog',
        onsubmit: (e) => {
          e.preventDefault();
          answer = true;
          modal.close();
        },
      },
      h('p', { class: 'confirm-text' }, text),
      h('div', { class: 'dialog-buttons' }, no, yes),
    );
    const modal = openModal({ title, content: [form], className: 'confirm', onClose: () => resolve(answer) });
    yes.focus();
  });
}
