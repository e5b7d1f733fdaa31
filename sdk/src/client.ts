import { bucketWithPrefix, hashPrefix, thresholdFor } from './bucketing.js';
import type { HashPrefix } from './bucketing.js';
import { evaluate, flagOf, unitIdOf } from './evaluate.js';
import type { Evaluation } from './evaluate.js';
import { DEFAULT_STICKINESS } from './snapshot.js';
import type { EvaluationContext, FlagConfig, FlagSnapshot } from './snapshot.js';

/**
 * Where the last good snapshot survives a restart: four lines, any backend.
 *
 * @example
 * const memory: SnapshotStorage = { load: async () => saved, save: async (s) => { saved = s; } };
 */
export interface SnapshotStorage {
  /** The saved snapshot JSON, or undefined when there is none. */
  load(): Promise<string | undefined>;
  save(snapshot: string): Promise<void>;
}

/** Options for {@link createClient}. */
export interface ClientOptions {
  /** Base URL of the Rampart server, e.g. `https://flags.example.com`. */
  readonly url?: string;
  /** SDK token, sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** A snapshot to evaluate from before (or instead of) talking to a server. */
  readonly bootstrap?: FlagSnapshot;
  /** Never contact a server: evaluate from `bootstrap` only. */
  readonly offline?: boolean;
  /** Live updates over server-sent events (default true); false polls only. */
  readonly stream?: boolean;
  /** Poll interval (default 30 000 ms, ±20 % jitter); polls run while no stream is connected. */
  readonly pollIntervalMs?: number;
  /** Timeout of every request and of connecting the stream (default 10 000 ms); `ready()`'s default. */
  readonly timeoutMs?: number;
  /** No word from the server for this long makes the status `stale` (default 2 × pollIntervalMs). */
  readonly staleAfterMs?: number;
  /** A stream silent this long (not even a heartbeat) is dead and reconnected (default 37 500 ms). */
  readonly heartbeatTimeoutMs?: number;
  /** The fetch to use (default the platform's). */
  readonly fetch?: typeof fetch;
  /** Keeps the last good snapshot across restarts; used when the server is unreachable at start. */
  readonly storage?: SnapshotStorage;
}

/** `ready`: config in hand and the server in touch; `stale`: config in hand, server away; `error`: no config. */
export type ClientStatus = 'ready' | 'stale' | 'error';

/** Payload of `change`: the keys whose config changed and the revision now in use. */
export interface ChangeEvent {
  readonly flags: readonly string[];
  readonly revision: number;
}

/** What {@link RampartClient.on} can listen to. */
export interface ClientEvents {
  change: ChangeEvent;
  ready: { readonly revision: number };
  stale: { readonly since: number };
  error: { readonly error: Error };
}

/** One outcome: did the work guarded by the flag succeed, and how long it took. */
export interface Outcome {
  readonly ok: boolean;
  readonly latencyMs?: number;
}

type Listener<T> = (event: T) => void;

/** A flag prepared for the hot path: the bound, salt and attribute resolved once per snapshot. */
interface CompiledFlag {
  /** Exclusive bucket bound; 0 when the toggle is off. */
  readonly threshold: number;
  /** Hash state after `groupId:`, so each call hashes only the unit id. */
  readonly prefix: HashPrefix;
  readonly stickiness: string;
}

/** Same outcomes as evaluate(): a switched-off flag is off whatever else is wrong; a malformed one is left out. */
function compile(key: string, flag: FlagConfig | null | undefined): CompiledFlag | undefined {
  if (flag == null || typeof flag !== 'object') return undefined;
  const threshold = flag.enabled ? thresholdFor(flag.percentage) : 0;
  return threshold === undefined
    ? undefined
    : { threshold, prefix: hashPrefix(flag.groupId ?? key), stickiness: flag.stickiness ?? DEFAULT_STICKINESS };
}

