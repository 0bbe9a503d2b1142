// story.mjs — Astral's web client end to end in real headless Chromium: two people register,
// become friends and chat live both ways (edit, delete, reply, react, typing, pictures and
// files); a third joins a group; history pages back on scroll; HTML in a message shows as text.
//
//   ASTRAL_URL=http://127.0.0.1:8000 ASTRAL_SCREENSHOTS=/tmp/astral-shots node story.mjs
//
// With ASTRAL_BIN=/path/to/astral (the all-in-one binary) the story runs its own server instead
// (a free port, a fresh data directory, this checkout's web/), and restarts it in the middle
// of the conversation to check that nothing is lost or doubled; without it that step is skipped.
//
// With ASTRAL_DOC_SCREENSHOTS=1 the screenshots of the main screens (light and dark, desktop
// and phone) go to docs/screenshots/ instead, and the people are plainly named alice, bob and
// carol: run it so against a server with a fresh data directory.
//
// Needs Debian's chromium (/usr/bin/chromium, or CHROMIUM_PATH) and `npm ci` here for playwright-core.
// Exits 0 when the story passes, 1 with the failed step's name and reason otherwise.

import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import fs, { createWriteStream } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { storyFiles } from './files.mjs';
import { storyPresence } from './presence.mjs';

const BIN = process.env.ASTRAL_BIN || '';
let BASE = (process.env.ASTRAL_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHOTS = process.env.ASTRAL_SCREENSHOTS || '/tmp/astral-shots';
const DOC = process.env.ASTRAL_DOC_SCREENSHOTS === '1';
const DOC_SHOTS = path.join(REPO, 'docs/screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.ASTRAL_TIMEOUT_MS || 15_000);
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** lowercase a-z0-9_, 3–32 characters (plain names for the documentation's screenshots) */
const uniqueName = (prefix) => (DOC ? prefix : `${prefix}_${randomBytes(5).toString('hex')}`);
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

const problems = [];
let current = 'starting';
let passed = 0;
let skipped = 0;

/** Runs one named step of the story, so a failure says where it happened. */
async function step(name, fn) {
  current = name;
  const started = Date.now();
  await fn();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
}

/** A step that cannot run here, and why. */
function skip(name, why) {
  skipped += 1;
  console.log(`ok - ${name} # SKIP ${why}`);
}

/** A free TCP port on the loopback interface. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** The all-in-one server the story runs itself (ASTRAL_BIN): start, stop (SIGTERM), start again. */
function ownServer(bin, port, dataDir, log) {
  let child = null;
  return {
    async start() {
      child = spawn(bin, [], {
        env: { ...process.env, ASTRAL_LISTEN: `127.0.0.1:${port}`, ASTRAL_DATA_DIR: dataDir, ASTRAL_WEB_DIR: process.env.ASTRAL_WEB_DIR || path.join(REPO, 'web') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.pipe(log, { end: false });
      child.stderr.pipe(log, { end: false });
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} (log: ${log.path})`);
        try {
          if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
        } catch {
          // Not listening yet.
        }
        if (Date.now() > deadline) throw new Error(`the server was not ready within 30 s (log: ${log.path})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Waits until the locator is visible; fails with `what` in the message. */
async function visible(locator, what) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: TIMEOUT });
  } catch {
    throw new Error(`${what}: not visible within ${TIMEOUT} ms`);
  }
}

/** Waits until the locator is hidden (or gone). */
async function hidden(locator, what) {
  try {
    await locator.first().waitFor({ state: 'hidden', timeout: TIMEOUT });
  } catch {
    throw new Error(`${what}: still shown after ${TIMEOUT} ms`);
  }
}

/** Asks `check` every 100 ms until it answers true; fails with `what` after the timeout. */
async function until(check, what) {
  const deadline = Date.now() + TIMEOUT;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not so within ${TIMEOUT} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the page has no element matching the locator. */
async function gone(locator, what) {
  try {
    await locator.first().waitFor({ state: 'detached', timeout: TIMEOUT });
  } catch {
    throw new Error(`${what}: still there after ${TIMEOUT} ms`);
  }
}

/** A signed-out browser context for one person, watching for script errors and dialogs. */
async function person(browser, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  watch(page, who);
  return { who, context, page };
}

/** Reports a page's script errors, dialogs, CSP violations and requests to other sites as problems. */
function watch(page, who) {
  page.on('pageerror', (e) => problems.push(`${who}: uncaught error in the page: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`${who}: unexpected ${d.type()} dialog "${d.message()}" (injected HTML ran?)`);
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) {
      problems.push(`${who}: CSP violation: ${m.text()}`);
    }
  });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return;
    if (u.host !== new URL(BASE).host) problems.push(`${who}: request to another site: ${r.url()}`);
  });
}

/** Closes a person's page (unless closed already) and opens the app again in a new one (same browser, still signed in). */
async function reopen(p) {
  if (!p.page.isClosed()) await p.page.close();
  p.page = await p.context.newPage();
  watch(p.page, p.who);
  await p.page.goto(BASE + '/');
  await visible(p.page.getByRole('navigation', { name: 'Chats' }), `${p.who}: signed in again in a new page`);
}

/**
 * Whether the server under test has the user settings that come with presence and read
 * receipts (`GET /api/users/me/settings` answers 200; a server without them, 404). Asked with
 * the person's current access token.
 */
async function hasSettings(p) {
  return p.page.evaluate(async () => {
    const { token } = JSON.parse(localStorage.getItem('astral.session') ?? '{}');
    const res = await fetch('/api/users/me/settings', { headers: { Authorization: `Bearer ${token}` } });
    return res.status === 200;
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

/** What axe-core found on each screen shot, by screen and variant. */
const accessibility = [];
const AXE = fs.readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

/** Runs axe-core on the page as it is and keeps its violations under `screen`. */
async function axeCheck(page, screen) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const { violations } = await axe.run(document, { resultTypes: ['violations'] });
    return violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')}: ${n.failureSummary.split('\n').slice(1, 2).join(' ')}`) }));
  });
  for (const v of violations) accessibility.push({ screen, ...v });
}

/**
 * A screenshot of a main screen for the documentation, in each of the `variants` asked
 * ('desktop-light', 'phone-dark', …): into docs/screenshots/ with ASTRAL_DOC_SCREENSHOTS=1,
 * else next to the others. The page goes back to desktop and light afterwards.
 */
async function docShot(page, name, variants = ['desktop-light', 'desktop-dark', 'phone-light', 'phone-dark'], prepare = async () => {}) {
  const dir = DOC ? DOC_SHOTS : SHOTS;
  for (const v of variants) {
    const [size, scheme] = v.split('-');
    await page.setViewportSize(size === 'phone' ? PHONE : DESKTOP);
    await page.emulateMedia({ colorScheme: scheme });
    await prepare(size);
    // Let layout settle for the new size (two frames) and colour transitions end, then shoot.
    await page.evaluate(async () => {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      await Promise.all(document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished.catch(() => {})));
    });
    await page.screenshot({ path: path.join(dir, `${name}-${v}.png`) });
    await axeCheck(page, `${name}-${v}`);
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
}

async function register(p, username) {
  const { page } = p;
  await page.goto(BASE + '/');
  await visible(page.getByLabel('Username'), `${p.who}: login form`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await visible(page.getByRole('navigation', { name: 'Chats' }), `${p.who}: signed-in layout after Create account`);
}

/** The Messages list's entry containing `text`, as literal text. */
function messageItem(page, text) {
  return page.getByRole('list', { name: 'Messages' }).getByRole('listitem').filter({ hasText: text });
}

/** Clicks one of a message's action buttons ("Edit", "Delete", "Reply", "React"), shown on hover. */
async function messageAction(page, item, action) {
  await item.hover();
  await item.getByRole('button', { name: action, exact: true }).click();
}

/** The composer of the open chat. */
const composer = (page) => page.getByRole('textbox', { name: 'Message', exact: true });

/** Sends a message from the composer (Enter) and waits for it to be confirmed (no longer "Sending…"). */
async function say(page, text) {
  const box = composer(page);
  await box.fill(text);
  await box.press('Enter');
  await visible(messageItem(page, text).filter({ hasNotText: 'Sending…' }), `the sent message "${text}"`);
}

/** A regular expression matching `s` literally. */
const literal = (s) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/** Opens a chat from the sidebar by its name (the start of the link's text: the preview follows). */
async function openChat(page, name) {
  const startsWith = new RegExp(`^${literal(name).source}`);
  await page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: startsWith }).click();
  await visible(page.getByRole('heading', { name, level: 1 }), `the chat "${name}" opened`);
}

