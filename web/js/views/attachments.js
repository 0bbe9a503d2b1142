// views/attachments.js — a message's files in the timeline: pictures as previews (their
// thumbnails, lazy-loaded, in boxes of their own proportions so the list does not jump as
// they arrive) that open the viewer; any other file as a card that downloads it.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { attachmentUrl, thumbnailUrl } from '../api.js';
import { isPicture, fitWithin, formatSize, fileExtension, THUMB_MAX } from '../attachments.js';

/** @typedef {import('../types.js').Attachment} Attachment */
/** @typedef {import('../attachments.js').PreviewLine} PreviewLine */

/**
 * @typedef {{ open: (a: Attachment) => void, renew: () => Promise<unknown> }} AttachmentActions
 * `open` shows a picture in the viewer; `renew` renews the session cookie (see `apiImage`).
 */

/**
 * A picture read from the API, which knows the reader by the session cookie. A cookie that
 * ran out while the page sat open (the socket needs no new token) fails the first load: the
 * session is renewed once and the picture asked for again; a second failure shows it broken.
 * @param {string} src @param {Record<string, string>} props @param {() => Promise<unknown>} renew
 */
export function apiImage(src, props, renew) {
  const img = h('img', { ...props, dataset: { src } });
  let renewed = false;
  img.addEventListener('error', () => {
    if (renewed) {
      img.classList.add('broken');
      return;
    }
    renewed = true;
    const again = () => {
      img.src = src;
    };
    renew().then(again, again);
  });
  img.src = src; // after `loading`, so that a lazy picture waits until it is near the view
  return img;
}

/** Asks again for the pictures in `root` that could not be read (the server is back). @param {Element} root */
export function reloadBroken(root) {
  for (const img of /** @type {NodeListOf<HTMLImageElement>} */ (root.querySelectorAll('img.broken'))) {
    img.classList.remove('broken');
    if (img.dataset.src) img.src = img.dataset.src;
  }
}

/**
 * Puts a one-line preview in `el`: `prefix` ("You: "), then its text, after a paperclip when
 * the text names files (an icon: the client needs no emoji font).
 * @param {HTMLElement} el @param {string} prefix @param {PreviewLine} line
 */
export function setPreview(el, prefix, line) {
  const shown = JSON.stringify([prefix, line.files, line.text]);
  if (el.dataset.preview === shown) return;
  el.dataset.preview = shown;
  el.replaceChildren(...[prefix, line.files && icon('paperclip'), line.text].filter((x) => !!x).map((x) => /** @type {Node | string} */ (x)));
}

/** A picture's preview: its thumbnail, a button that opens the viewer. @param {Attachment} a @param {AttachmentActions} actions */
function picturePreview(a, actions) {
  const box = fitWithin(a.width ?? THUMB_MAX, a.height ?? THUMB_MAX);
  const img = apiImage(
    thumbnailUrl(a.id),
    { class: 'attachment-img attachment-thumb', alt: a.filename, width: String(box.width), height: String(box.height), loading: 'lazy', decoding: 'async' },
    actions.renew,
  );
  return h(
    'button',
    { type: 'button', class: 'attachment-picture', 'aria-haspopup': 'dialog', title: `${a.filename} (${formatSize(a.size)})`, onclick: () => actions.open(a) },
    img,
  );
}

/** Any other file: a card with its type, name and size, a link that downloads it. @param {Attachment} a */
export function fileCard(a) {
  const ext = fileExtension(a.filename);
  return h(
    'a',
    { class: 'file-card', href: attachmentUrl(a.id), download: a.filename, title: `Download ${a.filename}` },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, icon('file'), ext ? h('span', { class: 'file-ext' }, ext) : null),
    // Named by what it shows, "Download" read out first: "Download notes.txt 2 KB".
    h('span', { class: 'file-text' }, h('span', { class: 'sr-only' }, 'Download '), h('span', { class: 'file-name' }, a.filename), ' ', h('span', { class: 'file-size' }, formatSize(a.size))),
    h('span', { class: 'file-get', 'aria-hidden': 'true' }, icon('download')),
  );
}

/**
 * Shows a message's files in `el`: pictures first, side by side, then the other files. Made
 * again only when the files change, never on other renders (a picture would load again).
 * @param {HTMLElement} el @param {readonly Attachment[]} files @param {AttachmentActions} actions
 */
export function renderAttachments(el, files, actions) {
  el.hidden = files.length === 0;
  const ids = files.map((a) => a.id).join(' ');
  if (el.dataset.ids === ids) return;
  el.dataset.ids = ids;
  const pictures = files.filter(isPicture);
  /** @type {HTMLElement[]} */
  const parts = [];
  if (pictures.length > 0) parts.push(h('div', { class: 'attachment-pictures' }, ...pictures.map((a) => picturePreview(a, actions))));
  for (const a of files) if (!isPicture(a)) parts.push(fileCard(a));
  el.replaceChildren(...parts);
}
