// `rampart serve` with the guard in-process on the embedded store (no Redis): an HTTP-JSON
// guarded plan runs to completion, and /metrics shows the guard's decisions.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsApp } from '../support/metrics-app.js';
import type { MetricsApp } from '../support/metrics-app.js';
import { startServerProcess } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';

describe('guard inside rampart serve (embedded store)', () => {
  let server: ServerProcess | undefined;
  let app: MetricsApp | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-guard-serve-'));
    const metricsApp = await startMetricsApp();
    app = metricsApp;
    metricsApp.respond('/stats', { json: { errorRate: 0.001 } });
    server = await startServerProcess({ RAMPART_DATA_DIR: dir, RAMPART_GUARD_INTERVAL: '200ms', RAMPART_GUARD_LEASE_TTL: '1s' });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    await app?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${server!.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it('completes an http-guarded plan and exposes guard metrics', async () => {
    expect((await call('PUT', '/flags/checkout', { enabled: false, percentage: 0 })).status).toBe(201);
    const plan = {
      stages: [{ percentage: 20, hold: '500ms' }, { percentage: 100 }],
      sampleEvery: '500ms',
      criteria: [{ name: 'errors', source: { type: 'http', url: `${app!.url}/stats`, path: '/errorRate' }, op: '<', threshold: 0.005 }],
    };
    expect((await call('PUT', '/flags/checkout/rollout', plan)).status).toBe(201);
    const deadline = Date.now() + 10_000;
    let status = '';
    while (Date.now() < deadline && status !== 'completed') {
      status = ((await (await call('GET', '/flags/checkout/rollout')).json()) as { status: string }).status;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe('completed');
    expect(((await (await call('GET', '/flags/checkout')).json()) as { percentage: number }).percentage).toBe(100);
    const metrics = await (await call('GET', '/metrics')).text();
    expect(metrics).toMatch(/rampart_guard_decisions_total\{flag="checkout",action="advance"\} 1/);
    expect(metrics).toMatch(/rampart_guard_lease_held 1/);
    expect(metrics).toMatch(/rampart_guard_source_duration_seconds_count\{type="http"\}/);
  });
});
