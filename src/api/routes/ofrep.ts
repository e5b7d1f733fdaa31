import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { evaluateFlag } from '@rampart/sdk';
import type { Evaluation } from '@rampart/sdk';
import { z } from 'zod';
import { toFlagConfig } from '../../core/flag.js';
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

type OfrepContext = Readonly<Record<string, unknown>>;

// OFREP's targetingKey is Rampart's userId; other attributes feed custom stickiness.
function toRampartContext(context: OfrepContext | undefined): Record<string, unknown> {
  const { targetingKey, ...attributes } = context ?? {};
  return targetingKey === undefined ? attributes : { ...attributes, userId: targetingKey };
}

interface OfrepSuccess {
  key: string;
  value: boolean;
  reason: string;
  variant: string;
  metadata: Record<string, string | number | boolean>;
}

interface OfrepFailure {
  key: string;
  errorCode: string;
  errorDetails: string;
}

function toOfrep(key: string, evaluation: Evaluation, revision: number): OfrepSuccess | OfrepFailure {
  if (evaluation.errorCode !== undefined) {
    const details: Record<string, string> = {
      FLAG_NOT_FOUND: `flag '${key}' does not exist`,
      TARGETING_KEY_MISSING: `flag '${key}' needs a targetingKey (or its stickiness attribute) in the context`,
      PARSE_ERROR: `flag '${key}' has an invalid configuration`,
      GENERAL: `flag '${key}' could not be evaluated`,
    };
    return { key, errorCode: evaluation.errorCode, errorDetails: details[evaluation.errorCode] ?? 'evaluation failed' };
  }
  return {
    key,
    value: evaluation.value,
    reason: evaluation.reason,
    variant: evaluation.value ? 'on' : 'off',
    metadata: { revision, ...(evaluation.bucket === undefined ? {} : { bucket: evaluation.bucket }) },
  };
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
  return async (app: FastifyInstance): Promise<void> => {
    app.post('/ofrep/v1/evaluate/flags/:key', { config: { access: 'sdk' }, schema: { params: keyParams, body: ofrepBody } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const context = (request.body as z.infer<typeof ofrepBody>)?.context;
      const flag = cache.flag(key);
      const result = toOfrep(key, evaluateFlag(key, flag === undefined ? undefined : toFlagConfig(flag), toRampartContext(context)), cache.revision);
      if ('errorCode' in result) return sendFailure(reply, result);
      return result;
    });

    app.post('/ofrep/v1/evaluate/flags', { config: { access: 'sdk' }, schema: { body: ofrepBody } }, async (request, reply) => {
      const context = (request.body as z.infer<typeof ofrepBody>)?.context;
      // The answer depends on the revision and the context, so both go into the ETag.
      const digest = createHash('sha256').update(JSON.stringify(context ?? {})).digest('base64url').slice(0, 16);
      const tag = `"${cache.revision}-${digest}"`;
      void reply.header('etag', tag);
      if (notModified(request, tag)) return reply.code(304).send();
      const rampartContext = toRampartContext(context);
      const flags = cache.sortedFlags.map((flag) => toOfrep(flag.key, evaluateFlag(flag.key, toFlagConfig(flag), rampartContext), cache.revision));
      return { flags, metadata: { revision: cache.revision } };
    });
  };
}
