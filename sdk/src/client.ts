import { bucketWithPrefix, hashPrefix } from './bucketing.js';
import type { HashPrefix } from './bucketing.js';
import { evaluate, thresholdOf, unitIdOf } from './evaluate.js';
import type { Evaluation } from './evaluate.js';
import { DEFAULT_STICKINESS } from './snapshot.js';
import type { EvaluationContext, FlagConfig, FlagSnapshot } from './snapshot.js';

/** Options for {@link createClient}. */
export interface ClientOptions {
  /** A snapshot to evaluate from before (or instead of) talking to a server. */
  readonly bootstrap?: FlagSnapshot;
  /** Never contact a server: evaluate from `bootstrap` only. */
  readonly offline?: boolean;
}

/** `ready`: a config is in hand; `stale`: the config is old; `error`: no config at all. */
export type ClientStatus = 'ready' | 'stale' | 'error';

export interface ChangeEvent {
  readonly flags: readonly string[];
  readonly revision: number;
}

interface ClientEvents {
  change: ChangeEvent;
  stale: { readonly since: number };
  error: { readonly error: Error };
}

type Listener<T> = (event: T) => void;

/** A flag prepared for the hot path: the bound, salt and attribute resolved once per snapshot. */
interface CompiledFlag {
  readonly enabled: boolean;
  readonly threshold: number;
  /** Hash state after `groupId:`, so each call hashes only the unit id. */
  readonly prefix: HashPrefix;
  readonly stickiness: string;
}

function compile(snapshot: FlagSnapshot): Map<string, CompiledFlag> {
  const compiled = new Map<string, CompiledFlag>();
  for (const [key, flag] of Object.entries(snapshot.flags)) {
    // Same outcomes as evaluate(): a switched-off flag is off whatever else is wrong with it;
    // a malformed one is left out, so isEnabled gives the default.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (flag === null || typeof flag !== 'object') continue;
    const threshold = flag.enabled ? thresholdOf(flag) : 0;
    if (threshold === undefined) continue;
    compiled.set(key, {
      enabled: flag.enabled,
      threshold,
      prefix: hashPrefix(flag.groupId ?? key),
      stickiness: flag.stickiness ?? DEFAULT_STICKINESS,
    });
  }
  return compiled;
}

function changedKeys(before: FlagSnapshot | undefined, after: FlagSnapshot): string[] {
  const keys = new Set([...Object.keys(before?.flags ?? {}), ...Object.keys(after.flags)]);
  const same = (a: FlagConfig | undefined, b: FlagConfig | undefined): boolean =>
    a !== undefined &&
    b !== undefined &&
    a.enabled === b.enabled &&
    a.percentage === b.percentage &&
    a.groupId === b.groupId &&
    a.stickiness === b.stickiness;
  return [...keys].filter((key) => !same(before?.flags[key], after.flags[key]));
}

/**
 * Evaluates flags locally from the snapshot it holds. `isEnabled` is synchronous and does no I/O.
 *
 * @example
 * const client = createClient({ bootstrap: snapshot, offline: true });
 * if (client.isEnabled('async-reports', userId)) runAsync(); else runSync();
 */
export class RampartClient {
  #snapshot: FlagSnapshot | undefined;
  #compiled = new Map<string, CompiledFlag>();
  #status: ClientStatus = 'error';
  #listeners: { [E in keyof ClientEvents]: Set<Listener<ClientEvents[E]>> } = {
    change: new Set(),
    stale: new Set(),
    error: new Set(),
  };

  constructor(options: ClientOptions) {
    if (options.bootstrap !== undefined) this.setSnapshot(options.bootstrap);
  }

  /** `ready`, `stale` or `error` (no config in hand). */
  get status(): ClientStatus {
    return this.#status;
  }

  /** Revision of the snapshot in use, or -1 before any. */
  get revision(): number {
    return this.#snapshot?.revision ?? -1;
  }

  /** The snapshot in use, if any. */
  get snapshot(): FlagSnapshot | undefined {
    return this.#snapshot;
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
    if (!flag.enabled || flag.threshold <= 0) return false;
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
   * Subscribes to `change`, `stale` or `error`; returns a function that unsubscribes.
   *
   * @example
   * const off = client.on('change', ({ flags, revision }) => log(flags, revision));
   */
  on<E extends keyof ClientEvents>(event: E, listener: Listener<ClientEvents[E]>): () => void {
    const set = this.#listeners[event] as Set<Listener<ClientEvents[E]>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Resolves once a config is in hand; an offline client resolves at once. */
  ready(): Promise<void> {
    return this.#status === 'error'
      ? Promise.reject(new Error('Rampart client has no flag configuration (no bootstrap given)'))
      : Promise.resolve();
  }

  /** Releases everything the client holds. */
  close(): Promise<void> {
    for (const set of Object.values(this.#listeners)) set.clear();
    return Promise.resolve();
  }

  /** Replaces the snapshot in use and tells `change` listeners which flags changed. */
  protected setSnapshot(snapshot: FlagSnapshot): void {
    const flags = changedKeys(this.#snapshot, snapshot);
    this.#snapshot = snapshot;
    this.#compiled = compile(snapshot);
    this.#status = 'ready';
    if (flags.length > 0) this.emit('change', { flags, revision: snapshot.revision });
  }

  protected emit<E extends keyof ClientEvents>(event: E, payload: ClientEvents[E]): void {
    for (const listener of this.#listeners[event] as Set<Listener<ClientEvents[E]>>) {
      try {
        listener(payload);
      } catch {
        // A throwing listener must not break delivery to the others or the client itself.
      }
    }
  }
}

/**
 * Creates a client. This release evaluates from a bootstrap snapshot (`offline: true`);
 * the networked client (stream, polling, tracking) plugs into the same class.
 *
 * @example
 * const client = createClient({ bootstrap: { revision: 1, flags: { 'async-reports': { enabled: true, percentage: 10 } } }, offline: true });
 */
export function createClient(options: ClientOptions): RampartClient {
  if (options.offline !== true) {
    throw new TypeError('createClient: only offline clients ({ bootstrap, offline: true }) are supported in this release');
  }
  return new RampartClient(options);
}
