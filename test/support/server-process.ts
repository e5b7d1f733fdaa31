// Runs `rampart serve` as a real child process from the TypeScript sources.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess extends RampartChild {
  readonly url: string;
}

let built = false;

/** Builds dist/ (what `npm start` runs) from the sources, once per process. */
export function buildDist(): void {
  if (built) return;
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'ignore' });
  built = true;
}

/** The node arguments that run a TypeScript entry point of this repository. */
export const TS_NODE_ARGS = ['--conditions=rampart-source', '--import', 'tsx'];

/** A `rampart <command>` child process: its output so far, and how to stop it. */
export interface RampartChild {
  readonly process: ChildProcess;
  readonly output: () => string;
  /** Sends `signal` (SIGKILL after 10 s) and resolves with the exit code or signal name. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/**
 * Spawns `rampart <command>` with `env` (plus PATH and HOME): from the TypeScript sources, or with
 * `dist: true` from the build `npm start` runs (`dist/cli.js`, made by `node scripts/build.mjs`).
 */
export function spawnRampart(command: string, env: Record<string, string>, options: { readonly dist?: boolean } = {}): RampartChild {
  const args = options.dist === true ? ['dist/cli.js', command] : [...TS_NODE_ARGS, 'src/cli.ts', command];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => { resolve(code ?? signal); }));
  return {
    process: child,
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Starts `rampart serve` with `env` and waits until /healthz answers. */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 15_000, options: { readonly dist?: boolean } = {}): Promise<ServerProcess> {
  const port = env.PORT ?? String(await freePort());
  const started = spawnRampart('serve', { LOG_LEVEL: 'warn', ...env, PORT: port }, options);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (started.process.exitCode !== null) throw new Error(`rampart serve exited with ${started.process.exitCode}:\n${started.output()}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(500) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      started.process.kill('SIGKILL');
      throw new Error(`rampart serve did not become healthy within ${timeoutMs} ms:\n${started.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...started, url };
}
