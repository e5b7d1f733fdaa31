import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { RampartError } from '../../core/errors.js';
import type { FieldError } from '../../core/errors.js';
import type { Counter, Registry } from '../../prometheus.js';
import type { Cohort, OutcomeEvent, OutcomeStore } from '../../store/outcome-store.js';
import { keyParams } from '../schemas.js';
import type { SnapshotCache } from '../snapshot-cache.js';

/** Bounds on what one token may send; each a positive whole number. */
export interface OutcomeLimits {
  /** Events in one batch; more is a 400. Default 500. */
  readonly maxBatchEvents?: number;
  /** Sustained batches per second per token (also the burst). Default 50. */
  readonly batchesPerSecond?: number;
  /** Sustained events per minute per token (also the burst). Default 20000. */
  readonly eventsPerMinute?: number;
  /** Longest `window` of a summary. Default: the store's retention, else 48 h. */
  readonly maxWindowMs?: number;
}

export interface OutcomeRoutesDeps {
  readonly outcomes: OutcomeStore;
  readonly cache: SnapshotCache;
  readonly registry: Registry;
  readonly limits?: OutcomeLimits;
  /** The server's clock: event times and rate limits. Default: the system clock. */
  readonly now?: () => Date;
}

const DEFAULT_WINDOW = '15m';
/** An SDK reporting a latency above an hour is sending garbage, not a slow request. */
const MAX_LATENCY_MS = 3_600_000;

const eventSchema = z.strictObject({
  flagKey: z.string().min(1).max(128),
  cohort: z.enum(['on', 'off'], { error: "cohort must be 'on' or 'off'" }),
  ok: z.boolean({ error: 'ok must be true or false' }),
  latencyMs: z
    .number({ error: 'latencyMs must be a number of milliseconds' })
    .min(0, 'latencyMs must be >= 0')
    .max(MAX_LATENCY_MS, `latencyMs must be at most ${MAX_LATENCY_MS} (1 hour)`)
    .optional(),
});

/** Why a batch's events were not counted (the `reason` label). */
type RejectReason = 'invalid' | 'batch-too-large' | 'unknown-flag' | 'rate-limited' | 'store-unavailable';

/** A token bucket: `capacity` tokens, refilled continuously at `perMs`. */
class Bucket {
  private tokens: number;
  private at: number;
  constructor(private readonly capacity: number, private readonly perMs: number, now: number) {
    this.tokens = capacity;
    this.at = now;
  }
  /** Takes `n` tokens, or answers how many ms until they would be there. */
  take(n: number, now: number): { ok: true } | { ok: false; waitMs: number } {
    this.tokens = Math.min(this.capacity, this.tokens + Math.max(0, now - this.at) * this.perMs);
    this.at = now;
    if (this.tokens >= n) {
      this.tokens -= n;
      return { ok: true };
    }
    return { ok: false, waitMs: (n - this.tokens) / this.perMs };
  }
  give(n: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + n);
  }
}

function positiveLimit(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RampartError('validation', `outcome limit ${name} must be a positive whole number, got ${value}`);
  return value;
}

function eventCount(body: unknown): number {
  const events = typeof body === 'object' && body !== null && 'events' in body ? body.events : undefined;
  // A body without an events array still counts, as one, so floods of junk show in the metric.
  return Array.isArray(events) ? Math.max(1, events.length) : 1;
}

function tooMany(reply: FastifyReply, waitMs: number, detail: string): RampartError {
  void reply.header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));
  return new RampartError('rate-limited', detail);
}

/**
 * Outcome routes: `POST /sdk/v1/outcomes` (what `track()` sends) and
 * `GET /flags/:key/outcomes` (the summary the guard decides on), as a plugin for `buildApp`.
 *
 * @example
 * const app = await buildApp({ ...deps, plugins: [outcomeRoutes({ outcomes, cache, registry })] });
 */