/** Chooses files with the composer's paperclip (the browser's file picker). */
async function attach(page, ...paths) {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Attach files' }).click();
  await (await chooser).setFiles(paths);
}

/** A file chosen for the message, on its card above the message box. */
const fileToSend = (page, name) => page.getByRole('list', { name: 'Files to send' }).getByRole('listitem').filter({ hasText: name });

/** Waits until a chosen file is uploaded: its card says so, its progress bar gone. */
async function uploadedCard(page, name) {
  await visible(page.locator('.upload[data-state="done"]').filter({ hasText: name }), `"${name}" uploaded`);
  if (await fileToSend(page, name).getByRole('progressbar').isVisible()) throw new Error(`"${name}" still shows its progress once uploaded`);
}

/** Whether a picture has loaded, and its natural and shown sizes. */
const pictureState = (img) =>
  img.evaluate((el) => ({ loaded: el.complete && el.naturalWidth > 0, natural: [el.naturalWidth, el.naturalHeight], shown: [el.clientWidth, el.clientHeight] }));

/** Fails if any HTML element that only message text could have brought is in the page (the client's own pictures of files aside). */
async function noInjectedHtml(p) {
  const n = await p.page.locator('img:not(.attachment-img), b, script:not([src]), iframe').count();
  if (n > 0) throw new Error(`${p.who}: ${n} element(s) from message text were inserted as HTML`);
}

