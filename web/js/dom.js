// dom.js — builds and updates elements. Text goes in only as text (textContent / text nodes);
// there is no way here to parse a string as HTML, and no inline style or handler attributes.

import { initials, hueOf } from './format.js';

/** @typedef {string | number | boolean | null | undefined | EventListener | Record<string, string>} PropValue */
/** @typedef {Node | string | null | undefined | false} Child */

/**
 * Creates an element. Props: `class`, `text`, `dataset`, `on<event>` (a function), any other
 * attribute (true → present, false/null → absent).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {Record<string, PropValue>} [props] @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) {
      if (typeof v !== 'function') throw new TypeError(`${k} must be a function`);
      el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    } else if (k === 'style') throw new TypeError('inline style attributes are not allowed (CSP)');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false).map((c) => /** @type {Node | string} */ (c)));
  return el;
}

/** Sets text only when it changed (keeps selection and avoids needless layout). @param {Element} el @param {string} text */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** @param {Element} el @param {string} name @param {string | null} value */
export function setAttr(el, name, value) {
  if (value === null) el.removeAttribute(name);
  else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/**
 * Makes `parent`'s element children match `items`, reusing the element of each key and moving
 * as few as possible. `create` makes a new element; `update` brings any element up to date.
 * @template T
 * @param {Element} parent @param {readonly T[]} items @param {(item: T) => string} keyOf
 * @param {(item: T) => HTMLElement} create @param {(el: HTMLElement, item: T, index: number) => void} update
 */
export function reconcile(parent, items, keyOf, create, update) {
  /** @type {Map<string, HTMLElement>} */
  const existing = new Map();
  for (const child of Array.from(parent.children)) {
    if (child instanceof HTMLElement && child.dataset.key !== undefined) existing.set(child.dataset.key, child);
    else child.remove();
  }
  let cursor = parent.firstElementChild;
  items.forEach((item, i) => {
    const key = keyOf(item);
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item, i);
    if (el === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(el, cursor);
  });
  for (const el of existing.values()) el.remove();
}

/** A round avatar with someone's initials, coloured from their id. @param {string} name @param {string} key @param {string} [size] */
export function avatar(name, key, size = '') {
  const el = h('span', { class: `avatar ${size}`.trim(), 'aria-hidden': 'true' }, initials(name));
  el.style.setProperty('--avatar-hue', String(hueOf(key)));
  return el;
}

/** Updates an avatar made by `avatar`. @param {HTMLElement} el @param {string} name @param {string} key */
export function updateAvatar(el, name, key) {
  setText(el, initials(name));
  el.style.setProperty('--avatar-hue', String(hueOf(key)));
}

/** A small unread badge, hidden at zero. @param {HTMLElement} el @param {number} n @param {string} text */
export function setBadge(el, n, text) {
  el.hidden = n <= 0;
  setText(el, text);
}
