// views/account.js — the settings dialog: notifications, privacy (presence and read receipts),
// the password, the sessions signed in elsewhere, logging out here or everywhere.

import { h, setText, avatar } from '../dom.js';
import { fullTime, listTime, deviceName } from '../format.js';
import { openModal } from './dialog.js';
import { notificationsSection } from './notifications.js';

/** @typedef {import('../types.js').State} State */
/** @typedef {import('../types.js').SessionInfo} SessionInfo */
/** @typedef {import('../types.js').Settings} Settings */

/**
 * @typedef {{
 *   logout: () => void,
 *   logoutAll: () => Promise<void>,
 *   sessions: () => Promise<SessionInfo[]>,
 *   endSession: (sessionId: string) => Promise<void>,
 *   changePassword: (current: string, next: string) => Promise<void>,
 *   updateSettings: (changes: Partial<Settings>) => Promise<void>,
 *   confirm: (o: { title: string, text: string, confirm: string }) => Promise<boolean>,
 * } & import('./notifications.js').NotificationActions} AccountActions
 */

/** @param {unknown} e */
function words(e) {
  return e instanceof Error ? e.message : 'That did not work.';
}

/** @param {AccountActions} actions @param {() => void} onClose */
export function accountDialog(actions, onClose) {
  const me = h('div', { class: 'account-me' });

  const notifications = notificationsSection(actions);
  const privacy = privacySection(actions);

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
      notifications,
      privacy.el,
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
    privacy.render(s);
    if (me.dataset.user !== u.id) {
      me.dataset.user = u.id;
      me.replaceChildren(avatar(u.username, u.id, 'large'), h('div', {}, h('p', { class: 'account-name' }, u.username), h('p', { class: 'hint' }, `Signed in as ${u.username}`)));
    }
  }

  return { render, close: () => modal.close() };
}

/** What each privacy switch shares, and what it says about it. */
const PRIVACY = /** @type {const} */ ([
  { key: 'share_presence', id: 'share-presence', label: 'Online status', note: 'Friends see when you are online.' },
  {
    key: 'share_read_receipts',
    id: 'share-read-receipts',
    label: 'Read receipts',
    note: 'People see when you have read their messages; turning this off also hides when others read yours.',
  },
]);

/**
 * Privacy: whether friends see one's presence, and chats one's read receipts. Hidden until the
 * settings are known (and on a server without them).
 * @param {AccountActions} actions
 */
function privacySection(actions) {
  const error = h('p', { class: 'form-feedback error', role: 'alert' });
  /** @type {Set<string>} the switches whose change is on its way */
  const saving = new Set();
  /** @type {State | null} */
  let last = null;
  const switches = PRIVACY.map((p) => {
    const input = h('input', { id: p.id, type: 'checkbox', role: 'switch', 'aria-describedby': `${p.id}-note` });
    input.addEventListener('change', async () => {
      saving.add(p.key);
      input.disabled = true;
      error.textContent = '';
      try {
        await actions.updateSettings({ [p.key]: input.checked });
      } catch (err) {
        error.textContent = words(err);
      } finally {
        saving.delete(p.key);
        input.disabled = false;
        if (last) render(last); // the server's answer, or back to what it was
      }
    });
    const row = h('div', { class: 'switch-block' }, h('label', { class: 'switch-row', for: p.id }, input, h('span', {}, p.label)), h('p', { class: 'hint', id: `${p.id}-note` }, p.note));
    return { ...p, input, row };
  });
  const el = h('div', { class: 'dialog-section', hidden: true }, h('h3', { class: 'section-title' }, 'Privacy'), ...switches.map((x) => x.row), error);

  /** @param {State} s */
  function render(s) {
    last = s;
    el.hidden = !s.settings;
    for (const x of switches) if (s.settings && !saving.has(x.key)) x.input.checked = s.settings[x.key];
  }

  return { el, render };
}
