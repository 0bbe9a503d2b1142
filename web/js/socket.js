// socket.js — the WebSocket session with the gateway: hello, identify, heartbeats, the
// subscription to the open chat, and reconnecting with back-off when the connection drops.

import { CloseCode, ErrorCode } from './errors.js';

/** @typedef {import('./types.js').ConnectionState} ConnectionState */

/**
 * @typedef {{
 *   url: string,
 *   getToken: () => Promise<string | null>,
 *   onReady: (d: any) => void,
 *   onEvent: (type: string, d: any) => void,
 *   onCatchUp: () => void,
 *   onStatus: (status: ConnectionState) => void,
 *   onAuthFailed: () => Promise<boolean>,
 *   onSessionEnded: () => void,
 * }} SocketOptions
 * `onAuthFailed` is told the token was refused; it resolves true if a new one was obtained.
 */

/** `ws://host/ws` or `wss://host/ws`, the same host as the page. @param {Location} loc */
export function gatewayUrl(loc) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

/**
 * The wait before reconnect attempt `n` (0-based), with full jitter: anywhere between 0 and a
 * ceiling of 0.5 s doubling up to 15 s, so that clients dropped together (a gateway restart)
 * come back spread over the whole window instead of in waves.
 * @param {number} n
 */
export function backoffMs(n) {
  const ceiling = Math.min(15_000, 500 * 2 ** n);
  return Math.round(Math.random() * ceiling);
}

const HELLO_TIMEOUT_MS = 10_000;

