// outbox.js — sending messages, offline first. A message is shown at once; while there is no
// connection it waits as "queued", and the queue goes out in order, each with its nonce, when
// the connection is back (or, after a transient failure, after a back-off). Only a real
// refusal (a 4xx other than 408/429) marks it failed, with Retry and Discard. The same nonce on
// every attempt means a message the server already took is never stored twice.
//
// Files go up before their message is queued (uploads.js: that needs the server, and the
// composer sends only once every file is uploaded), so a queued message holds just their ids
// and waits offline like any other; the server keeps an unsent file for 24 hours, and one
// gone by then makes the send a refusal, shown with Retry and Discard.

import { putPending, receiveMessages } from './store.js';
import { ApiError } from './api.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./types.js').PendingMessage} PendingMessage */
/** @typedef {import('./types.js').Preview} Preview */
/** @typedef {import('./types.js').Attachment} Attachment */

/** Back-off after a transient failure while connected: doubling from 1 s up to 30 s. */
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/** A fresh nonce; crypto.randomUUID needs a secure context, so fall back to random bytes. */
export function newNonce() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Whether a failed send is worth sending again by itself (no answer, overloaded, timed out). @param {unknown} e */
export function transientFailure(e) {
  return !(e instanceof ApiError) || e.transient || e.status === 408;
}

/** @param {{ api: Api, store: Store, onSent: (chatId: string) => void }} deps */
export function createOutbox({ api, store, onSent }) {
  /** Whether the queue is being sent now (one message at a time, in order). */
  let flushing = false;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let backoff = FIRST_BACKOFF_MS;

  const online = () => store.state.connection === 'connected';

  /** @param {string} nonce @param {Partial<PendingMessage>} change */
  function set(nonce, change) {
    store.update((s) => {
      const cur = s.pending.get(nonce);
      if (cur) s.pending.set(nonce, { ...cur, ...change });
    });
  }

  /** Sends one message; whether the queue may go on. @param {PendingMessage} p @returns {Promise<boolean>} */
  async function deliver(p) {
    const session = store.state; // a different object after logging out: drop late answers then
    set(p.nonce, { state: 'sending', error: null });
    try {
      const files = p.attachments.map((a) => a.id);
      const m = await api.sendMessage(p.chat_id, p.content, p.nonce, p.reply_to?.id ?? null, files);
      if (store.state !== session) return false;
      store.update((s) => {
        receiveMessages(s, p.chat_id, [m]);
        s.pending.delete(p.nonce);
      });
      onSent(p.chat_id);
      return true;
    } catch (e) {
      if (store.state !== session) return false;
      if (transientFailure(e)) {
        set(p.nonce, { state: 'queued', error: null });
        return false;
      }
      set(p.nonce, { state: 'failed', error: e instanceof ApiError ? e.message : 'Could not send the message.' });
      return true;
    }
  }

  /** Sends the queued messages, oldest first, while the connection holds. */
  async function flush() {
    if (flushing || !online()) return;
    flushing = true;
    let stalled = false;
    try {
      for (;;) {
        const next = [...store.state.pending.values()].find((p) => p.state === 'queued');
        if (!next || !online()) break;
        if (!(await deliver(next))) {
          stalled = true;
          break;
        }
        backoff = FIRST_BACKOFF_MS;
      }
    } finally {
      flushing = false;
    }
    if (stalled && online()) later();
  }

  /** Tries the queue again after the back-off (the server failed or was busy). */
  function later() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }

  return {
    /**
     * Queues a message (maybe a reply, maybe with uploaded files) and sends it when it can.
     * @param {string} chatId @param {string} content @param {Preview | null} [replyTo] @param {Attachment[]} [attachments]
     */
    send(chatId, content, replyTo = null, attachments = []) {
      /** @type {PendingMessage} */
      const p = {
        nonce: newNonce(),
        chat_id: chatId,
        content,
        created_at: new Date().toISOString(),
        state: 'queued',
        error: null,
        reply_to: replyTo,
        attachments,
      };
      store.update((s) => putPending(s, p));
      void flush();
    },
    /** Sends a refused message again, with its original nonce, after the queue. @param {string} nonce */
    retry(nonce) {
      const p = store.state.pending.get(nonce);
      if (!p || p.state !== 'failed') return;
      store.update((s) => {
        // To the back of the queue, so it keeps its place behind what is already waiting.
        s.pending.delete(nonce);
        s.pending.set(nonce, { ...p, state: 'queued', error: null });
      });
      void flush();
    },
    /** Gives up on a message that has not gone out (never one on its way). @param {string} nonce */
    discard(nonce) {
      if (store.state.pending.get(nonce)?.state === 'sending') return;
      store.update((s) => {
        s.pending.delete(nonce);
      });
    },
    /** The connection is back: sends what waited. */
    flush() {
      backoff = FIRST_BACKOFF_MS;
      void flush();
    },
  };
}

/** @typedef {ReturnType<typeof createOutbox>} Outbox */
