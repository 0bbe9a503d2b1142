// actions.js — what the user can do, as functions the views call: each talks to the API,
// then puts the answer in the store.

import { ApiError } from './api.js';
import { setChats, setFriends, setBlocked, upsertChat, removeChat, receiveMessages, timelineOf, setMuted, mergeSettings } from './store.js';
import { previewOf } from './model.js';
import { routeHash } from './router.js';
import { setNotifications } from './notify.js';
import { pushState, turnOnPush, turnOffPush } from './push.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./socket.js').GatewaySocket} GatewaySocket */
/** @typedef {import('./timeline.js').Timelines} Timelines */
/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('./uploads.js').Uploads} Uploads */
/** @typedef {import('./types.js').Route} Route */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').FriendRequest} FriendRequest */

/** @typedef {import('./types.js').Settings} Settings */

/** How long logging out waits at most for the server to forget this browser's notifications. */
const PUSH_STOP_MS = 3000;

/** Words for an error, for people. @param {unknown} e */
export function describe(e) {
  if (e instanceof ApiError) return e.message;
  return e instanceof Error ? e.message : 'Something went wrong.';
}

/**
 * @param {{ api: Api, store: Store, socket: GatewaySocket, timelines: Timelines, outbox: Outbox, uploads: Uploads,
 *   signedIn: (user: User) => void, signOut: (notice: string | null) => void }} deps
 */
