// The built ESM bundle in headless Chromium, from another origin (CORS and the SDK token for real):
// it evaluates a flag, then sees a change pushed over the stream.
import { existsSync } from 'node:fs';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '@rampart/sdk';
import { startLiveApp, startRawServer } from '../support/sdk-server.js';
import type { LiveApp, RawServer } from '../support/sdk-server.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser: Browser;
let pages: RawServer;
let live: LiveApp;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); CI installs it. This test does not skip.`);
  }
  const bundle = await build({ entryPoints: [new URL('../../sdk/src/index.ts', import.meta.url).pathname], bundle: true, format: 'esm', write: false, platform: 'browser' });
  const sdk = bundle.outputFiles[0]!.text;
  pages = await startRawServer((req, res) => {
    if (req.url === '/sdk.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
    // The page loads the bundle as a module, as an app would; tests reach it through globalThis.
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>rampart</title><script type="module">import * as sdk from '/sdk.js'; globalThis.sdk = sdk;</script>`);
  });
  live = await startLiveApp({ corsOrigins: [pages.url] });
  await live.put('new-checkout', { enabled: true, percentage: 30 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 60_000);

afterAll(async () => {
  // beforeAll may have failed before these were made.
  await (browser as Browser | undefined)?.close();
  await (live as LiveApp | undefined)?.close();
  await (pages as RawServer | undefined)?.close();
});

describe('@rampart/sdk in Chromium', () => {
  it('evaluates like the server, then applies a change pushed over the stream', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pages.url);
    await page.waitForFunction(() => 'sdk' in globalThis);
    const users = ['user-1', 'user-2', 'user-3', 'user-4', 'user-42'];
    const first = await page.evaluate(
      async ({ url, users }) => {
        const { createClient } = (globalThis as unknown as { sdk: typeof import('@rampart/sdk') }).sdk;
        const client = createClient({ url, token: 'sdk-secret' });
        (globalThis as unknown as { rampart: unknown }).rampart = client;
        await client.ready({ timeoutMs: 5000 });
        return { status: client.status, answers: users.map((u) => client.isEnabled('new-checkout', u)) };
      },
      { url: live.url, users },
    );
    expect(first.status).toBe('ready');
    expect(first.answers).toEqual(users.map((u) => evaluate(live.cache.snapshot, 'new-checkout', u).value));

    await live.patch('new-checkout', { percentage: 100 });
    await page.waitForFunction(
      (revision) => {
        const client = (globalThis as unknown as { rampart: { revision: number } }).rampart;
        return client.revision >= revision;
      },
      live.cache.revision,
      { timeout: 5000 },
    );
    const after = await page.evaluate((users) => {
      const client = (globalThis as unknown as { rampart: { isEnabled(k: string, u: string): boolean; close(): Promise<void> } }).rampart;
      const answers = users.map((u) => client.isEnabled('new-checkout', u));
      void client.close();
      return answers;
    }, users);
    expect(after).toEqual(users.map(() => true));
    expect(errors).toEqual([]);
    await page.close();
  });
});
