import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/ops/exit-codes.js';
import { runOps } from '../../src/ops/run-ops.js';
import type { OpsIo } from '../../src/ops/run-ops.js';
import { rolloutRoutes } from '../../src/api/routes/rollouts.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import type { EmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { freePort } from '../support/redis-server.js';
import { TS_NODE_ARGS } from '../support/server-process.js';

const TOKEN = 'ops-secret-1';
const auth = { authorization: `Bearer ${TOKEN}` };

let t: TestApp;
let rollouts: EmbeddedRolloutStore;
let url: string;
let dir: string;

// The real app with the real rollout routes, on embedded stores, listening on a real port.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-ops-'));
  const store = await createEmbeddedStore({ dir: join(dir, 'flags') });
  rollouts = await createEmbeddedRolloutStore({ dir: join(dir, 'rollouts') });
  t = await buildTestApp({
    store,
    adminTokens: [{ name: 'ops', secret: TOKEN }],
    sdkTokens: [{ name: 'app', secret: 'sdk-secret' }],
    plugins: [rolloutRoutes({ flags: store, rollouts, storeRedis: false })],
  });
  url = await t.app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await t.close();
  await rollouts.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function run(argv: readonly string[], extra: Partial<OpsIo> & { env?: Record<string, string | undefined> } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runOps(argv, {
    ...extra,
    env: { RAMPART_URL: url, RAMPART_TOKEN: TOKEN, ...extra.env },
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
  });
  return { code, out, err };
}

async function putFlag(key: string, fields: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/flags/${key}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(fields) });
  expect(res.ok).toBe(true);
}

async function readFlag(key: string): Promise<{ percentage: number; enabled: boolean; version: number; description: string }> {
  return (await (await fetch(`${url}/flags/${key}`, { headers: auth })).json()) as { percentage: number; enabled: boolean; version: number; description: string };
}

