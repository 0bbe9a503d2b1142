// views/notifications.js — the Notifications section of the settings dialog: notifications
// pushed by the server (Web Push, push.js) turned on and off, and what the browser allows.

import { h, setText } from '../dom.js';
import { notificationsSupported, notificationsEnabled, notificationsBlocked } from '../notify.js';

/** @typedef {import('../push.js').PushState} PushState */

/**
 * @typedef {{
 *   setNotifications: (on: boolean) => Promise<boolean>,
 *   pushState: () => Promise<PushState>,
 *   turnOnPush: () => Promise<PushState>,
 *   turnOffPush: () => Promise<void>,
 * }} NotificationActions
 */

/** @param {unknown} e */
function words(e) {
  return e instanceof Error ? e.message : 'That did not work.';
}

/** What the notifications of this browser are, in words. @type {Record<PushState, string>} */
const PUSH_TEXT = {
  on: 'On for this browser: new messages are shown while Astral is closed or in the background.',
  off: 'Off for this browser. Turn them on to hear of new messages while Astral is closed or in the background.',
  blocked: 'Blocked by the browser: allow notifications for this site in its settings, then come back here.',
  unsupported: 'This browser cannot receive notifications from Astral.',
};

/**
 * Notifications pushed by the server (Web Push), turned on and off here; the browser asks its
 * permission only on "Turn on notifications". Where pushes cannot come (no service worker, a
 * page that is not secure), the page's own notifications while it is open instead.
 * @param {NotificationActions} actions
 */
export function notificationsSection(actions) {
  const state = h('p', { class: 'hint', id: 'push-state', role: 'status' }, 'Checking…');
  const error = h('p', { class: 'form-feedback error', role: 'alert' });
  const on = h('button', { type: 'button', class: 'btn primary small', hidden: true, 'aria-describedby': 'push-state' }, 'Turn on notifications');
  const off = h('button', { type: 'button', class: 'btn secondary small', hidden: true, 'aria-describedby': 'push-state' }, 'Turn off');
  const fallback = pageNotifications(actions);
  fallback.hidden = true;

  /** @param {PushState} st */
  function show(st) {
    setText(state, PUSH_TEXT[st]);
    on.hidden = st !== 'off';
    off.hidden = st !== 'on';
    fallback.hidden = st !== 'unsupported' || !notificationsSupported();
  }
  /** @param {HTMLButtonElement} button @param {() => Promise<unknown>} change */
  async function press(button, change) {
    button.disabled = true;
    error.textContent = '';
    try {
      await change();
    } catch (err) {
      error.textContent = words(err);
    } finally {
      button.disabled = false;
      show(await actions.pushState());
    }
  }
  on.addEventListener('click', () => void press(on, actions.turnOnPush));
  off.addEventListener('click', () => void press(off, actions.turnOffPush));
  void actions.pushState().then(show);

  return h(
    'div',
    { class: 'dialog-section' },
    h('h3', { class: 'section-title' }, 'Notifications'),
    state,
    h('div', { class: 'dialog-buttons start' }, on, off),
    error,
    fallback,
  );
}

/** The page's own notifications, while it is open in the background: a switch. @param {NotificationActions} actions */
function pageNotifications(actions) {
  const notify = h('input', { id: 'notify-toggle', type: 'checkbox', role: 'switch', 'aria-describedby': 'notify-note' });
  const note = h('p', { class: 'hint', id: 'notify-note' });
  const show = () => {
    notify.checked = notificationsEnabled();
    notify.disabled = notificationsBlocked();
    setText(
      note,
      notificationsBlocked() ? 'Notifications are blocked for this site in the browser settings.' : 'Shown for new messages while Astral is open in the background.',
    );
  };
  notify.addEventListener('change', async () => {
    await actions.setNotifications(notify.checked);
    show();
  });
  show();
  return h('div', { class: 'switch-block' }, h('label', { class: 'switch-row', for: 'notify-toggle' }, notify, h('span', {}, 'Desktop notifications')), note);
}
