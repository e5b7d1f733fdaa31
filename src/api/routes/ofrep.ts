import { hash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { notModified } from '../conditional.js';
import { CLOSE, JsonBytes, ofrepFailure, prepareFlag, unitsOf } from '../ofrep-answers.js';
import type { OfrepFailure, PreparedFlag } from '../ofrep-answers.js';
import { PROBLEM_BASE } from '../problem.js';
import { FLAG_KEY_PATTERN } from '../../core/flag.js';
import { keyParams } from '../schemas.js';
import type { SnapshotCache } from '../snapshot-cache.js';
import { parseOrThrow } from '../validation.js';

/** OFREP request body: `{ context: { targetingKey, ...attributes } }`. */
export const ofrepBody = z
  .object({
    context: z.record(z.string(), z.unknown(), { error: 'context must be a JSON object' }).optional(),
  })
  // OFREP lets a client send no body at all: that is an empty context.
  .nullish();

const JSON_TYPE = 'application/json; charset=utf-8';
const BULK_OPEN = Buffer.from('{"flags":[');
const COMMA = Buffer.from(',');
const BULK_CLOSE = Buffer.from('],"metadata":{"revision":');

type OfrepContext = Readonly<Record<string, unknown>>;

const isJsonObject = (value: unknown): value is OfrepContext => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The context of an OFREP body. A well-formed body (none, or an object whose `context` is absent
 * or an object) passes without running zod, as nearly every request does; anything else is
 * handed to the schema for its exact field errors.
 */
function contextOf(body: unknown): OfrepContext | undefined {
  if (body === undefined || body === null) return undefined;
  if (isJsonObject(body)) {
    const { context } = body;
    if (context === undefined || isJsonObject(context)) return context;
  }
  return parseOrThrow(ofrepBody, body, 'body')?.context;
}

/** The flag key of the URL; a valid one passes without running zod, as in contextOf. */
function keyOf(params: unknown): string {
  const key = (params as { key?: unknown }).key;
  if (typeof key === 'string' && FLAG_KEY_PATTERN.test(key)) return key;
  return parseOrThrow(keyParams, params, 'params').key;
}

// OFREP's targetingKey is Rampart's userId; other attributes feed custom stickiness.
function toRampartContext(context: OfrepContext | undefined): OfrepContext {
  if (context === undefined) return EMPTY_CONTEXT;
  const { targetingKey } = context;
  if (targetingKey === undefined) return context;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(context)) if (name !== 'targetingKey') out[name] = context[name];
  out.userId = targetingKey;
  return out;
}

const EMPTY_CONTEXT: OfrepContext = Object.freeze({});

/** A digest naming a context in a bulk answer's ETag (the context itself may carry personal data). */
function contextTag(contextJson: string): string {
  return hash('sha256', contextJson, 'base64url').slice(0, 16);
}

/** The snapshot's flags in key order, prepared once per revision. */
interface Prepared {
  readonly revision: number;
  readonly flags: readonly PreparedFlag[];
  readonly byKey: ReadonlyMap<string, PreparedFlag>;
  /** Bytes enough for a bulk answer in which every flag succeeds. */
  readonly bulkBytes: number;
  /** Recent bulk answers at this revision by context JSON (see RECENT_BULK_ANSWERS). */
  readonly recent: Map<string, { readonly tag: string; readonly body: string }>;
  /** Contexts asked for once at this revision, whose answers are not kept yet. */
  readonly seen: Set<string>;
}

/**
 * Bulk answers kept per revision, by the exact JSON of their context: the pages a server renders
 * for one user, or one user's tabs, ask for the same context again and again. An answer is kept
 * from the second time its context is asked for (a context asked once, as most are under heavy
 * traffic, only leaves its JSON in a list of contexts seen, so one-off answers do not churn the
 * heap). At most this many of each (answers about 5 KB for 50 flags), the oldest dropped first; a
 * new revision starts empty.
 */
export const RECENT_BULK_ANSWERS = 1000;

