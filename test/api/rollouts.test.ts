import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileErrors, validate } from '@readme/openapi-parser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rolloutRoutes } from '../../src/api/routes/rollouts.js';
import { pauseOnManualChange } from '../../src/guard/manual-change.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import type { EmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';
import { createLogger } from '../../src/telemetry.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { appRoutes, expectResponseMatches, loadSpec } from '../support/openapi.js';
import type { HttpMethod, OpenApiSpec, ResponseLike } from '../support/openapi.js';


/** The HTTP contract, openapi/openapi.yaml. */
function mergedSpec(): OpenApiSpec {
  return loadSpec();
}

const ADMIN = { authorization: 'Bearer admin-secret' };

const PLAN = {
  stages: [{ percentage: 1, hold: '15m' }, { percentage: 5, hold: '15m' }, { percentage: 25, hold: '15m', approval: true }, { percentage: 100 }],
  schedule: { cron: '0 10 * * 1', timezone: 'Europe/Berlin' },
  sampleEvery: '1m',
  criteria: [
    { name: 'success', source: { type: 'outcomes', window: '15m' }, metric: 'successRate', op: '>=', threshold: 0.95, minSamples: 200 },
    { name: 'vs-control', source: { type: 'outcomes', window: '15m' }, metric: 'successRate', compare: 'control', maxDrop: 0.01 },
    { name: 'queue', source: { type: 'redis', url: 'redis://127.0.0.1:6379', command: 'LLEN', key: 'celery:reports' }, op: '<', threshold: 50 },
    { name: 'p95', source: { type: 'prometheus', url: 'http://127.0.0.1:9090', query: 'histogram_quantile(0.95, sum by (le) (rate(job_seconds_bucket[5m])))' }, op: '<', threshold: 60 },
    { name: 'errors', source: { type: 'http', url: 'http://127.0.0.1:3000/stats', path: '/errorRate' }, op: '<', threshold: 0.005 },
  ],
  onFailure: { action: 'revert', after: 2 },
  onNoData: { after: '24h', action: 'pause' },
  dryRun: false,
  notify: [{ url: 'https://hooks.example.test/T000', format: 'slack' }],
};