describe('rampart flags (against a real server)', () => {
  it('lists flags as a table, and as the raw API JSON with --json', async () => {
    await putFlag('list-a', { enabled: true, percentage: 12.5, description: 'first' });
    await putFlag('list-b', { enabled: false, percentage: 0 });
    const human = await run(['flags', 'list']);
    expect(human.code).toBe(EXIT.ok);
    expect(human.out).toMatch(/^KEY\s+ENABLED\s+PERCENT\s+VERSION/);
    expect(human.out).toMatch(/list-a\s+on\s+12\.5%\s+1\s/);
    expect(human.out).toMatch(/list-b\s+off\s+0%/);
    const json = await run(['flags', 'list', '--json']);
    expect(json.code).toBe(EXIT.ok);
    const parsed = JSON.parse(json.out) as { revision: number; flags: { key: string }[] };
    expect(parsed.revision).toBeGreaterThan(0);
    expect(parsed.flags.map((f) => f.key)).toEqual(expect.arrayContaining(['list-a', 'list-b']));
  });

  it('gets one flag as key/value lines and as JSON', async () => {
    await putFlag('get-me', { enabled: true, percentage: 3, description: 'the one' });
    const human = await run(['flags', 'get', 'get-me']);
    expect(human.code).toBe(EXIT.ok);
    expect(human.out).toContain('key:         get-me');
    expect(human.out).toMatch(/percentage:\s+3%/);
    expect(human.out).toMatch(/updated:\s+\S+ by ops/);
    const json = await run(['flags', 'get', 'get-me', '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ key: 'get-me', percentage: 3, enabled: true, version: 1 });
  });

  it('sets a percentage within the step limit, sends the reason, and prints the flag after', async () => {
    await putFlag('ramp', { enabled: true, percentage: 10 });
    const res = await run(['flags', 'set', 'ramp', '25', '--reason', 'week 2 of the ramp']);
    expect(res).toMatchObject({ code: EXIT.ok, err: '' });
    expect(res.out).toMatch(/percentage:\s+25%/);
    expect(res.out).toMatch(/version:\s+2/);
    const history = await run(['flags', 'history', 'ramp']);
    expect(history.code).toBe(EXIT.ok);
    expect(history.out).toMatch(/ops\s+api\s+update\s+percentage 10% -> 25%\s+week 2 of the ramp/);
    expect(history.out).toMatch(/create\s+created on at 10%/);
    const json = JSON.parse((await run(['flags', 'history', 'ramp', '--json', '--limit', '1'])).out) as { entries: unknown[]; next?: string };
    expect(json.entries).toHaveLength(1);
    expect(json.next).toBeTypeOf('string');
  });

  it('refuses a jump bigger than the step limit with exit 8 and changes nothing', async () => {
    await putFlag('jumpy', { enabled: true, percentage: 10 });
    const res = await run(['flags', 'set', 'jumpy', '90']);
    expect(res.code).toBe(EXIT.refused);
    expect(res.err).toContain("refusing to move 'jumpy' from 10% to 90%");
    expect(res.err).toContain('--force');
    expect(await readFlag('jumpy')).toMatchObject({ percentage: 10, version: 1 });
    const smaller = await run(['flags', 'set', 'jumpy', '30'], { env: { RAMPART_MAX_STEP: '10' } });
    expect(smaller.code).toBe(EXIT.refused);
    expect(smaller.err).toContain('10-point step limit');
  });

  it('allows the big jump with --force, or with a raised --max-step', async () => {
    await putFlag('forced', { enabled: true, percentage: 0 });
    expect((await run(['flags', 'set', 'forced', '100', '--force'])).code).toBe(EXIT.ok);
    expect((await run(['flags', 'set', 'forced', '5', '--max-step', '95'])).code).toBe(EXIT.ok);
    expect(await readFlag('forced')).toMatchObject({ percentage: 5, version: 3 });
  });

  it('turns a flag on, and off as a kill switch that asks nothing', async () => {
    await putFlag('switch', { enabled: false, percentage: 40 });
    const on = await run(['flags', 'on', 'switch']);
    expect(on.code).toBe(EXIT.ok);
    expect(on.out).toMatch(/enabled:\s+on/);
    const off = await run(['flags', 'off', 'switch', '--reason', 'error spike'], {
      confirm: () => Promise.reject(new Error('the kill switch must not ask')),
    });
    expect(off).toMatchObject({ code: EXIT.ok, err: '' });
    expect(off.out).toMatch(/enabled:\s+off/);
    expect(off.out).toMatch(/effective:\s+0% \(kill switch off\)/);
    expect(await readFlag('switch')).toMatchObject({ enabled: false, percentage: 40 });
  });

  it('exits 3 with the problem detail and a hint for a wrong token', async () => {
    const res = await run(['flags', 'list'], { env: { RAMPART_TOKEN: 'wrong' } });
    expect(res.code).toBe(EXIT.auth);
    expect(res.err).toContain('401 Missing or invalid token');
    expect(res.err).toContain('hint: check RAMPART_TOKEN');
    expect(res.err).not.toContain('wrong');
    const sdk = await run(['flags', 'off', 'switch'], { env: { RAMPART_TOKEN: 'sdk-secret' } });
    expect(sdk.code).toBe(EXIT.auth);
    expect(sdk.err).toContain('403');
  });

  it('exits 4 for a flag that does not exist, and prints the problem as JSON with --json', async () => {
    const res = await run(['flags', 'get', 'no-such-flag']);
    expect(res.code).toBe(EXIT.notFound);
    expect(res.err).toContain("flag 'no-such-flag' does not exist");
    const json = await run(['flags', 'off', 'no-such-flag', '--json']);
    expect(json.code).toBe(EXIT.notFound);
    expect(JSON.parse(json.out)).toMatchObject({ status: 404, type: 'https://rampart.dev/problems/not-found' });
  });

  it('exits 5 with a clear message when the flag changes between the read and the write (If-Match)', async () => {
    await putFlag('racy', { enabled: true, percentage: 10 });
    let raced = false;
    const racing: typeof fetch = async (input, init) => {
      if (init?.method === 'PATCH' && !raced) {
        raced = true;
        await fetch(`${url}/flags/racy`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ description: 'changed meanwhile' }) });
      }
      return fetch(input, init);
    };
    const res = await run(['flags', 'set', 'racy', '20'], { fetch: racing });
    expect(raced).toBe(true);
    expect(res.code).toBe(EXIT.conflict);
    expect(res.err).toContain("flag 'racy' is at version 2, not 1");
    expect(res.err).toContain('hint: the flag changed since it was read');
    expect(await readFlag('racy')).toMatchObject({ percentage: 10, description: 'changed meanwhile' });
  });

  it('exits 5 for a stale --if-match version', async () => {
    await putFlag('pinned', { enabled: true, percentage: 10 });
    await putFlag('pinned', { enabled: true, percentage: 11 });
    expect((await run(['flags', 'set', 'pinned', '12', '--if-match', '1'])).code).toBe(EXIT.conflict);
    expect((await run(['flags', 'set', 'pinned', '12', '--if-match', '2'])).code).toBe(EXIT.ok);
  });

  it('exits 6 for a value that is not a number, and prints the server\'s detail and field errors for 150', async () => {
    await putFlag('valid', { enabled: true, percentage: 90 });
    const abc = await run(['flags', 'set', 'valid', 'abc']);
    expect(abc.code).toBe(EXIT.validation);
    expect(abc.err).toContain("invalid percentage 'abc'");
    const big = await run(['flags', 'set', 'valid', '150']);
    expect(big.code).toBe(EXIT.validation);
    expect(big.err).toContain('400 Invalid request');
    expect(big.err).toContain('  body.percentage: percentage must be between 0 and 100 with at most 3 decimals');
    const decimals = await run(['flags', 'set', 'valid', '90.0001']);
    expect(decimals.code).toBe(EXIT.validation);
    expect(await readFlag('valid')).toMatchObject({ percentage: 90, version: 1 });
  });

  it('exits 2 for usage errors', async () => {
    expect((await run(['flags', 'dance'])).code).toBe(EXIT.usage);
    expect((await run(['flags', 'get'])).err).toContain('usage: rampart flags get <key>');
    expect((await run(['flags', 'get', 'x', '--plan', 'p.json'])).code).toBe(EXIT.usage);
    expect((await run(['flags', 'list', '--nope'])).code).toBe(EXIT.usage);
    expect((await run(['flags', 'set', 'x', '5', '--max-step', 'lots'])).code).toBe(EXIT.usage);
    expect((await run(['flags', 'list'], { env: { RAMPART_URL: 'localhost:8080' } })).err).toContain('RAMPART_URL must be an http(s) URL');
    const bare = await run(['rollout']);
    expect(bare.code).toBe(EXIT.usage);
    expect(bare.err).toContain('rollout start <key> --plan <file>');
    expect((await run([])).code).toBe(EXIT.usage);
    expect((await run(['--help'])).code).toBe(EXIT.ok);
    const help = await run(['flags', '--help']);
    expect(help.code).toBe(EXIT.ok);
    expect(help.out).toContain('Exit codes:');
  });

  it('exits 7 when the server cannot be reached, and when it does not answer within --timeout', async () => {
    const closed = await run(['flags', 'list'], { env: { RAMPART_URL: `http://127.0.0.1:${await freePort()}` } });
    expect(closed.code).toBe(EXIT.unavailable);
    expect(closed.err).toContain('cannot reach');
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const started = Date.now();
      const hung = await run(['flags', 'list', '--timeout', '0.3'], { env: { RAMPART_URL: `http://127.0.0.1:${port}` } });
      expect(hung.code).toBe(EXIT.unavailable);
      expect(hung.err).toContain('no answer from');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

describe('rampart rollout (against the real rollout routes)', () => {
  const planFile = (): string => {
    const file = join(dir, 'plan.json');
    writeFileSync(file, JSON.stringify({ stages: [{ percentage: 5, hold: '1h' }, { percentage: 25, hold: '1h', approval: true }, { percentage: 100 }] }));
    return file;
  };

  it('starts a plan from a file and shows its status', async () => {
    await putFlag('guarded', { enabled: true, percentage: 0 });
    const start = await run(['rollout', 'start', 'guarded', '--plan', planFile(), '--reason', 'Q4 launch']);
    expect(start.code).toBe(EXIT.ok);
    expect(start.out).toMatch(/status:\s+running/);
    expect(start.out).toMatch(/stage:\s+0 \(1 of 3\) at 5%/);
    expect(start.out).toContain('5% -> 25% (approval) -> 100%');
    expect(await readFlag('guarded')).toMatchObject({ enabled: true, percentage: 5 });
    const status = await run(['rollout', 'status', 'guarded', '--json']);
    expect(JSON.parse(status.out)).toMatchObject({ flagKey: 'guarded', status: 'running', stage: 0 });
    const decisions = await run(['rollout', 'decisions', 'guarded']);
    expect(decisions.code).toBe(EXIT.ok);
    expect(decisions.out).toMatch(/ops\s+install\s+running\s+0\s+on 5%\s+Q4 launch/);
  });

  it('warns that a manual set would pause a running plan, and asks when someone can answer', async () => {
    await putFlag('guarded-set', { enabled: true, percentage: 5 });
    expect((await run(['rollout', 'start', 'guarded-set', '--plan', planFile()])).code).toBe(EXIT.ok);
    const questions: string[] = [];
    const declined = await run(['flags', 'set', 'guarded-set', '10'], { confirm: async (q) => { questions.push(q); return false; } });
    expect(declined.code).toBe(EXIT.refused);
    expect(declined.err).toContain("a guard rollout plan is running on 'guarded-set'; the change would pause it");
    expect(questions).toHaveLength(1);
    expect(await readFlag('guarded-set')).toMatchObject({ percentage: 5 });
    const scripted = await run(['flags', 'set', 'guarded-set', '10']);
    expect(scripted.code).toBe(EXIT.ok);
    expect(scripted.err).toContain('the change would pause it');
    const noPlan = await run(['flags', 'set', 'ramp', '26']);
    expect(noPlan).toMatchObject({ code: EXIT.ok, err: '' });
  });

  it('pauses, resumes, approves and aborts, with 404 for no plan and 409 for a wrong state', async () => {
    await putFlag('lifecycle', { enabled: true, percentage: 0 });
    expect((await run(['rollout', 'status', 'lifecycle'])).code).toBe(EXIT.notFound);
    expect((await run(['rollout', 'start', 'lifecycle', '--plan', planFile()])).code).toBe(EXIT.ok);
    expect((await run(['rollout', 'pause', 'lifecycle'])).out).toMatch(/status:\s+paused/);
    expect((await run(['rollout', 'resume', 'lifecycle'])).out).toMatch(/status:\s+running/);
    const approve = await run(['rollout', 'approve', 'lifecycle']);
    expect(approve.code).toBe(EXIT.conflict);
    expect(approve.err).toContain('409 Conflict: cannot approve a plan that is running');
    const abort = await run(['rollout', 'abort', 'lifecycle', '--yes', '--reason', 'metrics look odd'], { confirm: () => Promise.reject(new Error('--yes must not ask')) });
    expect(abort.code).toBe(EXIT.ok);
    expect(abort.out).toMatch(/status:\s+aborted/);
    expect(abort.out).toMatch(/reason:\s+aborted by ops/);
    expect((await run(['rollout', 'decisions', 'lifecycle'])).out).toContain('metrics look odd');
    const declined = await run(['rollout', 'abort', 'guarded'], { confirm: async () => false });
    expect(declined.code).toBe(EXIT.refused);
    expect((await run(['rollout', 'status', 'guarded', '--json'])).out).toContain('"status": "running"');
  });

  it('rejects a missing, unreadable or invalid plan before or at the server', async () => {
    expect((await run(['rollout', 'start', 'guarded'])).code).toBe(EXIT.usage);
    expect((await run(['rollout', 'start', 'guarded', '--plan', join(dir, 'missing.json')])).code).toBe(EXIT.usage);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ stages: ');
    expect((await run(['rollout', 'start', 'guarded', '--plan', broken])).code).toBe(EXIT.validation);
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '{"stages":[]}');
    const res = await run(['rollout', 'start', 'guarded', '--plan', empty]);
    expect(res.code).toBe(EXIT.validation);
    expect(res.err).toContain('  body.stages: a plan needs at least one stage');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ stages: [{ percentage: 50 }, { percentage: 10 }] }));
    const decreasing = await run(['rollout', 'start', 'guarded', '--plan', bad]);
    expect(decreasing.code).toBe(EXIT.validation);
    expect(decreasing.err).toContain('percentages must increase');
  });
});

