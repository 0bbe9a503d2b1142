// presence.mjs — the browser story's steps for presence, read receipts, the privacy settings and
// muting: alice's dot on bob's screens (online while her page is open, offline once it
// closes), "Seen" under alice's message once bob read it (and not once bob stopped sharing read
// receipts), and a muted chat's bell. story.mjs runs them only against a server that has these
// (`GET /api/users/me/settings` answers 200), with alice and bob friends, each in their direct
// chat, and the story's helpers passed in.

import { randomBytes } from 'node:crypto';

/** How long a closed page may still count as online: the server's grace period, and some. */
const OFFLINE_WITHIN_MS = 70_000;

/** What a page told the server, as the server took it: the read markers it sent, and the seq of each message it sent, by content. */
function track(page, who) {
  const seen = { who, reads: [], sent: new Map() };
  page.on('response', (r) => {
    if (r.request().method() !== 'POST' || !r.ok()) return;
    const path = new URL(r.url()).pathname;
    if (/^\/api\/chats\/[^/]+\/read$/.test(path)) seen.reads.push(Number(JSON.parse(r.request().postData() ?? '{}').seq));
    else if (/^\/api\/chats\/[^/]+\/messages$/.test(path)) {
      r.json()
        .then((m) => seen.sent.set(m.content, Number(m.seq)))
        .catch(() => {});
    }
  });
  return seen;
}

/**
 * @param {{
 *   step: (name: string, fn: () => Promise<void>) => Promise<void>,
 *   visible: Function, hidden: Function, gone: Function, until: Function,
 *   say: Function, messageItem: Function, openChat: Function, composer: Function,
 *   docShot: Function, shot: Function, reopen: Function, literal: (s: string) => RegExp,
 *   alice: { who: string, page: any, context: any }, bob: { who: string, page: any, context: any },
 *   aliceName: string, bobName: string, TIMEOUT: number,
 * }} t
 */
