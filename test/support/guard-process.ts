// Runs `rampart guard` as a real child process from the TypeScript sources.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TS_NODE_ARGS } from './server-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GuardProcess {
  readonly process: ChildProcess;
  readonly output: () => string;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code or signal name. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/** Starts `rampart guard` with `env` and waits until it logs that it started. */
export async function startGuardProcess(env: Record<string, string>, timeoutMs = 15_000): Promise<GuardProcess> {
  const child = spawn(process.execPath, [...TS_NODE_ARGS, 'src/cli.ts', 'guard'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => { resolve(code ?? signal); }));
  const deadline = Date.now() + timeoutMs;
  while (!output.includes('rampart guard started')) {
    if (child.exitCode !== null) throw new Error(`rampart guard exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`rampart guard did not start within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
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
