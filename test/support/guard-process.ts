// Runs `rampart guard` as a real child process from the TypeScript sources.
import { spawnRampart } from './server-process.js';
import type { RampartChild } from './server-process.js';

/** A running `rampart guard` process. */
export type GuardProcess = RampartChild;

/** Starts `rampart guard` with `env` and waits until it logs that it started. */
export async function startGuardProcess(env: Record<string, string>, timeoutMs = 15_000): Promise<GuardProcess> {
  const started = spawnRampart('guard', { LOG_LEVEL: 'info', ...env });
  const deadline = Date.now() + timeoutMs;
  while (!started.output().includes('rampart guard started')) {
    if (started.process.exitCode !== null) throw new Error(`rampart guard exited with ${started.process.exitCode}:\n${started.output()}`);
    if (Date.now() > deadline) {
      started.process.kill('SIGKILL');
      throw new Error(`rampart guard did not start within ${timeoutMs} ms:\n${started.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return started;
}
