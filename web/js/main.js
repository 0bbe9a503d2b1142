// main.js — wires the modules together and decides which screen is shown.

import { createApi } from './api.js';
import { loadSession, clearSession, watchSession } from './tokens.js';
import { createStore, openChatId, restoreSnapshot } from './store.js';
import { loadSnapshot, forgetSnapshot, keepSnapshots, registerServiceWorker } from './offline.js';
import { GatewaySocket, gatewayUrl } from './socket.js';
import { createTimelines } from './timeline.js';
import { createOutbox } from './outbox.js';
import { createUploads } from './uploads.js';
import { previewLabel } from './attachments.js';
import { createLive } from './live.js';
import { createActions } from './actions.js';
import { parseRoute } from './router.js';
import { showNotification } from './notify.js';
import { turnOffPush } from './push.js';
import { createIdleTracker, watchActivity } from './idle.js';
import { authorName, chatName } from './model.js';
import { loginView } from './views/login.js';
import { shellView } from './views/shell.js';
import { ignoreStrayDrops } from './views/drop.js';

/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Message} Message */

const root = /** @type {HTMLElement} */ (document.getElementById('app'));
const store = createStore();
const api = createApi({ onAuthLost: () => signOut('Your session has ended. Please log in again.') });
const timelines = createTimelines({ api, store, onError: (e) => actions.showError(e) });
const outbox = createOutbox({ api, store, onSent: () => timelines.scheduleRead() });
const uploads = createUploads({ api, store });
const socket = new GatewaySocket({
  url: gatewayUrl(location),
  getToken: () => api.freshToken(),
  onReady: (d) => {
    live.onReady(d);
    idle.identified();
  },
  onEvent: (t, d) => live.onEvent(t, d),
  onCatchUp: () => live.onCatchUp(),
  onStatus: (status) =>
    store.update((s) => {
      s.connection = status;
    }),
  onAuthFailed: () => api.refresh(),
  onSessionEnded: () => signOut('You were logged out.'),
});
const idle = createIdleTracker({ send: (status) => socket.presence(status) });
const actions = createActions({ api, store, socket, timelines, outbox, uploads, signedIn, signOut });
const live = createLive({
  store,
  timelines,
  outbox,
  refreshFriends: actions.refreshFriends,
  refreshChats: actions.refreshChats,
  refreshBlocks: actions.refreshBlocks,
  refreshSettings: actions.refreshSettings,
  onIncoming: notifyIncoming,
  onChatLost: (chat, wasOpen) => {
    // Leaving forgets the chat before its event comes: a group still known was taken away.
    if (chat.kind === 'group') {
      store.update((s) => {
        s.notice = `You are no longer a member of “${chat.name}”.`;
      });
    }
    if (wasOpen) actions.go({ name: 'friends' });
  },
});

/**
 * A desktop notification for a new message, unless the user is looking at the page or muted
 * the chat. Tagged as the service worker tags a pushed one, so the two replace each other.
 * @param {Message} m
 */
function notifyIncoming(m) {
  if (document.visibilityState === 'visible' && document.hasFocus()) return;
  const s = store.state;
  const chat = s.chats.get(m.chat_id);
  if (chat?.muted) return;
  const author = authorName(chat, m.author_id, s.users);
  const title = chat?.kind === 'group' ? `${author} in ${chatName(chat, s.me?.id)}` : author;
  const body = previewLabel(m.content, m.attachments.length, m.attachments[0]?.filename).slice(0, 200);
  showNotification(title, body, `chat-${m.chat_id}`, () => actions.go({ name: 'chat', chat_id: m.chat_id }));
}

/** @type {string | null} shown on the login screen after being signed out */
let loginNotice = null;
/** @type {'login' | 'app' | null} */
let screen = null;
/** @type {ReturnType<typeof shellView> | null} */
let shell = null;
/** @type {string | null} whose data the shell shows */
let shellUser = null;

const narrow = window.matchMedia('(max-width: 720px)');

/** @param {User} user */
function signedIn(user) {
  loginNotice = null;
  const route = parseRoute(location.hash);
  store.update((s) => {
    s.me = user;
  });
  // What this device kept, shown only if the server's chat list has not come first.
  void loadSnapshot(user.id).then((snap) => {
    if (snap) store.update((s) => s.me?.id === user.id && restoreSnapshot(s, snap));
  });
  socket.start();
  idle.start(document.visibilityState === 'hidden');
  actions.refreshChats();
  actions.refreshFriends();
  actions.refreshBlocks();
  actions.refreshSettings();
  actions.show(route ?? { name: 'friends' });
  // A phone opens on the chat list, unless the address names a page.
  if (narrow.matches && !route) actions.openSidebar();
}

/**
 * Back to the login screen. `keepStorage` when another tab already changed the saved login.
 * @param {string | null} notice @param {boolean} [keepStorage]
 */
function signOut(notice, keepStorage = false) {
  const me = store.state.me;
  if (!me) return;
  loginNotice = notice;
  socket.stop();
  idle.stop();
  uploads.stopAll();
  if (!keepStorage) {
    clearSession();
    void forgetSnapshot(me.id);
    // Whoever signs in next on this browser must not get this user's notifications. (Logging
    // out asked the server to forget them first; here it may no longer listen.)
    void turnOffPush(null);
  }
  store.reset();
}

store.subscribe((s) => {
  if (!s.me) {
    if (screen !== 'login') {
      screen = 'login';
      shell?.dispose();
      shell = null;
      root.replaceChildren(loginView(actions, loginNotice));
      document.title = 'Astral';
    }
    return;
  }
  if (screen !== 'app' || !shell || shellUser !== s.me.id) {
    screen = 'app';
    shell?.dispose();
    shellUser = s.me.id;
    shell = shellView(actions);
    root.replaceChildren(shell.el);
  }
  shell.render(s);
});

window.addEventListener('hashchange', () => {
  if (store.state.me) actions.show(parseRoute(location.hash) ?? { name: 'friends' });
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && openChatId(store.state)) timelines.scheduleRead();
});
watchSession((session) => {
  const me = store.state.me;
  if (!session) signOut('You logged out in another tab.', true);
  else if (!me) signedIn(session.user);
  else if (me.id !== session.user.id) {
    // Another tab logged in as someone else: follow it rather than mix two people's data.
    signOut(null, true);
    signedIn(session.user);
  }
});

// A notification clicked (sw.js) opens its chat in this window.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', (e) => {
    const d = e.data;
    if (d?.type === 'open-chat' && typeof d.chat_id === 'string' && store.state.me) actions.go({ name: 'chat', chat_id: d.chat_id });
  });
  navigator.serviceWorker.startMessages();
}

registerServiceWorker();
watchActivity(idle);
keepSnapshots(store);
ignoreStrayDrops();

const saved = loadSession();
if (saved) signedIn(saved.user);
else store.update(() => {});
