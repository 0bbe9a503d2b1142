// Unit tests of offline-first sending (web/js/outbox.js), run with `node --test`. The server is
// a recording function here; the browser story sends through the real gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore } from '../../../web/js/store.js';
import { createOutbox } from '../../../web/js/outbox.js';
import { ApiError } from '../../../web/js/api.js';

/** A server that answers each send with what `answer` says, and records the sends. */
function setup(answer) {
  const store = createStore();
  /** @type {{ content: string, nonce: string }[]} */
  const sent = [];
  const api = {
    async sendMessage(chatId, content, nonce) {
      sent.push({ content, nonce });
      const a = answer(content, sent.length);
      if (a instanceof Error) throw a;
      return { id: `m${sent.length}`, chat_id: chatId, seq: sent.length, version: sent.length, author_id: 'a', content, nonce, created_at: '', edited_at: null, deleted: false };
    },
  };
  const outbox = createOutbox({ api: /** @type {any} */ (api), store, onSent: () => {} });
  const connect = (state) => store.update((s) => { s.connection = state; });
  const states = () => [...store.state.pending.values()].map((p) => `${p.content}:${p.state}`);
  return { store, sent, outbox, connect, states };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

test('offline, messages wait as queued and go out in order, with their nonces, when back', async () => {
  const { sent, outbox, connect, states, store } = setup(() => null);
  connect('reconnecting');
  outbox.send('c', 'one');
  outbox.send('c', 'two');
  await settle();
  assert.deepEqual(sent, []);
  assert.deepEqual(states(), ['one:queued', 'two:queued']);
  const nonces = [...store.state.pending.keys()];
  connect('connected');
  outbox.flush();
  for (let i = 0; i < 10 && sent.length < 2; i++) await settle();
  assert.deepEqual(sent.map((x) => x.content), ['one', 'two']);
  assert.deepEqual(sent.map((x) => x.nonce), nonces);
  assert.deepEqual(states(), []);
});

test('a lost answer leaves the message queued (same nonce next time); a refusal marks it failed', async () => {
  const { sent, outbox, connect, states } = setup((content, n) =>
    content === 'rude' ? new ApiError(400, 'invalid_argument', 'Content is not allowed.') : n === 1 ? new ApiError(0, 'network', 'No answer.') : null,
  );
  connect('connected');
  outbox.send('c', 'hello');
  for (let i = 0; i < 5; i++) await settle();
  assert.deepEqual(states(), ['hello:queued'], 'no answer: still to send, not failed');
  outbox.flush();
  for (let i = 0; i < 5; i++) await settle();
  assert.equal(sent.length, 2);
  assert.equal(sent[0].nonce, sent[1].nonce, 'the same nonce on the second attempt');
  assert.deepEqual(states(), []);
  outbox.send('c', 'rude');
  for (let i = 0; i < 5; i++) await settle();
  assert.deepEqual(states(), ['rude:failed']);
});

test('Retry sends a refused message again; Discard drops it; neither touches one being sent', async () => {
  let refuse = true;
  const { store, sent, outbox, connect, states } = setup(() => (refuse ? new ApiError(403, 'forbidden', 'Read only.') : null));
  connect('connected');
  outbox.send('c', 'again');
  for (let i = 0; i < 5; i++) await settle();
  assert.deepEqual(states(), ['again:failed']);
  const [nonce] = store.state.pending.keys();
  refuse = false;
  outbox.retry(nonce);
  for (let i = 0; i < 5; i++) await settle();
  assert.deepEqual(states(), []);
  assert.equal(sent.at(-1)?.nonce, nonce);
  refuse = true;
  outbox.send('c', 'drop me');
  for (let i = 0; i < 5; i++) await settle();
  outbox.discard([...store.state.pending.keys()][0]);
  assert.deepEqual(states(), []);
});