export async function storyPresence(t) {
  const { step, visible, hidden, gone, until, say, messageItem, openChat, docShot, literal, alice, bob, aliceName, bobName, TIMEOUT } = t;
  const tag = randomBytes(3).toString('hex');
  const line = (what) => `${what} (${tag})`;

  /** A person's link to a chat in their sidebar, by the chat's name (the start of the link's text). */
  const chatLink = (page, name) => page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: new RegExp(`^${literal(name).source}`) });
  /** The header of the open conversation. */
  const header = (page) => page.locator('.conversation .pane-header');
  /** Every "Seen" line shown on a page. */
  const seenLines = (page) => page.locator('.msg-seen:visible');
  const aliceSaw = track(alice.page, 'alice');
  const bobSaw = track(bob.page, 'bob');

  /**
   * Waits until `reader` has told the server it read `text`, which `writer` sent: after that,
   * any receipt of it was sent before whatever the chat says next.
   */
  async function readPast(reader, text, writer) {
    await until(() => writer.sent.has(text), `the seq of "${text}"`);
    const seq = writer.sent.get(text);
    await until(() => reader.reads.some((r) => r >= seq), `${reader.who}'s read marker past "${text}"`);
  }

  /** Opens the settings dialog and sets the "Read receipts" switch, waiting for the server's answer. */
  async function setReadReceipts(page, on) {
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Settings' });
    const receipts = dialog.getByRole('switch', { name: 'Read receipts' });
    await visible(receipts, 'the "Read receipts" switch in the Privacy section');
    if (on) await receipts.check();
    else await receipts.uncheck();
    await until(async () => (await receipts.isEnabled()) && (await receipts.isChecked()) === on, `the "Read receipts" switch saved ${on ? 'on' : 'off'}`);
    const errors = (await dialog.getByRole('alert').allInnerTexts()).filter((text) => text.trim());
    if (errors.length) throw new Error(`saving the switch failed: ${errors.join(' ')}`);
    return dialog;
  }

  await step('bob sees alice online: a green dot on her avatar, and "Online" in words', async () => {
    // Input: alice is at her device, not idle.
    await alice.page.mouse.move(40, 40);
    await alice.page.mouse.move(60, 50);
    await bob.page.getByRole('link', { name: 'Friends' }).click();
    await bob.page.getByRole('tab', { name: 'All' }).click();
    const row = bob.page.locator('.person').filter({ hasText: aliceName });
    await visible(row.locator('.presence-dot[data-status="online"]'), 'the online dot on alice\'s avatar in bob\'s friends list');
    await visible(row.getByText('Online', { exact: true }), '"Online" under alice\'s name');
    await visible(chatLink(bob.page, aliceName).locator('.presence-dot[data-status="online"]'), 'the online dot on bob\'s chat with alice');
    await until(async () => (await chatLink(bob.page, aliceName).locator('.chat-presence').textContent()) === ', online', 'the chat link saying "online" to screen readers');
    await docShot(bob.page, 'presence', ['desktop-light', 'desktop-dark', 'phone-light']);
    await openChat(bob.page, aliceName);
    await visible(header(bob.page).locator('.presence-dot[data-status="online"]'), 'the online dot in the conversation\'s header');
    await visible(header(bob.page).getByText('Online', { exact: true }), '"Online" under alice\'s name in the header');
    await docShot(bob.page, 'presence-chat', ['desktop-light', 'phone-dark']);
  });

  const first = line('did you get the tickets?');
  await step('alice\'s message shows "Seen" under it once bob has read it', async () => {
    await bob.page.getByRole('link', { name: 'Friends' }).click(); // away from the chat: not reading
    await openChat(alice.page, bobName);
    await say(alice.page, first);
    if (await seenLines(alice.page).count()) throw new Error('"Seen" shows before bob opened the chat');
    await openChat(bob.page, aliceName);
    await visible(messageItem(bob.page, first), 'alice\'s message in bob\'s window');
    await visible(messageItem(alice.page, first).getByText('Seen', { exact: true }), '"Seen" under alice\'s message once bob read it');
    if ((await seenLines(alice.page).count()) !== 1) throw new Error('"Seen" shows under more than alice\'s last message');
    await docShot(alice.page, 'seen', ['desktop-light', 'desktop-dark', 'phone-dark']);
  });

  const unseen = line('are you there?');
  const answer = line('here, reading without telling');
  const next = line('ok, noted');
  const last = line('bye for now');
  await step('bob turns read receipts off: alice\'s next message gets no "Seen", and bob sees none either', async () => {
    const dialog = await setReadReceipts(bob.page, false);
    await docShot(bob.page, 'settings-privacy', ['desktop-light', 'desktop-dark', 'phone-dark'], async () => {
      await dialog.getByRole('heading', { name: 'Privacy' }).scrollIntoViewIfNeeded();
    });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await gone(dialog, 'the settings dialog after Close');
    await bob.page.getByRole('link', { name: 'Friends' }).click();
    await say(alice.page, unseen);
    // Bob reads it and answers; alice reads the answer (her receipts are on; bob's are off).
    // Each next message comes on the chat after any receipt of the one before would have.
    await openChat(bob.page, aliceName);
    await visible(messageItem(bob.page, unseen), 'alice\'s message in bob\'s window');
    await readPast(bobSaw, unseen, aliceSaw);
    await say(bob.page, answer);
    await visible(messageItem(alice.page, answer), 'bob\'s answer in alice\'s window');
    await readPast(aliceSaw, answer, bobSaw);
    await say(alice.page, next);
    await visible(messageItem(bob.page, next), 'alice\'s next message in bob\'s window');
    if (await seenLines(bob.page).count()) throw new Error('bob, not sharing read receipts, sees alice\'s');
    await readPast(bobSaw, next, aliceSaw);
    await say(bob.page, last);
    await visible(messageItem(alice.page, last), 'bob\'s last message in alice\'s window');
    if (await seenLines(alice.page).count()) throw new Error('alice sees "Seen" from bob, who stopped sharing read receipts');
    // Nor from the server's chat list: a reload reads the markers again.
    await alice.page.reload();
    await visible(messageItem(alice.page, last), 'the chat after alice\'s reload');
    if (await seenLines(alice.page).count()) throw new Error('after a reload alice sees "Seen" from bob, who does not share read receipts');
    const again = await setReadReceipts(bob.page, true);
    await again.getByRole('button', { name: 'Close' }).click();
    await gone(again, 'the settings dialog after turning read receipts back on');
  });

  await step('alice mutes her chat with bob: a struck bell in her chat list, his messages still counted', async () => {
    const head = header(alice.page);
    await head.getByRole('button', { name: 'Mute chat' }).click();
    await visible(head.getByRole('button', { name: 'Unmute chat' }), 'the header\'s button, now to unmute');
    await visible(chatLink(alice.page, bobName).locator('.chat-muted'), 'the muted icon on the chat in alice\'s list');
    await alice.page.getByRole('link', { name: 'Friends' }).click();
    // Counted on from what it shows now (earlier steps may have left bob's messages unread).
    const badge = chatLink(alice.page, bobName).locator('.badge');
    const before = (await badge.count()) ? Number(await badge.first().textContent()) : 0;
    await say(bob.page, line('muted, but counted'));
    await visible(badge.getByText(String(before + 1), { exact: true }), 'the unread count of the muted chat, one more');
    await docShot(alice.page, 'muted-chat', ['desktop-light', 'desktop-dark', 'phone-dark'], async (size) => {
      if (size === 'phone' && !(await alice.page.getByRole('navigation', { name: 'Chats' }).isVisible())) await alice.page.getByRole('button', { name: /^Show chats/ }).click();
    });
    // The server keeps it: still muted after a reload.
    await alice.page.reload();
    await visible(chatLink(alice.page, bobName).locator('.chat-muted'), 'the muted icon after a reload');
    await openChat(alice.page, bobName);
    await head.getByRole('button', { name: 'Unmute chat' }).click();
    await visible(head.getByRole('button', { name: 'Mute chat' }), 'the header\'s button, to mute again');
    await hidden(chatLink(alice.page, bobName).locator('.chat-muted'), 'the muted icon once unmuted');
  });

  await step('alice\'s page closes: bob sees her offline, "Last seen" when; she comes back online', async () => {
    await visible(header(bob.page).locator('.presence-dot[data-status="online"]'), 'alice online in bob\'s header first');
    await alice.page.close();
    const soon = async (locator, what) => {
      try {
        await locator.first().waitFor({ state: 'visible', timeout: OFFLINE_WITHIN_MS });
      } catch {
        throw new Error(`${what}: not so within ${OFFLINE_WITHIN_MS} ms of alice's page closing`);
      }
    };
    await soon(header(bob.page).getByText(/^Last seen /), '"Last seen …" under alice\'s name in bob\'s header');
    await hidden(header(bob.page).locator('.presence-dot'), 'the dot in bob\'s header once alice is offline');
    await hidden(chatLink(bob.page, aliceName).locator('.presence-dot'), 'the dot on bob\'s chat with alice once she is offline');
    await docShot(bob.page, 'presence-offline', ['desktop-light', 'phone-dark']);
    await t.reopen(alice);
    await soon(header(bob.page).locator('.presence-dot[data-status="online"]'), 'alice online again in bob\'s header once her page is back');
  });
}
