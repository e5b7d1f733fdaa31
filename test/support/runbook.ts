// Helpers for the runbook tests: the runbooks' own plan files with their durations shortened,
// scripts/stack.sh on free ports, the real `rampart` binary, and the demo's load script.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TS_NODE_ARGS } from './server-process.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a plan duration such as `10m`. */
export function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text);
  if (match?.[1] === undefined || match[2] === undefined) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * (UNITS[match[2]] ?? Number.NaN);
}

/** What the test speeds up: every other field of the runbook's plan stays as documented. */
export interface Shortening {
  /** Every stage's `hold` (default 2s). */
  readonly hold?: string;
  /** `sampleEvery` (default 1s). */
  readonly sampleEvery?: string;
  /** Outcome sources' `window` (default 10s). */
  readonly window?: string;
  /** A `for` of this length becomes 1 s per `forScale` of it; at least 3 s (default 200: 10m -> 3s, 30m -> 9s). */
  readonly forScale?: number;
}

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function shortenCriteria(criteria: Json | undefined, options: Required<Shortening>): void {
  if (!Array.isArray(criteria)) return;
  for (const criterion of criteria) {
    if (!isObject(criterion)) continue;
    // `for`s keep their order (the queue pause after the backlog revert): scaled, not flattened.
    if (typeof criterion.for === 'string') criterion.for = `${Math.max(3, Math.round(durationMs(criterion.for) / options.forScale / 1000))}s`;
    const source = criterion.source;
    if (isObject(source) && typeof source.window === 'string') source.window = options.window;
  }
}

/**
 * The plan file beside a runbook (docs/runbooks/<name>.json) with durations shortened for a test:
 * holds, sampleEvery, `for`, outcome windows; the cron schedule removed. Nothing else changes.
 */
export function shortenedPlan(name: string, shortening: Shortening = {}): JsonObject {
  const options: Required<Shortening> = { hold: '2s', sampleEvery: '1s', window: '10s', forScale: 200, ...shortening };
  const plan = runbookPlan(name);
  delete plan.schedule;
  if (typeof plan.sampleEvery === 'string') plan.sampleEvery = options.sampleEvery;
  if (Array.isArray(plan.stages)) {
    for (const stage of plan.stages) {
      if (!isObject(stage)) continue;
      if (typeof stage.hold === 'string') stage.hold = options.hold;
      shortenCriteria(stage.criteria, options);
    }
  }
  shortenCriteria(plan.criteria, options);
  return plan;
}

/** The plan file beside a runbook, as documented. */
export function runbookPlan(name: string): JsonObject {
  return JSON.parse(readFileSync(join(ROOT, 'docs', 'runbooks', `${name}.json`), 'utf8')) as JsonObject;
}

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** When the process exited (ms epoch). */
  readonly exitedAt: number;
}

/** Runs `command args` in the repository root with exactly `env` (plus PATH and HOME). */
export function run(command: string, args: readonly string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, [...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr, exitedAt: Date.now() });
    });
  });
}

export interface Cli {
  /** `rampart <args>` with `env`: exit code and output. */
  (args: readonly string[], env: Record<string, string>): Promise<Run>;
  /** Removes the bundle. */
  dispose(): void;
}

/**
 * The real `rampart` CLI, bundled from src/cli.ts once as `npm run build` does (npm dependencies
 * external), so that each of the many commands a runbook runs starts in a fraction of the time tsx
 * takes. The bundle lives under node_modules/.cache so it resolves the repository's dependencies.
 */
export async function bundleCli(): Promise<Cli> {
  const { build } = await import('esbuild');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const dir = join(ROOT, 'node_modules', '.cache', 'rampart-runbooks', String(process.pid));
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, 'cli.mjs');
  await build({
    entryPoints: [join(ROOT, 'src', 'cli.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['rampart-source'],
    external: [...Object.keys(pkg.dependencies ?? {}), 'esbuild'],
    logLevel: 'warning',
  });
  const cli = (args: readonly string[], env: Record<string, string>): Promise<Run> => run(process.execPath, [outfile, ...args], env, 30_000);
  const dispose = (): void => {
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync(join(dir, '..')); // only when no other run is using it
    } catch {
      // another run's bundle is still there
    }
  };
  return Object.assign(cli, { dispose });
}

export interface LoadProcess {
  readonly process: ChildProcess;
  /** Stops the load (SIGTERM) and resolves with its JSON summary. */
  stop(): Promise<Record<string, unknown>>;
}

/** Starts examples/demo-service/load.ts in the background. */
export function startLoad(options: { url: string; users: number; rps: number; seconds: number }): LoadProcess {
  const args = ['--url', options.url, '--users', String(options.users), '--rps', String(options.rps), '--seconds', String(options.seconds)];
  const child = spawn(process.execPath, [...TS_NODE_ARGS, 'examples/demo-service/load.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  return {
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      const line = output.trim().split('\n').at(-1) ?? '';
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { output };
      }
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 100 ms until `ok`, else throws with the last value and `context()`. */
export async function until<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000, context: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(value)}\n${context()}`);
    await sleep(100);
  }
}
