// views/account.js — the settings dialog: desktop notifications, the password, the sessions
// signed in elsewhere, logging out here or everywhere.

import { h, setText, avatar } from '../dom.js';
import { fullTime, listTime, deviceName } from '../format.js';
import { notificationsSupported, notificationsEnabled, notificationsBlocked } from '../notify.js';
import { openModal } from './dialog.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').SessionInfo} SessionInfo */

/**
 * @typedef {{
 *   logout: () => void,
 *   logoutAll: () => Promise<void>,
 *   sessions: () => Promise<SessionInfo[]>,
 *   endSession: (sessionId: string) => Promise<void>,
 *   changePassword: (current: string, next: string) => Promise<void>,
 *   setNotifications: (on: boolean) => Promise<boolean>,
 *   confirm: (o: { title: string, text: string, confirm: string }) => Promise<boolean>,
 * }} AccountActions
 */

/** @param {unknown} e */
function words(e) {
  return e instanceof Error ? e.message : 'That did not work.';
}

/** @param {AccountActions} actions @param {() => void} onClose */
export function accountDialog(actions, onClose) {
  const me = h('div', { class: 'account-me' });

  // Notifications: a switch, asking the browser's permission when turned on.
  const notify = h('input', { id: 'notify-toggle', type: 'checkbox', role: 'switch' });
  const notifyNote = h('p', { class: 'hint' });
  const showNotify = () => {
    notify.checked = notificationsEnabled();
    notify.disabled = !notificationsSupported() || notificationsBlocked();
    setText(
      notifyNote,
      !notificationsSupported()
        ? 'This browser cannot show notifications.'
        : notificationsBlocked()
          ? 'Notifications are blocked for this site in the browser settings.'
          : 'Shown for new messages while Astral is in the background.',
    );
  };
  notify.addEventListener('change', async () => {
    await actions.setNotifications(notify.checked);
    showNotify();
  });
  showNotify();

  // Password.
  const current = h('input', { id: 'current-password', type: 'password', autocomplete: 'current-password' });
  const next = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', minlength: '8' });
  const pwFeedback = h('p', { class: 'form-feedback', role: 'status' });
  const pwButton = h('button', { type: 'submit', class: 'btn primary small' }, 'Change password');
  const pwForm = h(
    'form',
    {
      class: 'dialog-section',
      // A message about what was typed goes as soon as the typing changes.
      oninput: () => {
        pwFeedback.textContent = '';
      },
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        if (!current.value || next.value.length < 8) {
          pwFeedback.className = 'form-feedback error';
          pwFeedback.textContent = 'Enter your current password and a new one of at least 8 characters.';
          return;
        }
        if (current.value === next.value) {
          pwFeedback.className = 'form-feedback error';
          pwFeedback.textContent = 'The new password must differ from the current one.';
          return;
        }
        pwButton.disabled = true;
        try {
          await actions.changePassword(current.value, next.value);
          current.value = next.value = '';
          pwFeedback.className = 'form-feedback success';
          pwFeedback.textContent = 'Password changed. Your other sessions were logged out.';
          void loadSessions();
        } catch (err) {
          pwFeedback.className = 'form-feedback error';
          pwFeedback.textContent = words(err);
        } finally {
          pwButton.disabled = false;
        }
      },
    },
    h('h3', { class: 'section-title' }, 'Password'),
    h('div', { class: 'field' }, h('label', { for: 'current-password' }, 'Current password'), current),
    h('div', { class: 'field' }, h('label', { for: 'new-password' }, 'New password'), next),
    h('div', { class: 'dialog-buttons start' }, pwButton),
    pwFeedback,
  );

  // Sessions.
  const sessions = h('ul', { class: 'people sessions', 'aria-labelledby': 'sessions-title' });
  const sessionsNote = h('p', { class: 'hint' }, 'Loading…');
  async function loadSessions() {
    try {
      const list = await actions.sessions();
      setText(sessionsNote, list.length > 1 ? '' : 'Only this device is logged in.');
      sessions.replaceChildren(
        ...list.map((x) => {
          const end = h('button', { type: 'button', class: 'btn small danger-ghost', 'aria-label': `End session on ${deviceName(x.user_agent)}` }, 'End session');
          end.addEventListener('click', async () => {
            end.disabled = true;
            try {
              await actions.endSession(x.id);
              void loadSessions();
            } catch (err) {
              setText(sessionsNote, words(err));
              end.disabled = false;
            }
          });
          return h(
            'li',
            { class: 'person compact' },
            h(
              'span',
              { class: 'person-text' },
              h('span', { class: 'person-name' }, deviceName(x.user_agent)),
              h(
                'span',
                { class: 'person-note', title: `Signed in ${fullTime(x.created_at)}; last active ${fullTime(x.last_used_at)}` },
                `${x.current ? 'This device' : `Last active ${listTime(x.last_used_at)}`} · signed in ${listTime(x.created_at)}`,
              ),
            ),
            x.current ? h('span', { class: 'tag' }, 'Current') : end,
          );
        }),
      );
    } catch (err) {
      setText(sessionsNote, words(err));
    }
  }
  void loadSessions();

  const logoutAll = h('button', { type: 'button', class: 'btn danger' }, 'Log out everywhere');
  logoutAll.addEventListener('click', async () => {
    const ok = await actions.confirm({ title: 'Log out everywhere', text: 'Log out of Astral on every device, this one included?', confirm: 'Log out everywhere' });
    if (!ok) return;
    logoutAll.disabled = true;
    try {
      await actions.logoutAll();
    } catch (err) {
      setText(sessionsNote, words(err));
      logoutAll.disabled = false;
    }
  });

  const modal = openModal({
    title: 'Settings',
    className: 'account-dialog',
    onClose,
    content: [
      me,
      h(
        'div',
        { class: 'dialog-section' },
        h('h3', { class: 'section-title' }, 'Notifications'),
        h('label', { class: 'switch-row', for: 'notify-toggle' }, notify, h('span', {}, 'Desktop notifications')),
        notifyNote,
      ),
      pwForm,
      h('div', { class: 'dialog-section' }, h('h3', { class: 'section-title', id: 'sessions-title' }, 'Where you are logged in'), sessions, sessionsNote),
      h(
        'div',
        { class: 'dialog-buttons' },
        h('button', { type: 'button', class: 'btn secondary', onclick: () => actions.logout() }, 'Log out'),
        logoutAll,
      ),
    ],
  });

  /** @param {State} s */
  function render(s) {
    const u = s.me;
    if (!u) return modal.close();
    if (me.dataset.user !== u.id) {
      me.dataset.user = u.id;
      me.replaceChildren(avatar(u.username, u.id, 'large'), h('div', {}, h('p', { class: 'account-name' }, u.username), h('p', { class: 'hint' }, `Signed in as ${u.username}`)));
    }
  }

  return { render, close: () => modal.close() };
}