export function createActions({ api, store, socket, timelines, outbox, uploads, signedIn, signOut }) {
  /** @param {unknown} e */
  function showError(e) {
    if (e instanceof ApiError && e.status === 401) return; // handled by signing out
    store.update((s) => {
      s.notice = describe(e);
    });
  }

  /** Runs `load` once even if asked many times while it is on its way. @param {() => Promise<void>} load */
  function coalesced(load) {
    let running = false;
    let again = false;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          await load().catch(showError);
        } while (again);
      } finally {
        running = false;
      }
    };
    return () => void run();
  }

  const refreshFriends = coalesced(async () => {
    const f = await api.friends();
    store.update((s) => setFriends(s, f));
  });

  const refreshBlocks = coalesced(async () => {
    const blocked = await api.blocks();
    store.update((s) => setBlocked(s, blocked));
  });

  const refreshChats = coalesced(async () => {
    const chats = await api.chats();
    store.update((s) => setChats(s, chats));
  });

  /**
   * Takes the user's settings, whole or in part; when sharing read receipts changed, the chats
   * come again (their read markers are shown, or left out, by the server).
   * @param {Partial<Settings>} changed
   */
  function takeSettings(changed) {
    let receiptsChanged = false;
    store.update((s) => {
      receiptsChanged = mergeSettings(s, changed);
    });
    if (receiptsChanged) refreshChats();
  }

  const refreshSettings = coalesced(async () => {
    try {
      takeSettings(await api.settings());
    } catch (e) {
      // A server without settings (older than presence and read receipts): nothing to show.
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  });

  /** Stops this browser's notifications while the server still knows who asks (before logging out), a few seconds at most. */
  function stopPush() {
    const stopped = turnOffPush((endpoint) => api.removePushSubscription(endpoint));
    return Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, PUSH_STOP_MS))]);
  }

  /** Shows a route (called when the address bar's hash changes). @param {Route} route */
  function show(route) {
    store.update((s) => {
      s.route = route;
      s.sidebar_open = false;
    });
    const chatId = route.name === 'chat' ? route.chat_id : null;
    socket.focusChat(chatId);
    if (route.name === 'chat' && route.message_id) void timelines.reveal(route.chat_id, route.message_id);
    else if (chatId) void timelines.open(chatId);
  }

  /** @param {Route} route */
  function go(route) {
    const hash = routeHash(route);
    if (location.hash === hash) show(route);
    else location.hash = hash;
  }

  return {
    showError,
    refreshFriends,
    refreshChats,
    refreshBlocks,
    refreshSettings,
    show,
    go,

    /** @param {string} q @param {string | null} before */
    search: (q, before) => api.search(q, { before }),

    /** @param {string} username @param {string} password */
    async login(username, password) {
      signedIn((await api.login(username, password)).user);
    },
    /** @param {string} username @param {string} password */
    async register(username, password) {
      signedIn((await api.register(username, password)).user);
    },
    logout() {
      // Close the socket first (the server closes it too), and forget locally whatever the
      // server answers: the user asked to leave.
      socket.stop();
      void stopPush()
        .then(() => api.logout())
        .catch(() => {})
        .finally(() => signOut(null));
    },
    /** Ends every session of the user, this one included. */
    async logoutAll() {
      socket.stop(); // else its "session ended" may sign out first, with other words
      // Before: afterwards the server no longer knows who asks to forget this browser. (Should
      // logging out fail, notifications stay off: turning them on again is one click.)
      await stopPush();
      try {
        await api.logoutAll();
      } catch (e) {
        socket.start();
        throw e;
      }
      signOut('You were logged out on every device.');
    },
    sessions: () => api.sessions(),
    /** @param {string} sessionId */
    endSession: (sessionId) => api.endSession(sessionId),
    /** @param {string} current @param {string} next */
    changePassword: (current, next) => api.changePassword(current, next),
    /** @param {boolean} on */
    setNotifications: (on) => setNotifications(on),
    /** This browser's push state; unsupported too when the server sends no pushes (no key). */
    async pushState() {
      try {
        await api.pushKey();
      } catch {
        return /** @type {const} */ ('unsupported');
      }
      return pushState();
    },
    /** Asks the browser's permission and subscribes (from a click only). */
    turnOnPush: () => turnOnPush({ key: () => api.pushKey(), add: (sub) => api.addPushSubscription(sub) }),
    turnOffPush: () => turnOffPush((endpoint) => api.removePushSubscription(endpoint)),
    /** Changes what the user shares. @param {Partial<Settings>} changes */
    async updateSettings(changes) {
      takeSettings(await api.updateSettings(changes));
    },

    /** @param {string} username @returns {Promise<string>} what to tell the user */
    async sendFriendRequest(username) {
      const r = await api.sendFriendRequest(username);
      refreshFriends();
      return `Friend request sent to ${r.to.username || username}.`;
    },
    /** @param {FriendRequest} r */
    async accept(r) {
      await api.acceptRequest(r.id);
      refreshFriends();
      refreshChats(); // an old direct chat may have reopened
    },
    /** @param {FriendRequest} r */
    async decline(r) {
      await api.declineRequest(r.id);
      refreshFriends();
    },
    /** @param {FriendRequest} r */
    async cancel(r) {
      await api.cancelRequest(r.id);
      refreshFriends();
    },
    /** Unfriends (the view asks first). @param {User} u */
    async removeFriend(u) {
      await api.removeFriend(u.id);
      refreshFriends();
      refreshChats();
    },
    /** @param {User} u */
    async block(u) {
      const blocked = await api.block(u.id);
      store.update((s) => setBlocked(s, blocked));
      refreshFriends();
      refreshChats(); // the direct chat turns read only
    },
    /** @param {User} u */
    async unblock(u) {
      const blocked = await api.unblock(u.id);
      store.update((s) => setBlocked(s, blocked));
      refreshChats();
    },

    /** @param {string} name @param {string[]} memberIds */
    async createGroup(name, memberIds) {
      const chat = await api.createGroup(name, memberIds);
      store.update((s) => upsertChat(s, chat));
      go({ name: 'chat', chat_id: chat.id });
    },
    /** Mutes or unmutes a chat (for the user only). @param {string} chatId @param {boolean} muted */
    async setMuted(chatId, muted) {
      try {
        const chat = await api.muteChat(chatId, muted);
        store.update((s) => {
          upsertChat(s, chat);
          setMuted(s, chat.id, chat.muted);
        });
      } catch (e) {
        showError(e);
      }
    },
    /** @param {string} chatId @param {string} name */
    async renameChat(chatId, name) {
      const chat = await api.renameChat(chatId, name);
      store.update((s) => upsertChat(s, chat));
    },
    /** @param {string} chatId @param {User} u */
    async addMember(chatId, u) {
      const chat = await api.addMember(chatId, u.id);
      store.update((s) => upsertChat(s, chat));
    },
    /** @param {string} chatId @param {User} u */
    async removeMember(chatId, u) {
      await api.removeMember(chatId, u.id);
      const chat = store.state.chats.get(chatId);
      if (chat) store.update((s) => upsertChat(s, { ...chat, members: chat.members.filter((m) => m.id !== u.id) }));
    },
    /** @param {string} chatId */
    async leaveChat(chatId) {
      const me = store.state.me;
      if (!me) return;
      await api.removeMember(chatId, me.id);
      store.update((s) => removeChat(s, chatId));
      go({ name: 'friends' });
    },
    /** @param {User} u */
    async openDirect(u) {
      const chat = await api.openDirect(u.id);
      store.update((s) => upsertChat(s, chat));
      go({ name: 'chat', chat_id: chat.id });
    },

    /**
     * Sends a message with the files chosen for it, as a reply if one is being written. False
     * (nothing sent) while a file is still uploading or has failed.
     * @param {string} chatId @param {string} content
     */
    send(chatId, content) {
      const files = uploads.take(chatId);
      if (!files) return false;
      const replyTo = store.state.replying.get(chatId) ?? null;
      if (replyTo) {
        store.update((s) => {
          s.replying.delete(chatId);
        });
      }
      outbox.send(chatId, content, replyTo, files);
      return true;
    },
    /** Chooses files for a chat's message; why some were refused, or null. @param {string} chatId @param {readonly File[]} files */
    attach: (chatId, files) => uploads.add(chatId, files),
    /** @param {string} key */
    removeUpload: (key) => uploads.remove(key),
    /** @param {string} key */
    retryUpload: (key) => uploads.retry(key),
    /**
     * Renews the session cookie if it ran out (pictures are read with it: an open socket needs
     * no new token, so a page left alone for a while holds a stale one).
     */
    renewSession: () => api.freshToken(),
    /** @param {Message} m */
    startReply(m) {
      store.update((s) => {
        s.replying.set(m.chat_id, previewOf(m));
      });
    },
    /** @param {string} chatId */
    cancelReply(chatId) {
      store.update((s) => {
        s.replying.delete(chatId);
      });
    },
    /** Adds or takes back one's reaction. @param {Message} m @param {string} emoji */
    async react(m, emoji) {
      try {
        const updated = await api.react(m.chat_id, m.id, emoji);
        store.update((s) => receiveMessages(s, m.chat_id, [updated]));
      } catch (e) {
        showError(e);
      }
    },
    /** @param {string} chatId */
    typing(chatId) {
      socket.typing(chatId);
    },
    /** @param {string} chatId */
    loadOlder(chatId) {
      void timelines.loadOlder(chatId);
    },
    /** @param {Message} m @param {string} content */
    async editMessage(m, content) {
      const updated = await api.editMessage(m.chat_id, m.id, content);
      store.update((s) => receiveMessages(s, m.chat_id, [updated]));
    },
    /** @param {Message} m */
    async deleteMessage(m) {
      try {
        await api.deleteMessage(m.chat_id, m.id);
        // Show it gone now; the event brings the real tombstone (a higher version) soon after.
        store.update((s) => {
          const t = timelineOf(s, m.chat_id);
          t.items = t.items.map((x) => (x.id === m.id ? { ...x, deleted: true, content: '', attachments: [] } : x));
        });
      } catch (e) {
        showError(e);
      }
    },
    retry: outbox.retry,
    discard: outbox.discard,

    openSidebar() {
      store.update((s) => {
        s.sidebar_open = true;
      });
    },
    closeSidebar() {
      store.update((s) => {
        s.sidebar_open = false;
      });
    },
    dismissNotice() {
      store.update((s) => {
        s.notice = null;
      });
    },
  };
}

/** @typedef {ReturnType<typeof createActions>} Actions */