export function outcomeRoutes(deps: OutcomeRoutesDeps) {
  const limits = deps.limits ?? {};
  const maxBatch = positiveLimit(limits.maxBatchEvents ?? 500, 'maxBatchEvents');
  const batchesPerSecond = positiveLimit(limits.batchesPerSecond ?? 50, 'batchesPerSecond');
  const eventsPerMinute = positiveLimit(limits.eventsPerMinute ?? 20_000, 'eventsPerMinute');
  if (eventsPerMinute < maxBatch) throw new RampartError('validation', `outcome limit eventsPerMinute (${eventsPerMinute}) must be at least maxBatchEvents (${maxBatch})`);
  const maxWindowMs = positiveLimit(limits.maxWindowMs ?? deps.outcomes.retentionMs ?? 48 * 3_600_000, 'maxWindowMs');
  const now = deps.now ?? (() => new Date());

  const accepted: Counter = deps.registry.counter('rampart_outcomes_accepted_total', 'Outcome events counted, by flag and cohort.');
  const rejected: Counter = deps.registry.counter('rampart_outcomes_rejected_total', 'Outcome events refused (whole batches), by reason.');
  const reject = (reason: RejectReason, n: number): void => {
    rejected.inc({ reason }, n);
  };

  const perToken = new Map<string, { batches: Bucket; events: Bucket }>();
  const bucketsOf = (token: string, at: number): { batches: Bucket; events: Bucket } => {
    let buckets = perToken.get(token);
    if (buckets === undefined) {
      buckets = { batches: new Bucket(batchesPerSecond, batchesPerSecond / 1000, at), events: new Bucket(eventsPerMinute, eventsPerMinute / 60_000, at) };
      perToken.set(token, buckets);
    }
    return buckets;
  };

  const postBody = z.strictObject({
    events: z.array(eventSchema).max(maxBatch, `at most ${maxBatch} events per batch; split the batch`),
  });
  const summaryQuery = z.strictObject({
    window: z
      .string()
      .default(DEFAULT_WINDOW)
      .transform((text, ctx) => {
        let ms: number;
        try {
          ms = parseDuration(text);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'window is a number and a unit: ms, s, m, h, d or w (e.g. 15m)' });
          return z.NEVER;
        }
        if (ms < 1 || ms > maxWindowMs) {
          ctx.addIssue({ code: 'custom', message: `window must be between 1ms and ${formatDuration(maxWindowMs)} (the retention)` });
          return z.NEVER;
        }
        return ms;
      }),
  });

  return async (app: FastifyInstance): Promise<void> => {
    app.post(
      '/sdk/v1/outcomes',
      // attachValidation: the handler runs on a bad body too, to rate-limit and count it first.
      { config: { access: 'sdk' }, attachValidation: true, schema: { body: postBody } },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const at = now();
        const buckets = bucketsOf(request.principal.name, at.getTime());
        const batch = buckets.batches.take(1, at.getTime());
        if (!batch.ok) {
          reject('rate-limited', eventCount(request.body));
          throw tooMany(reply, batch.waitMs, `token '${request.principal.name}' sends more than ${batchesPerSecond} outcome batches per second`);
        }
        if (request.validationError !== undefined) {
          const n = eventCount(request.body);
          reject(n > maxBatch ? 'batch-too-large' : 'invalid', n);
          throw request.validationError;
        }
        const { events } = request.body as z.infer<typeof postBody>;
        const unknown: FieldError[] = [];
        events.forEach((event, i) => {
          if (deps.cache.flag(event.flagKey) === undefined) unknown.push({ path: `body.events.${i}.flagKey`, message: `flag '${event.flagKey}' does not exist` });
        });
        if (unknown.length > 0) {
          reject('unknown-flag', events.length);
          const first = unknown[0];
          throw new RampartError('validation', `${first?.path ?? 'body.events'}: ${first?.message ?? 'unknown flag'}${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''}; nothing of this batch was counted`, { errors: unknown });
        }
        const quota = buckets.events.take(events.length, at.getTime());
        if (!quota.ok) {
          // The batch slot is returned: nothing of this batch was accepted.
          buckets.batches.give(1);
          reject('rate-limited', events.length);
          throw tooMany(reply, quota.waitMs, `token '${request.principal.name}' sends more than ${eventsPerMinute} outcome events per minute`);
        }
        const outcomes: OutcomeEvent[] = events.map((event) => ({ flagKey: event.flagKey, cohort: event.cohort, ok: event.ok, latencyMs: event.latencyMs, at }));
        try {
          await deps.outcomes.record(outcomes);
        } catch (error) {
          buckets.events.give(events.length);
          reject('store-unavailable', events.length);
          throw error;
        }
        const perSeries = new Map<string, { flag: string; cohort: Cohort; n: number }>();
        for (const event of events) {
          const id = `${event.flagKey}\n${event.cohort}`;
          const entry = perSeries.get(id) ?? { flag: event.flagKey, cohort: event.cohort, n: 0 };
          entry.n += 1;
          perSeries.set(id, entry);
        }
        for (const { flag, cohort, n } of perSeries.values()) accepted.inc({ flag, cohort }, n);
        return reply.code(202).send({ accepted: events.length });
      },
    );

    app.get('/flags/:key/outcomes', { config: { access: 'admin' }, schema: { params: keyParams, querystring: summaryQuery } }, async (request) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const { window } = request.query as z.infer<typeof summaryQuery>;
      if (deps.cache.flag(key) === undefined) throw new RampartError('not-found', `flag '${key}' does not exist`);
      return deps.outcomes.summary(key, window, now());
    });
  };
}