async function main() {
  await mkdir(SHOTS, { recursive: true });
  if (DOC) await mkdir(DOC_SHOTS, { recursive: true });
  let server = null;
  let dataDir = null;
  if (BIN) {
    const port = await freePort();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'astral-story-'));
    const log = createWriteStream(path.join(SHOTS, 'server.log'));
    server = ownServer(BIN, port, dataDir, log);
    await server.start();
    BASE = `http://127.0.0.1:${port}`;
    console.log(`# server: ${BIN} on ${BASE}, data in ${dataDir}, log in ${log.path}`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const alice = await person(browser, 'alice');
  const bob = await person(browser, 'bob');
  const carol = await person(browser, 'carol');
  const aliceName = uniqueName('alice');
  const bobName = uniqueName('bob');
  const carolName = uniqueName('carol');
  const first = '<b>hi</b> bob, this is <img src=x onerror=alert(1)> plain text';
  const reply = `hello ${aliceName}!\nsecond line from bob`;
  const edited = '<b>hi</b> bob, this is <img src=x onerror=alert(1)> still plain text';
  const answer = 'ha, the browser showed it as text 👍';
  const mention = `@${bobName} can you bring the snacks on Saturday?`;
  const oops = 'oops, that was meant for someone else';
  const groupHello = 'hello both! carol here';
  const HISTORY = 60;
  const files = await storyFiles();
  let withSettings = false;

  try {
    await step('the login screen loads with its form', async () => {
      await alice.page.goto(BASE + '/');
      await visible(alice.page.getByRole('button', { name: 'Log in' }), 'Log in button');
      await shot(alice.page, '01-login');
    });

    await step('a wrong login shows the API error as text', async () => {
      await alice.page.getByLabel('Username').fill(aliceName);
      await alice.page.getByLabel('Password').fill(PASSWORD);
      await alice.page.getByRole('button', { name: 'Log in' }).click();
      await visible(alice.page.getByRole('alert').filter({ hasText: /\S/ }), 'an error message after logging in as nobody');
      // The server's words, as a sentence for people: a capital first letter and a full stop.
      const said = (await alice.page.getByRole('alert').filter({ hasText: /\S/ }).first().innerText()).trim();
      if (!/^[A-Z].*[.!?]$/s.test(said)) throw new Error(`the error is shown as the server's raw words: ${JSON.stringify(said)}`);
    });

    await step(`alice (${aliceName}) and bob (${bobName}) register`, async () => {
      await register(alice, aliceName);
      await register(bob, bobName);
      withSettings = await hasSettings(alice);
    });

    await step('the refresh token stays in an HttpOnly cookie; a stale access token is renewed with it', async () => {
      const seen = await alice.page.evaluate(() => ({ stored: localStorage.getItem('astral.session') ?? '', cookies: document.cookie }));
      if (seen.stored.includes('refresh')) throw new Error(`a refresh token in localStorage: ${seen.stored}`);
      if (/astral_(refresh|session)/.test(seen.cookies)) throw new Error(`a session cookie readable by script: ${seen.cookies}`);
      await alice.page.evaluate(() => {
        const s = JSON.parse(localStorage.getItem('astral.session') ?? '{}');
        localStorage.setItem('astral.session', JSON.stringify({ ...s, token: 'stale' }));
      });
      await alice.page.reload();
      await visible(alice.page.getByLabel('Add friend'), 'alice still signed in after the reload');
      await alice.page.waitForFunction(
        () => String(JSON.parse(localStorage.getItem('astral.session') ?? '{}').token).split('.').length === 3,
        null,
        { timeout: 10_000 },
      );
    });

    await step('alice sends bob a friend request by username', async () => {
      await alice.page.getByLabel('Add friend').fill(bobName);
      await alice.page.getByRole('button', { name: 'Send friend request' }).click();
      await visible(alice.page.getByRole('button', { name: `Cancel friend request to ${bobName}` }), 'the outgoing request in alice\'s list');
    });

    await step('bob sees the request live and accepts it', async () => {
      const accept = bob.page.getByRole('button', { name: /^Accept/ });
      await visible(accept, 'an Accept button on bob\'s page (without reload)');
      await visible(bob.page.getByRole('button', { name: /^Decline/ }), 'a Decline button on bob\'s page');
      await shot(bob.page, '02-friend-request');
      await accept.first().click();
      await gone(bob.page.getByRole('button', { name: /^Accept/ }), 'the accepted request');
    });

    await step('alice sees bob as a friend and opens the direct chat', async () => {
      const open = alice.page.getByRole('button', { name: `Open chat with ${bobName}` });
      await visible(open, 'bob in alice\'s friends list (live, after bob accepted)');
      await open.click();
      await visible(alice.page.getByRole('list', { name: 'Messages' }), 'alice\'s Messages list');
      await visible(alice.page.getByRole('heading', { name: bobName }), 'the chat titled with bob\'s name');
      await visible(alice.page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: bobName }), 'the chat in alice\'s sidebar');
    });

    await step('bob opens the same chat', async () => {
      const open = bob.page.getByRole('button', { name: `Open chat with ${aliceName}` });
      await visible(open, 'alice in bob\'s friends list');
      await open.click();
      await visible(bob.page.getByRole('list', { name: 'Messages' }), 'bob\'s Messages list');
      await visible(bob.page.getByRole('heading', { name: aliceName }), 'the chat titled with alice\'s name');
    });

    await step('alice sends a message with HTML in it (Enter sends)', async () => {
      const box = alice.page.getByRole('textbox', { name: 'Message', exact: true });
      await box.fill(first);
      await box.press('Enter');
      await visible(messageItem(alice.page, first), 'alice\'s own message');
    });

    await step('it reaches bob live, without reload, as literal text', async () => {
      await visible(messageItem(bob.page, first), 'alice\'s message in bob\'s window');
      const list = bob.page.getByRole('list', { name: 'Messages' });
      const injected = await list.locator('b, img').count();
      if (injected > 0) throw new Error(`the message was inserted as HTML: ${injected} <b>/<img> element(s) in the list`);
    });

    await step('bob replies on two lines (Shift+Enter) and alice sees it', async () => {
      const box = bob.page.getByRole('textbox', { name: 'Message', exact: true });
      const [line1, line2] = reply.split('\n');
      await box.click();
      await box.pressSequentially(line1);
      await box.press('Shift+Enter');
      await box.pressSequentially(line2);
      await box.press('Enter');
      await visible(messageItem(alice.page, line1), 'bob\'s reply in alice\'s window');
      const text = await messageItem(alice.page, line1).first().innerText();
      if (!text.includes(line2)) throw new Error(`the reply lost its second line: ${JSON.stringify(text)}`);
      await shot(alice.page, '03-chat-alice');
      await shot(bob.page, '04-chat-bob');
    });

    await step('the dark theme and the phone layout render', async () => {
      await bob.page.emulateMedia({ colorScheme: 'dark' });
      await shot(bob.page, '05-chat-bob-dark');
      await bob.page.setViewportSize({ width: 390, height: 844 });
      await visible(bob.page.getByRole('textbox', { name: 'Message', exact: true }), 'the composer at phone width');
      await shot(bob.page, '06-chat-bob-phone-dark');
      await bob.page.getByRole('button', { name: 'Show chats' }).click();
      await visible(bob.page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: aliceName }), 'the chat list at phone width');
      await shot(bob.page, '07-chats-bob-phone-dark');
    });

    await step('back to desktop width and the light theme', async () => {
      await bob.page.setViewportSize(DESKTOP);
      await bob.page.emulateMedia({ colorScheme: 'light' });
      await visible(composer(bob.page), 'bob\'s composer at desktop width');
    });

    await step('bob reacts with 👍 from the picker; alice sees it live and adds hers', async () => {
      await messageAction(bob.page, messageItem(bob.page, first).first(), 'React');
      await bob.page.getByRole('button', { name: 'React with thumbs up' }).click();
      const chip = (page, n) => messageItem(page, first).first().getByRole('button', { name: `👍 thumbs up: ${n}` });
      await visible(chip(bob.page, 1), 'the 👍 1 reaction on bob\'s side');
      await visible(chip(alice.page, 1), 'bob\'s 👍 reaction in alice\'s window (live)');
      await chip(alice.page, 1).click();
      await visible(chip(bob.page, 2), 'the 👍 count going to 2 for bob after alice clicked the chip');
      if ((await chip(alice.page, 2).getAttribute('aria-pressed')) !== 'true') throw new Error('alice\'s own reaction chip is not shown pressed');
    });

    await step('alice sees "bob is typing…" while bob types', async () => {
      // At a person's pace: the gateway passes on one typing notice per person every 3 s.
      await composer(bob.page).pressSequentially('typing a thought', { delay: 250 });
      await visible(alice.page.getByText(`${bobName} is typing…`), 'the typing indicator in alice\'s window');
      await composer(bob.page).fill('');
    });

    await step('alice edits her message inline: Escape cancels, Enter saves; bob sees it edited', async () => {
      const mine = messageItem(alice.page, first).first();
      await messageAction(alice.page, mine, 'Edit');
      const editor = alice.page.getByRole('textbox', { name: 'Edit message' });
      await editor.fill('this edit is abandoned');
      await editor.press('Escape');
      await gone(editor, 'the editor after Escape');
      await visible(messageItem(alice.page, first), 'the unchanged message after Escape');
      await messageAction(alice.page, mine, 'Edit');
      await editor.fill(edited);
      await editor.press('Enter');
      await gone(editor, 'the editor after Enter');
      const theirs = messageItem(bob.page, edited);
      await visible(theirs, 'the edited text in bob\'s window');
      await visible(theirs.getByText('(edited)'), 'the "edited" marker in bob\'s window');
      await noInjectedHtml(bob);
    });

    await step('bob replies to alice\'s message: the quote shows above the composer and on the reply', async () => {
      await messageAction(bob.page, messageItem(bob.page, edited).first(), 'Reply');
      await visible(bob.page.getByText(`Replying to ${aliceName}`), 'the reply bar above bob\'s composer');
      await say(bob.page, answer);
      await gone(bob.page.getByText(`Replying to ${aliceName}`), 'the reply bar after sending');
      const reply = messageItem(alice.page, answer);
      await visible(reply, 'bob\'s reply in alice\'s window');
      const text = await reply.innerText();
      if (!text.includes(aliceName) || !text.includes('still plain text')) throw new Error(`the reply does not quote alice's message: ${JSON.stringify(text)}`);
    });

    await step('alice mentions bob; bob sees the mention highlighted', async () => {
      await say(alice.page, mention);
      const m = messageItem(bob.page, 'can you bring the snacks');
      await visible(m, 'the mention in bob\'s window');
      await visible(m.locator('.mention'), 'bob\'s name highlighted as a mention');
    });

    await step('markdown shows as formatting, never as HTML; the emoji picker inserts at the cursor', async () => {
      const aliceBox = composer(alice.page);
      await aliceBox.fill('this is **important**, see `npm test` and [the docs](https://example.com/docs) <i>not html</i>');
      await aliceBox.press('Enter');
      const item = messageItem(bob.page, 'see npm test');
      await visible(item.locator('strong', { hasText: 'important' }), 'the bold word in bob\'s window');
      await visible(item.locator('code', { hasText: 'npm test' }), 'the inline code in bob\'s window');
      await visible(item.getByRole('link', { name: 'the docs' }), 'the markdown link in bob\'s window');
      if (await item.locator('i').count()) throw new Error('HTML in a message became an element');
      await visible(item.getByText('<i>not html</i>'), 'the HTML shown as text');
      const box = composer(bob.page);
      await box.fill('party time ');
      await bob.page.getByRole('button', { name: 'Insert an emoji' }).click();
      await bob.page.getByRole('group', { name: 'Pick an emoji' }).getByRole('button', { name: 'Insert party' }).click();
      if ((await box.inputValue()) !== 'party time 🎉') throw new Error(`the emoji was not inserted: ${JSON.stringify(await box.inputValue())}`);
      await box.press('Enter');
      await visible(messageItem(alice.page, 'party time 🎉'), 'the emoji message in alice\'s window');
    });

    await step('alice deletes a message after confirming; bob sees it deleted, and no quote of it remains', async () => {
      await say(alice.page, oops);
      await visible(messageItem(bob.page, oops), 'the message to delete, in bob\'s window');
      await messageAction(bob.page, messageItem(bob.page, oops).first(), 'Reply');
      await say(bob.page, 'what did you mean?');
      await visible(messageItem(alice.page, 'what did you mean?'), 'bob\'s reply quoting it, for alice');
      await messageAction(alice.page, messageItem(alice.page, oops).first(), 'Delete');
      const confirm = alice.page.getByRole('dialog', { name: 'Delete message' });
      await visible(confirm, 'the confirmation dialog');
      await confirm.getByRole('button', { name: 'Cancel' }).click();
      await gone(confirm, 'the confirmation dialog after Cancel');
      await visible(messageItem(alice.page, oops).first(), 'the message still there after Cancel');
      await messageAction(alice.page, messageItem(alice.page, oops).first(), 'Delete');
      await confirm.getByRole('button', { name: 'Delete' }).click();
      await gone(messageItem(bob.page, oops), 'the deleted text in bob\'s window, quotes included');
      await gone(messageItem(alice.page, oops), 'the deleted text in alice\'s window, quotes included');
      await visible(bob.page.getByText('This message was deleted.'), 'the deleted marker in bob\'s window');
      await visible(messageItem(bob.page, 'what did you mean?').getByText('Original message was deleted'), 'the reply\'s quote, deleted');
    });

    await step('a paste past 4,000 characters is kept whole, counted, and sent only once short enough', async () => {
      const long = 'x'.repeat(3990) + ' the end ' + 'y'.repeat(100);
      const box = composer(alice.page);
      await box.fill(long);
      const count = alice.page.locator('#composer-count');
      await visible(count.getByText('Too long to send: 4,099 of 4,000 characters'), 'the counter past the limit');
      if ((await box.inputValue()).length !== long.length) throw new Error('the pasted text was cut');
      await box.press('Enter');
      if ((await box.inputValue()).length !== long.length) throw new Error('a text over the limit was sent');
      await box.fill(long.slice(0, 3999));
      await visible(count.getByText('3,999 / 4,000'), 'the counter just under the limit');
      await box.press('Enter');
      await visible(messageItem(bob.page, 'x'.repeat(3990) + ' the end'), 'the long message, whole, in bob\'s window');
      await count.waitFor({ state: 'hidden', timeout: TIMEOUT });
    });

    await step('a message grouped under the one before shows its time on hover', async () => {
      await say(alice.page, 'one thought');
      await say(alice.page, 'and a second');
      const second = messageItem(bob.page, 'and a second');
      await visible(second, 'the second message in bob\'s window');
      if (!(await second.evaluate((li) => li.classList.contains('grouped')))) throw new Error('the second message is not grouped under the first');
      const time = second.locator('.msg-time');
      if (await time.isVisible()) throw new Error('a grouped message shows its time without hover');
      await second.hover();
      await visible(time, 'the grouped message\'s time on hover');
    });

    await step('keyboard: a skip link first, the message list one tab stop with arrow keys inside, type in rem', async () => {
      const page = bob.page;
      // A fresh page, so Tab starts from the top of the document.
      await page.reload();
      await visible(messageItem(page, 'and a second'), 'bob\'s chat after a reload');
      await page.keyboard.press('Tab');
      const first = await page.evaluate(() => document.activeElement?.textContent);
      if (first !== 'Skip to content') throw new Error(`the first tab stop is ${JSON.stringify(first)}, not the skip link`);
      await page.keyboard.press('Enter');
      if (!(await composer(page).evaluate((el) => el === document.activeElement))) throw new Error('the skip link did not lead to the message box');
      const stops = await page.evaluate(() => {
        const tabbable = [...document.querySelectorAll('.messages *, .messages > li')].filter((el) => el instanceof HTMLElement && el.tabIndex >= 0 && !el.closest('[hidden]'));
        return tabbable.length;
      });
      const rows = await page.locator('.messages > li').count();
      if (rows < 3) throw new Error(`only ${rows} messages to move between`);
      const active = page.locator('.messages > li[tabindex="0"]');
      if ((await active.count()) !== 1) throw new Error('not exactly one message is the list\'s tab stop');
      if (stops > 1 + (await active.locator('button:not([hidden]), a[href]').count())) throw new Error(`${stops} tab stops in the message list; only the active message and its controls should be`);
      await composer(page).focus();
      // Back from the message box, past its own buttons, into the list: its active message.
      let landed = false;
      for (let i = 0; i < 4 && !landed; i++) {
        await page.keyboard.press('Shift+Tab');
        landed = await page.evaluate(() => !!document.activeElement?.closest('.messages > li'));
      }
      if (!landed) throw new Error('Shift+Tab from the message box does not reach the message list');
      await active.focus();
      const before = await page.evaluate(() => [...document.querySelectorAll('.messages > li')].indexOf(/** @type {Element} */ (document.activeElement)));
      await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowUp');
      const after = await page.evaluate(() => [...document.querySelectorAll('.messages > li')].indexOf(/** @type {Element} */ (document.activeElement)));
      if (after !== before - 2) throw new Error(`ArrowUp twice moved from message ${before} to ${after}`);
      if ((await page.locator('.messages > li[tabindex="0"]').count()) !== 1) throw new Error('the tab stop did not move with the arrows');
      // The browser's text size (the root font size) scales the app's type.
      const sizes = await page.evaluate(() => {
        const body = () => parseFloat(getComputedStyle(document.body).fontSize);
        const normal = body();
        document.documentElement.style.fontSize = '20px';
        const larger = body();
        document.documentElement.style.fontSize = '';
        return { normal, larger };
      });
      if (!(sizes.larger > sizes.normal * 1.2)) throw new Error(`a larger text size did not enlarge the text: ${JSON.stringify(sizes)}`);
    });

    await step('alice attaches a big picture: its card shows the upload going, Send waits, and × cancels it', async () => {
      const page = alice.page;
      // A slow connection (256 KB/s up), so that the upload is seen on its way.
      const cdp = await alice.context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
      try {
        await attach(page, files.slow);
        const card = fileToSend(page, 'holiday-album.png');
        const bar = card.getByRole('progressbar', { name: 'Uploading holiday-album.png' });
        await visible(bar, 'the upload\'s progress bar');
        await until(async () => (await bar.evaluate((el) => el.value)) > 0, 'the progress bar moving');
        await visible(card.getByText(/B of 2\.8 MB$/), 'how much has gone, in words');
        if (!(await page.getByRole('button', { name: 'Send' }).isDisabled())) throw new Error('Send is enabled while a file is uploading');
        await visible(page.getByText('Uploading 1 file… the message can be sent once it is done.'), 'what Send waits for');
        await shot(page, '10-uploading');
        await card.getByRole('button', { name: 'Cancel the upload of holiday-album.png' }).click();
        await gone(card, 'the cancelled file\'s card');
        if (await page.getByRole('button', { name: 'Send' }).isDisabled()) throw new Error('Send stays disabled after the upload was cancelled');
      } finally {
        await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
        await cdp.detach();
      }
    });

    await step('alice sends a picture with no text; bob sees its preview, sized before it loads, and in his chat list', async () => {
      await attach(alice.page, files.sunset);
      await uploadedCard(alice.page, 'sunset.png');
      await visible(fileToSend(alice.page, 'sunset.png').getByText('3.1 KB'), 'the picture\'s size on its card');
      await alice.page.getByRole('button', { name: 'Send' }).click();
      await gone(fileToSend(alice.page, 'sunset.png'), 'the file above the box once sent');
      const theirs = bob.page.getByRole('list', { name: 'Messages' }).getByRole('button', { name: 'sunset.png' });
      await visible(theirs, 'the picture in bob\'s window');
      const thumb = theirs.getByRole('img', { name: 'sunset.png' });
      await until(async () => (await pictureState(thumb)).loaded, 'the thumbnail loaded for bob');
      const seen = await pictureState(thumb);
      // The server's thumbnail is at most 320 px a side; shown in a box of the picture's proportions.
      if (seen.natural[0] !== 320 || seen.natural[1] !== 200) throw new Error(`the thumbnail is ${seen.natural.join('×')}, not 320×200`);
      if (seen.shown[0] !== 320 || seen.shown[1] !== 200) throw new Error(`the picture shows at ${seen.shown.join('×')}, not 320×200`);
      if ((await thumb.getAttribute('loading')) !== 'lazy') throw new Error('the thumbnail is not lazy-loaded');
      const chats = (page, who) => page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: new RegExp(`^${literal(who).source}`) });
      await visible(chats(bob.page, aliceName).filter({ hasText: 'sunset.png' }), 'the file\'s name as the last message in bob\'s chat list');
      await visible(chats(alice.page, bobName).filter({ hasText: 'You: sunset.png' }), '"You: sunset.png" in alice\'s chat list');
    });

    await step('bob opens the picture in the viewer: full size, Tab stays inside, Escape, × and a click beside it close it', async () => {
      const page = bob.page;
      const preview = page.getByRole('list', { name: 'Messages' }).getByRole('button', { name: 'sunset.png' });
      await preview.click();
      const viewer = page.getByRole('dialog', { name: 'sunset.png' });
      await visible(viewer, 'the viewer');
      const full = viewer.getByRole('img', { name: 'sunset.png' });
      await until(async () => (await pictureState(full)).loaded, 'the full picture loaded');
      const seen = await pictureState(full);
      if (seen.natural[0] !== 640 || seen.natural[1] !== 400) throw new Error(`the viewer shows a ${seen.natural.join('×')} picture, not the 640×400 original`);
      const download = viewer.getByRole('link', { name: 'Download' });
      if ((await download.getAttribute('download')) !== 'sunset.png') throw new Error('the viewer\'s Download link does not name the file');
      for (let i = 0; i < 4; i++) {
        await page.keyboard.press('Tab');
        if (!(await page.evaluate(() => !!document.activeElement?.closest('dialog')))) throw new Error(`Tab ${i + 1} left the viewer`);
      }
      await docShot(page, 'viewer', ['desktop-light', 'desktop-dark', 'phone-dark']);
      await page.keyboard.press('Escape');
      await gone(viewer, 'the viewer after Escape');
      if (!(await preview.evaluate((el) => el === document.activeElement))) throw new Error('focus did not go back to the picture after the viewer closed');
      await preview.click();
      await viewer.getByRole('button', { name: 'Close' }).click();
      await gone(viewer, 'the viewer after ×');
      await preview.click();
      await visible(viewer, 'the viewer again');
      await page.mouse.click(8, 8); // the backdrop, beside the dialog
      await gone(viewer, 'the viewer after a click beside it');
    });

    await step('bob answers the picture; the quote names its file', async () => {
      const picture = bob.page.getByRole('list', { name: 'Messages' }).getByRole('listitem').filter({ has: bob.page.getByRole('button', { name: 'sunset.png' }) });
      await messageAction(bob.page, picture.first(), 'Reply');
      await visible(bob.page.locator('.replying').filter({ hasText: 'sunset.png' }), 'the file\'s name in bob\'s reply bar');
      await say(bob.page, 'what a sunset!');
      await visible(messageItem(alice.page, 'what a sunset!').locator('.reply-quote').filter({ hasText: 'sunset.png' }), 'the quote of the picture, by its name, for alice');
    });

    await step('alice sends a text file with words; bob sees a file card whose link downloads it', async () => {
      await attach(alice.page, files.notes);
      await uploadedCard(alice.page, 'notes.txt');
      await composer(alice.page).fill('the plan for Saturday');
      await composer(alice.page).press('Enter');
      const card = messageItem(bob.page, 'the plan for Saturday').getByRole('link', { name: `Download notes.txt ${Buffer.byteLength(files.notesText)} bytes` });
      await visible(card, 'the file card in bob\'s window');
      const [download] = await Promise.all([bob.page.waitForEvent('download', { timeout: TIMEOUT }), card.click()]);
      if (download.suggestedFilename() !== 'notes.txt') throw new Error(`the download is named ${download.suggestedFilename()}`);
      const got = fs.readFileSync(await download.path(), 'utf8');
      if (got !== files.notesText) throw new Error(`the download holds ${JSON.stringify(got)}`);
      await bob.page.mouse.move(1, 1); // off the card: shown at rest
      await docShot(bob.page, 'files', ['desktop-light', 'desktop-dark', 'phone-light']);
    });

    await step('five files chosen at once all upload (the server takes three at a time: the others wait their turn) and go in one message', async () => {
      await attach(alice.page, ...files.parts);
      for (const part of files.parts) await uploadedCard(alice.page, path.basename(part));
      if (await alice.page.locator('.upload[data-state="failed"]').count()) throw new Error('an upload failed');
      await composer(alice.page).fill('all five parts');
      await composer(alice.page).press('Enter');
      const cards = messageItem(bob.page, 'all five parts').getByRole('link', { name: /^Download part-\d\.txt/ });
      await until(async () => (await cards.count()) === 5, 'five file cards in bob\'s window');
    });

    await step('a pasted picture and files dropped on the chat are attached; one over 25 MiB is refused before uploading', async () => {
      const page = alice.page;
      await composer(page).focus();
      await page.evaluate(async () => {
        const canvas = document.createElement('canvas');
        canvas.width = 240;
        canvas.height = 160;
        const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
        g.fillStyle = '#4c9dff';
        g.fillRect(0, 0, 240, 160);
        g.fillStyle = '#ffd678';
        g.fillRect(80, 40, 80, 80);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        const dt = new DataTransfer();
        dt.items.add(new File([/** @type {Blob} */ (blob)], 'screenshot.png', { type: 'image/png' }));
        document.querySelector('#composer-input')?.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      });
      await uploadedCard(page, 'screenshot.png');
      // Built in the page: a 26 MiB file to refuse, and a small one.
      await page.evaluate(() => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(26 * 1024 * 1024)], 'huge.iso'));
        dt.items.add(new File(['dropped words'], 'dropped.txt', { type: 'text/plain' }));
        const zone = /** @type {Element} */ (document.querySelector('.scroller'));
        for (const type of ['dragenter', 'dragover']) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
        Object.assign(window, { dragged: dt });
      });
      await visible(page.getByText('Drop files to attach them'), 'the overlay while files are dragged over the chat');
      await page.evaluate(() => {
        const dt = /** @type {any} */ (window).dragged;
        document.querySelector('.scroller')?.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      await hidden(page.getByText('Drop files to attach them'), 'the overlay after the drop');
      await visible(page.getByText('“huge.iso” is too large (26 MB): a file can be at most 25 MB.'), 'the refusal of the large file');
      await uploadedCard(page, 'dropped.txt');
      if (await fileToSend(page, 'huge.iso').count()) throw new Error('the file over 25 MiB was taken');
      await docShot(page, 'attach', ['desktop-light', 'desktop-dark', 'phone-dark']);
      await fileToSend(page, 'dropped.txt').getByRole('button', { name: 'Remove dropped.txt' }).click();
      await gone(fileToSend(page, 'dropped.txt'), 'the removed file');
      await composer(page).press('Enter');
      await visible(bob.page.getByRole('list', { name: 'Messages' }).getByRole('button', { name: 'screenshot.png' }), 'the pasted picture in bob\'s window');
      await gone(page.getByText('“huge.iso” is too large'), 'the refusal once the message went');
    });

    await step('a chat that does not exist says so, with nothing loading and nothing to write in', async () => {
      await alice.page.evaluate(() => {
        location.hash = '#/chat/1234567890';
      });
      await visible(alice.page.getByRole('heading', { name: 'Chat not found', level: 1 }), 'the not-found heading');
      await visible(alice.page.getByText('This chat does not exist, or you are not a member of it.'), 'the not-found explanation');
      for (const text of ['Loading messages…', 'You can no longer send messages']) {
        if (await alice.page.getByText(text).isVisible()) throw new Error(`"${text}" shows for a chat that does not exist`);
      }
      if (await composer(alice.page).isVisible()) throw new Error('a composer shows for a chat that does not exist');
      await openChat(alice.page, bobName);
    });

    const restartName = 'the gateway restarts mid-conversation: "Reconnecting…", messages written meanwhile wait queued and go out in order, nothing lost or doubled';
    if (!server) skip(restartName, 'set ASTRAL_BIN to let the story run (and restart) its own server');
    else {
      await step(restartName, async () => {
        const whileDown = 'written while the server was down';
        const second = 'and a second one, still offline';
        const afterRestart = 'posted before the clients reconnected';
        await server.stop();
        await visible(alice.page.getByRole('status').filter({ hasText: 'Reconnecting…' }), 'alice\'s "Reconnecting…" banner');
        await visible(bob.page.getByRole('status').filter({ hasText: 'Reconnecting…' }), 'bob\'s "Reconnecting…" banner');
        const box = composer(alice.page);
        for (const text of [whileDown, second]) {
          await box.fill(text);
          await box.press('Enter');
          await visible(messageItem(alice.page, text).filter({ hasText: 'it will send when you are back online' }), `"${text}" shown as queued while offline`);
        }
        if (await messageItem(alice.page, whileDown).getByRole('button', { name: 'Retry' }).isVisible()) throw new Error('a queued message offers Retry: it is not failed');
        if (await alice.page.getByText('Not sent').count()) throw new Error('a message is shown as not sent while it only waits for the connection');
        await shot(alice.page, '08-queued-offline');
        await server.start();
        // Straight away, before the sockets come back: bob's message must arrive by catch-up (after=).
        const { token, chatId } = await bob.page.evaluate(() => ({
          token: JSON.parse(localStorage.getItem('astral.session')).token,
          chatId: decodeURIComponent(location.hash.replace('#/chat/', '')),
        }));
        const res = await fetch(`${BASE}/api/chats/${encodeURIComponent(chatId)}/messages`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, Origin: BASE },
          body: JSON.stringify({ content: afterRestart, nonce: `restart-${Date.now()}` }),
        });
        if (!res.ok) throw new Error(`posting as bob after the restart: ${res.status} ${await res.text()}`);
        for (const p of [alice, bob]) {
          await gone(p.page.getByRole('status').filter({ hasText: 'Reconnecting…' }), `${p.who}'s "Reconnecting…" banner after the restart`);
          await visible(messageItem(p.page, whileDown).filter({ hasNotText: /Waiting|Sending…/ }), `the retried message in ${p.who}'s window`);
          await visible(messageItem(p.page, afterRestart), `the message posted after the restart in ${p.who}'s window`);
          await visible(messageItem(p.page, second).filter({ hasNotText: /Waiting|Sending…/ }), `the second queued message in ${p.who}'s window`);
          for (const text of [whileDown, second, afterRestart]) {
            const n = await messageItem(p.page, text).count();
            if (n !== 1) throw new Error(`${p.who} sees "${text}" ${n} times`);
          }
          const order = await p.page.locator('.msg-content').allTextContents();
          if (order.indexOf(whileDown) > order.indexOf(second)) throw new Error(`${p.who} sees the queued messages out of order`);
        }
        await say(bob.page, 'and live again');
        await visible(messageItem(alice.page, 'and live again'), 'a live message after the restart');
      });
    }

    const offlineName = 'a reload while the server is down opens the app from this device, marked as offline';
    if (!server) skip(offlineName, 'set ASTRAL_BIN to let the story run (and stop) its own server');
    else {
      await step(offlineName, async () => {
        const page = alice.page;
        if (!(await page.evaluate(async () => !!(await navigator.serviceWorker.ready).active))) throw new Error('no service worker is active');
        // The device's copy is written a moment after a change: wait until it holds the newest
        // message and nothing left to send.
        const saved = (text) =>
          page.evaluate(async (text) => {
            const db = await new Promise((resolve) => {
              const req = indexedDB.open('astral', 1);
              req.onsuccess = () => resolve(req.result);
              req.onerror = () => resolve(null);
            });
            if (!db) return false;
            const all = await new Promise((resolve) => {
              const req = db.transaction('snapshots').objectStore('snapshots').getAll();
              req.onsuccess = () => resolve(req.result);
              req.onerror = () => resolve([]);
            });
            db.close();
            return all.some((snap) => snap.pending.length === 0 && snap.timelines.some((t) => t.items.some((m) => m.content === text)));
          }, text);
        const deadline = Date.now() + TIMEOUT;
        while (!(await saved('and live again'))) {
          if (Date.now() > deadline) throw new Error('the device never saved the newest message');
          await page.waitForTimeout(200);
        }
        await server.stop();
        await page.reload();
        await visible(page.getByRole('status').filter({ hasText: 'Offline: showing what this device saved' }), 'the offline banner after a reload without a server');
        await visible(page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: new RegExp(`^${literal(bobName).source}`) }), 'the saved chat list');
        await visible(messageItem(page, 'and live again'), 'the saved messages of the open chat');
        await shot(page, '09-opened-offline');
        await server.start();
        await gone(page.getByRole('status').filter({ hasText: /Offline|Reconnecting/ }), 'the offline banner once the server is back');
        await gone(page.getByRole('alert').filter({ hasText: 'Cannot reach the server' }), 'the "cannot reach" notice once the server is back');
        await say(bob.page, 'back from offline');
        await visible(messageItem(page, 'back from offline'), 'a live message after opening offline');
      });
    }

    await step(`carol (${carolName}) registers and becomes alice's friend`, async () => {
      await register(carol, carolName);
      await visible(carol.page.getByRole('button', { name: 'Create group', disabled: true }), '"Create group" disabled for someone with no friends');
      // Carol starts typing a name; alice's request arrives meanwhile: carol's tab stays.
      const carolInput = carol.page.getByLabel('Add friend');
      await carolInput.pressSequentially('some');
      await alice.page.getByRole('link', { name: 'Friends' }).click();
      await alice.page.getByRole('tab', { name: 'Add friend' }).click();
      await alice.page.getByLabel('Add friend').fill(carolName);
      await alice.page.getByRole('button', { name: 'Send friend request' }).click();
      await visible(carol.page.getByRole('tab', { name: /Pending/ }).getByText('1'), 'the new request counted on carol\'s Pending tab');
      await carolInput.pressSequentially('one');
      if ((await carolInput.inputValue()) !== 'someone') throw new Error(`carol's typing was interrupted: ${JSON.stringify(await carolInput.inputValue())}`);
      if ((await carol.page.getByRole('tab', { name: 'Add friend' }).getAttribute('aria-selected')) !== 'true') throw new Error('carol\'s tab changed while she typed');
      await carolInput.fill('');
      await carol.page.getByRole('tab', { name: /Pending/ }).click();
      const accept = carol.page.getByRole('button', { name: `Accept friend request from ${aliceName}` });
      await visible(accept, 'the request in carol\'s Pending tab');
      await docShot(carol.page, 'friends-pending', ['desktop-light', 'phone-dark']);
      await accept.click();
      await alice.page.getByRole('tab', { name: 'All' }).click();
      await visible(alice.page.getByRole('button', { name: `Open chat with ${carolName}` }), 'carol among alice\'s friends');
      await visible(carol.page.getByRole('button', { name: 'Create group', disabled: false }), 'carol may create a group now that she has a friend');
    });

    await step('alice creates the group "Trio" with bob and carol; both see it live', async () => {
      await alice.page.getByRole('button', { name: 'Create group' }).click();
      const dialog = alice.page.getByRole('dialog', { name: 'Create a group' });
      await visible(dialog, 'the Create group dialog');
      await dialog.getByLabel('Group name').fill('Trio');
      await dialog.getByRole('checkbox', { name: bobName }).check();
      await dialog.getByRole('checkbox', { name: carolName }).check();
      await dialog.getByRole('button', { name: 'Create group' }).click();
      await gone(dialog, 'the dialog after creating');
      await visible(alice.page.getByRole('heading', { name: 'Trio', level: 1 }), 'the new group open for alice');
      await visible(alice.page.getByText('3 members'), 'the member count');
      await openChat(carol.page, 'Trio');
      await openChat(bob.page, 'Trio');
    });

    await step('carol writes in the group; alice and bob see it live', async () => {
      await say(carol.page, groupHello);
      await visible(messageItem(alice.page, groupHello), 'carol\'s message for alice');
      await visible(messageItem(bob.page, groupHello), 'carol\'s message for bob');
      await say(bob.page, 'hi carol, welcome 👋');
      await visible(messageItem(carol.page, 'welcome 👋'), 'bob\'s answer for carol');
    });

    await step('alice (the owner) renames the group; the others see the new name', async () => {
      await alice.page.getByRole('button', { name: 'Group settings' }).click();
      const dialog = alice.page.getByRole('dialog', { name: /settings/ });
      // First a long name with no space to break at: it must not push any screen wider.
      const long = 'Supercalifragilisticexpialidocious'.repeat(2);
      await dialog.getByLabel('Group name').fill(long);
      await dialog.getByRole('button', { name: 'Save name' }).click();
      await visible(bob.page.getByRole('heading', { name: long, level: 1 }), 'the long name in bob\'s window');
      for (const size of [DESKTOP, PHONE]) {
        await bob.page.setViewportSize(size);
        const overflow = await bob.page.evaluate(() => {
          const wide = [...document.querySelectorAll('h1, h2, .chat-name, .pane-header, .main-column')].filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1);
          return { page: document.documentElement.scrollWidth > window.innerWidth, wide: wide.map((el) => el.className || el.tagName) };
        });
        if (overflow.page || overflow.wide.length) throw new Error(`a long group name overflows at ${size.width} px: ${JSON.stringify(overflow)}`);
      }
      await bob.page.setViewportSize(DESKTOP);
      await dialog.getByLabel('Group name').fill('The Trio');
      await dialog.getByRole('button', { name: 'Save name' }).click();
      await visible(bob.page.getByRole('heading', { name: 'The Trio', level: 1 }), 'the new name in bob\'s window');
      await visible(carol.page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: 'The Trio' }), 'the new name in carol\'s chat list');
      await visible(messageItem(bob.page, `${aliceName} renamed the group to “The Trio”`), 'the rename in the history, live, for bob');
      await visible(messageItem(alice.page, 'You renamed the group to “The Trio”'), 'the rename in alice\'s own words');
      await docShot(alice.page, 'group-settings', ['desktop-light', 'desktop-dark', 'phone-dark']);
      await dialog.getByRole('button', { name: 'Close' }).click();
      await gone(dialog, 'the settings dialog after Close');
    });

    await step('carol leaves the group; alice adds her back', async () => {
      await carol.page.getByRole('button', { name: 'Group settings' }).click();
      await carol.page.getByRole('button', { name: 'Leave group' }).click();
      const confirm = carol.page.getByRole('dialog', { name: 'Leave group' });
      await confirm.getByRole('button', { name: 'Leave group' }).click();
      await gone(carol.page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: 'The Trio' }), 'the group in carol\'s chat list');
      await visible(alice.page.getByText('2 members'), 'the member count after carol left');
      await alice.page.getByRole('button', { name: 'Group settings' }).click();
      const dialog = alice.page.getByRole('dialog', { name: /settings/ });
      await dialog.getByRole('button', { name: `Add ${carolName} to the group` }).click();
      await visible(dialog.getByRole('button', { name: `Remove ${carolName} from the group` }), 'carol back among the members');
      await dialog.getByRole('button', { name: 'Close' }).click();
      await visible(alice.page.getByText('3 members'), 'the member count after adding carol');
      await openChat(carol.page, 'The Trio');
      await visible(messageItem(carol.page, groupHello), 'the group\'s history for carol again');
      await visible(messageItem(carol.page, `${aliceName} added you`), 'carol told who added her back');
      await visible(messageItem(bob.page, `${carolName} left the group`), 'carol\'s leaving in bob\'s history');
      await visible(messageItem(bob.page, `${aliceName} added ${carolName}`), 'carol\'s return in bob\'s history');
      await visible(messageItem(bob.page, `${aliceName} created the group “Trio”`), 'the group\'s creation at the top of its history');
    });

    await step('alice removes carol, who is told why the group left her screen; alice adds her back', async () => {
      await alice.page.getByRole('button', { name: 'Group settings' }).click();
      const dialog = alice.page.getByRole('dialog', { name: /settings/ });
      await dialog.getByRole('button', { name: `Remove ${carolName} from the group` }).click();
      const confirm = alice.page.getByRole('dialog', { name: /Remove/ });
      if (await confirm.count()) await confirm.getByRole('button', { name: /Remove/ }).click();
      await visible(carol.page.getByRole('alert').getByText('You are no longer a member of “The Trio”.'), 'the notice in carol\'s window');
      await visible(dialog.getByRole('button', { name: `Add ${carolName} to the group` }), 'carol among the friends to add');
      await dialog.getByRole('button', { name: `Add ${carolName} to the group` }).click();
      await dialog.getByRole('button', { name: 'Close' }).click();
      await visible(carol.page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: 'The Trio' }), 'the group back in carol\'s list');
    });

    await step('on a phone carol\'s app opens on the chat list, and unread messages elsewhere are counted on "Show chats"', async () => {
      await carol.page.setViewportSize(PHONE);
      await carol.page.goto(new URL('/', carol.page.url()).href);
      await visible(carol.page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: 'The Trio' }), 'the chat list first, on a phone');
      await openChat(carol.page, 'The Trio');
      await alice.page.getByRole('link', { name: 'Friends' }).click();
      await alice.page.getByRole('button', { name: `Open chat with ${carolName}` }).click();
      await say(alice.page, 'psst, carol');
      await visible(carol.page.getByRole('button', { name: 'Show chats (1 unread)' }), 'the unread count on carol\'s "Show chats"');
      await carol.page.setViewportSize(DESKTOP);
    });

    await step('a long history pages back on scroll, each message once', async () => {
      await alice.page.getByRole('link', { name: 'Friends' }).click();
      await alice.page.getByRole('button', { name: `Open chat with ${carolName}` }).click();
      await visible(alice.page.getByRole('heading', { name: carolName, level: 1 }), 'alice\'s chat with carol');
      const chatId = decodeURIComponent(new URL(alice.page.url()).hash.replace('#/chat/', ''));
      await alice.page.evaluate(
        async ({ chatId, n }) => {
          const { token } = JSON.parse(localStorage.getItem('astral.session'));
          for (let i = 1; i <= n; i++) {
            const res = await fetch(`/api/chats/${encodeURIComponent(chatId)}/messages`, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
              body: JSON.stringify({ content: `history ${i}`, nonce: `history-${i}` }),
            });
            if (!res.ok) throw new Error(`posting history ${i}: ${res.status}`);
          }
        },
        { chatId, n: HISTORY },
      );
      await openChat(carol.page, aliceName);
      await visible(messageItem(carol.page, `history ${HISTORY}`), 'the newest message for carol');
      await visible(carol.page.getByText('New messages'), 'the "New messages" line at carol\'s read position');
      await carol.page.waitForFunction(
        () => {
          const scroller = document.querySelector('.scroller');
          if (scroller) scroller.scrollTop = 0;
          return [...document.querySelectorAll('.msg-content')].some((e) => e.textContent === 'history 1');
        },
        null,
        { polling: 100, timeout: TIMEOUT },
      );
      const texts = await carol.page.locator('.msg-content').allTextContents();
      const history = texts.filter((t) => /^history \d+$/.test(t));
      if (history.length !== HISTORY || new Set(history).size !== HISTORY) {
        throw new Error(`expected ${HISTORY} history messages once each, found ${history.length} (${new Set(history).size} different)`);
      }
      await say(carol.page, 'read them all');
      await gone(carol.page.getByText('New messages'), 'the "New messages" line once carol answered');
    });

    await step('alice searches her messages; a result opens the chat at that message, its older history loaded', async () => {
      // A fresh page holds only the newest page of each chat: "history 1" is 60 messages back.
      await alice.page.reload();
      await alice.page.getByRole('link', { name: 'Search' }).click();
      const box = alice.page.getByRole('searchbox', { name: 'Search your messages' });
      await box.fill('HISTORY 1');
      const hit = alice.page.locator('.search-hit').filter({ has: alice.page.locator('.search-snippet', { hasText: /^history 1$/ }) });
      await visible(hit, 'the result "history 1"');
      const marks = await hit.locator('mark').allTextContents();
      if (marks.join('|') !== 'history|1') throw new Error(`the marked words were ${JSON.stringify(marks)}`);
      await visible(alice.page.locator('.search-hit', { hasText: 'history 10' }), 'the last word found as a prefix ("history 10")');
      await visible(alice.page.getByRole('heading', { name: carolName, level: 2 }), 'the results grouped under the chat with carol');
      await docShot(alice.page, 'search', ['desktop-light', 'phone-dark']);
      await alice.page.setViewportSize(DESKTOP);
      await hit.click();
      await visible(alice.page.getByRole('heading', { name: carolName, level: 1 }), 'the chat with carol');
      await alice.page.waitForFunction(
        () => {
          const target = [...document.querySelectorAll('.msg-content')].find((e) => e.textContent === 'history 1');
          const scroller = document.querySelector('.scroller');
          if (!target || !scroller) return false;
          const t = target.getBoundingClientRect();
          const s = scroller.getBoundingClientRect();
          return t.top >= s.top && t.bottom <= s.bottom;
        },
        null,
        { polling: 100, timeout: TIMEOUT },
      );
      await shot(alice.page, 'search-jump');
    });

    await step('screenshots of the main screens', async () => {
      // bob: his chat with alice (reactions, reply, edit, mention, deletion), alice typing.
      await openChat(bob.page, aliceName);
      await composer(alice.page).fill('');
      await openChat(alice.page, bobName);
      await composer(alice.page).pressSequentially('on my way');
      await visible(bob.page.getByText(`${aliceName} is typing…`), 'alice typing, for the screenshot');
      await docShot(bob.page, 'chat');
      await docShot(bob.page, 'chats', ['phone-light', 'phone-dark'], async () => {
        if (!(await bob.page.getByRole('navigation', { name: 'Chats' }).isVisible())) await bob.page.getByRole('button', { name: 'Show chats' }).click();
      });
      await bob.page.getByRole('link', { name: 'Friends' }).click();
      await docShot(bob.page, 'friends', ['desktop-light', 'desktop-dark', 'phone-light']);
      await openChat(alice.page, 'The Trio');
      await docShot(alice.page, 'group', ['desktop-light', 'desktop-dark']);
      await alice.page.getByRole('button', { name: 'Create group' }).click();
      await docShot(alice.page, 'create-group', ['desktop-light', 'phone-dark']);
      await alice.page.getByRole('dialog', { name: 'Create a group' }).getByRole('button', { name: 'Cancel' }).click();
      await alice.page.getByRole('button', { name: 'Settings', exact: true }).click();
      await visible(alice.page.getByRole('dialog', { name: 'Settings' }).getByText('This device'), 'the sessions list');
      await docShot(alice.page, 'settings', ['desktop-dark']);
      await alice.page.getByRole('dialog', { name: 'Settings' }).getByRole('button', { name: 'Close' }).click();
      const fresh = await person(browser, 'visitor');
      await fresh.page.goto(BASE + '/');
      await visible(fresh.page.getByRole('button', { name: 'Log in' }), 'the login screen');
      await docShot(fresh.page, 'login', ['desktop-light', 'desktop-dark', 'phone-light', 'phone-dark']);
      await fresh.context.close();
    });

    await step('alice blocks carol (their chat turns read only) and unblocks her', async () => {
      await alice.page.getByRole('link', { name: 'Friends' }).click();
      await alice.page.getByRole('tab', { name: 'All' }).click();
      await alice.page.getByRole('button', { name: `Block ${carolName}` }).click();
      await alice.page.getByRole('dialog', { name: `Block ${carolName}` }).getByRole('button', { name: 'Block' }).click();
      await gone(alice.page.getByRole('button', { name: `Open chat with ${carolName}` }), 'carol among alice\'s friends');
      await visible(carol.page.getByText(`You can no longer send messages to ${aliceName}: you are not friends any more.`), 'the read-only chat for carol, saying why');
      await alice.page.getByRole('tab', { name: 'Blocked' }).click();
      await alice.page.getByRole('button', { name: `Unblock ${carolName}` }).click();
      await visible(alice.page.getByText('You have not blocked anyone.'), 'the empty Blocked tab after unblocking');
    });

    await step('bob\'s Log out asks first; Cancel keeps him signed in', async () => {
      await bob.page.getByRole('button', { name: 'Log out' }).click();
      const confirm = bob.page.getByRole('dialog', { name: 'Log out' });
      await visible(confirm.getByText('Your other devices stay signed in'), 'the log-out confirmation');
      await confirm.getByRole('button', { name: 'Cancel' }).click();
      await gone(confirm, 'the confirmation after Cancel');
      await visible(bob.page.getByRole('navigation', { name: 'Chats' }), 'bob still signed in');
    });

    await step('settings: the current password is refused as the new one, errors go once the typing changes, sessions tell themselves apart', async () => {
      await alice.page.getByRole('button', { name: 'Settings', exact: true }).click();
      const dialog = alice.page.getByRole('dialog', { name: 'Settings' });
      await dialog.getByLabel('Current password').fill(PASSWORD);
      await dialog.getByLabel('New password').fill(PASSWORD);
      await dialog.getByRole('button', { name: 'Change password' }).click();
      const error = dialog.getByText('The new password must differ from the current one.');
      await visible(error, 'the refusal of the same password');
      await dialog.getByLabel('New password').pressSequentially('!');
      await gone(error, 'the stale error once the new password changes');
      await visible(dialog.getByText(/^This device · signed in /), 'the session row saying when it signed in');
      await dialog.getByLabel('New password').fill('');
      await dialog.getByRole('button', { name: 'Close' }).click();
    });

    await step('alice logs out on her phone; her desktop stays signed in', async () => {
      const phone = await person(browser, 'alice-phone');
      await phone.page.goto(BASE + '/');
      await phone.page.getByLabel('Username').fill(aliceName);
      await phone.page.getByLabel('Password').fill(PASSWORD);
      await phone.page.getByRole('button', { name: 'Log in' }).click();
      await visible(phone.page.getByRole('navigation', { name: 'Chats' }), 'alice signed in on her phone');
      await phone.page.getByRole('button', { name: 'Log out' }).click();
      await phone.page.getByRole('dialog', { name: 'Log out' }).getByRole('button', { name: 'Log out' }).click();
      await visible(phone.page.getByRole('button', { name: 'Log in' }), 'the login screen on the phone');
      await phone.context.close();
      // By the time the desktop's settings list one session, the phone's end was announced.
      await alice.page.getByRole('button', { name: 'Settings', exact: true }).click();
      const dialog = alice.page.getByRole('dialog', { name: 'Settings' });
      await visible(dialog.getByText('Only this device is logged in.'), 'one session left, on the desktop');
      await dialog.getByRole('button', { name: 'Close' }).click();
      await openChat(alice.page, bobName);
      await openChat(bob.page, aliceName);
      await say(alice.page, 'still here');
      await visible(messageItem(bob.page, 'still here'), 'the desktop\'s message, sent after the phone logged out');
      await visible(alice.page.getByRole('navigation', { name: 'Chats' }), 'alice still signed in on the desktop');
    });

    await step('carol logs out everywhere and is back at the login screen', async () => {
      await carol.page.getByRole('button', { name: 'Settings', exact: true }).click();
      const dialog = carol.page.getByRole('dialog', { name: 'Settings' });
      await dialog.getByRole('button', { name: 'Log out everywhere' }).click();
      await carol.page.getByRole('dialog', { name: 'Log out everywhere' }).getByRole('button', { name: 'Log out everywhere' }).click();
      await visible(carol.page.getByRole('button', { name: 'Log in' }), 'the login screen for carol');
      await visible(carol.page.getByText('You were logged out on every device.'), 'the notice on carol\'s login screen');
    });

    const presenceName = 'presence, read receipts, privacy settings and muting';
    if (!withSettings) skip(presenceName, 'the server has no /api/users/me/settings (it answered other than 200)');
    else {
      await storyPresence({
        step, visible, hidden, gone, until, say, messageItem, openChat, composer, docShot, shot, reopen, literal,
        alice, bob, aliceName, bobName, TIMEOUT,
      });
    }

    await step('axe-core finds no accessibility violation on any screen shot, in either theme', async () => {
      const found = accessibility.map((v) => `${v.screen}: ${v.id} (${v.impact}) ${v.help}\n      ${v.nodes.join('\n      ')}`);
      if (found.length > 0) throw new Error(`${found.length} violations:\n  ${found.join('\n  ')}`);
    });

    await step('no message text was ever inserted as HTML', async () => {
      for (const p of [alice, bob, carol]) await noInjectedHtml(p);
    });

    await step('nothing went wrong in either page', async () => {
      if (problems.length) throw new Error(problems.join('\n'));
    });

    console.log(`${passed} passed, 0 failed${skipped ? `, ${skipped} skipped` : ''}`);
    console.log(`screenshots: ${SHOTS}${DOC ? ` and ${DOC_SHOTS}` : ''}`);
  } catch (e) {
    console.error(`not ok - ${current}`);
    console.error(`FAILED: ${current}: ${e instanceof Error ? e.message : e}`);
    for (const p of problems) console.error(`  also: ${p}`);
    for (const p of [alice, bob, carol]) await shot(p.page, `failure-${p.who}`).catch(() => {});
    console.error(`screenshots of the failure: ${SHOTS}/failure-*.png`);
    console.log(`${passed} passed, 1 failed`);
    process.exitCode = 1;
  } finally {
    await browser.close().catch(() => {});
    if (server) await server.stop().catch(() => {});
    if (dataDir) await rm(dataDir, { recursive: true, force: true }).catch(() => {});
    await rm(files.dir, { recursive: true, force: true }).catch(() => {});
  }
}

main().catch((e) => {
  console.error(`FAILED: could not run the story: ${e instanceof Error ? e.message : e}`);
  process.exitCode = 1;
});
