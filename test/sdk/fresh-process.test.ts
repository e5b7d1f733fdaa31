// The runbook this replaces bucketed with Python's hash(), which is salted per process
// (PYTHONHASHSEED), so a user could flip in and out between restarts. These tests show the
// Rampart bucket depends on nothing but its input: fresh processes, with different V8 random
// and hash seeds, time zones and locales, compute exactly what this process computes.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucket, hashUnit } from '@rampart/sdk';
import type { WorkerRequest, WorkerResponse } from '../support/bucket-worker.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const worker = fileURLToPath(new URL('../support/bucket-worker.ts', import.meta.url));

/** ~1000 ids: sequential, UUID-like, and arbitrary Unicode (fixed seed so failures replay). */
function unitIds(): string[] {
  const sequential = Array.from({ length: 400 }, (_, i) => `user-${i}`);
  const uuids = fc.sample(fc.uuid(), { numRuns: 300, seed: 42 });
  const unicode = fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }), { numRuns: 300, seed: 43 });
  return [...sequential, ...uuids, ...unicode, '', 'José', '用户', '🙂', '\ud800'];
}

const request: WorkerRequest = { groupIds: ['new-checkout', 'async-reports', 'AB12A'], unitIds: unitIds() };

function runWorker(v8Seed: number, env: Record<string, string>): Promise<WorkerResponse> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [`--random-seed=${v8Seed}`, `--hash-seed=${v8Seed}`, '--conditions=rampart-source', '--import', 'tsx', worker],
      { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`worker exited with ${String(code)}: ${stderr}`));
      else resolve(JSON.parse(stdout) as WorkerResponse);
    });
    child.stdin.end(JSON.stringify(request));
  });
}

describe('bucketing across processes', () => {
  it('computes the same hash and bucket for ~1000 ids in two fresh node processes as in this one', async () => {
    const [first, second] = await Promise.all([
      runWorker(1, { TZ: 'UTC', LANG: 'C' }),
      runWorker(987_654, { TZ: 'Pacific/Kiritimati', LANG: 'tr_TR.UTF-8' }),
    ]);
    const here = {
      hashes: request.groupIds.map((g) => request.unitIds.map((u) => hashUnit(g, u))),
      buckets: request.groupIds.map((g) => request.unitIds.map((u) => bucket(g, u))),
    };
    expect(request.unitIds.length).toBeGreaterThanOrEqual(1000);
    expect(new Set([first.pid, second.pid, process.pid]).size).toBe(3);
    expect(first.hashes).toEqual(here.hashes);
    expect(first.buckets).toEqual(here.buckets);
    expect(second.hashes).toEqual(here.hashes);
    expect(second.buckets).toEqual(here.buckets);
  });
});