export class GatewaySocket {
  /** @param {SocketOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ConnectionState} */
    this.status = 'offline';
    this.running = false;
    this.ready = false;
    this.attempt = 0;
    this.everReady = false;
    /** @type {string | null} the chat on screen, subscribed while connected */
    this.chatId = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */ this.beatTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.helloTimer = undefined;
    this.lastFrameAt = 0;
    this.authRetried = false;
    this.authRejected = false;
    /** @type {string | null} the access token the gateway passes on to the services */
    this.givenToken = null;
    /** @type {string | null} this connection's session, from `ready` */
    this.sessionId = null;
    this.lastRenewAt = 0;
    /** the gateway's `retry_after_ms` when it said it is busy (close 1013) */
    this.retryAfterMs = 0;
    this.wake = () => {
      if (this.running && !this.ws) this.connectNow();
    };
  }

  /** Starts connecting and keeps the connection up until `stop`. */
  start() {
    if (this.running) return;
    this.running = true;
    window.addEventListener('online', this.wake);
    document.addEventListener('visibilitychange', this.wake);
    this.connectNow();
  }

  /** Closes for good (log out). */
  stop() {
    this.running = false;
    this.everReady = false;
    this.attempt = 0;
    this.authRetried = false;
    window.removeEventListener('online', this.wake);
    document.removeEventListener('visibilitychange', this.wake);
    clearTimeout(this.retryTimer);
    this.teardown(1000);
    this.setStatus('offline');
  }

  /** Sets the chat on screen: unsubscribes the previous one and subscribes this one. @param {string | null} chatId */
  focusChat(chatId) {
    if (chatId === this.chatId) return;
    if (this.chatId && this.ready) this.send('unsubscribe', { chat_id: this.chatId });
    this.chatId = chatId;
    if (chatId && this.ready) this.send('subscribe', { chat_id: chatId });
  }

  /** @param {string} chatId */
  typing(chatId) {
    if (this.ready) this.send('typing', { chat_id: chatId });
  }

  /** Tells the gateway whether the user is at the device (idle.js decides). @param {'online' | 'idle'} status */
  presence(status) {
    if (this.ready) this.send('presence', { status });
  }

  /** @param {string} op @param {unknown} [d] */
  send(op, d) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify(d === undefined ? { op } : { op, d }));
  }

  /** @param {ConnectionState} s */
  setStatus(s) {
    if (s === this.status) return;
    this.status = s;
    this.opts.onStatus(s);
  }

  connectNow() {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.running || this.ws) return;
    this.setStatus(this.everReady ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.lastFrameAt = Date.now();
    this.helloTimer = setTimeout(() => ws.close(CloseCode.NO_HEARTBEAT, 'no hello'), HELLO_TIMEOUT_MS);
    ws.onmessage = (e) => this.onFrame(ws, e.data);
    ws.onclose = (e) => this.onClose(ws, e.code);
    ws.onerror = () => {
      // A close event always follows; reconnecting happens there.
    };
  }

  /** @param {WebSocket} ws @param {unknown} data */
  onFrame(ws, data) {
    if (ws !== this.ws || typeof data !== 'string') return;
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame?.op) {
      case 'hello':
        clearTimeout(this.helloTimer);
        this.startHeartbeat(Number(frame.d?.heartbeat_ms) || 30_000);
        void this.identify(ws);
        break;
      case 'ready':
        // Also a second time, if the session cookie identified the connection before this
        // client's `identify` arrived and that named another session: the identify wins.
        this.ready = true;
        this.everReady = true;
        this.sessionId = typeof frame.d?.session_id === 'string' ? frame.d.session_id : null;
        this.attempt = 0;
        this.authRetried = false;
        if (this.chatId) this.send('subscribe', { chat_id: this.chatId });
        this.setStatus('connected');
        this.opts.onReady(frame.d ?? {});
        break;
      case 'event':
        if (frame.t === 'session.ended') {
          // Another device's session ending (its log out, or ended from Settings) is no
          // reason to leave this one; only this connection's own session is.
          if (this.sessionId !== null && frame.d?.session_id === this.sessionId) this.opts.onSessionEnded();
          return;
        }
        if (typeof frame.t === 'string') this.opts.onEvent(frame.t, frame.d ?? {});
        break;
      case 'catch_up':
        // The gateway's bus connection came back: events may have been missed meanwhile.
        this.opts.onCatchUp();
        break;
      case 'reconnect':
        // The server is going away: come back soon, to any gateway.
        this.attempt = 0;
        ws.close(1000, 'reconnect requested');
        break;
      case 'error':
        // Identified: the token the connection acts with has expired (a subscribe or typing
        // was refused). Hand it a fresh one, then ask again for the chat on screen.
        if (this.ready && frame.d?.code === ErrorCode.UNAUTHENTICATED) {
          void this.renewToken(true).then(() => {
            if (ws === this.ws && this.chatId) this.send('subscribe', { chat_id: this.chatId });
          });
        } else if (frame.d?.code === ErrorCode.UNAUTHENTICATED) this.authRejected = true;
        else if (frame.d?.code === ErrorCode.UNAVAILABLE && Number(frame.d?.retry_after_ms) > 0) {
          // Busy identifying others (a close 1013 follows): come back after the hint.
          this.retryAfterMs = Number(frame.d.retry_after_ms);
        } else console.warn('gateway error', frame.d);
        break;
      default:
        break; // heartbeat_ack and anything new
    }
  }

  /** @param {WebSocket} ws */
  async identify(ws) {
    let token = null;
    try {
      token = await this.opts.getToken();
    } catch {
      // Could not refresh (offline?): try with what the cookie gives, else reconnect later.
    }
    if (ws !== this.ws) return;
    if (token) {
      this.givenToken = token;
      this.send('identify', { token });
    } else ws.close(CloseCode.NO_HEARTBEAT, 'no token');
  }

  /**
   * Gives an identified connection the current access token when it changed (refreshed
   * before it expires), so the services keep accepting what the connection asks for them.
   * @param {boolean} [refused] the gateway refused the one it has: refresh even if it looks good
   */
  async renewToken(refused = false) {
    const ws = this.ws;
    if (!ws || !this.ready || (refused && Date.now() - this.lastRenewAt < 10_000)) return;
    this.lastRenewAt = Date.now();
    let token = null;
    try {
      if (refused) await this.opts.onAuthFailed();
      token = await this.opts.getToken();
    } catch {
      return; // offline: the next heartbeat tries again
    }
    if (ws !== this.ws || !this.ready || !token || token === this.givenToken) return;
    this.givenToken = token;
    this.send('identify', { token });
  }

  /** @param {number} periodMs */
  startHeartbeat(periodMs) {
    clearInterval(this.beatTimer);
    const every = Math.max(1000, Math.floor(periodMs * 0.75));
    this.beatTimer = setInterval(() => {
      // Nothing heard for two periods and more: the connection is dead even if the browser hasn't noticed.
      if (Date.now() - this.lastFrameAt > periodMs * 2 + 5000) {
        this.ws?.close(CloseCode.NO_HEARTBEAT, 'heartbeat timeout');
        return;
      }
      this.send('heartbeat');
      void this.renewToken();
    }, every);
  }

  /** @param {number} code */
  teardown(code) {
    clearInterval(this.beatTimer);
    clearTimeout(this.helloTimer);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(code);
      } catch {
        // Already closing.
      }
    }
  }

  /** @param {WebSocket} ws @param {number} code */
  async onClose(ws, code) {
    if (ws !== this.ws) return;
    this.teardown(1000);
    if (!this.running) return;
    const refused = code === CloseCode.UNAUTHENTICATED || this.authRejected;
    this.authRejected = false;
    if (refused) {
      this.setStatus('reconnecting');
      // One refresh per refusal streak; a second refusal in a row means the session is over.
      const renewed = !this.authRetried && (await this.opts.onAuthFailed().catch(() => true));
      this.authRetried = true;
      if (!renewed) {
        this.stop();
        this.opts.onSessionEnded();
        return;
      }
    }
    // Busy: at least the gateway's hint (1 s unless it said), plus the jittered back-off.
    const busy = code === CloseCode.TRY_AGAIN_LATER ? this.retryAfterMs || 1000 : 0;
    this.retryAfterMs = 0;
    this.scheduleReconnect(busy);
  }

  /** @param {number} [atLeastMs] a wait the gateway asked for, before the back-off */
  scheduleReconnect(atLeastMs = 0) {
    if (!this.running) return;
    this.setStatus(this.everReady ? 'reconnecting' : 'connecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connectNow(), atLeastMs + backoffMs(this.attempt));
    this.attempt += 1;
  }
}
