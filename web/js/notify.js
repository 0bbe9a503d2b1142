// notify.js — desktop notifications, only when the user turned them on (the choice is kept in
// localStorage) and the browser allows them.

const KEY = 'astral.notifications';

export function notificationsSupported() {
  return typeof Notification === 'function';
}

/** Whether the user asked for notifications and the browser allows them. */
export function notificationsEnabled() {
  if (!notificationsSupported() || Notification.permission !== 'granted') return false;
  try {
    return localStorage.getItem(KEY) === 'on';
  } catch {
    return false;
  }
}

/** Whether the browser refuses (the user has to change it in the site settings). */
export function notificationsBlocked() {
  return notificationsSupported() && Notification.permission === 'denied';
}

/**
 * Turns notifications on or off; turning on asks the browser's permission first.
 * @param {boolean} on @returns {Promise<boolean>} whether they are on afterwards
 */
export async function setNotifications(on) {
  if (!notificationsSupported()) return false;
  if (on && Notification.permission === 'default') {
    try {
      await Notification.requestPermission();
    } catch {
      // An old browser without the promise form: treat as not granted.
    }
  }
  try {
    localStorage.setItem(KEY, on && Notification.permission === 'granted' ? 'on' : 'off');
  } catch {
    // Storage disabled: the choice lasts until the page reloads at best.
  }
  return notificationsEnabled();
}

/**
 * Shows a notification (text only, no icon from elsewhere); clicking it focuses the page
 * and runs `onClick`. Notifications with the same `tag` replace each other.
 * @param {string} title @param {string} body @param {string} tag @param {() => void} onClick
 */
export function showNotification(title, body, tag, onClick) {
  if (!notificationsEnabled()) return;
  try {
    const n = new Notification(title, { body, tag, silent: false });
    n.onclick = () => {
      window.focus();
      onClick();
      n.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker: nothing to show then.
  }
}
