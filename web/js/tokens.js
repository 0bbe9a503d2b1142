// tokens.js — keeps the login (the short-lived access token and the user) in localStorage,
// and tells when another tab changed it. The refresh token never reaches script: the server
// keeps it in an HttpOnly cookie (login and register ask for that).

/** @typedef {import('./types.js').Session} Session */
/** @typedef {import('./types.js').AuthResponse} AuthResponse */

const KEY = 'astral.session';

/** @returns {Session | null} */
export function loadSession() {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    if (typeof s?.token !== 'string' || typeof s?.user?.id !== 'string') {
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

/** @param {AuthResponse} auth @returns {Session} */
export function saveSession(auth) {
  /** @type {Session} */
  const s = { token: auth.token, user: auth.user, obtained_at: Date.now() };
  try {
    localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    // Storage full or disabled: the session still works until the page reloads.
  }
  return s;
}

export function clearSession() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // Nothing to clear.
  }
}

/**
 * Calls `onChange` when another tab logs in, refreshes or logs out.
 * @param {(s: Session | null) => void} onChange
 */
export function watchSession(onChange) {
  window.addEventListener('storage', (e) => {
    if (e.key === KEY || e.key === null) onChange(loadSession());
  });
}

/**
 * When an access token stops being good, in ms since the epoch: its JWT `exp` if it is a JWT,
 * else a guess from when it was obtained (the contract says about 15 minutes).
 * @param {Session} s
 */
export function expiresAt(s) {
  const parts = s.token.split('.');
  if (parts.length === 3) {
    try {
      const payload = JSON.parse(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/')));
      if (typeof payload.exp === 'number') return payload.exp * 1000;
    } catch {
      // Not a JWT after all.
    }
  }
  return s.obtained_at + 10 * 60 * 1000;
}
