// The io of a real process: stdout, stderr, the environment, and a prompt when a person is there.
import { createInterface } from 'node:readline/promises';
import type { OpsIo } from './run-ops.js';

/** The process-bound io: asks confirmations only when a person is at the terminal. */
export function processIo(): OpsIo {
  const interactive = process.stdin.isTTY && process.stderr.isTTY;
  return {
    env: process.env,
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    ...(interactive
      ? {
          confirm: async (question: string) => {
            const rl = createInterface({ input: process.stdin, output: process.stderr });
            try {
              return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
            } finally {
              rl.close();
            }
          },
        }
      : {}),
  };
}

