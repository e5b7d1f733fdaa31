// The ops page in headless Chromium against a real server and a real guard worker: sign in once,
// see a flag created through the API, watch the guard advance a stage without a reload, see an
// API refusal, use the kill switch, and take a screenshot.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outcomeRoutes } from '../../src/api/routes/outcomes.js';
import { rolloutRoutes } from '../../src/api/routes/rollouts.js';
import { createInProcessLease } from '../../src/guard/lease.js';
import type { Lease } from '../../src/guard/lease.js';
import { createWebhookNotifier } from '../../src/guard/notifier.js';
import { GuardWorker } from '../../src/guard/worker.js';
import { createMetricSources } from '../../src/metrics/sources.js';
import type { MetricSource } from '../../src/metrics/metric-source.js';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import type { OutcomeStore } from '../../src/store/outcome-store.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import type { RolloutStore } from '../../src/store/rollout-store.js';
import { createLogger } from '../../src/telemetry.js';
import { uiRoutes } from '../../src/ui/routes.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'ui-admin-secret';
const ADMIN = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
/** Where the screenshot goes; kept after the run so a person can look at it. */
const SCREENSHOT = process.env.RAMPART_UI_SCREENSHOT ?? join(tmpdir(), 'rampart-ui-test', 'ops-page.png');

let dir: string;
let rollouts: RolloutStore;
let outcomes: OutcomeStore;
let t: TestApp;
let base: string;
let browser: Browser;
let guard: { worker: GuardWorker; sources: MetricSource; lease: Lease } | undefined;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { method, headers: ADMIN, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); CI installs it. This test does not skip.`);
  }
  dir = mkdtempSync(join(tmpdir(), 'rampart-ui-'));
  rollouts = await createEmbeddedRolloutStore({ dir });
  outcomes = await createEmbeddedOutcomeStore({ dir });
  // The production plugin set, as main.ts registers it.
  t = await buildTestApp({
    adminTokens: [{ name: 'ops', secret: TOKEN }],
    sdkTokens: [{ name: 'web', secret: 'sdk-secret' }],
    pluginsFor: ({ store, cache, registry }) => [rolloutRoutes({ flags: store, rollouts, storeRedis: false }), outcomeRoutes({ outcomes, cache, registry }), uiRoutes()],
  });
  base = await t.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 60_000);

afterAll(async () => {
  // beforeAll may have failed before these were made.
  await (browser as Browser | undefined)?.close();
  if (guard !== undefined) {
    await guard.worker.stop();
    await guard.sources.close();
    await guard.lease.close();
  }
  await (t as TestApp | undefined)?.close();
  await (rollouts as RolloutStore | undefined)?.close();
  await (outcomes as OutcomeStore | undefined)?.close();
  if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** The guard as `startGuard` in src/main.ts builds it, ticking every 200 ms. */
function startGuardWorker(): void {
  const logger = createLogger('silent');
  const lease = createInProcessLease();
  const sources = createMetricSources({ outcomes, timeoutMs: 1000 });
  const notifier = createWebhookNotifier({ timeoutMs: 1000, logger });
  const worker = new GuardWorker({ flags: t.store, rollouts, sources, lease, notifier, logger, registry: t.registry, intervalMs: 200 });
  guard = { worker, sources, lease };
  worker.start();
}

const field = (page: Page, name: string) => page.locator(`#detail-summary [data-field="${name}"]`);

