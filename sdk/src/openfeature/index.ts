// OpenFeature providers over a RampartClient. Runtime imports come from @openfeature/core only
// (a peer of both SDKs), so the server provider does not need the web SDK installed, or vice versa.
import { ErrorCode, ServerProviderEvents } from '@openfeature/core';
import type {
  EvaluationContext as OpenFeatureContext,
  EventContext,
  EventHandler,
  JsonValue,
  Logger,
  ProviderEventEmitter,
  ResolutionDetails,
  TrackingEventDetails,
} from '@openfeature/core';
import type { Provider as ServerProvider } from '@openfeature/server-sdk';
import type { Provider as WebProvider } from '@openfeature/web-sdk';
// The package's own main entry, not ../client.js: one client module however the app imports it.
import { createClient } from '@rampart/sdk';
import type { ClientOptions, EvaluationContext, RampartClient } from '@rampart/sdk';

type AnyEvent = Parameters<ProviderEventEmitter<ServerProviderEvents>['addHandler']>[0];

/** The small event emitter OpenFeature subscribes to; handlers that throw are isolated. */
class Emitter implements ProviderEventEmitter<ServerProviderEvents> {
  readonly #handlers = new Map<AnyEvent, EventHandler[]>();
  emit(type: ServerProviderEvents, context?: EventContext): void {
    for (const handler of this.getHandlers(type)) {
      void (async () => handler(context as Parameters<EventHandler>[0]))().catch(() => undefined);
    }
  }
  addHandler(type: AnyEvent, handler: EventHandler): void {
    this.#handlers.set(type, [...this.getHandlers(type), handler]);
  }
  removeHandler(type: AnyEvent, handler: EventHandler): void {
    this.#handlers.set(type, this.getHandlers(type).filter((h) => h !== handler));
  }
  removeAllHandlers(type?: AnyEvent): void {
    if (type === undefined) this.#handlers.clear();
    else this.#handlers.delete(type);
  }
  getHandlers(type: AnyEvent): EventHandler[] {
    return this.#handlers.get(type) ?? [];
  }
  setLogger(_logger: Logger): this {
    return this;
  }
}

/** OpenFeature's context as Rampart's: `targetingKey` is the userId, other attributes stay for custom stickiness. */
function contextOf(context: OpenFeatureContext | undefined): EvaluationContext {
  const { targetingKey, ...rest } = context ?? {};
  return targetingKey === undefined ? rest : { ...rest, userId: targetingKey };
}

/** Shared by both providers: evaluation, events, tracking and lifecycle over one RampartClient. */
class RampartProviderBase {
  readonly metadata = { name: 'rampart' } as const;
  readonly events = new Emitter();
  /** The client this provider evaluates with. */
  readonly client: RampartClient;
  readonly #owned: boolean;
  #initialized = false;

