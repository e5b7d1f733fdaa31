import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startServerProcess, TS_NODE_ARGS } from './support/server-process.js';
import { openSse } from './support/sse.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('rampart serve (embedded store)', () => {
  it('shuts down gracefully on SIGTERM with exit 0, closing open streams, and keeps every acknowledged write', async () => {
    const dir = tempDir();
    const server = await startServerProcess({ RAMPART_DATA_DIR: dir });
    const res = await fetch(`${server.url}/flags/durable`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true, percentage: 12.345 }) });
    expect(res.status).toBe(201);
    const stream = await openSse(`${server.url}/sdk/v1/stream`);
    await stream.next((e) => e.event === 'snapshot');
    const code = await server.stop('SIGTERM');
    stream.close();
    expect(code).toBe(0);

    const again = await startServerProcess({ RAMPART_DATA_DIR: dir });
    try {
      const flag = (await (await fetch(`${again.url}/flags/durable`)).json()) as { percentage: number; version: number };
      expect(flag).toMatchObject({ percentage: 12.345, version: 1 });
    } finally {
      expect(await again.stop('SIGINT')).toBe(0);
    }
  });

  it('refuses a second live server on the same data folder with a clear message', async () => {
    const dir = tempDir();
    const first = await startServerProcess({ RAMPART_DATA_DIR: dir });
    try {
      await expect(startServerProcess({ RAMPART_DATA_DIR: dir })).rejects.toThrow(/lock|in use/i);
    } finally {
      await first.stop();
    }
  });

  it('warns loudly when it runs without tokens', async () => {
    const server = await startServerProcess({ RAMPART_DATA_DIR: tempDir(), LOG_LEVEL: 'info' });
    await server.stop();
    expect(server.output()).toContain('NO TOKENS CONFIGURED');
  });

  it('fails at start with exit 1 and the variable named for a bad configuration', () => {
    const run = spawnSync(process.execPath, [...TS_NODE_ARGS, 'src/cli.ts', 'serve'], { env: { PATH: process.env.PATH ?? '', PORT: 'eighty' }, encoding: 'utf8', timeout: 15_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('PORT');
    const open = spawnSync(process.execPath, [...TS_NODE_ARGS, 'src/cli.ts', 'serve'], { env: { PATH: process.env.PATH ?? '', HOST: '0.0.0.0' }, encoding: 'utf8', timeout: 15_000 });
    expect(open.status).toBe(1);
    expect(open.stderr).toContain('RAMPART_ADMIN_TOKENS');
  });

  it('prints usage for --help and exits 2 on an unknown command', () => {
    const help = spawnSync(process.execPath, [...TS_NODE_ARGS, 'src/cli.ts', '--help'], { encoding: 'utf8', timeout: 15_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('serve');
    const bad = spawnSync(process.execPath, [...TS_NODE_ARGS, 'src/cli.ts', 'dance'], { encoding: 'utf8', timeout: 15_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown command 'dance'");
  });
});