describe('src/ops/main.ts as a child process', () => {
  const exec = (args: readonly string[], env: Record<string, string>, entry = 'src/ops/main.ts'): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [...TS_NODE_ARGS, entry, ...args], {
        env: { PATH: process.env.PATH ?? '', RAMPART_URL: url, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => { resolve({ code: code ?? -1, out, err }); });
    });

  it('exits 0, 3 and 4 end to end, printing JSON to stdout and errors to stderr', async () => {
    await putFlag('child', { enabled: true, percentage: 1 });
    const [ok, wrong, missing] = await Promise.all([
      exec(['flags', 'get', 'child', '--json'], { RAMPART_TOKEN: TOKEN }),
      exec(['flags', 'list'], { RAMPART_TOKEN: 'nope' }),
      exec(['flags', 'off', 'gone'], { RAMPART_TOKEN: TOKEN }),
    ]);
    expect(ok.code).toBe(EXIT.ok);
    expect(JSON.parse(ok.out)).toMatchObject({ key: 'child', percentage: 1 });
    expect(wrong.code).toBe(EXIT.auth);
    expect(wrong.err).toContain('401');
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.out).toBe('');
  });

  it('is reachable as `rampart flags` through src/cli.ts', async () => {
    await putFlag('child', { enabled: true, percentage: 1 });
    const res = await exec(['flags', 'get', 'child', '--json'], { RAMPART_TOKEN: TOKEN }, 'src/cli.ts');
    expect(res.code).toBe(EXIT.ok);
    expect(JSON.parse(res.out)).toMatchObject({ key: 'child' });
  });
});