/** Makes room for one more entry in a bounded set or map: drops its oldest when it is full. */
function makeRoom(entries: { readonly size: number; keys(): IterableIterator<string>; delete(key: string): boolean }): void {
  if (entries.size >= RECENT_BULK_ANSWERS) entries.delete(entries.keys().next().value as string);
}

function prepare(cache: SnapshotCache): Prepared {
  const { revision } = cache;
  const flags = cache.sortedFlags.map((flag) => {
    const config = cache.snapshot.flags[flag.key];
    if (config === undefined) throw new Error(`flag '${flag.key}' is missing from the snapshot`);
    return prepareFlag(flag.key, config, revision);
  });
  const bulkBytes = flags.reduce((sum, f) => sum + f.maxBytes + 1, BULK_OPEN.length + BULK_CLOSE.length + 32);
  return { revision, flags, byKey: new Map(flags.map((f) => [f.key, f])), bulkBytes, recent: new Map(), seen: new Set() };
}

function sendFailure(reply: FastifyReply, failure: OfrepFailure): FastifyReply {
  const status = failure.errorCode === 'FLAG_NOT_FOUND' ? 404 : 400;
  // OFREP's failure fields, plus the RFC 9457 fields so the body is also a problem document.
  return reply.code(status).type('application/json').send({
    ...failure,
    type: `${PROBLEM_BASE}ofrep-${failure.errorCode.toLowerCase().replace(/_/g, '-')}`,
    title: 'Flag evaluation failed',
    status,
    detail: failure.errorDetails,
  });
}

/** OpenFeature Remote Evaluation Protocol: single and bulk evaluation from the snapshot cache. */
export function ofrepRoutes(cache: SnapshotCache) {
  let prepared: Prepared | undefined;
  const current = (): Prepared => {
    if (prepared?.revision !== cache.revision) prepared = prepare(cache);
    return prepared;
  };

  return async (app: FastifyInstance): Promise<void> => {
    app.post('/ofrep/v1/evaluate/flags/:key', { config: { access: 'sdk' } }, async (request, reply) => {
      const key = keyOf(request.params);
      const context = contextOf(request.body);
      const flag = current().byKey.get(key);
      if (flag === undefined) return sendFailure(reply, ofrepFailure(key, 'FLAG_NOT_FOUND'));
      const out = new JsonBytes(flag.maxBytes);
      const errorCode = flag.writeAnswer(unitsOf(toRampartContext(context)), out);
      if (errorCode !== undefined) return sendFailure(reply, ofrepFailure(key, errorCode));
      return reply.type(JSON_TYPE).send(out.text());
    });

    app.post('/ofrep/v1/evaluate/flags', { config: { access: 'sdk' } }, async (request, reply) => {
      const context = contextOf(request.body);
      const { revision, flags, bulkBytes, recent, seen } = current();
      const json = JSON.stringify(context ?? {});
      let answer = recent.get(json);
      if (answer === undefined) {
        // The answer depends on the revision and the context, so both go into the ETag.
        const tag = `"${revision}-${contextTag(json)}"`;
        const units = unitsOf(toRampartContext(context));
        const out = new JsonBytes(bulkBytes);
        out.append(BULK_OPEN);
        for (let i = 0; i < flags.length; i++) {
          const flag = flags[i] as PreparedFlag;
          if (i > 0) out.append(COMMA);
          const errorCode = flag.writeAnswer(units, out);
          if (errorCode !== undefined) out.append(flag.failureBytes(errorCode));
        }
        out.append(BULK_CLOSE);
        out.integer(revision);
        out.append(CLOSE);
        answer = { tag, body: out.text() };
        if (seen.delete(json)) {
          makeRoom(recent);
          recent.set(json, answer);
        } else {
          makeRoom(seen);
          seen.add(json);
        }
      }
      void reply.header('etag', answer.tag);
      if (notModified(request, answer.tag)) return reply.code(304).send();
      return reply.type(JSON_TYPE).send(answer.body);
    });
  };
}
