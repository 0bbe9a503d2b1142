// api.js — the HTTP client: one function per API route, bearer tokens, one refresh on a 401.

import { loadSession, saveSession, expiresAt } from './tokens.js';
import { parseAttachment, parseAuth, parseChat, parseFriends, parseMessage, parseRequest, parseSearch, parseSession, parseSettings, parseUser } from './model.js';

/** @typedef {import('./types.js').Attachment} Attachment */
/** @typedef {import('./types.js').Chat} Chat */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').Session} Session */
/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').FriendsList} FriendsList */
/** @typedef {import('./types.js').Settings} Settings */

/**
 * An API failure: the HTTP status (0 when the server could not be reached) and the body's code
 * (one of `ErrorCode` in errors.js, or `http_<status>` when the answer had no error body).
 */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {number | null} [retryAfter] */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** Worth trying again later: no answer, rate limited, or the server failed. */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** What a request that got no answer says (shown until the connection is back). */
export const NO_ANSWER = 'Cannot reach the server. Check your connection.';

/**
 * A server's message as a sentence for people: a capital first letter and a full stop (the
 * API's messages are lower-case fragments, "content is too long").
 * @param {string} text
 */
export function sentence(text) {
  const t = text.trim();
  if (!t) return t;
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}

/** @param {Response} res */
async function errorFrom(res) {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status} ${res.statusText}`.trim();
  try {
    const body = await res.json();
    if (typeof body?.error?.code === 'string') code = body.error.code;
    if (typeof body?.error?.message === 'string' && body.error.message) message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  const retry = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, code, sentence(message), Number.isFinite(retry) && retry > 0 ? retry : null);
}

/**
 * Where a file is read: the picture itself, or any other file as a download. Images and links
 * carry no Authorization header: these addresses are read with the session cookie.
 * @param {string} attachmentId
 */
export function attachmentUrl(attachmentId) {
  return `/api/attachments/${encodeURIComponent(attachmentId)}`;
}

/** A picture's thumbnail (at most 320 px a side). @param {string} attachmentId */
export function thumbnailUrl(attachmentId) {
  return `${attachmentUrl(attachmentId)}/thumbnail`;
}

/**
 * @param {{ onAuthLost: () => void, base?: string }} opts
 *   `onAuthLost` runs when the tokens are no longer good and cannot be refreshed.
 */
export function createApi({ onAuthLost, base = '' }) {
  /** @type {Promise<boolean> | null} */
  let refreshing = null;

  /**
   * @param {string} method @param {string} path @param {unknown} [body] @param {string | null} [token]
   * @returns {Promise<unknown>}
   */
  async function send(method, path, body, token) {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
      });
    } catch {
      throw new ApiError(0, 'network', NO_ANSWER);
    }
    if (!res.ok) throw await errorFrom(res);
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  /**
   * Exchanges the refresh cookie for new tokens, once at a time across this browser's tabs:
   * the tabs share the cookie, and a refresh token presented twice ends the whole session.
   * @returns {Promise<boolean>} false if the session is over
   */
  function refresh() {
    if (refreshing) return refreshing;
    const before = loadSession()?.token ?? null;
    const exchange = async () => {
      const s = loadSession();
      if (!s) return false;
      // Another tab refreshed while this one waited for the lock: its tokens are ours too.
      if (s.token !== before) return true;
      try {
        saveSession(parseAuth(await send('POST', '/api/auth/refresh', {})));
        return true;
      } catch (e) {
        if (e instanceof ApiError && !e.transient) return false;
        throw e;
      }
    };
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    const exchanged = locks ? locks.request('astral.refresh', exchange).then((ok) => ok) : exchange();
    const done = exchanged.finally(() => {
      refreshing = null;
    });
    refreshing = done;
    return done;
  }

  /**
   * Uploads a file as the raw body with XMLHttpRequest, which (unlike fetch) reports how much
   * of the body has gone; `signal` cancels it. Answers and failures read as `send`'s do.
   * @param {File} file @param {string | null} token
   * @param {(loaded: number) => void} onProgress @param {AbortSignal} signal
   * @returns {Promise<unknown>}
   */
  function sendFile(file, token, onProgress, signal) {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${base}/api/attachments?${new URLSearchParams({ filename: file.name })}`);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
      if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(JSON.parse(xhr.responseText));
          } catch {
            reject(new ApiError(xhr.status, `http_${xhr.status}`, 'The server sent an answer that could not be read.'));
          }
          return;
        }
        /** @type {Record<string, string>} */
        const headers = {};
        const retry = xhr.getResponseHeader('Retry-After');
        if (retry) headers['Retry-After'] = retry;
        void errorFrom(new Response(xhr.responseText || null, { status: xhr.status, statusText: xhr.statusText, headers })).then(reject);
      };
      xhr.onerror = xhr.ontimeout = () => reject(new ApiError(0, 'network', NO_ANSWER));
      xhr.onabort = () => reject(signal.reason);
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(file);
    });
  }

  /** An authenticated request; on a 401 it refreshes once and tries again. @param {string} method @param {string} path @param {unknown} [body] */
  function request(method, path, body) {
    return authorized((token) => send(method, path, body, token));
  }

  /**
   * Makes a call with the current access token; on a 401 it refreshes once and calls again.
   * @param {(token: string | null) => Promise<unknown>} call
   */
  async function authorized(call) {
    const used = loadSession()?.token ?? null;
    try {
      return await call(used);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
      const current = loadSession()?.token ?? null;
      const renewed = current !== null && current !== used ? true : await refresh();
      if (!renewed) {
        onAuthLost();
        throw e;
      }
      try {
        return await call(loadSession()?.token ?? null);
      } catch (again) {
        if (again instanceof ApiError && again.status === 401) onAuthLost();
        throw again;
      }
    }
  }

  /** @param {string} s */
  const enc = (s) => encodeURIComponent(s);
  /** @param {unknown} v */
  const list = (v) => (Array.isArray(v) ? v : []);
  /** The answer of the block routes: `{"blocked": [user]}`. @param {unknown} raw @returns {User[]} */
  const blockedFrom = (raw) => list(/** @type {{ blocked?: unknown }} */ (raw)?.blocked).map(parseUser);

  return {
    /** @param {string} username @param {string} password */
    async register(username, password) {
      return saveSession(parseAuth(await send('POST', '/api/auth/register', { username, password, refresh_cookie: true })));
    },
    /** @param {string} username @param {string} password */
    async login(username, password) {
      return saveSession(parseAuth(await send('POST', '/api/auth/login', { username, password, refresh_cookie: true })));
    },
    async logout() {
      await request('POST', '/api/auth/logout');
    },
    async logoutAll() {
      await request('POST', '/api/auth/logout-all');
    },
    /**
     * A token good for at least another minute, refreshed first if needed (for the WebSocket).
     * @returns {Promise<string | null>}
     */
    async freshToken() {
      const s = loadSession();
      if (!s) return null;
      if (expiresAt(s) - Date.now() < 60_000) {
        if (!(await refresh())) return null;
      }
      return loadSession()?.token ?? null;
    },
    refresh,

    async me() {
      return parseUser(await request('GET', '/api/users/me'));
    },
    async sessions() {
      const o = /** @type {{ sessions?: unknown }} */ (await request('GET', '/api/users/me/sessions'));
      return list(o?.sessions).map(parseSession);
    },
    /** @param {string} sessionId */
    async endSession(sessionId) {
      await request('DELETE', `/api/users/me/sessions/${enc(sessionId)}`);
    },
    /** @param {string} current @param {string} next */
    async changePassword(current, next) {
      await request('POST', '/api/users/me/password', { current_password: current, new_password: next });
    },
    /** What the user shares (presence, read receipts). @returns {Promise<Partial<Settings>>} */
    async settings() {
      return parseSettings(await request('GET', '/api/users/me/settings'));
    },
    /** Changes one or both switches; the answer is the whole settings. @param {Partial<Settings>} changes @returns {Promise<Partial<Settings>>} */
    async updateSettings(changes) {
      return parseSettings(await request('PATCH', '/api/users/me/settings', changes));
    },

    /** The server's public key for Web Push (VAPID, base64url). */
    async pushKey() {
      const o = /** @type {{ public_key?: unknown }} */ (await request('GET', '/api/push/key'));
      return typeof o?.public_key === 'string' ? o.public_key : '';
    },
    /** Tells the server where to push this browser's notifications. @param {{ endpoint: string, keys: { p256dh: string, auth: string } }} sub */
    async addPushSubscription(sub) {
      await request('POST', '/api/push/subscriptions', { endpoint: sub.endpoint, keys: { p256dh: sub.keys.p256dh, auth: sub.keys.auth } });
    },
    /** @param {string} endpoint */
    async removePushSubscription(endpoint) {
      await request('DELETE', '/api/push/subscriptions', { endpoint });
    },

    /** Every friend (page by page) and every pending request. @returns {Promise<FriendsList>} */
    async friends() {
      /** @type {FriendsList} */
      let all = { friends: [], incoming: [], outgoing: [], presence: new Map() };
      let after = '';
      for (let page = 0; page < 100; page++) {
        const q = new URLSearchParams({ limit: '1000' });
        if (after) q.set('after', after);
        const raw = /** @type {{ next_after?: unknown }} */ (await request('GET', `/api/friends?${q}`));
        const f = parseFriends(raw);
        all = page === 0 ? f : { ...all, friends: [...all.friends, ...f.friends], presence: new Map([...all.presence, ...f.presence]) };
        after = typeof raw?.next_after === 'string' ? raw.next_after : '';
        if (!after) break;
      }
      return all;
    },
    /** @param {string} username */
    async sendFriendRequest(username) {
      return parseRequest(await request('POST', '/api/friends/requests', { username }));
    },
    /** @param {string} requestId */
    async acceptRequest(requestId) {
      return request('POST', `/api/friends/requests/${enc(requestId)}/accept`);
    },
    /** @param {string} requestId */
    async declineRequest(requestId) {
      await request('POST', `/api/friends/requests/${enc(requestId)}/decline`);
    },
    /** @param {string} requestId */
    async cancelRequest(requestId) {
      await request('DELETE', `/api/friends/requests/${enc(requestId)}`);
    },
    /** @param {string} userId */
    async removeFriend(userId) {
      await request('DELETE', `/api/friends/${enc(userId)}`);
    },

    async blocks() {
      return blockedFrom(await request('GET', '/api/blocks'));
    },
    /** @param {string} userId */
    async block(userId) {
      return blockedFrom(await request('POST', '/api/blocks', { user_id: userId }));
    },
    /** @param {string} userId */
    async unblock(userId) {
      return blockedFrom(await request('DELETE', `/api/blocks/${enc(userId)}`));
    },

    /** @returns {Promise<Chat[]>} */
    async chats() {
      return list(await request('GET', '/api/chats')).map(parseChat);
    },
    /** @param {string} userId @returns {Promise<Chat>} */
    async openDirect(userId) {
      return parseChat(await request('POST', '/api/chats/direct', { user_id: userId }));
    },
    /** @param {string} name @param {string[]} memberIds @returns {Promise<Chat>} */
    async createGroup(name, memberIds) {
      return parseChat(await request('POST', '/api/chats', { name, member_ids: memberIds }));
    },
    /** @param {string} chatId @param {string} name @returns {Promise<Chat>} */
    async renameChat(chatId, name) {
      return parseChat(await request('PATCH', `/api/chats/${enc(chatId)}`, { name }));
    },
    /** @param {string} chatId @param {string} userId @returns {Promise<Chat>} */
    async addMember(chatId, userId) {
      return parseChat(await request('POST', `/api/chats/${enc(chatId)}/members`, { user_id: userId }));
    },
    /** Removes a member, or leaves when it is one's own id. @param {string} chatId @param {string} userId */
    async removeMember(chatId, userId) {
      await request('DELETE', `/api/chats/${enc(chatId)}/members/${enc(userId)}`);
    },
    /** Mutes or unmutes a chat for the user; the answer carries `muted`. @param {string} chatId @param {boolean} muted @returns {Promise<Chat>} */
    async muteChat(chatId, muted) {
      return parseChat(await request('PATCH', `/api/chats/${enc(chatId)}/settings`, { muted }));
    },
    /** @param {string} chatId @param {number} seq */
    async markRead(chatId, seq) {
      await request('POST', `/api/chats/${enc(chatId)}/read`, { seq });
    },

    /**
     * @param {string} chatId
     * @param {{ before?: number, after?: number, limit?: number }} [q]
     * @returns {Promise<Message[]>}
     */
    async messages(chatId, q = {}) {
      const params = new URLSearchParams();
      if (q.before !== undefined) params.set('before', String(q.before));
      if (q.after !== undefined) params.set('after', String(q.after));
      params.set('limit', String(q.limit ?? 50));
      return list(await request('GET', `/api/chats/${enc(chatId)}/messages?${params}`)).map(parseMessage);
    },
    /**
     * Searches one's chats: the newest matches first, `before` the next page's start.
     * @param {string} q @param {{ before?: string | null, limit?: number }} [page]
     * @returns {Promise<import('./types.js').SearchPage>}
     */
    async search(q, page = {}) {
      const params = new URLSearchParams({ q, limit: String(page.limit ?? 20) });
      if (page.before) params.set('before', page.before);
      return parseSearch(await request('GET', `/api/search?${params}`));
    },
    /**
     * @param {string} chatId @param {string} content @param {string} nonce @param {string | null} [replyTo]
     * @param {readonly string[]} [attachmentIds] files uploaded first (`uploadAttachment`)
     * @returns {Promise<Message>}
     */
    async sendMessage(chatId, content, nonce, replyTo = null, attachmentIds = []) {
      /** @type {Record<string, string | readonly string[]>} */
      const body = { content, nonce };
      if (replyTo) body.reply_to = replyTo;
      if (attachmentIds.length > 0) body.attachment_ids = attachmentIds;
      return parseMessage(await request('POST', `/api/chats/${enc(chatId)}/messages`, body));
    },
    /**
     * Uploads a file to attach to a message, telling `onProgress` how many bytes have gone;
     * `signal` cancels it (the promise then rejects with the signal's reason).
     * @param {File} file @param {(loaded: number) => void} onProgress @param {AbortSignal} signal
     * @returns {Promise<Attachment>}
     */
    async uploadAttachment(file, onProgress, signal) {
      return parseAttachment(await authorized((token) => sendFile(file, token, onProgress, signal)));
    },
    /** Adds one's reaction with `emoji`, or takes it back. @param {string} chatId @param {string} messageId @param {string} emoji @returns {Promise<Message>} */
    async react(chatId, messageId, emoji) {
      return parseMessage(await request('POST', `/api/chats/${enc(chatId)}/messages/${enc(messageId)}/reactions`, { emoji }));
    },
    /** @param {string} chatId @param {string} messageId @param {string} content @returns {Promise<Message>} */
    async editMessage(chatId, messageId, content) {
      return parseMessage(await request('PATCH', `/api/chats/${enc(chatId)}/messages/${enc(messageId)}`, { content }));
    },
    /** @param {string} chatId @param {string} messageId */
    async deleteMessage(chatId, messageId) {
      await request('DELETE', `/api/chats/${enc(chatId)}/messages/${enc(messageId)}`);
    },
  };
}

/** @typedef {ReturnType<typeof createApi>} Api */