  constructor(clientOrOptions: RampartClient | ClientOptions) {
    this.#owned = !('isEnabled' in clientOrOptions);
    this.client = 'isEnabled' in clientOrOptions ? clientOrOptions : createClient(clientOrOptions);
    this.client.on('change', ({ flags }) => {
      this.events.emit(ServerProviderEvents.ConfigurationChanged, { flagsChanged: [...flags] });
    });
    this.client.on('stale', () => {
      this.events.emit(ServerProviderEvents.Stale, { message: 'Rampart server unreachable: evaluating from the last good configuration' });
    });
    // The SDK emits the first READY when initialize() resolves; later ones mark a recovery.
    this.client.on('ready', () => {
      if (this.#initialized) this.events.emit(ServerProviderEvents.Ready);
    });
    // Errors while a config is in hand are covered by STALE; ERROR means there is no config at all.
    this.client.on('error', ({ error }) => {
      if (this.#initialized && this.client.status === 'error') this.events.emit(ServerProviderEvents.Error, { message: error.message });
    });
  }

  /** Waits for a first config; on timeout the SDK reports ERROR and the client keeps trying. */
  async initialize(): Promise<void> {
    try {
      await this.client.ready();
    } finally {
      this.#initialized = true;
    }
  }

  /** Closes the client if this provider created it. */
  async onClose(): Promise<void> {
    if (this.#owned) await this.client.close();
  }

  /** `eventName` is the flag key; details `{ ok?: boolean (default true), latencyMs?: number }`, `value` taken as latencyMs when latencyMs is absent. */
  track(eventName: string, context: OpenFeatureContext, details: TrackingEventDetails = {}): void {
    const latency = details.latencyMs ?? details.value;
    this.client.track(eventName, contextOf(context), { ok: details.ok !== false, ...(typeof latency === 'number' ? { latencyMs: latency } : {}) });
  }

  resolveBoolean(flagKey: string, defaultValue: boolean, context: OpenFeatureContext | undefined): ResolutionDetails<boolean> {
    const { value, reason, errorCode } = this.client.evaluate(flagKey, contextOf(context), defaultValue);
    if (errorCode !== undefined) return { value, reason, errorCode: ErrorCode[errorCode], errorMessage: `${errorCode} for flag '${flagKey}'` };
    return { value, reason, variant: value ? 'on' : 'off' };
  }

  mismatch<T>(flagKey: string, defaultValue: T): ResolutionDetails<T> {
    return { value: defaultValue, reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH, errorMessage: `Rampart flag '${flagKey}' is boolean` };
  }
}

/**
 * OpenFeature provider for `@openfeature/server-sdk`: boolean flags, evaluated locally and synchronously.
 *
 * @example
 * import { OpenFeature } from '@openfeature/server-sdk';
 * import { RampartProvider } from '@rampart/sdk/openfeature';
 * await OpenFeature.setProviderAndWait(new RampartProvider({ url, token }));
 * await OpenFeature.getClient().getBooleanValue('new-checkout', false, { targetingKey: 'user-42' });
 */
export class RampartProvider extends RampartProviderBase implements ServerProvider {
  readonly runsOn = 'server';

  async resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: OpenFeatureContext): Promise<ResolutionDetails<boolean>> {
    return this.resolveBoolean(flagKey, defaultValue, context);
  }
  async resolveStringEvaluation(flagKey: string, defaultValue: string): Promise<ResolutionDetails<string>> {
    return this.mismatch(flagKey, defaultValue);
  }
  async resolveNumberEvaluation(flagKey: string, defaultValue: number): Promise<ResolutionDetails<number>> {
    return this.mismatch(flagKey, defaultValue);
  }
  async resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T): Promise<ResolutionDetails<T>> {
    return this.mismatch(flagKey, defaultValue);
  }
}

/**
 * OpenFeature provider for `@openfeature/web-sdk` (static context): resolves synchronously with the global context.
 *
 * @example
 * import { OpenFeature } from '@openfeature/web-sdk';
 * import { RampartWebProvider } from '@rampart/sdk/openfeature';
 * await OpenFeature.setContext({ targetingKey: 'user-42' });
 * await OpenFeature.setProviderAndWait(new RampartWebProvider({ url, token }));
 * OpenFeature.getClient().getBooleanValue('new-checkout', false);
 */
export class RampartWebProvider extends RampartProviderBase implements WebProvider {
  readonly runsOn = 'client';

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: OpenFeatureContext): ResolutionDetails<boolean> {
    return this.resolveBoolean(flagKey, defaultValue, context);
  }
  resolveStringEvaluation(flagKey: string, defaultValue: string): ResolutionDetails<string> {
    return this.mismatch(flagKey, defaultValue);
  }
  resolveNumberEvaluation(flagKey: string, defaultValue: number): ResolutionDetails<number> {
    return this.mismatch(flagKey, defaultValue);
  }
  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T): ResolutionDetails<T> {
    return this.mismatch(flagKey, defaultValue);
  }
}
