// How long the web client takes to open, first visit and warm reload, at a given network round
// trip (Chromium's network emulation: each request waits that long before its answer). Starts
// the all-in-one server itself (ASTRAL_BIN, serving ASTRAL_WEB_DIR or web/) on a free port with
// a fresh data directory, and stops it at the end. Prints one line per round trip.
//
//   ASTRAL_BIN=target/release/astral node tests/browser/load-times.mjs [round trips in ms…]
//
// "Ready" is the moment the login form is on screen: the app's code has loaded and run.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.ASTRAL_BIN;
if (!BIN) throw new Error('set ASTRAL_BIN to the all-in-one binary');
const RTTS = process.argv.slice(2).map(Number).filter((n) => n >= 0);
const ROUND_TRIPS = RTTS.length ? RTTS : [50, 500];
/** The link's speed both ways: 10 Mbit/s down, 2 Mbit/s up. */
const DOWN = 10_000_000 / 8;
const UP = 2_000_000 / 8;
const RUNS = 3;

const port = await new Promise((resolve, reject) => {
  const srv = net.createServer();
  srv.on('error', reject);
  srv.listen(0, '127.0.0.1', () => {
    const { port } = /** @type {net.AddressInfo} */ (srv.address());
    srv.close(() => resolve(port));
  });
});
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'astral-load-'));
const server = spawn(BIN, [], {
  env: { ...process.env, ASTRAL_LISTEN: `127.0.0.1:${port}`, ASTRAL_DATA_DIR: dataDir, ASTRAL_WEB_DIR: process.env.ASTRAL_WEB_DIR || path.join(REPO, 'web') },
  stdio: 'ignore',
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the server was not ready within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The server compresses each file once, in the background after it starts: let the first
  // visit of the measurement not pay for that.
  await fetch(`${base}/`, { headers: { 'accept-encoding': 'br' } });

  console.log('round trip | first visit: ready, requests, bytes | warm reload: ready, requests, bytes (median of 3)');
  for (const rtt of ROUND_TRIPS) {
    const first = [];
    const warm = [];
    for (let run = 0; run < RUNS; run++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: rtt, downloadThroughput: DOWN, uploadThroughput: UP });
      let requests = 0;
      let bytes = 0;
      cdp.on('Network.requestWillBeSent', () => (requests += 1));
      cdp.on('Network.loadingFinished', (e) => (bytes += e.encodedDataLength));
      const open = async () => {
        requests = 0;
        bytes = 0;
        const started = Date.now();
        await page.getByRole('button', { name: 'Log in' }).first().waitFor({ state: 'visible', timeout: 60_000 });
        return { ms: Date.now() - started, requests, bytes };
      };
      const started = Date.now();
      const waiting = open();
      await page.goto(base);
      const f = await waiting;
      f.ms = Date.now() - started;
      first.push(f);
      // The service worker, if any, has taken the page over by now; reload as a returning visitor.
      await page.evaluate(async () => {
        if ('serviceWorker' in navigator && navigator.serviceWorker.getRegistrations) {
          const regs = await navigator.serviceWorker.getRegistrations();
          if (regs.length) await navigator.serviceWorker.ready;
        }
      });
      const again = Date.now();
      const waitingAgain = open();
      await page.reload();
      const w = await waitingAgain;
      w.ms = Date.now() - again;
      warm.push(w);
      await context.close();
    }
    const median = (xs) => [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(xs.length / 2)];
    const m1 = median(first);
    const m2 = median(warm);
    const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
    console.log(`${rtt} ms | ${m1.ms} ms, ${m1.requests}, ${kb(m1.bytes)} | ${m2.ms} ms, ${m2.requests}, ${kb(m2.bytes)}`);
  }
} finally {
  await browser.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