/** Configs come from one server's serialiser, so equal configs serialise equally. */
const same = (a: FlagConfig | null | undefined, b: FlagConfig | null | undefined): boolean => a != null && JSON.stringify(a) === JSON.stringify(b);

/** ±20 %, so a fleet restarted together does not keep asking in step. */
const jitter = (ms: number): number => ms * (0.8 + Math.random() * 0.4);

type Changes = Record<string, FlagConfig | null>;

/** An HTTP failure: the status and the Retry-After (ms) the server asked for. */
interface HttpError extends Error {
  status?: number;
  wait?: number;
}

/**
 * Evaluates flags locally from the snapshot it holds, kept live over SSE (or polling).
 * `isEnabled` is synchronous and does no I/O.
 *
 * @example
 * const client = createClient({ url: 'https://flags.example.com', token: sdkToken });
 * await client.ready({ timeoutMs: 2000 });
 * if (client.isEnabled('async-reports', userId)) runAsync(); else runSync();
 */
export class RampartClient {
  #snapshot: FlagSnapshot | undefined;
  #compiled = new Map<string, CompiledFlag>();
  #status: ClientStatus = 'error';
  #listeners: { [E in keyof ClientEvents]?: Set<Listener<never>> } = {};
  #resolve: (() => void) | undefined;
  #ready = new Promise<void>((resolve) => (this.#resolve = resolve));
  #timeout: number;
  #track: ((key: string, context: EvaluationContext, outcome: Outcome) => void) | undefined;
  #stop: (() => Promise<void>) | undefined;
  #dropped = 0;

  constructor(options: ClientOptions) {
    this.#timeout = options.timeoutMs ?? 10_000;
    if (options.bootstrap !== undefined) this.setSnapshot(options.bootstrap);
    if (options.offline !== true && options.url !== undefined) this.#connect(options, options.url);
  }

  /** `ready`, `stale` (server away, evaluating from the last good config) or `error` (no config in hand). */
  get status(): ClientStatus {
    return this.#status;
  }

  /** Revision of the snapshot in use, or -1 before any. */
  get revision(): number {
    return this.#snapshot?.revision ?? -1;
  }

  /** Outcomes not delivered: the buffer (10 000) was full while the server was away, the flag is unknown, or the server refused the batch (4xx). */
  get droppedOutcomes(): number {
    return this.#dropped;
  }

  /**
   * Whether `flagKey` is on for a user (or context). Synchronous, no I/O, no lasting allocation.
   * An unknown flag or a context without the flag's unit id gives `defaultValue`; a flag whose
   * toggle is off gives false.
   *
   * @example
   * client.isEnabled('new-analyzer', 'user-42');
   * client.isEnabled('new-analyzer', { userId: 'user-42', tenantId: 't-7' });
   */
  isEnabled(flagKey: string, userIdOrContext: EvaluationContext, defaultValue = false): boolean {
    const flag = this.#compiled.get(flagKey);
    if (flag === undefined) return defaultValue;
    // A switched-off flag compiles to threshold 0: nobody is in.
    if (flag.threshold <= 0) return false;
    const unitId = unitIdOf(userIdOrContext, flag.stickiness);
    if (unitId === undefined) return defaultValue;
    return bucketWithPrefix(flag.prefix, unitId) < flag.threshold;
  }

