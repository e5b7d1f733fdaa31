import { hash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { evaluateFlag } from '@rampart/sdk';
import type { Evaluation, FlagConfig } from '@rampart/sdk';
import { z } from 'zod';
import { notModified } from '../conditional.js';
import { PROBLEM_BASE } from '../problem.js';
import { keyParams } from '../schemas.js';
import type { SnapshotCache } from '../snapshot-cache.js';

/** OFREP request body: `{ context: { targetingKey, ...attributes } }`. */
export const ofrepBody = z
  .object({
    context: z.record(z.string(), z.unknown(), { error: 'context must be a JSON object' }).optional(),
  })
  // OFREP lets a client send no body at all: that is an empty context.
  .nullish();

const JSON_TYPE = 'application/json; charset=utf-8';

type OfrepContext = Readonly<Record<string, unknown>>;

// OFREP's targetingKey is Rampart's userId; other attributes feed custom stickiness.
function toRampartContext(context: OfrepContext | undefined): Record<string, unknown> {
  const { targetingKey, ...attributes } = context ?? {};
  return targetingKey === undefined ? attributes : { ...attributes, userId: targetingKey };
}

interface OfrepFailure {
  key: string;
  errorCode: string;
  errorDetails: string;
}

function failure(key: string, errorCode: string): OfrepFailure {
  const details: Record<string, string> = {
    FLAG_NOT_FOUND: `flag '${key}' does not exist`,
    TARGETING_KEY_MISSING: `flag '${key}' needs a targetingKey (or its stickiness attribute) in the context`,
    PARSE_ERROR: `flag '${key}' has an invalid configuration`,
    GENERAL: `flag '${key}' could not be evaluated`,
  };
  return { key, errorCode, errorDetails: details[errorCode] ?? 'evaluation failed' };
}

/** One flag of the snapshot, with what every evaluation of it at this revision shares. */
interface PreparedFlag {
  readonly key: string;
  readonly config: FlagConfig;
  /** `{"key":"<key>","value":`: the start of its success answer, serialised once. */
  readonly head: string;
}

/** The snapshot's flags in key order, prepared once per revision. */
interface Prepared {
  readonly revision: number;
  readonly flags: readonly PreparedFlag[];
  readonly byKey: ReadonlyMap<string, PreparedFlag>;
}

function prepare(cache: SnapshotCache): Prepared {
  const flags = cache.sortedFlags.map((flag) => {
    const config = cache.snapshot.flags[flag.key];
    if (config === undefined) throw new Error(`flag '${flag.key}' is missing from the snapshot`);
    return { key: flag.key, config, head: `{"key":${JSON.stringify(flag.key)},"value":` };
  });
  return { revision: cache.revision, flags, byKey: new Map(flags.map((f) => [f.key, f])) };
}

/**
 * One evaluation as OFREP JSON. A success is assembled from the prepared head, so the bulk route
 * does not build and serialise an object per flag: `{ key, value, reason, variant, metadata }`,
 * metadata being `{ revision, bucket }` (no bucket when the flag is off for everyone).
 */
function ofrepJson(flag: PreparedFlag, evaluation: Evaluation, revision: number): string {
  if (evaluation.errorCode !== undefined) return JSON.stringify(failure(flag.key, evaluation.errorCode));
  const bucket = evaluation.bucket === undefined ? '' : `,"bucket":${evaluation.bucket}`;
  return `${flag.head}${evaluation.value},"reason":${JSON.stringify(evaluation.reason)},"variant":"${evaluation.value ? 'on' : 'off'}","metadata":{"revision":${revision}${bucket}}}`;
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
    app.post('/ofrep/v1/evaluate/flags/:key', { config: { access: 'sdk' }, schema: { params: keyParams, body: ofrepBody } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const context = (request.body as z.infer<typeof ofrepBody>)?.context;
      const { revision, byKey } = current();
      const flag = byKey.get(key);
      if (flag === undefined) return sendFailure(reply, failure(key, 'FLAG_NOT_FOUND'));
      const evaluation = evaluateFlag(key, flag.config, toRampartContext(context));
      if (evaluation.errorCode !== undefined) return sendFailure(reply, failure(key, evaluation.errorCode));
      return reply.type(JSON_TYPE).send(ofrepJson(flag, evaluation, revision));
    });

    app.post('/ofrep/v1/evaluate/flags', { config: { access: 'sdk' }, schema: { body: ofrepBody } }, async (request, reply) => {
      const context = (request.body as z.infer<typeof ofrepBody>)?.context;
      const { revision, flags } = current();
      // The answer depends on the revision and the context, so both go into the ETag.
      const digest = hash('sha256', JSON.stringify(context ?? {}), 'base64url').slice(0, 16);
      const tag = `"${revision}-${digest}"`;
      void reply.header('etag', tag);
      if (notModified(request, tag)) return reply.code(304).send();
      const rampartContext = toRampartContext(context);
      let body = '{"flags":[';
      for (let i = 0; i < flags.length; i++) {
        const flag = flags[i] as PreparedFlag;
        if (i > 0) body += ',';
        body += ofrepJson(flag, evaluateFlag(flag.key, flag.config, rampartContext), revision);
      }
      body += `],"metadata":{"revision":${revision}}}`;
      return reply.type(JSON_TYPE).send(body);
    });
  };
}
