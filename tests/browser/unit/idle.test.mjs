// Unit tests of the idle tracker (web/js/idle.js) on a clock moved by hand: no real timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createIdleTracker, IDLE_AFTER_MS } from '../../../web/js/idle.js';

/** A clock whose time moves only with `advance`, running the timers that fall due meanwhile. */
function fakeClock() {
  let now = 1_000_000;
  let next = 1;
  /** @type {Map<number, { at: number, fn: () => void }>} */
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = next++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    /** Moves time on by `ms`, firing each due timer at its own time. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    get pending() {
      return timers.size;
    },
  };
}

/** A started tracker and what it told the gateway. */
function tracker({ hidden = false } = {}) {
  const clock = fakeClock();
  const sent = [];
  const t = createIdleTracker({ send: (status) => sent.push(status), clock });
  t.start(hidden);
  return { t, clock, sent };
}

test('five quiet minutes make the user idle, told once', () => {
  const { t, clock, sent } = tracker();
  clock.advance(IDLE_AFTER_MS - 1);
  assert.deepEqual(sent, []);
  clock.advance(1);
  assert.deepEqual(sent, ['idle']);
  clock.advance(IDLE_AFTER_MS * 3);
  assert.deepEqual(sent, ['idle'], 'no repeat while nothing changes');
  assert.equal(t.status, 'idle');
  assert.equal(clock.pending, 0, 'no timer runs while idle');
});

test('input counts the quiet from itself; the next input after idle is online again', () => {
  const { t, clock, sent } = tracker();
  clock.advance(4 * 60_000);
  t.input();
  clock.advance(4 * 60_000);
  assert.deepEqual(sent, [], 'eight minutes, but never five quiet');
  clock.advance(60_000);
  assert.deepEqual(sent, ['idle']);
  t.input();
  t.input();
  assert.deepEqual(sent, ['idle', 'online'], 'only the change is told');
  clock.advance(IDLE_AFTER_MS);
  assert.deepEqual(sent, ['idle', 'online', 'idle'], 'and the quiet counts again');
});

test('many inputs keep one timer, not one each', () => {
  const { t, clock } = tracker();
  for (let i = 0; i < 100; i++) {
    clock.advance(1000);
    t.input();
  }
  assert.equal(clock.pending, 1);
});

test('a hidden page is idle at once; shown again, it is online', () => {
  const { t, clock, sent } = tracker();
  clock.advance(1000);
  t.visibility(true);
  assert.deepEqual(sent, ['idle']);
  t.input(); // what a hidden page may still hear does not count
  clock.advance(IDLE_AFTER_MS * 2);
  assert.deepEqual(sent, ['idle']);
  t.visibility(false);
  assert.deepEqual(sent, ['idle', 'online']);
  clock.advance(IDLE_AFTER_MS);
  assert.deepEqual(sent, ['idle', 'online', 'idle'], 'shown counts as input: five minutes from then');
});

test('a page that starts hidden starts idle', () => {
  const { t, sent } = tracker({ hidden: true });
  assert.deepEqual(sent, ['idle']);
  assert.equal(t.status, 'idle');
});

test('each identified connection hears an idle status again, never an online one', () => {
  const { t, clock, sent } = tracker();
  t.identified();
  assert.deepEqual(sent, [], 'a new connection starts online: nothing to say');
  clock.advance(IDLE_AFTER_MS);
  t.identified();
  t.identified();
  assert.deepEqual(sent, ['idle', 'idle', 'idle']);
});

test('stopped (signed out), it tells nothing more', () => {
  const { t, clock, sent } = tracker();
  t.stop();
  clock.advance(IDLE_AFTER_MS * 2);
  t.visibility(true);
  t.input();
  t.identified();
  assert.deepEqual(sent, []);
  assert.equal(clock.pending, 0);
});
