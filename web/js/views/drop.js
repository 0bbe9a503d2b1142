// views/drop.js — files dragged in from the desktop: over the conversation an overlay says
// they will be attached, and dropped there they go to the composer. Dropped anywhere else
// they do nothing (the browser would otherwise leave the app to open the file).

import { h } from '../dom.js';
import { icon } from '../icons.js';

/** Whether a drag carries files (not text or a link from the page). @param {DragEvent} e */
function carriesFiles(e) {
  return !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
}

/**
 * Makes `el` take dropped files while `enabled()`, with an overlay while they are over it.
 * @param {HTMLElement} el @param {(files: File[]) => void} onFiles @param {() => boolean} enabled
 */
export function dropZone(el, onFiles, enabled) {
  const overlay = h(
    'div',
    { class: 'drop-overlay', hidden: true, 'aria-hidden': 'true' },
    h('div', { class: 'drop-card' }, icon('paperclip'), h('span', {}, 'Drop files to attach them')),
  );
  el.classList.add('drop-zone');
  el.append(overlay);
  /** @param {DragEvent} e */
  const over = (e) => {
    if (!carriesFiles(e) || !enabled()) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    overlay.hidden = false;
  };
  el.addEventListener('dragenter', over);
  el.addEventListener('dragover', over);
  el.addEventListener('dragleave', (e) => {
    // Moving onto a child of the zone is still over it.
    if (e.relatedTarget instanceof Node && el.contains(e.relatedTarget)) return;
    overlay.hidden = true;
  });
  el.addEventListener('drop', (e) => {
    overlay.hidden = true;
    if (!carriesFiles(e) || !enabled()) return;
    e.preventDefault();
    onFiles(Array.from(e.dataTransfer?.files ?? []));
  });
}

/** Makes a drop of files outside any drop zone do nothing, once for the page. */
export function ignoreStrayDrops() {
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (e) => {
      if (!(e instanceof DragEvent) || e.defaultPrevented || !carriesFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'none';
    });
  }
}
