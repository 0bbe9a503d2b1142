// views/viewer.js — a picture at full size over the page, in a modal dialog (dialog.js: the
// page behind is inert, so Tab stays inside; Escape, the × or a click beside the picture
// closes it and focus goes back to the preview), with its size and a Download link.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { attachmentUrl, thumbnailUrl } from '../api.js';
import { formatSize } from '../attachments.js';
import { openModal } from './dialog.js';
import { apiImage } from './attachments.js';

/** @typedef {import('../types.js').Attachment} Attachment */

/** Opens the viewer on a picture. @param {Attachment} a @param {() => Promise<unknown>} renew */
export function openViewer(a, renew) {
  const width = a.width ?? 1;
  const height = a.height ?? 1;
  const size = { width: String(width), height: String(height) };
  const full = apiImage(attachmentUrl(a.id), { class: 'attachment-img viewer-full', alt: a.filename, ...size, decoding: 'async' }, renew);
  // The thumbnail, loaded already for the timeline, holds the place until the picture comes.
  const standIn = apiImage(thumbnailUrl(a.id), { class: 'attachment-img viewer-standin', alt: '', ...size }, renew);
  const stage = h('div', { class: 'viewer-stage' }, standIn, full);
  // The picture's proportions, for CSS to fit it to the window before it has loaded.
  stage.style.setProperty('--w', String(width));
  stage.style.setProperty('--h', String(height));
  full.addEventListener('load', () => stage.classList.add('loaded'));
  const bar = h(
    'div',
    { class: 'viewer-bar' },
    h('span', { class: 'viewer-size' }, `${width} × ${height} · ${formatSize(a.size)}`),
    h('a', { class: 'btn small secondary', href: attachmentUrl(a.id), download: a.filename }, icon('download'), 'Download'),
  );
  const modal = openModal({ title: a.filename, content: [stage, bar], className: 'viewer' });
  stage.addEventListener('click', (e) => {
    if (e.target === stage) modal.close();
  });
  return modal;
}
