// Drives the demo service with many users at a steady rate, for a bounded time, on loopback only.
//
//   node --import tsx examples/demo-service/load.ts --url http://127.0.0.1:3000 --users 1000 --rps 100 --seconds 30
//
// Prints one JSON summary line on stdout when done (or on SIGTERM/SIGINT): requests sent and the
// answers by status. Users are taken round-robin (`user-0` ... `user-<users-1>`), so every user is
// asked about equally often and the flag's percentage shows as the share of async answers.
import { parseArgs } from 'node:util';

/** What one run of the load does. */
export interface LoadOptions {
  readonly url: string;
  readonly users: number;
  readonly rps: number;
  readonly seconds: number;
}

/** Answers by status, and requests that got none. */
export interface LoadSummary {
  sent: number;
  byStatus: Record<string, number>;
  async: number;
  sync: number;
  errors: number;
  seconds: number;
}

const LIMITS = { users: 1_000_000, rps: 2000, seconds: 3600 } as const;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Parses and bounds the command line; throws an Error naming the bad argument. */
export function parseLoadArgs(argv: readonly string[]): LoadOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { url: { type: 'string' }, users: { type: 'string' }, rps: { type: 'string' }, seconds: { type: 'string' } },
    strict: true,
  });
  const url = values.url ?? 'http://127.0.0.1:3000';
  const host = new URL(url).hostname;
  if (!LOOPBACK.has(host)) throw new Error(`--url must be a loopback address (127.0.0.1, localhost, [::1]); got ${host}`);
  const bounded = (name: keyof typeof LIMITS, raw: string | undefined, fallback: number): number => {
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(value) || value <= 0 || value > LIMITS[name]) throw new Error(`--${name} must be a number above 0 and at most ${LIMITS[name]}, got '${String(raw)}'`);
    return value;
  };
  return { url, users: Math.floor(bounded('users', values.users, 1000)), rps: bounded('rps', values.rps, 50), seconds: bounded('seconds', values.seconds, 10) };
}

/**
 * Sends `rps` report requests a second for `seconds` (or until `signal` aborts), each for the next
 * user in turn, every request with a 5 s timeout.
 * @example await runLoad({ url: 'http://127.0.0.1:3000', users: 100, rps: 20, seconds: 5 })
 */
export async function runLoad(options: LoadOptions, signal?: AbortSignal): Promise<LoadSummary> {
  const summary: LoadSummary = { sent: 0, byStatus: {}, async: 0, sync: 0, errors: 0, seconds: 0 };
  const started = Date.now();
  const end = started + options.seconds * 1000;
  const pending = new Set<Promise<void>>();
  let next = 0;
  const one = async (user: string): Promise<void> => {
    try {
      const response = await fetch(`${options.url}/reports?user=${encodeURIComponent(user)}`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      const body = (await response.json().catch(() => ({}))) as { mode?: string };
      summary.byStatus[response.status] = (summary.byStatus[response.status] ?? 0) + 1;
      if (body.mode === 'async') summary.async += 1;
      else if (body.mode === 'sync') summary.sync += 1;
    } catch {
      summary.errors += 1;
    }
  };
  // Ticks of 50 ms, each sending what the rate owes by then, so the rate holds on a busy machine.
  while (Date.now() < end && signal?.aborted !== true) {
    const owed = Math.floor(((Date.now() - started) / 1000) * options.rps) - summary.sent;
    // At most 1000 requests in flight: a stalled service slows the load instead of piling it up.
    for (let i = 0; i < owed && pending.size < 1000; i++) {
      const request = one(`user-${next % options.users}`);
      next += 1;
      summary.sent += 1;
      pending.add(request);
      void request.finally(() => pending.delete(request));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await Promise.all(pending);
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  let options: LoadOptions;
  try {
    options = parseLoadArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`load: ${error instanceof Error ? error.message : String(error)}\nusage: load.ts --url http://127.0.0.1:3000 --users 1000 --rps 50 --seconds 10\n`);
    process.exit(2);
  }
  const controller = new AbortController();
  process.once('SIGTERM', () => { controller.abort(); });
  process.once('SIGINT', () => { controller.abort(); });
  const summary = await runLoad(options, controller.signal);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
