// views/login.js — the log-in / create-account screen.

import { h } from '../dom.js';
import { icon } from '../icons.js';

/**
 * @typedef {{
 *   login: (username: string, password: string) => Promise<void>,
 *   register: (username: string, password: string) => Promise<void>,
 * }} LoginActions
 */

/**
 * @param {LoginActions} actions @param {string | null} notice a message to show at once (e.g. "session ended")
 * @returns {HTMLElement}
 */
export function loginView(actions, notice) {
  const username = h('input', {
    id: 'login-username',
    name: 'username',
    type: 'text',
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
    required: true,
    maxlength: '32',
  });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', { class: 'form-error', role: 'alert' }, notice ?? '');
  const loginBtn = h('button', { type: 'submit', class: 'btn primary' }, 'Log in');
  const registerBtn = h('button', { type: 'button', class: 'btn secondary' }, 'Create account');

  /** @param {'login' | 'register'} which */
  async function go(which) {
    const u = username.value.trim();
    const p = password.value;
    if (!u || !p) {
      error.textContent = 'Enter a username and a password.';
      (u ? password : username).focus();
      return;
    }
    error.textContent = '';
    loginBtn.disabled = registerBtn.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await (which === 'login' ? actions.login(u, p) : actions.register(u, p));
    } catch (e) {
      error.textContent = e instanceof Error ? e.message : 'Something went wrong.';
      loginBtn.disabled = registerBtn.disabled = false;
      form.removeAttribute('aria-busy');
    }
  }

  const form = h(
    'form',
    {
      class: 'login-card',
      novalidate: true,
      'aria-labelledby': 'login-title',
      onsubmit: (e) => {
        e.preventDefault();
        void go('login');
      },
    },
    h('div', { class: 'brand-mark' }, icon('sparkle')),
    h('h1', { id: 'login-title' }, 'Astral'),
    h('p', { class: 'login-sub' }, 'Log in, or create an account to start chatting.'),
    h('div', { class: 'field' }, h('label', { for: 'login-username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    error,
    h('div', { class: 'login-buttons' }, loginBtn, registerBtn),
    h('p', { class: 'hint' }, 'Usernames: lowercase letters, digits and _. Passwords: at least 8 characters.'),
  );
  registerBtn.addEventListener('click', () => void go('register'));
  queueMicrotask(() => username.focus());
  return h('main', { class: 'login-screen' }, form);
}
