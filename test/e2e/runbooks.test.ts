// The runbooks in docs/runbooks, executed: one native stack (scripts/stack.sh: Redis, two
// `rampart serve`, `rampart guard`, Prometheus, the demo service), the runbooks' own plan files
// with only their durations shortened, the documented `rampart` commands through the real CLI, and
// the demo driven by its load script. Redis and Prometheus are required: without them this fails.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@rampart/sdk';
import type { RampartClient } from '@rampart/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, which } from '../support/redis-server.js';
import { bundleCli, ROOT, run, runbookPlan, shortenedPlan, sleep, startLoad, until } from '../support/runbook.js';
import type { Cli, LoadProcess, Run } from '../support/runbook.js';

interface View {
  status: string;
  stage: number;
  percentage: number;
}
interface Decision {
  action: string;
  actor: string;
  reason: string;
  samples: { criterion: string; value?: number | null; verdict: string }[];
}
/** The decisions of the plan installed last (the history spans every plan the flag had). */
const currentPlan = (entries: Decision[]): Decision[] => entries.slice(0, entries.findIndex((e) => e.action === 'install') + 1);

interface Flag {
  enabled: boolean;
  percentage: number;
  version: number;
}
interface Stats {
  errorRate: number;
  queueDepth: number | null;
  workerPaused: boolean;
}

const FLAG = 'async-reports';
const ADMIN = 'runbook-admin-secret';
const SDK = 'runbook-sdk-secret';
const USERS = 1000;

describe('docs/runbooks plan files', () => {
  it.each(['weekly-async-ramp', 'canary'])('%s.md shows exactly the plan in %s.json', (name) => {
    const markdown = readFileSync(join(ROOT, 'docs', 'runbooks', `${name}.md`), 'utf8');
    const block = /```json\n([\s\S]*?)\n```/.exec(markdown)?.[1];
    expect(block).toBeDefined();
    expect(JSON.parse(block!)).toEqual(runbookPlan(name));
  });
});

