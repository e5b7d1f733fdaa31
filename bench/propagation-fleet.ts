/**
 * The streaming clients of bench/propagation.ts: all in the benchmark's own thread, or spread over
 * worker threads (`--workers N`) when one event loop cannot keep up with thousands of streams.
 * Times are epoch milliseconds (`performance.timeOrigin + performance.now()`), comparable across
 * threads.
 */
import { performance } from 'node:perf_hooks';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createClient } from '@rampart/sdk';
import type { RampartClient } from '@rampart/sdk';

/** Epoch ms with sub-millisecond precision, the same clock in every thread. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

/** N streaming SDK clients, wherever they run. */
export interface Fleet {
  /** Creates every client and waits until each is ready; resolves how many failed. */
  connect(): Promise<number>;
  /** When each client saw `revision` (NaN: not by `deadline`, epoch ms). */
  seen(revision: number, deadline: number): Promise<number[]>;
  /** Starts measuring how busy each event loop holding clients is. */
  startBusy(): Promise<void>;
  /** Fraction of time each such event loop was busy since startBusy. */
  busy(): Promise<number[]>;
  close(): Promise<void>;
}

interface FleetSpec {
  readonly url: string;
  /** The SDK token of each client, in order. */
  readonly tokens: readonly string[];
}

/** Clients in this thread. */
function localFleet(spec: FleetSpec): Fleet {
  const clients: RampartClient[] = [];
  const seenAt: Map<number, number>[] = [];
  let elu: EventLoopUtilization | undefined;
  return {
    async connect() {
      for (const token of spec.tokens) {
        const client = createClient({ url: spec.url, token, pollIntervalMs: 3_600_000, timeoutMs: 30_000 });
        const seen = new Map<number, number>();
        client.on('change', ({ revision }) => seen.set(revision, epochNow()));
        clients.push(client);
        seenAt.push(seen);
      }
      return (await Promise.allSettled(clients.map((c) => c.ready({ timeoutMs: 60_000 })))).filter((r) => r.status === 'rejected').length;
    },
    async seen(revision, deadline) {
      while (seenAt.some((m) => !m.has(revision)) && epochNow() < deadline) await new Promise((r) => setTimeout(r, 5));
      return seenAt.map((m) => m.get(revision) ?? Number.NaN);
    },
    async startBusy() {
      elu = performance.eventLoopUtilization();
    },
    async busy() {
      return [performance.eventLoopUtilization(elu).utilization];
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

type Request =
  | { readonly id: number; readonly op: 'connect' }
  | { readonly id: number; readonly op: 'seen'; readonly revision: number; readonly deadline: number }
  | { readonly id: number; readonly op: 'startBusy' | 'busy' | 'close' };

/** Clients spread evenly over `workers` worker threads, each running a local fleet. */
function workerFleet(spec: FleetSpec, workers: number): Fleet {
  const per = Math.ceil(spec.tokens.length / workers);
  // Node 20 does not carry `--import tsx` into worker threads: register tsx in the worker, then
  // load this file.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); });`;
  const threads = Array.from({ length: workers }, (_, w) => new Worker(boot, {
    eval: true,
    workerData: { fleet: { url: spec.url, tokens: spec.tokens.slice(w * per, (w + 1) * per) } satisfies FleetSpec },
  }));
  let next = 0;
  const ask = <T>(thread: Worker, request: Omit<Request, 'id'>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++next;
      const onMessage = (message: { id: number; result: T }): void => {
        if (message.id !== id) return;
        thread.off('message', onMessage);
        thread.off('error', reject);
        resolve(message.result);
      };
      thread.on('message', onMessage);
      thread.once('error', reject);
      thread.postMessage({ ...request, id });
    });
  const all = <T>(request: Omit<Request, 'id'>): Promise<T[]> => Promise.all(threads.map((t) => ask<T>(t, request)));
  return {
    async connect() {
      return (await all<number>({ op: 'connect' })).reduce((a, b) => a + b, 0);
    },
    async seen(revision, deadline) {
      return (await all<number[]>({ op: 'seen', revision, deadline } as Omit<Request, 'id'>)).flat();
    },
    async startBusy() {
      await all({ op: 'startBusy' });
    },
    async busy() {
      return (await all<number[]>({ op: 'busy' })).flat();
    },
    async close() {
      await all({ op: 'close' });
      await Promise.all(threads.map((t) => t.terminate()));
    },
  };
}

/**
 * The fleet of `tokens.length` clients: in this thread with `workers` 0, else over worker threads.
 *
 * @example
 * const fleet = createFleet({ url, tokens }, 2); await fleet.connect();
 */
export function createFleet(spec: FleetSpec, workers: number): Fleet {
  return workers > 0 ? workerFleet(spec, workers) : localFleet(spec);
}

// Worker thread: serve one local fleet.
const data = workerData as { fleet?: FleetSpec } | null;
if (!isMainThread && parentPort !== null && data?.fleet !== undefined) {
  const port = parentPort;
  const fleet = localFleet(data.fleet);
  port.on('message', (request: Request) => {
    const reply = (result: unknown): void => { port.postMessage({ id: request.id, result }); };
    switch (request.op) {
      case 'connect':
        void fleet.connect().then(reply);
        break;
      case 'seen':
        void fleet.seen(request.revision, request.deadline).then(reply);
        break;
      case 'startBusy':
        void fleet.startBusy().then(reply);
        break;
      case 'busy':
        void fleet.busy().then(reply);
        break;
      case 'close':
        void fleet.close().then(reply);
        break;
    }
  });
}
