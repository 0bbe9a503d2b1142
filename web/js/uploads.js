// uploads.js — the files chosen for the message being written in each chat. Each one uploads
// as soon as it is chosen (its progress shown on its card), can be cancelled or removed, and
// when it fails says why and can be tried again. The message goes out only once all its files
// are uploaded; it then holds just their ids and goes through the outbox like any other.
//
// The server takes three uploads of one user at a time: the others wait their turn here, in
// the order chosen. A short refusal (429 for a few seconds: another tab's uploads, or a
// cancelled one the server has not seen end yet) is waited out; a long one (50 files uploaded
// and not sent) fails with the server's words.
//
// Offline: an upload needs the server, so a file chosen while there is none fails at once
// ("Cannot reach the server") with Retry. Files already uploaded stay, and a message whose
// files are all up may be sent offline: it waits queued, with its nonce (outbox.js).

import { ApiError } from './api.js';
import { checkFiles, formatSize, MAX_FILE_BYTES } from './attachments.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./types.js').State} State */
/** @typedef {import('./types.js').Upload} Upload */
/** @typedef {import('./types.js').Attachment} Attachment */

/** Progress is shown at most this often: each change renders the conversation again. */
const PROGRESS_EVERY_MS = 100;
/** Uploads of one user the server takes at once (429 beyond). */
const IN_FLIGHT = 3;
/** A refusal asking to wait at most this long is waited out, this many times in a row. */
const WAIT_OUT_S = 10;
const WAIT_OUT_TIMES = 5;

/** The files chosen in a chat's composer, in the order chosen. @param {State} s @param {string} chatId @returns {readonly Upload[]} */
export function uploadsOf(s, chatId) {
  return s.uploads.get(chatId) ?? [];
}

/**
 * The files of a chat's composer as the message will carry them, or null while any is still
 * uploading or has failed (the message cannot go yet).
 * @param {readonly Upload[]} list @returns {Attachment[] | null}
 */
export function uploaded(list) {
  /** @type {Attachment[]} */
  const files = [];
  for (const u of list) {
    if (!u.attachment) return null;
    files.push(u.attachment);
  }
  return files;
}

/** How long to wait before trying a refused upload again by itself, or null to fail it. @param {unknown} e */
export function waitOut(e) {
  if (!(e instanceof ApiError) || e.status !== 429) return null;
  const s = e.retryAfter ?? 5;
  return s <= WAIT_OUT_S ? s * 1000 : null;
}

/** Why an upload failed, for its card. @param {unknown} e */
export function uploadError(e) {
  if (e instanceof ApiError && e.status === 413) return `Too large: a file can be at most ${formatSize(MAX_FILE_BYTES)}.`;
  if (e instanceof ApiError) return e.message;
  return 'The upload failed.';
}

/** Whether a picture can be shown from the device before it is uploaded. @param {File} file */
function localPicture(file) {
  return /^image\/(png|jpeg|gif|webp)$/.test(file.type) && typeof URL.createObjectURL === 'function';
}

