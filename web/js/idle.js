// idle.js — whether the user is at this device, for their friends' presence dots: "idle" after
// five minutes without input or while the page is hidden, "online" again at the next input or
// when it shows. Only a change is told (the gateway fans each one out to every friend), and an
// idle status again after each reconnection (a new connection starts online). The clock is
// passed in, so the rules are tested without waiting.

/** Quiet this long (no pointer, key or touch) and the user is idle. */
export const IDLE_AFTER_MS = 5 * 60 * 1000;

/** @typedef {'online' | 'idle'} Activity */

/**
 * @typedef {{
 *   now: () => number,
 *   setTimeout: (fn: () => void, ms: number) => unknown,
 *   clearTimeout: (timer: unknown) => void,
 * }} Clock
 */

/** @type {Clock} */
const realClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (timer)),
};

/**
 * @param {{ send: (status: Activity) => void, clock?: Clock, idleAfterMs?: number }} opts
 *   `send` tells the gateway (it drops what comes while not connected: `identified` repairs that)
 */
export function createIdleTracker({ send, clock = realClock, idleAfterMs = IDLE_AFTER_MS }) {
  /** @type {Activity} */
  let status = 'online';
  let lastInput = 0;
  let hidden = false;
  let running = false;
  /** @type {unknown} the check for quiet, while one is due */
  let timer = null;

  /** @param {Activity} next */
  function become(next) {
    if (next === status) return;
    status = next;
    send(next);
  }

  /** @param {number} ms */
  function checkIn(ms) {
    clock.clearTimeout(timer);
    timer = clock.setTimeout(check, ms);
  }

  // Input only notes its time: the check comes back for what is left of the quiet, so a moving
  // pointer costs no timer per event.
  function check() {
    timer = null;
    if (!running) return;
    const quiet = clock.now() - lastInput;
    if (quiet >= idleAfterMs) become('idle');
    else checkIn(idleAfterMs - quiet);
  }

  function input() {
    if (!running) return;
    lastInput = clock.now();
    if (hidden) return;
    become('online');
    if (timer === null) checkIn(idleAfterMs);
  }

  return {
    /** Signed in: online (unless the page starts hidden), the quiet counted from now. @param {boolean} isHidden */
    start(isHidden) {
      running = true;
      status = 'online';
      lastInput = clock.now();
      hidden = isHidden;
      if (hidden) become('idle');
      checkIn(idleAfterMs);
    },
    /** Signed out: nothing more to tell. */
    stop() {
      running = false;
      clock.clearTimeout(timer);
      timer = null;
    },
    /** A pointer, key or touch on the page. */
    input,
    /** The page was hidden (another tab, minimised) or shown again. @param {boolean} isHidden */
    visibility(isHidden) {
      if (!running) return;
      hidden = isHidden;
      if (isHidden) become('idle');
      else input();
    },
    /** A connection was identified: it starts online, so an idle user says so again. */
    identified() {
      if (running && status === 'idle') send('idle');
    },
    get status() {
      return status;
    },
  };
}

/** @typedef {ReturnType<typeof createIdleTracker>} IdleTracker */

/** What counts as the user being there. */
const INPUTS = ['pointerdown', 'pointermove', 'keydown', 'touchstart', 'wheel'];

/** Feeds the page's input and visibility to the tracker, for the page's lifetime. @param {IdleTracker} tracker */
export function watchActivity(tracker) {
  const onInput = () => tracker.input();
  for (const type of INPUTS) window.addEventListener(type, onInput, { passive: true, capture: true });
  document.addEventListener('visibilitychange', () => tracker.visibility(document.visibilityState === 'hidden'));
}