describe('docs/runbooks, executed against the native stack', () => {
  let dir = '';
  let stackEnv: Record<string, string>;
  let cliEnv: Record<string, string>;
  let a = '';
  let b = '';
  let demo = '';
  let prometheus = '';
  let load: LoadProcess | undefined;
  let rampart: Cli | undefined;
  let upOutput = '';
  const logs = (): string => (dir === '' ? '' : `stack logs in ${dir}`);

  const cli = async (args: string[], extraEnv: Record<string, string> = {}): Promise<Run> => rampart!(args, { ...cliEnv, ...extraEnv });
  const ok = async (args: string[]): Promise<Run> => {
    const result = await cli(args);
    expect(result.code, `rampart ${args.join(' ')}\n${result.stderr}`).toBe(0);
    return result;
  };
  const admin = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${a}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const view = async (): Promise<View> => (await admin('GET', `/flags/${FLAG}/rollout`)).json() as Promise<View>;
  const flag = async (): Promise<Flag> => (await admin('GET', `/flags/${FLAG}`)).json() as Promise<Flag>;
  const stats = async (): Promise<Stats> => (await fetch(`${demo}/stats`)).json() as Promise<Stats>;
  const writePlan = (name: string, plan: unknown): string => {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(plan, null, 2));
    return path;
  };

  beforeAll(async () => {
    const missing = ['redis-server', 'prometheus'].filter((binary) => which(binary) === undefined);
    if (missing.length > 0) {
      throw new Error(`the runbook tests need ${missing.join(' and ')} on PATH (apt-get install redis-server prometheus); CI installs them`);
    }
    dir = mkdtempSync(join(tmpdir(), 'rampart-runbooks-'));
    const [redisPort, aPort, bPort, promPort, demoPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    a = `http://127.0.0.1:${aPort}`;
    b = `http://127.0.0.1:${bPort}`;
    demo = `http://127.0.0.1:${demoPort}`;
    prometheus = `http://127.0.0.1:${promPort}`;
    stackEnv = {
      STACK_DIR: dir,
      STACK_RUNTIME: 'source',
      REDIS_PORT: String(redisPort),
      RAMPART_A_PORT: String(aPort),
      RAMPART_B_PORT: String(bPort),
      PROMETHEUS_PORT: String(promPort),
      DEMO_PORT: String(demoPort),
      RAMPART_ADMIN_TOKENS: `ops:${ADMIN}`,
      RAMPART_SDK_TOKENS: `demo:${SDK}`,
      RAMPART_SDK_TOKEN: SDK,
      LOG_LEVEL: 'warn',
      // Inherited by the processes stack.sh starts: the guard ticks often, the demo finds the stack's Redis.
      RAMPART_GUARD_INTERVAL: '250ms',
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    };
    cliEnv = { RAMPART_URL: a, RAMPART_TOKEN: ADMIN };
    const [up, bundled] = await Promise.all([run('bash', ['scripts/stack.sh', 'up'], stackEnv, 60_000), bundleCli()]);
    rampart = bundled;
    upOutput = up.stdout + up.stderr;
    expect(up.code, upOutput).toBe(0);
    for (const service of ['guard running', 'prometheus ready', 'demo ready']) expect(upOutput, service).toContain(service);
    // The flag exists before the demo reports on it (outcomes for unknown flags are refused).
    expect((await admin('PUT', `/flags/${FLAG}`, { description: 'async report pipeline', enabled: false, percentage: 0 })).status).toBe(201);
    await until('the demo to see the flag', async () => (await fetch(`${demo}/healthz`)).json() as Promise<{ revision: number }>, (h) => h.revision >= 1, 10_000);
    load = startLoad({ url: demo, users: USERS, rps: 300, seconds: 150 });
  }, 90_000);

  afterAll(async () => {
    const summary = await load?.stop();
    if (summary !== undefined) console.log('load:', JSON.stringify(summary));
    rampart?.dispose();
    if (dir !== '') {
      const down = await run('bash', ['scripts/stack.sh', 'down'], stackEnv, 30_000);
      if (down.code !== 0) console.error(down.stdout + down.stderr);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  describe('runbook 1: weekly async-report ramp (docs/runbooks/weekly-async-ramp.md)', () => {
    it('ramps 0 -> 10 -> 25 -> 50 -> 100 on outcomes vs control and queue depth while healthy', async () => {
      const planFile = writePlan('weekly-async-ramp', shortenedPlan('weekly-async-ramp'));
      const start = await ok(['rollout', 'start', FLAG, '--plan', planFile, '--reason', 'weekly ramp']);
      expect(start.stdout).toContain('running');
      expect((await flag()).percentage).toBe(10);

      const done = await until('completion', view, (v) => v.status === 'completed' || v.status === 'rolled-back' || v.status === 'paused', 45_000, logs);
      expect(done).toMatchObject({ status: 'completed', percentage: 100 });
      const status = await ok(['rollout', 'status', FLAG]);
      expect(status.stdout).toMatch(/status:\s+completed/);

      const decisions = JSON.parse((await ok(['rollout', 'decisions', FLAG, '--json', '--limit', '200'])).stdout) as { entries: Decision[] };
      const advances = currentPlan(decisions.entries).filter((e) => e.action === 'advance');
      expect(advances).toHaveLength(3);
      // Every advance had evidence from all four criteria, the comparison with control included.
      for (const advance of advances) {
        expect(Object.fromEntries(advance.samples.map((s) => [s.criterion, s.verdict]))).toEqual({ success: 'pass', 'vs-control': 'pass', queue: 'pass', backlog: 'pass' });
      }
      const history = JSON.parse((await ok(['flags', 'history', FLAG, '--json', '--limit', '50'])).stdout) as { entries: { source: string; after: { percentage: number } | null }[] };
      expect(history.entries.filter((e) => e.source === 'guard').map((e) => e.after?.percentage)).toEqual([100, 50, 25]);
    }, 60_000);

    it('reverts to 0 % when the queue backs up (worker paused, load on), with the observed LLEN in the decision', async () => {
      await ok(['flags', 'set', FLAG, '0', '--force', '--reason', 'reset before the backlog drill']);
      expect((await fetch(`${demo}/admin/worker?paused=true`, { method: 'POST' })).status).toBe(200);
      try {
        const planFile = writePlan('weekly-async-ramp', shortenedPlan('weekly-async-ramp'));
        await ok(['rollout', 'start', FLAG, '--plan', planFile, '--reason', 'weekly ramp, backlog drill']);
        const rolled = await until('the revert', view, (v) => v.status !== 'running' && v.status !== 'awaiting-approval', 30_000, logs);
        expect(rolled).toMatchObject({ status: 'rolled-back', stage: 0 });
        await until('the flag at 0 %', flag, (f) => f.percentage === 0, 5000);

        const decisions = JSON.parse((await ok(['rollout', 'decisions', FLAG, '--json', '--limit', '200'])).stdout) as { entries: Decision[] };
        const revert = currentPlan(decisions.entries).find((e) => e.action === 'revert');
        expect(revert, JSON.stringify(decisions.entries.slice(0, 3))).toBeDefined();
        expect(revert!.actor).toBe('guard');
        expect(revert!.reason).toContain('backlog');
        const backlog = revert!.samples.find((s) => s.criterion === 'backlog')!;
        expect(backlog.verdict).toBe('fail');
        expect(backlog.value).toBeGreaterThan(100);
        // The value is the real LLEN: the queue only grew since (the worker is still paused).
        const depth = (await stats()).queueDepth ?? 0;
        expect(depth).toBeGreaterThanOrEqual(backlog.value!);
        // The queue gate (`< 50`, pause after 30 min, here 9 s) failed too but had not fired yet.
        expect(revert!.samples.find((s) => s.criterion === 'queue')?.verdict).toBe('fail');
        // Passing samples never re-ramp a rolled-back plan by themselves.
        const status = await ok(['rollout', 'status', FLAG]);
        expect(status.stdout).toMatch(/status:\s+rolled-back/);
      } finally {
        await fetch(`${demo}/admin/worker?paused=false`, { method: 'POST' });
      }
      await until('the worker to drain the queue', stats, (s) => s.queueDepth === 0, 20_000);
    }, 60_000);
  });

  describe('runbook 2: canary with approval (docs/runbooks/canary.md)', () => {
    it('ramps 1 -> 5 -> 25 on Prometheus p95 and 5xx ratio, waits for approval, completes after `rollout approve`', async () => {
      const plan = shortenedPlan('canary');
      // The plan names Prometheus as compose does (http://prometheus:9090); the stack's is on a free port.
      const text = JSON.stringify(plan).replaceAll('http://prometheus:9090', prometheus);
      const planFile = writePlan('canary', JSON.parse(text));
      await until('Prometheus to scrape the demo', async () => {
        const body = (await (await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent('up{job="demo"}')}`)).json()) as { data: { result: { value: [number, string] }[] } };
        return body.data.result[0]?.value[1];
      }, (v) => v === '1', 20_000);

      // From a rolled-back plan to a new one: `rollout start` replaces it.
      await ok(['rollout', 'start', FLAG, '--plan', planFile, '--reason', 'canary']);
      expect((await flag()).percentage).toBe(1);
      const waiting = await until('awaiting-approval', view, (v) => v.status !== 'running', 40_000, logs);
      expect(waiting).toMatchObject({ status: 'awaiting-approval', percentage: 25 });
      const status = await ok(['rollout', 'status', FLAG]);
      expect(status.stdout).toMatch(/status:\s+awaiting-approval/);
      await sleep(1500);
      expect((await view()).status).toBe('awaiting-approval');
      expect((await flag()).percentage).toBe(25);

      await ok(['rollout', 'approve', FLAG, '--reason', 'dashboards look fine']);
      const done = await until('completion', view, (v) => v.status !== 'awaiting-approval' && v.status !== 'running', 20_000, logs);
      expect(done).toMatchObject({ status: 'completed', percentage: 100 });
      // Approving a plan that is not waiting is the server's 409: exit 5.
      expect((await cli(['rollout', 'approve', FLAG])).code).toBe(5);

      const decisions = JSON.parse((await ok(['rollout', 'decisions', FLAG, '--json', '--limit', '200'])).stdout) as { entries: Decision[] };
      const entries = currentPlan(decisions.entries);
      expect(entries.filter((e) => e.action === 'advance')).toHaveLength(3);
      expect(entries.filter((e) => e.action === 'await-approval')).toHaveLength(1);
      const lastAdvance = entries.find((e) => e.action === 'advance')!;
      const p95 = lastAdvance.samples.find((s) => s.criterion === 'p95')!;
      const errors = lastAdvance.samples.find((s) => s.criterion === '5xx-ratio')!;
      expect(p95.verdict).toBe('pass');
      expect(p95.value).toBeGreaterThan(0);
      expect(p95.value).toBeLessThan(30);
      expect(errors).toMatchObject({ verdict: 'pass', value: 0 });
    }, 60_000);
  });

  it('accepts the plan files exactly as documented (weekly schedule and holds included)', async () => {
    const key = 'runbook-plan-check';
    expect((await admin('PUT', `/flags/${key}`, { enabled: false, percentage: 0 })).status).toBe(201);
    for (const name of ['weekly-async-ramp', 'canary']) {
      await ok(['rollout', 'start', key, '--plan', join(ROOT, 'docs', 'runbooks', `${name}.json`), '--reason', `${name} as documented`]);
      expect((await ok(['rollout', 'status', key])).stdout).toMatch(/status:\s+running/);
      await ok(['rollout', 'abort', key, '--yes']);
    }
  }, 30_000);

  describe('runbook 3: kill switch, instant rollback, stepping down (docs/runbooks/kill-switch.md)', () => {
    let client: RampartClient | undefined;
    afterAll(async () => {
      await client?.close();
    });
    const users = Array.from({ length: USERS }, (_, i) => `user-${i}`);
    const share = (): number => users.filter((u) => client!.isEnabled(FLAG, u)).length / users.length;

    it('`rampart flags off` turns every user off at once; the SDK sees it over the stream within a second', async () => {
      client = createClient({ url: b, token: SDK, pollIntervalMs: 60_000 });
      await client.ready({ timeoutMs: 5000 });
      expect(await flag()).toMatchObject({ enabled: true, percentage: 100 });
      expect(share()).toBe(1);

      let allOffAt = 0;
      const off = client.on('change', () => {
        if (allOffAt === 0 && share() === 0) allOffAt = Date.now();
      });
      const kill = await ok(['flags', 'off', FLAG, '--reason', 'kill switch drill']);
      expect(kill.stdout).toMatch(/off/);
      await until('the SDK to see the kill switch', async () => allOffAt, (t) => t > 0, 2000);
      off();
      // The stream delivers the change before (or within a second of) the CLI having exited.
      expect(allOffAt - kill.exitedAt).toBeLessThan(1000);
      // The demo's own client agrees: every report is synchronous now.
      const modes = await Promise.all(users.slice(0, 50).map(async (u) => ((await (await fetch(`${demo}/reports?user=${u}`, { method: 'POST' })).json()) as { mode: string }).mode));
      expect(new Set(modes)).toEqual(new Set(['sync']));

      await ok(['flags', 'on', FLAG, '--reason', 'drill over']);
      await until('the SDK to see the flag back on', async () => share(), (s) => s === 1, 2000);
    }, 30_000);

    it('steps down 100 -> 75 -> 50 with `flags set`, the step guard refusing a bigger jump, and rolls back to 0 with --force', async () => {
      const refused = await cli(['flags', 'set', FLAG, '25']);
      expect(refused.code).toBe(8);
      expect(refused.stderr).toContain('step limit');
      expect((await flag()).percentage).toBe(100);

      await ok(['flags', 'set', FLAG, '75', '--reason', 'step down']);
      await until('75 % in the SDK', async () => share(), (s) => Math.abs(s - 0.75) < 0.05, 2000);
      await ok(['flags', 'set', FLAG, '50', '--reason', 'step down']);
      await until('50 % in the SDK', async () => share(), (s) => Math.abs(s - 0.5) < 0.05, 2000);
      // A smaller limit for one call refuses what the default allows.
      expect((await cli(['flags', 'set', FLAG, '0'], { RAMPART_MAX_STEP: '25' })).code).toBe(8);

      // The instant rollback: 0 % at once, the toggle stays on (unlike the kill switch).
      await ok(['flags', 'set', FLAG, '0', '--force', '--reason', 'instant rollback']);
      await until('0 % in the SDK', async () => share(), (s) => s === 0, 2000);
      expect(await flag()).toMatchObject({ enabled: true, percentage: 0 });

      const history = JSON.parse((await ok(['flags', 'history', FLAG, '--json', '--limit', '6'])).stdout) as { entries: { actor: string; reason?: string; after: { percentage: number; enabled: boolean } | null }[] };
      expect(history.entries.slice(0, 5).map((e) => [e.after?.enabled, e.after?.percentage, e.reason])).toEqual([
        [true, 0, 'instant rollback'],
        [true, 50, 'step down'],
        [true, 75, 'step down'],
        [true, 100, 'drill over'],
        [false, 100, 'kill switch drill'],
      ]);
      expect(history.entries[0]?.actor).toBe('ops');
      // The demo's error rate stayed flat through all of it.
      expect((await stats()).errorRate).toBe(0);
    }, 30_000);
  });
});