/** @param {{ api: Pick<Api, 'uploadAttachment'>, store: Store }} deps */
export function createUploads({ api, store }) {
  /** @type {Map<string, AbortController>} the uploads on their way, by key */
  const running = new Map();
  /** @type {Map<string, ReturnType<typeof setTimeout>>} refused uploads waiting to try again */
  const resting = new Map();
  /** @type {Map<string, number>} how many times in a row each was refused for a while */
  const refusals = new Map();
  let counter = 0;

  /** @param {string} key @returns {Upload | undefined} */
  function find(key) {
    for (const list of store.state.uploads.values()) {
      const u = list.find((x) => x.key === key);
      if (u) return u;
    }
    return undefined;
  }

  /** @param {string} key @param {Partial<Upload>} change */
  function set(key, change) {
    store.update((s) => {
      for (const [chatId, list] of s.uploads) {
        if (list.some((u) => u.key === key)) s.uploads.set(chatId, list.map((u) => (u.key === key ? { ...u, ...change } : u)));
      }
    });
  }

  /** Takes files out of their composer (and their local previews out of memory). @param {State} s @param {(u: Upload) => boolean} which */
  function drop(s, which) {
    for (const [chatId, list] of s.uploads) {
      const gone = list.filter(which);
      if (gone.length === 0) continue;
      for (const u of gone) if (u.preview) URL.revokeObjectURL(u.preview);
      const left = list.filter((u) => !which(u));
      if (left.length > 0) s.uploads.set(chatId, left);
      else s.uploads.delete(chatId);
    }
  }

  /** Starts waiting files, oldest first, while fewer than the server takes are on their way. */
  function pump() {
    for (const list of store.state.uploads.values()) {
      for (const u of list) {
        if (running.size >= IN_FLIGHT) return;
        if (u.state === 'waiting' && !resting.has(u.key)) void start(u);
      }
    }
  }

  /** Stops whatever a file has on its way or waiting. @param {string} key */
  function halt(key) {
    running.get(key)?.abort();
    running.delete(key);
    clearTimeout(resting.get(key));
    resting.delete(key);
    refusals.delete(key);
  }

  /** Uploads one chosen file, from its first byte. @param {Upload} u */
  async function start(u) {
    const session = store.state; // a different object after logging out: drop late answers then
    const control = new AbortController();
    running.set(u.key, control);
    set(u.key, { state: 'uploading', loaded: 0, error: null });
    let shownAt = 0;
    const progress = (/** @type {number} */ loaded) => {
      const now = Date.now();
      if (now - shownAt < PROGRESS_EVERY_MS || store.state !== session || control.signal.aborted) return;
      shownAt = now;
      set(u.key, { loaded: Math.min(loaded, u.size) });
    };
    try {
      const attachment = await api.uploadAttachment(u.file, progress, control.signal);
      if (store.state !== session || control.signal.aborted) return;
      refusals.delete(u.key);
      set(u.key, { state: 'done', loaded: u.size, attachment });
    } catch (e) {
      if (store.state !== session || control.signal.aborted) return;
      const wait = waitOut(e);
      const times = (refusals.get(u.key) ?? 0) + 1;
      if (wait !== null && times <= WAIT_OUT_TIMES) {
        refusals.set(u.key, times);
        set(u.key, { state: 'waiting', loaded: 0 });
        resting.set(
          u.key,
          setTimeout(() => {
            resting.delete(u.key);
            pump();
          }, wait),
        );
      } else {
        refusals.delete(u.key);
        set(u.key, { state: 'failed', error: uploadError(e) });
      }
    } finally {
      if (running.get(u.key) === control) running.delete(u.key);
      if (store.state === session) pump();
    }
  }

  return {
    /**
     * Adds files to a chat's message and uploads them (three at a time, the rest in turn).
     * Returns why some were refused (over 25 MiB, past 10 files), as sentences, or null.
     * @param {string} chatId @param {readonly File[]} files @returns {string | null}
     */
    add(chatId, files) {
      const { accepted, refusal } = checkFiles(files, uploadsOf(store.state, chatId).length);
      /** @type {Upload[]} */
      const fresh = accepted.map((file) => ({
        key: `upload-${++counter}`,
        chat_id: chatId,
        file,
        name: file.name || 'file',
        size: file.size,
        preview: localPicture(file) ? URL.createObjectURL(file) : null,
        state: 'waiting',
        loaded: 0,
        error: null,
        attachment: null,
      }));
      if (fresh.length > 0) store.update((s) => s.uploads.set(chatId, [...uploadsOf(s, chatId), ...fresh]));
      pump();
      return refusal;
    },
    /** Stops a file's upload, if on its way, and takes it out of the message. @param {string} key */
    remove(key) {
      halt(key);
      store.update((s) => drop(s, (u) => u.key === key));
      pump();
    },
    /** Uploads a failed file again (in its turn). @param {string} key */
    retry(key) {
      if (find(key)?.state !== 'failed') return;
      set(key, { state: 'waiting', error: null, loaded: 0 });
      pump();
    },
    /**
     * Empties a chat's composer of its files to send them: their attachments (none: `[]`), or
     * null, changing nothing, while any is still uploading or has failed.
     * @param {string} chatId @returns {Attachment[] | null}
     */
    take(chatId) {
      const files = uploaded(uploadsOf(store.state, chatId));
      if (files && files.length > 0) store.update((s) => drop(s, (u) => u.chat_id === chatId));
      return files;
    },
    /** Stops every upload and forgets every chosen file (logging out). */
    stopAll() {
      for (const key of [...running.keys(), ...resting.keys()]) halt(key);
      store.update((s) => drop(s, () => true));
    },
  };
}

/** @typedef {ReturnType<typeof createUploads>} Uploads */
