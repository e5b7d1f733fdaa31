/**
 * The four contestants, each set up to evaluate one flag at a given percentage with no I/O.
 *
 * Every contestant has its own timing loop (not one shared loop calling a function argument),
 * so each call site stays monomorphic and the JIT can inline the call under test; a shared
 * loop would add the same megamorphic-call cost to all four and flatten the ratios.
 */
import { GrowthBookClient } from '@growthbook/growthbook';
import type { FeatureApiResponse } from '@growthbook/growthbook';
import murmur from 'murmurhash-js';
import { createClient } from '@rampart/sdk';
import { InMemStorageProvider, Unleash, UnleashEvents } from 'unleash-client';
import type { ClientFeaturesResponse, UnleashConfig } from 'unleash-client';

const { murmur3 } = murmur;

/** One evaluator under test. */
export interface Contestant {
  /** Short name used in tables and JSON. */
  readonly name: string;
  /** The exact call timed, for the report. */
  readonly call: string;
  /** One evaluation, for the sanity pass. */
  readonly check: (userId: string) => boolean;
  /** `calls` evaluations over `ids` from index `start`, wrapping around; returns how many were on. */
  readonly loop: (ids: readonly string[], start: number, calls: number) => number;
  readonly close: () => void;
}

/** The flag every contestant evaluates. Its groupId (hash salt) is the flag key everywhere. */
export interface FlagUnderTest {
  readonly key: string;
  /** Whole percentage, so Unleash's 1..100 normalisation can express it. */
  readonly percentage: number;
}

/**
 * The floor: the cheapest thing a percentage check can be, building the hash key and hashing it
 * with murmurhash-js (`% 100 < p` is Unleash's `% 100 + 1 <= p`). murmurhash-js, like Unleash's
 * murmurhash3js, hashes the low byte of each UTF-16 code unit, so it equals UTF-8 only for ASCII.
 */
export function floorContestant(flag: FlagUnderTest): Contestant {
  const groupId = flag.key;
  const p = flag.percentage;
  return {
    name: 'floor',
    call: "murmur3(groupId + ':' + userId, 0) % 100 < p   (murmurhash-js)",
    check: (userId) => murmur3(groupId + ':' + userId, 0) % 100 < p,
    loop: (ids, start, calls) => {
      const n = ids.length;
      let i = start % n;
      let on = 0;
      for (let c = 0; c < calls; c++) {
        if (murmur3(groupId + ':' + ids[i]!, 0) % 100 < p) on++;
        if (++i === n) i = 0;
      }
      return on;
    },
    close: () => undefined,
  };
}

/** Rampart: `isEnabled` of an offline client bootstrapped with the flag. */
export function rampartContestant(flag: FlagUnderTest): Contestant {
  const client = createClient({
    bootstrap: { revision: 1, flags: { [flag.key]: { enabled: true, percentage: flag.percentage } } },
    offline: true,
  });
  const key = flag.key;
  return {
    name: 'rampart',
    call: 'client.isEnabled(flagKey, userId)   (@rampart/sdk, offline bootstrap)',
    check: (userId) => client.isEnabled(key, userId),
    loop: (ids, start, calls) => {
      const n = ids.length;
      let i = start % n;
      let on = 0;
      for (let c = 0; c < calls; c++) {
        if (client.isEnabled(key, ids[i]!)) on++;
        if (++i === n) i = 0;
      }
      return on;
    },
    close: () => void client.close(),
  };
}

/** The Unleash options used: bootstrap only, nothing scheduled, nothing sent, nothing written. */
export function unleashConfig(flag: FlagUnderTest): UnleashConfig {
  const features: ClientFeaturesResponse['features'] = [
    {
      name: flag.key,
      enabled: true,
      strategies: [
        {
          name: 'flexibleRollout',
          parameters: { rollout: String(flag.percentage), stickiness: 'default', groupId: flag.key },
          constraints: [],
        },
      ],
    },
  ];
  return {
    appName: 'rampart-bench',
    // Port 1 refuses connections; with refreshInterval 0 the poller never fetches anyway.
    url: 'http://127.0.0.1:1/api/',
    refreshInterval: 0,
    disableMetrics: true,
    metricsInterval: 0,
    storageProvider: new InMemStorageProvider<ClientFeaturesResponse>(),
    bootstrap: { data: features },
    skipInstanceCountWarning: true,
  };
}

/**
 * Unleash: `isEnabled` with a flexibleRollout strategy loaded from bootstrap. Resolves once
 * Unleash reports `synchronized`; rejects after `timeoutMs`, or on any error or warning.
 */
export async function unleashContestant(flag: FlagUnderTest, timeoutMs: number): Promise<Contestant> {
  const unleash = new Unleash(unleashConfig(flag));
  const problems: string[] = [];
  unleash.on(UnleashEvents.Error, (error: Error) => problems.push(`error: ${error.message}`));
  unleash.on(UnleashEvents.Warn, (message: unknown) => problems.push(`warn: ${String(message)}`));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`unleash-client did not synchronize from bootstrap within ${timeoutMs} ms`));
      }, timeoutMs);
      unleash.once(UnleashEvents.Synchronized, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (!unleash.isSynchronized()) throw new Error('unleash-client is not synchronized');
    if (problems.length > 0) throw new Error(`unleash-client reported: ${problems.join('; ')}`);
  } catch (error) {
    unleash.destroy();
    throw error;
  }
  const key = flag.key;
  return {
    name: 'unleash',
    call: 'unleash.isEnabled(flagKey, { userId })   (unleash-client, bootstrap)',
    check: (userId) => unleash.isEnabled(key, { userId }),
    loop: (ids, start, calls) => {
      const n = ids.length;
      let i = start % n;
      let on = 0;
      for (let c = 0; c < calls; c++) {
        if (unleash.isEnabled(key, { userId: ids[i]! })) on++;
        if (++i === n) i = 0;
      }
      return on;
    },
    close: () => {
      if (problems.length > 0) throw new Error(`unleash-client reported: ${problems.join('; ')}`);
      unleash.destroy();
    },
  };
}

/** The GrowthBook payload used: one boolean feature forced on for `coverage` of users by `id`. */
export function growthBookPayload(flag: FlagUnderTest): FeatureApiResponse {
  return {
    features: {
      [flag.key]: {
        defaultValue: false,
        rules: [{ force: true, coverage: flag.percentage / 100, hashAttribute: 'id' }],
      },
    },
  };
}

/**
 * GrowthBook: the multi-user `GrowthBookClient.isOn(key, { attributes })`, initialised
 * synchronously from a local payload (no client key, no polling, no streaming). It is the
 * cheapest correct per-user call in 1.8. In a trial the alternatives were about 1.5x slower:
 * the single-user `GrowthBook` with `setAttributes({ id })` (async, re-renders) then `isOn`,
 * and `createScopedInstance({ attributes }).isOn` per user.
 */
export function growthBookContestant(flag: FlagUnderTest): Contestant {
  const gb = new GrowthBookClient().initSync({ payload: growthBookPayload(flag) });
  const key = flag.key;
  return {
    name: 'growthbook',
    call: 'gb.isOn(flagKey, { attributes: { id } })   (@growthbook/growthbook GrowthBookClient)',
    check: (userId) => gb.isOn(key, { attributes: { id: userId } }),
    loop: (ids, start, calls) => {
      const n = ids.length;
      let i = start % n;
      let on = 0;
      for (let c = 0; c < calls; c++) {
        if (gb.isOn(key, { attributes: { id: ids[i]! } })) on++;
        if (++i === n) i = 0;
      }
      return on;
    },
    close: () => {
      gb.destroy();
    },
  };
}