describe('rollout routes', () => {
  let t: TestApp;
  let dir: string;
  let rollouts: EmbeddedRolloutStore;
  let raw: FlagStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-rollout-api-'));
    raw = await createEmbeddedStore({ dir });
    rollouts = await createEmbeddedRolloutStore({ dir });
    t = await buildTestApp({
      store: pauseOnManualChange(raw, rollouts, createLogger('silent')),
      adminTokens: [{ name: 'ops', secret: 'admin-secret' }],
      plugins: [rolloutRoutes({ flags: raw, rollouts, storeRedis: false })],
    });
    await t.app.inject({ method: 'PUT', url: '/flags/reports', headers: ADMIN, payload: { description: 'async reports', enabled: false, percentage: 0 } });
  });
  afterEach(async () => {
    await t.close();
    await rollouts.close();
    await rm(dir, { recursive: true, force: true });
  });

  const put = (payload: unknown, key = 'reports') => t.app.inject({ method: 'PUT', url: `/flags/${key}/rollout`, headers: ADMIN, payload: payload as object });
  const post = (command: string, key = 'reports') => t.app.inject({ method: 'POST', url: `/flags/${key}/rollout/${command}`, headers: ADMIN });
  const get = (url: string) => t.app.inject({ method: 'GET', url, headers: ADMIN });

  it('installs the pinned plan, starts it and turns the flag on at stage 0', async () => {
    const res = await put(PLAN);
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/flags/reports/rollout');
    const body = res.json<Record<string, unknown>>();
    expect(body).toMatchObject({ status: 'running', stage: 0, percentage: 1, plan: { sampleEvery: '1m', stages: PLAN.stages } });
    const flag = (await get('/flags/reports')).json<{ enabled: boolean; percentage: number; updatedBy: string }>();
    expect(flag).toMatchObject({ enabled: true, percentage: 1, updatedBy: 'ops' });
    const view = (await get('/flags/reports/rollout')).json<{ criteria: { name: string }[]; stageStartedAt: string; nextCheckAt: string }>();
    expect(view.criteria.map((c) => c.name)).toEqual(['success', 'vs-control', 'queue', 'p95', 'errors']);
    expect(Date.parse(view.stageStartedAt)).not.toBeNaN();
    expect(Date.parse(view.nextCheckAt)).not.toBeNaN();
  });

  it('answers 404 for an unknown flag and for a flag without a plan', async () => {
    expect((await put(PLAN, 'nope')).statusCode).toBe(404);
    const none = await get('/flags/reports/rollout');
    expect(none.statusCode).toBe(404);
    expect(none.headers['content-type']).toMatch(/application\/problem\+json/);
    const paused = await post('pause');
    expect(paused.statusCode, paused.body).toBe(404);
    expect((await get('/flags/reports/rollout/decisions')).statusCode).toBe(404);
  });

  const bad: [string, unknown, string][] = [
    ['an unknown field', { ...PLAN, surprise: true }, 'body'],
    ['a bad duration', { ...PLAN, sampleEvery: '5 minutes' }, 'body.sampleEvery'],
    ['a zero duration', { ...PLAN, stages: [{ percentage: 1, hold: '0s' }, { percentage: 100 }] }, 'body.stages.0.hold'],
    ['percentages not increasing', { ...PLAN, stages: [{ percentage: 10, hold: '1m' }, { percentage: 5 }] }, 'body.stages.1.percentage'],
    ['empty stages', { ...PLAN, stages: [] }, 'body.stages'],
    ['a bad cron', { ...PLAN, schedule: { cron: 'every monday', timezone: 'Europe/Berlin' } }, 'body.schedule.cron'],
    ['a bad time zone', { ...PLAN, schedule: { cron: '0 10 * * 1', timezone: 'Mars/Olympus' } }, 'body.schedule.timezone'],
    ['an unknown source type', { ...PLAN, criteria: [{ name: 'x', source: { type: 'graphite', url: 'http://x' }, op: '<', threshold: 1 }] }, 'body.criteria.0.source.type'],
    ['a threshold criterion without op', { ...PLAN, criteria: [{ name: 'x', source: { type: 'outcomes', window: '5m' }, threshold: 1 }] }, 'body.criteria.0.op'],
    ['a duplicate criterion name', { ...PLAN, criteria: [PLAN.criteria[0], PLAN.criteria[0]] }, 'body.criteria.1.name'],
    ['a Redis source without url on the embedded store', { ...PLAN, criteria: [{ name: 'q', source: { type: 'redis', command: 'LLEN', key: 'k' }, op: '<', threshold: 5 }] }, 'body.criteria.0.source.url'],
  ];
  for (const [what, payload, path] of bad) {
    it(`rejects ${what} with 400 and a field error at ${path}, changing nothing`, async () => {
      const res = await put(payload);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      const problem = res.json<{ type: string; errors: { path: string }[] }>();
      expect(problem.type).toBe('https://rampart.dev/problems/validation');
      expect(problem.errors.map((e) => e.path)).toContain(path);
      expect((await get('/flags/reports/rollout')).statusCode).toBe(404);
      expect((await get('/flags/reports')).json<{ enabled: boolean }>().enabled).toBe(false);
    });
  }

  it('pauses, resumes and aborts; refuses approve when nothing awaits approval with 409', async () => {
    await put(PLAN);
    const approve = await post('approve');
    expect(approve.statusCode).toBe(409);
    expect(approve.json<{ type: string }>().type).toBe('https://rampart.dev/problems/conflict');
    expect((await post('pause')).json()).toMatchObject({ status: 'paused', reason: 'paused by ops' });
    expect((await post('pause')).statusCode).toBe(409);
    expect((await post('resume')).json()).toMatchObject({ status: 'running' });
    expect((await post('abort')).json()).toMatchObject({ status: 'aborted' });
    expect((await post('resume')).statusCode).toBe(409);
    expect((await post('abort')).statusCode).toBe(409);
  });

  it('approves a stage awaiting approval', async () => {
    await put(PLAN);
    const record = (await rollouts.get('reports'))!;
    await rollouts.write({ ...record, version: record.version + 1, state: { ...record.state, status: 'awaiting-approval', stage: 2 } }, record.version);
    const res = await post('approve');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'running', approvedStage: 2 });
  });

  it('keeps a guard pending flag write across a command that sets no flag fields', async () => {
    await put(PLAN);
    const record = (await rollouts.get('reports'))!;
    const pending = { expectedVersion: record.flagVersion, fields: { description: 'async reports', enabled: true, percentage: 0, groupId: 'reports', stickiness: 'userId' }, reason: 'guard: revert' };
    await rollouts.write({ ...record, version: record.version + 1, pending }, record.version);
    expect((await post('abort')).statusCode).toBe(200);
    expect((await rollouts.get('reports'))!.pending).toEqual(pending);
  });

  it('pages the decisions newest first, each with its actor', async () => {
    await put(PLAN);
    await post('pause');
    await post('resume');
    await post('pause');
    const first = (await get('/flags/reports/rollout/decisions?limit=2')).json<{ entries: { action: string; actor: string }[]; next: string }>();
    expect(first.entries.map((e) => e.action)).toEqual(['pause', 'resume']);
    expect(first.entries[0]!.actor).toBe('ops');
    const second = (await get(`/flags/reports/rollout/decisions?limit=2&before=${first.next}`)).json<{ entries: { action: string }[]; next?: string }>();
    expect(second.entries.map((e) => e.action)).toEqual(['pause', 'install']);
    expect(second.next).toBeUndefined();
    expect((await get('/flags/reports/rollout/decisions?limit=0')).statusCode).toBe(400);
    expect((await get('/flags/reports/rollout/decisions?before=zzz')).statusCode).toBe(400);
  });

  it('pauses a running plan when a person PATCHes the percentage, and says so in the decisions', async () => {
    await put(PLAN);
    const patch = await t.app.inject({ method: 'PATCH', url: '/flags/reports', headers: { ...ADMIN, 'x-change-reason': 'hotfix' }, payload: { percentage: 30 } });
    expect(patch.statusCode).toBe(200);
    const view = (await get('/flags/reports/rollout')).json<{ status: string; reason: string }>();
    expect(view.status).toBe('paused');
    expect(view.reason).toMatch(/manual change by ops: percentage 1 -> 30 \(hotfix\)/);
    const latest = (await get('/flags/reports/rollout/decisions?limit=1')).json<{ entries: { action: string; actor: string }[] }>();
    expect(latest.entries[0]).toMatchObject({ action: 'pause', actor: 'ops' });
  });

  it('does not pause for a description-only change', async () => {
    await put(PLAN);
    await t.app.inject({ method: 'PATCH', url: '/flags/reports', headers: ADMIN, payload: { description: 'renamed' } });
    expect((await get('/flags/reports/rollout')).json<{ status: string }>().status).toBe('running');
  });

  it('matches openapi/openapi.yaml: a valid document, every route documented, every answer in its schema', async () => {
    const spec = mergedSpec();
    const result = await validate(structuredClone(spec) as Parameters<typeof validate>[0]);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    const documented = Object.keys(spec.paths).filter((p) => p.includes('/rollout'));
    const registered = [...appRoutes(t.app)].filter((r) => r.includes('/rollout'));
    expect(registered.length).toBe(7);
    for (const route of registered) expect(documented).toContain(route.split(' ')[1]);
    const check = (res: ResponseLike, method: HttpMethod, path: string): void => {
      expectResponseMatches(spec, method, path, res);
    };
    check(await put(PLAN), 'PUT', '/flags/{key}/rollout');
    check(await put(PLAN), 'PUT', '/flags/{key}/rollout');
    check(await put({ ...PLAN, stages: [] }), 'PUT', '/flags/{key}/rollout');
    check(await get('/flags/reports/rollout'), 'GET', '/flags/{key}/rollout');
    check(await get('/flags/nope/rollout'), 'GET', '/flags/{key}/rollout');
    check(await post('approve'), 'POST', '/flags/{key}/rollout/approve');
    check(await post('pause'), 'POST', '/flags/{key}/rollout/pause');
    check(await post('resume'), 'POST', '/flags/{key}/rollout/resume');
    check(await post('abort'), 'POST', '/flags/{key}/rollout/abort');
    check(await get('/flags/reports/rollout/decisions?limit=2'), 'GET', '/flags/{key}/rollout/decisions');
  });

  it('requires an admin token', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/flags/reports/rollout' });
    expect(res.statusCode).toBe(401);
  });
});
