// outbox.js — sending messages: shown at once as pending, confirmed by the server's answer or
// event, marked failed when sending fails, and retried with the same nonce so nothing doubles.

import { putPending, receiveMessages } from './store.js';
import { ApiError } from './api.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./types.js').PendingMessage} PendingMessage */
/** @typedef {import('./types.js').Preview} Preview */

/** A fresh nonce; crypto.randomUUID needs a secure context, so fall back to random bytes. */
export function newNonce() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** @param {{ api: Api, store: Store, onSent: (chatId: string) => void }} deps */
export function createOutbox({ api, store, onSent }) {
  /** @type {Set<string>} nonces with a request on the way */
  const inFlight = new Set();

  /** @param {string} nonce */
  async function deliver(nonce) {
    const p = store.state.pending.get(nonce);
    if (!p || inFlight.has(nonce)) return;
    inFlight.add(nonce);
    const session = store.state; // a different object after logging out: drop late answers then
    store.update((s) => {
      const cur = s.pending.get(nonce);
      if (cur) s.pending.set(nonce, { ...cur, state: 'sending', error: null });
    });
    try {
      const m = await api.sendMessage(p.chat_id, p.content, nonce, p.reply_to?.id ?? null);
      if (store.state !== session) return;
      store.update((s) => {
        receiveMessages(s, p.chat_id, [m]);
        s.pending.delete(nonce);
      });
      onSent(p.chat_id);
    } catch (e) {
      const error = e instanceof ApiError ? e.message : 'Could not send the message.';
      if (store.state !== session) return;
      store.update((s) => {
        const cur = s.pending.get(nonce);
        if (cur) s.pending.set(nonce, { ...cur, state: 'failed', error });
      });
    } finally {
      inFlight.delete(nonce);
    }
  }

  return {
    /** Queues a message (maybe a reply) and sends it. @param {string} chatId @param {string} content @param {Preview | null} [replyTo] */
    send(chatId, content, replyTo = null) {
      /** @type {PendingMessage} */
      const p = {
        nonce: newNonce(),
        chat_id: chatId,
        content,
        created_at: new Date().toISOString(),
        state: 'sending',
        error: null,
        reply_to: replyTo,
      };
      store.update((s) => putPending(s, p));
      void deliver(p.nonce);
    },
    /** Tries a failed message again, with its original nonce. @param {string} nonce */
    retry(nonce) {
      void deliver(nonce);
    },
    /** Gives up on a failed message. @param {string} nonce */
    discard(nonce) {
      store.update((s) => {
        s.pending.delete(nonce);
      });
    },
    /** After a reconnect: retries every failed message. */
    retryAll() {
      for (const [nonce, p] of store.state.pending) if (p.state === 'failed') void deliver(nonce);
    },
  };
}

/** @typedef {ReturnType<typeof createOutbox>} Outbox */
