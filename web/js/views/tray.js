// views/tray.js — the files chosen for the message being written, above its box: a card for
// each with its name, size and upload progress, a × that cancels the upload or removes the
// file, and, for one that failed, why and Retry.

import { h, reconcile, setText, setAttr } from '../dom.js';
import { icon } from '../icons.js';
import { formatSize, fileExtension } from '../attachments.js';

/** @typedef {import('../types.js').Upload} Upload */

/** @typedef {{ remove: (key: string) => void, retry: (key: string) => void }} TrayActions */

/** One line for all the files: what Send waits for, or nothing. @param {readonly Upload[]} list */
export function traySummary(list) {
  const failed = list.filter((u) => u.state === 'failed').length;
  const uploading = list.filter((u) => u.state === 'uploading' || u.state === 'waiting').length;
  if (failed > 0) return `${failed === 1 ? 'A file' : `${failed} files`} could not be uploaded: retry or remove ${failed === 1 ? 'it' : 'them'} to send.`;
  if (uploading > 0) return `Uploading ${uploading === 1 ? '1 file' : `${uploading} files`}… the message can be sent once ${uploading === 1 ? 'it is' : 'they are'} done.`;
  return '';
}

/** @param {TrayActions} actions */
export function trayView(actions) {
  const el = h('ul', { class: 'tray', 'aria-label': 'Files to send', hidden: true });

  /** @param {Upload} u */
  function create(u) {
    const key = () => /** @type {string} */ (li.dataset.key);
    const ext = fileExtension(u.name);
    const fileIcon = () => h('span', { class: 'file-icon' }, icon('file'), ext ? h('span', { class: 'file-ext' }, ext) : null);
    // A picture shows itself from the device; one that cannot be drawn (not what its type
    // says) shows as a file.
    const thumb = u.preview
      ? h('img', { class: 'attachment-img upload-preview', src: u.preview, alt: '', onerror: () => thumb.replaceWith(fileIcon()) })
      : fileIcon();
    const li = h(
      'li',
      { class: 'upload' },
      h('span', { class: 'upload-thumb', 'aria-hidden': 'true' }, thumb),
      h(
        'span',
        { class: 'upload-text' },
        h('span', { class: 'upload-name', title: u.name }, u.name),
        h('span', { class: 'upload-note' }),
        h('progress', { class: 'upload-bar', max: String(Math.max(1, u.size)), value: '0', 'aria-label': `Uploading ${u.name}` }),
      ),
      h('button', { type: 'button', class: 'link-btn upload-retry', 'aria-label': `Retry uploading ${u.name}`, onclick: () => actions.retry(key()) }, 'Retry'),
      h('button', { type: 'button', class: 'icon-btn small upload-remove', onclick: () => actions.remove(key()) }, icon('close')),
    );
    return li;
  }

  /** @param {HTMLElement} li @param {Upload} u */
  function update(li, u) {
    li.dataset.state = u.state;
    const q = (/** @type {string} */ sel) => /** @type {HTMLElement} */ (li.querySelector(sel));
    const note = {
      waiting: () => `${formatSize(u.size)}, waiting to upload…`,
      uploading: () => `${formatSize(u.loaded)} of ${formatSize(u.size)}`,
      done: () => formatSize(u.size),
      failed: () => u.error ?? 'The upload failed.',
    }[u.state]();
    setText(q('.upload-note'), note);
    const bar = /** @type {HTMLProgressElement} */ (q('.upload-bar'));
    bar.hidden = u.state !== 'uploading';
    bar.value = u.loaded;
    q('.upload-retry').hidden = u.state !== 'failed';
    const remove = q('.upload-remove');
    const label = u.state === 'uploading' || u.state === 'waiting' ? `Cancel the upload of ${u.name}` : `Remove ${u.name}`;
    setAttr(remove, 'aria-label', label);
    setAttr(remove, 'title', label);
  }

  return {
    el,
    /** @param {readonly Upload[]} list */
    render(list) {
      el.hidden = list.length === 0;
      reconcile(el, list, (u) => u.key, create, update);
    },
  };
}
