// story.mjs — Astral's web client end to end in real headless Chromium: two people register,
// become friends and chat live both ways; HTML in a message shows as text.
//
//   ASTRAL_URL=http://127.0.0.1:8000 ASTRAL_SCREENSHOTS=/tmp/astral-shots node story.mjs
//
// Needs Debian's chromium (/usr/bin/chromium, or CHROMIUM_PATH) and `npm ci` here for playwright-core.
// Exits 0 when the story passes, 1 with the failed step's name and reason otherwise.

import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const BASE = (process.env.ASTRAL_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const SHOTS = process.env.ASTRAL_SCREENSHOTS || '/tmp/astral-shots';
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

/** lowercase a-z0-9_, 3–32 characters */
const uniqueName = (prefix) => `${prefix}_${randomBytes(5).toString('hex')}`;
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

const problems = [];
let current = 'starting';
let passed = 0;

/** Runs one named step of the story, so a failure says where it happened. */
async function step(name, fn) {
  current = name;
  const started = Date.now();
  await fn();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
}

/** Waits until the locator is visible; fails with `what` in the message. */
async function visible(locator, what) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: TIMEOUT });
  } catch {
    throw new Error(`${what}: not visible within ${TIMEOUT} ms`);
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
  return { who, context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
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

async function main() {
  await mkdir(SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const alice = await person(browser, 'alice');
  const bob = await person(browser, 'bob');
  const aliceName = uniqueName('alice');
  const bobName = uniqueName('bob');
  const first = '<b>hi</b> bob, this is <img src=x onerror=alert(1)> plain text';
  const reply = `hello ${aliceName}!\nsecond line from bob`;

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
    });

    await step(`alice (${aliceName}) and bob (${bobName}) register`, async () => {
      await register(alice, aliceName);
      await register(bob, bobName);
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

    await step('nothing went wrong in either page', async () => {
      if (problems.length) throw new Error(problems.join('\n'));
    });

    console.log(`${passed} passed, 0 failed`);
    console.log(`screenshots: ${SHOTS}`);
  } catch (e) {
    console.error(`not ok - ${current}`);
    console.error(`FAILED: ${current}: ${e instanceof Error ? e.message : e}`);
    for (const p of problems) console.error(`  also: ${p}`);
    for (const p of [alice, bob]) await shot(p.page, `failure-${p.who}`).catch(() => {});
    console.error(`screenshots of the failure: ${SHOTS}/failure-*.png`);
    console.log(`${passed} passed, 1 failed`);
    process.exitCode = 1;
  } finally {
    await browser.close().catch(() => {});
  }
}

main().catch((e) => {
  console.error(`FAILED: could not run the story: ${e instanceof Error ? e.message : e}`);
  process.exitCode = 1;
});