  /**
   * The value with its reason, error code and bucket.
   *
   * @example
   * client.evaluate('new-analyzer', 'user-42'); // { value, reason: 'SPLIT', bucket } (bucket in 0..99999)
   */
  evaluate(flagKey: string, userIdOrContext: EvaluationContext, defaultValue = false): Evaluation {
    return evaluate(this.#snapshot, flagKey, userIdOrContext, defaultValue);
  }

  /**
   * Records an outcome under the cohort (`on`/`off`) the user is in right now; sent in batches
   * to `POST /sdk/v1/outcomes`. A no-op on an offline client.
   *
   * @example
   * const started = performance.now();
   * try { await work(); client.track('new-analyzer', userId, { ok: true, latencyMs: performance.now() - started }); }
   * catch { client.track('new-analyzer', userId, { ok: false }); }
   */
  track(flagKey: string, userIdOrContext: EvaluationContext, outcome: Outcome): void {
    this.#track?.(flagKey, userIdOrContext, outcome);
  }

  /**
   * Subscribes to `change`, `ready`, `stale` or `error`; returns a function that unsubscribes.
   *
   * @example
   * const off = client.on('change', ({ flags, revision }) => log(flags, revision));
   */
  on<E extends keyof ClientEvents>(event: E, listener: Listener<ClientEvents[E]>): () => void {
    const set = (this.#listeners[event] ??= new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Resolves once a config is in hand (server, storage or bootstrap); rejects after `timeoutMs`
   * (default the client's `timeoutMs`) while the client keeps trying in the background.
   *
   * @example
   * await client.ready({ timeoutMs: 2000 }).catch(() => log('flags not loaded yet: defaults apply'));
   */
  ready({ timeoutMs = this.#timeout }: { readonly timeoutMs?: number } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      // An offline client without a bootstrap will never have a config: reject at once.
      const timer = setTimeout(reject, this.#stop ? timeoutMs : 0, Error(`Rampart: no flag configuration within ${timeoutMs} ms`));
      void this.#ready.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Stops the stream, polls and timers, sends the outcomes still buffered (within `timeoutMs`)
   * and removes every listener. Nothing keeps the process alive afterwards.
   *
   * @example
   * process.once('SIGTERM', () => void client.close());
   */
  async close(): Promise<void> {
    await this.#stop?.();
    this.#listeners = {};
  }

  /** Replaces the snapshot in use and tells `change` listeners which flags changed. */
  protected setSnapshot(snapshot: FlagSnapshot, status: ClientStatus = 'ready'): void {
    const changes: Changes = Object.create(null) as Changes;
    for (const key in this.#snapshot?.flags) changes[key] = null;
    Object.assign(changes, snapshot.flags);
    this.#compiled = new Map();
    this.#apply(snapshot.revision, changes, status, snapshot);
  }

  #emit<E extends keyof ClientEvents>(event: E, payload: ClientEvents[E]): void {
    for (const listener of this.#listeners[event] ?? []) {
      try {
        listener(payload as never);
      } catch {
        // A throwing listener must not break delivery to the others or the client itself.
      }
    }
  }

  #apply(revision: number, changes: Readonly<Changes>, status: ClientStatus, snapshot?: FlagSnapshot): void {
    // Own keys only, even `__proto__`: a null-prototype copy has no setters to trip over.
    const flags = Object.assign(Object.create(null), this.#snapshot?.flags) as Record<string, FlagConfig>;
    const keys: string[] = [];
    for (const key in changes) {
      const next = changes[key];
      const compiled = compile(key, next);
      if (!same(flags[key], next)) keys.push(key);
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a null-prototype copy keyed by flag
      if (next == null) delete flags[key];
      else flags[key] = next;
      if (compiled) this.#compiled.set(key, compiled);
      else this.#compiled.delete(key);
    }
    this.#snapshot = snapshot ?? { revision, flags };
    if (keys.length > 0) this.#emit('change', { flags: keys, revision });
    this.#set(status);
  }

  #set(status: ClientStatus, since = Date.now()): void {
    if (status === this.#status) return;
    this.#status = status;
    this.#resolve?.();
    this.#emit(status as 'ready', status === 'ready' ? { revision: this.revision } : ({ since } as never));
  }

  /** The network side: stream with poll fallback, staleness, storage and outcome batches. */
  #connect(o: ClientOptions, url: string): void {
    const f = o.fetch ?? fetch;
    const base = `${url.replace(/\/$/, '')}/sdk/v1/`;
    const auth = o.token === undefined ? {} : { authorization: `Bearer ${o.token}` };
    const pollMs = o.pollIntervalMs ?? 30_000;
    const stored = o.storage?.load().catch(() => undefined);
    const timers = new Set<unknown>();
    const aborts = new Set<AbortController>();
    let closed = false;
    let live = false;
    let etag = '';
    let retry = 1000;
    let fails = 0;
    let outFails = 0;
    let staleTimer: unknown;
    let flushTimer: unknown;
    const queue: object[] = [];
    let sending: Promise<void> | undefined;

    const later = (fn: () => unknown, ms: number): unknown => {
      if (closed) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        fn();
      }, ms);
      timers.add(timer);
      return timer;
    };
    /**
     * One request; the exchange is aborted when `kick`'s timer runs out (armed with `timeoutMs`,
     * re-armed by the stream on every chunk). Any status but 2xx and 304 throws an HttpError.
     */
    const call = async (path: string, init: { method?: string; headers?: Record<string, string>; body?: string }, read: (res: Response, kick: (ms: number) => void) => unknown): Promise<void> => {
      const ac = new AbortController();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const kick = (ms: number): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          ac.abort(Error(`Rampart ${path}: timeout`));
        }, ms);
      };
      aborts.add(ac);
      kick(this.#timeout);
      try {
        const res = await f(base + path, {
          ...init,
          headers: { ...auth, ...init.headers },
          signal: ac.signal,
        });
        if (!res.ok && res.status !== 304) {
          throw Object.assign(Error(`Rampart ${path}: ${res.status}`), { status: res.status, wait: Number(res.headers.get('retry-after')) * 1000 || 0 });
        }
        await read(res, kick);
      } finally {
        clearTimeout(timer);
        aborts.delete(ac);
        ac.abort();
      }
    };
    const ok = (): void => {
      const since = Date.now();
      clearTimeout(staleTimer as number);
      staleTimer = later(() => {
        if (this.#status === 'ready') this.#set('stale', since);
      }, o.staleAfterMs ?? 2 * pollMs);
      if (this.#status === 'stale') this.#set('ready');
    };
    const failed = (error: unknown): void => {
      this.#emit('error', { error: error as Error });
      void stored
        ?.then((json) => {
          if (json !== undefined && this.#status === 'error') this.setSnapshot(JSON.parse(json) as FlagSnapshot, 'stale');
        })
        .catch(() => 0);
    };
    const save = (): void => {
      void o.storage?.save(JSON.stringify(this.#snapshot)).catch(() => 0);
    };

    const poll = async (): Promise<void> => {
      if (!live) {
        try {
          // An empty If-None-Match matches nothing: the first poll gets the snapshot.
          await call('flags', { headers: { 'if-none-match': etag } }, async (res) => {
            if (res.status === 304) return;
            const snapshot = (await res.json()) as FlagSnapshot;
            // A stream that connected meanwhile is newer than this answer.
            if (live) return;
            etag = res.headers.get('etag') ?? etag;
            this.setSnapshot(snapshot);
            save();
          });
          ok();
        } catch (error) {
          if (!closed) failed(error);
        }
      }
      later(poll, jitter(pollMs));
    };

    const frame = (block: string): void => {
      const field = (name: string): string | undefined => RegExp(`^${name}: ?(.*)`, 'm').exec(block)?.[1];
      const event = field('event');
      const data = JSON.parse(field('data') ?? 'null') as FlagSnapshot;
      retry = Number(field('retry')) || retry;
      if (event === 'snapshot') this.setSnapshot(data);
      else if (event === 'change') this.#apply(data.revision, data.flags, 'ready');
      else return;
      save();
    };
    const stream = async (): Promise<void> => {
      while (!closed) {
        let wait = 0;
        try {
          const revision = this.revision;
          await call('stream', { headers: { accept: 'text/event-stream', ...(revision < 0 ? {} : { 'last-event-id': `${revision}` }) } }, async (res, kick) => {
            const reader = (res.body as ReadableStream<Uint8Array>).getReader();
            const decoder = new TextDecoder();
            let buffer = '';
            live = true;
            fails = 0;
            for (;;) {
              const { done, value } = await reader.read();
              if (done) throw Error('Rampart stream: end');
              kick(o.heartbeatTimeoutMs ?? 37_500);
              ok();
              buffer += decoder.decode(value, { stream: true });
              // CR, LF or CRLF line ends; a blank line ends a frame.
              for (let end; (end = /\r\n\r\n|\n\n|\r\r/.exec(buffer)); buffer = buffer.slice(end.index + end[0].length)) frame(buffer.slice(0, end.index));
            }
          });
        } catch (error) {
          wait = (error as HttpError).wait ?? 0;
          // close() may have run during the await: its abort is not a failure.
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (!closed) failed(error);
        }
        live = false;
        await new Promise<void>((resolve) => later(resolve, Math.max(wait, jitter(Math.min(30_000, retry * 2 ** fails++)))));
      }
    };

    // Events stay queued until the server has them, so the bound covers those in flight too.
    const flush = (): Promise<void> =>
      (sending ??= (async () => {
        clearTimeout(flushTimer as number);
        flushTimer = undefined;
        while (queue.length > 0) {
          const events = queue.slice(0, 500);
          try {
            await call('outcomes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) }, () => (outFails = 0));
          } catch (error) {
            const { status = 500, wait = 0 } = error as HttpError;
            failed(error);
            // A refused batch (4xx) would be refused again; anything else is retried later.
            if (status > 499 || status === 429) {
              flushTimer = later(flush, Math.max(wait, Math.min(30_000, 1000 * 2 ** outFails++)));
              return;
            }
            this.#dropped += events.length;
          }
          queue.splice(0, events.length);
        }
      })().finally(() => (sending = undefined)));

    this.#track = (flagKey, context, { ok: success, latencyMs }) => {
      // The server refuses a whole batch naming an unknown flag, so one typo must not cost 499 others.
      if (queue.length >= 10_000 || !flagOf(this.#snapshot, flagKey)) {
        this.#dropped++;
        return;
      }
      // JSON.stringify leaves out an undefined latencyMs; a bad one is dropped, not the event.
      queue.push({ flagKey, cohort: this.isEnabled(flagKey, context) ? 'on' : 'off', ok: success, latencyMs: Number.isFinite(latencyMs) && (latencyMs ?? -1) >= 0 ? latencyMs : undefined });
      if (queue.length >= 500) void flush();
      else flushTimer ??= later(flush, 1000);
    };

    this.#stop = async () => {
      closed = true;
      clearTimeout(staleTimer as number);
      for (const timer of timers) clearTimeout(timer as number);
      // Outcomes in flight finish first (each within timeoutMs), then the stream and polls stop.
      await sending;
      for (const ac of aborts) ac.abort();
      // The last flush tries each batch once: no retry timer is armed once closed.
      await flush();
    };

    ok();
    if (o.stream !== false) void stream();
    later(poll, o.stream === false ? 0 : jitter(pollMs));
  }
}

/**
 * Creates a client: `{ url, token }` for a live one (stream, poll fallback, outcome tracking),
 * or `{ bootstrap, offline: true }` to evaluate a fixed snapshot without any network.
 *
 * @example
 * const client = createClient({ url: 'https://flags.example.com', token: process.env.RAMPART_SDK_TOKEN });
 * await client.ready({ timeoutMs: 2000 });
 * client.isEnabled('async-reports', 'user-42');
 */
export function createClient(options: ClientOptions): RampartClient {
  if (options.offline !== true && typeof options.url !== 'string') {
    throw new TypeError('Rampart: createClient needs a url, or a bootstrap with offline: true');
  }
  return new RampartClient(options);
}
