// Unit tests of choosing and uploading files for a message (web/js/uploads.js), and of the
// message then going out with their ids (outbox.js), run with `node --test`. The server is a
// recording function whose uploads finish when the test says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore } from '../../../web/js/store.js';
import { createUploads, uploadsOf, uploaded, uploadError } from '../../../web/js/uploads.js';
import { createOutbox } from '../../../web/js/outbox.js';
import { ApiError } from '../../../web/js/api.js';

/** A server whose uploads wait for `finish(i, answer)`; each records its progress callback and signal. */
function setup() {
  const store = createStore();
  /** @type {{ file: File, progress: (n: number) => void, signal: AbortSignal, resolve: (v: unknown) => void, reject: (e: unknown) => void }[]} */
  const calls = [];
  const api = {
    uploadAttachment(file, progress, signal) {
      return new Promise((resolve, reject) => {
        calls.push({ file, progress, signal, resolve, reject });
        signal.addEventListener('abort', () => reject(signal.reason));
      });
    },
  };
  const uploads = createUploads({ api, store });
  const attachment = (i) => ({ id: `a${i}`, filename: calls[i].file.name, content_type: calls[i].file.type, size: calls[i].file.size, width: null, height: null });
  const states = (chatId = 'c') => uploadsOf(store.state, chatId).map((u) => `${u.name}:${u.state}`);
  return { store, calls, uploads, attachment, states };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const text = (name, body = 'hello') => new File([body], name, { type: 'text/plain' });

test('chosen files upload at once; the message may go only when every one is up', async () => {
  const { calls, uploads, attachment, states, store } = setup();
  assert.equal(uploads.add('c', [text('a.txt'), text('b.txt')]), null);
  assert.equal(calls.length, 2, 'both uploads started');
  assert.deepEqual(states(), ['a.txt:uploading', 'b.txt:uploading']);
  assert.equal(uploads.take('c'), null, 'not while uploading');
  calls[0].resolve(attachment(0));
  await settle();
  assert.deepEqual(states(), ['a.txt:done', 'b.txt:uploading']);
  assert.equal(uploaded(uploadsOf(store.state, 'c')), null);
  calls[1].resolve(attachment(1));
  await settle();
  assert.deepEqual(uploads.take('c')?.map((a) => a.id), ['a0', 'a1']);
  assert.deepEqual(states(), [], 'the composer is empty once they are sent');
  assert.deepEqual(uploads.take('c'), [], 'a message without files');
});

test('progress is shown as it goes, and in full once done', async () => {
  const { calls, uploads, attachment, store } = setup();
  uploads.add('c', [text('a.txt', 'x'.repeat(1000))]);
  calls[0].progress(400);
  assert.equal(uploadsOf(store.state, 'c')[0].loaded, 400);
  calls[0].resolve(attachment(0));
  await settle();
  assert.equal(uploadsOf(store.state, 'c')[0].loaded, 1000);
});

test('cancelling stops the upload and takes the file out; its late answer changes nothing', async () => {
  const { calls, uploads, attachment, states, store } = setup();
  uploads.add('c', [text('a.txt'), text('b.txt')]);
  const key = uploadsOf(store.state, 'c')[0].key;
  uploads.remove(key);
  assert.equal(calls[0].signal.aborted, true, 'the request was aborted');
  assert.deepEqual(states(), ['b.txt:uploading']);
  calls[0].resolve(attachment(0));
  calls[1].resolve(attachment(1));
  await settle();
  assert.deepEqual(states(), ['b.txt:done']);
  assert.deepEqual(uploads.take('c')?.map((a) => a.id), ['a1']);
});

test('a failed upload says why and holds the message back until retried (from the start) or removed', async () => {
  const { calls, uploads, attachment, states, store } = setup();
  uploads.add('c', [text('a.txt')]);
  calls[0].reject(new ApiError(0, 'network', 'Cannot reach the server. Check your connection.'));
  await settle();
  assert.deepEqual(states(), ['a.txt:failed']);
  assert.equal(uploadsOf(store.state, 'c')[0].error, 'Cannot reach the server. Check your connection.');
  assert.equal(uploads.take('c'), null, 'not with a failed file');
  uploads.retry(uploadsOf(store.state, 'c')[0].key);
  assert.equal(calls.length, 2);
  assert.equal(calls[1].file, calls[0].file, 'the same file again');
  assert.deepEqual(states(), ['a.txt:uploading']);
  calls[1].resolve(attachment(1));
  await settle();
  assert.deepEqual(uploads.take('c')?.map((a) => a.id), ['a1']);
});

test('three upload at a time, as the server takes them; the others wait their turn, in order', async () => {
  const { calls, uploads, attachment, states, store } = setup();
  uploads.add('c', ['1', '2', '3', '4'].map((n) => text(`${n}.txt`)));
  uploads.add('d', [text('5.txt')]);
  assert.deepEqual(calls.map((c) => c.file.name), ['1.txt', '2.txt', '3.txt']);
  assert.deepEqual(states(), ['1.txt:uploading', '2.txt:uploading', '3.txt:uploading', '4.txt:waiting']);
  assert.equal(uploads.take('c'), null, 'not while one waits');
  uploads.remove(uploadsOf(store.state, 'c')[3].key); // a waiting file removed never starts
  calls[1].resolve(attachment(1));
  await settle();
  assert.deepEqual(calls.map((c) => c.file.name), ['1.txt', '2.txt', '3.txt', '5.txt'], 'the next in line, in another chat');
  assert.deepEqual(states('d'), ['5.txt:uploading']);
});

test('a short refusal (too many at once) is waited out and tried again; a long one fails with the server\'s words', async () => {
  const { calls, uploads, attachment, states, store } = setup();
  uploads.add('c', [text('a.txt'), text('b.txt')]);
  calls[0].reject(new ApiError(429, 'rate_limited', 'At most 3 uploads at once.', 0.05));
  await settle();
  assert.deepEqual(states(), ['a.txt:waiting', 'b.txt:uploading']);
  assert.equal(calls.length, 2, 'not again at once');
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(calls.length, 3, 'tried again after Retry-After');
  assert.equal(calls[2].file.name, 'a.txt');
  calls[2].resolve(attachment(2));
  calls[1].reject(new ApiError(429, 'rate_limited', '50 uploaded files are waiting to be sent: send or wait for them first.', 60));
  await settle();
  assert.deepEqual(states(), ['a.txt:done', 'b.txt:failed']);
  assert.equal(uploadsOf(store.state, 'c')[1].error, '50 uploaded files are waiting to be sent: send or wait for them first.');
});

test('files too large or too many are refused before anything is sent', () => {
  const { calls, uploads, states } = setup();
  const big = new File([new Uint8Array(25 * 1024 * 1024 + 1)], 'big.iso');
  assert.match(uploads.add('c', [big, text('ok.txt')]) ?? '', /^“big\.iso” is too large/);
  assert.deepEqual(states(), ['ok.txt:uploading']);
  assert.equal(calls.length, 1);
  const refusal = uploads.add('c', Array.from({ length: 10 }, (_, i) => text(`${i}.txt`)));
  assert.equal(refusal, 'A message holds at most 10 files: 1 was left out.');
  assert.equal(states().length, 10);
  assert.equal(calls.length, 3, 'three on their way, the rest waiting');
});

test('each chat keeps its own files; logging out stops every upload', () => {
  const { calls, uploads, states } = setup();
  uploads.add('c', [text('a.txt')]);
  uploads.add('d', [text('b.txt')]);
  assert.deepEqual([states('c'), states('d')], [['a.txt:uploading'], ['b.txt:uploading']]);
  uploads.stopAll();
  assert.ok(calls.every((c) => c.signal.aborted));
  assert.deepEqual([states('c'), states('d')], [[], []]);
});

test('the server\'s refusals read as sentences; a too-large file says the limit', () => {
  assert.equal(uploadError(new ApiError(413, 'payload_too_large', 'A file has at most 26214400 bytes (25 MiB).')), 'Too large: a file can be at most 25 MB.');
  assert.equal(uploadError(new ApiError(429, 'rate_limited', 'Too many files waiting to be sent.')), 'Too many files waiting to be sent.');
  assert.equal(uploadError(new Error('x')), 'The upload failed.');
});

test('a message with files goes out with their ids, offline first like any other', async () => {
  const store = createStore();
  const sent = [];
  const api = {
    async sendMessage(chatId, content, nonce, replyTo, attachmentIds) {
      sent.push({ content, nonce, attachmentIds });
      return { id: 'm1', chat_id: chatId, seq: 1, version: 1, author_id: 'a', content, nonce, created_at: '', edited_at: null, deleted: false, attachments: [] };
    },
  };
  const outbox = createOutbox({ api: /** @type {any} */ (api), store, onSent: () => {} });
  const files = [{ id: 'a1', filename: 'photo.png', content_type: 'image/png', size: 10, width: 2, height: 2 }];
  store.update((s) => { s.connection = 'reconnecting'; });
  outbox.send('c', '', null, files);
  await settle();
  const [pending] = store.state.pending.values();
  assert.equal(pending.state, 'queued');
  assert.deepEqual(pending.attachments, files, 'shown with its files while it waits');
  store.update((s) => { s.connection = 'connected'; });
  outbox.flush();
  for (let i = 0; i < 5 && sent.length === 0; i++) await settle();
  assert.deepEqual(sent, [{ content: '', nonce: pending.nonce, attachmentIds: ['a1'] }]);
});