describe('the ops page at /ui', () => {
  it('serves the shell with a strict CSP and the bundled script and stylesheet', async () => {
    const html = await fetch(`${base}/ui`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    const text = await html.text();
    expect(text).toContain('<script type="module" src="/ui/app.js"></script>');
    expect(text).not.toMatch(/<script>|style="/);
    const js = await fetch(`${base}/ui/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await js.text()).length).toBeGreaterThan(1000);
    const css = await fetch(`${base}/ui/app.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('answers 503 with a problem when there is neither a build nor a source to bundle', async () => {
    const bare = await buildTestApp({ plugins: [uiRoutes({ distDir: join(dir, 'no-dist'), sourceDir: join(dir, 'no-src') })] });
    try {
      const res = await bare.app.inject({ method: 'GET', url: '/ui/app.js' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json<{ detail: string }>().detail).toMatch(/npm run build/);
    } finally {
      await bare.close();
    }
  });

  it('follows a rollout live, shows API refusals and turns a flag off with the kill switch', async () => {
    expect((await call('PUT', '/flags/new-checkout', { description: 'New checkout flow', enabled: false, percentage: 0 })).status).toBe(201);
    expect((await call('PUT', '/flags/old-banner', { description: 'Legacy banner', enabled: true, percentage: 100 })).status).toBe(201);

    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${base}/ui`);
      // The token, once, through its labelled field.
      await page.getByLabel('Admin token').fill(TOKEN);
      await page.getByRole('button', { name: 'Use token' }).click();
      const row = page.locator('#flag-table tbody tr[data-flag="new-checkout"]');
      await expect.poll(() => row.textContent(), { timeout: 5000 }).toContain('Off');
      await expect.poll(() => page.locator('#connection').textContent(), { timeout: 5000 }).toContain('Live');
      // Any reload from here on would drop this marker.
      await page.evaluate(() => {
        (globalThis as unknown as { noReload: boolean }).noReload = true;
      });

      // The filter narrows the list.
      await page.getByLabel('Filter by key, description or status').fill('legacy');
      await expect.poll(() => page.locator('#flag-table tbody tr').count()).toBe(1);
      await page.getByLabel('Filter by key, description or status').fill('');

      // A plan installed through the API shows up in the list from the change stream.
      // One criterion, fed by outcomes the SDK would send, so it passes and the stage may advance.
      const criteria = [{ name: 'checkout-success', source: { type: 'outcomes', window: '15m' }, metric: 'successRate', op: '>=', threshold: 0.9 }];
      const installed = await call('PUT', '/flags/new-checkout/rollout', { stages: [{ percentage: 10, hold: '1s' }, { percentage: 50 }], sampleEvery: '1s', criteria, reason: 'ui test' });
      expect(installed.status, JSON.stringify(installed.json)).toBe(201);
      await expect.poll(() => row.textContent(), { timeout: 5000 }).toMatch(/On.*10%.*running.*1 of 2/);

      const events = [...Array.from({ length: 20 }, (_, i) => ({ flagKey: 'new-checkout', cohort: 'on', ok: true, latencyMs: 20 + i })), { flagKey: 'new-checkout', cohort: 'off', ok: true, latencyMs: 30 }];
      const sent = await fetch(`${base}/sdk/v1/outcomes`, { method: 'POST', headers: { authorization: 'Bearer sdk-secret', 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
      expect(sent.status).toBe(202);

      // Sorting is keyboard operable and announced through aria-sort.
      await page.locator('#flag-table th[data-sort="percentage"] button').focus();
      await page.keyboard.press('Enter');
      expect(await page.locator('#flag-table th[data-sort="percentage"]').getAttribute('aria-sort')).toBe('ascending');
      await page.keyboard.press('Enter');
      expect(await page.locator('#flag-table th[data-sort="percentage"]').getAttribute('aria-sort')).toBe('descending');
      expect(await page.locator('#flag-table tbody tr').first().getAttribute('data-flag')).toBe('old-banner');

      // Opened with the keyboard.
      await page.locator('#flag-table button[data-key="new-checkout"]').focus();
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#detail-title').textContent()).toBe('new-checkout');
      await expect.poll(() => field(page, 'percentage').textContent()).toBe('10%');
      expect(await field(page, 'stage').textContent()).toContain('1 of 2');

      // The real guard advances 10 -> 50 after the 1 s hold; the page follows without a reload.
      startGuardWorker();
      await expect.poll(() => field(page, 'stage').textContent(), { timeout: 15_000 }).toContain('2 of 2: 50%');
      await expect.poll(() => field(page, 'percentage').textContent(), { timeout: 5000 }).toBe('50%');
      await expect.poll(() => field(page, 'status').textContent(), { timeout: 5000 }).toBe('completed');
      await expect.poll(() => row.textContent(), { timeout: 5000 }).toMatch(/50%.*completed.*2 of 2/);
      await expect.poll(() => page.locator('#chart .m-decision').count(), { timeout: 5000 }).toBeGreaterThan(0);
      expect(await page.locator('#chart .m-change').count()).toBeGreaterThanOrEqual(3);
      expect(await page.locator('#events tbody').textContent()).toContain('guard');

      // The criterion's latest sample against its threshold, and the outcomes per cohort.
      await expect.poll(() => page.locator('#criteria tbody').textContent(), { timeout: 5000 }).toMatch(/checkout-success.*1 \(n=20\).*>= 0\.9.*pass/);
      await expect.poll(() => page.locator('#outcomes tbody').textContent(), { timeout: 5000 }).toMatch(/On \(flag served\)20100\.00%\d+ ms/);

      // Every input has a label.
      expect(await page.evaluate(() => Array.from(document.querySelectorAll('input')).filter((i) => i.labels === null || i.labels.length === 0).map((i) => i.id))).toEqual([]);

      // Hovering a decision marker shows who and why.
      await page.locator('#chart .marker:has(.m-decision)').last().hover();
      await expect.poll(() => page.locator('#tooltip').textContent()).toMatch(/Guard decision by guard/);

      // The API refuses approve on a completed plan; the page shows its problem detail.
      await page.getByRole('button', { name: 'Approve' }).click();
      await expect.poll(() => page.locator('#action-error').textContent(), { timeout: 5000 }).toMatch(/409.*cannot approve a plan that is completed/);

      // Kill switch: the dialog asks first; cancelling changes nothing.
      await page.getByRole('button', { name: 'Kill switch' }).click();
      const dialog = page.getByRole('dialog', { name: 'Turn the flag off?' });
      await expect.poll(() => dialog.isVisible()).toBe(true);
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      expect((await call('GET', '/flags/new-checkout')).json.enabled).toBe(true);
      await page.getByRole('button', { name: 'Kill switch' }).click();
      await dialog.getByLabel('Reason (recorded in history)').fill('errors spiking');
      await dialog.getByRole('button', { name: 'Turn off' }).click();
      await expect.poll(async () => (await call('GET', '/flags/new-checkout')).json.enabled, { timeout: 5000 }).toBe(false);
      await expect.poll(() => field(page, 'enabled').textContent(), { timeout: 5000 }).toBe('Off');
      expect(await page.locator('#action-ok').textContent()).toContain('Kill switch for new-checkout: done');
      const history = await call('GET', '/flags/new-checkout/history?limit=1');
      expect(JSON.stringify(history.json)).toContain('errors spiking');

      expect(await page.evaluate(() => (globalThis as unknown as { noReload?: boolean }).noReload)).toBe(true);
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      const png = await readFile(SCREENSHOT);
      expect((await stat(SCREENSHOT)).size).toBeGreaterThan(10_000);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 50_000);
});
