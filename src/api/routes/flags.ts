import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { evaluateFlag, percentageToThousandths } from '@rampart/sdk';
import { z } from 'zod';
import { isStoreUnavailable, RampartError } from '../../core/errors.js';
import { defaultFields, toFlagConfig } from '../../core/flag.js';
import type { ChangeMeta, Flag, FlagFields } from '../../core/flag.js';
import type { FlagStore } from '../../store/flag-store.js';
import { etag, ifMatch, ifNoneMatchAny, notModified } from '../conditional.js';
import { KeyedQueue } from '../keyed-queue.js';
import { changeReason, evaluateQuery, historyQuery, keyParams, patchFlagBody, putFlagBody } from '../schemas.js';
import type { PatchFlagBody } from '../schemas.js';

// Unconditional writes retry their read-modify-write on a concurrent change instead of failing.
const MAX_ATTEMPTS = 20;

const FIELDS = ['description', 'enabled', 'percentage', 'groupId', 'stickiness'] as const;

function fieldsOf(flag: Flag): FlagFields {
  return { description: flag.description, enabled: flag.enabled, percentage: flag.percentage, groupId: flag.groupId, stickiness: flag.stickiness };
}

function merge(base: FlagFields, body: PatchFlagBody): FlagFields {
  const out: Record<string, unknown> = { ...base };
  for (const field of FIELDS) if (body[field] !== undefined) out[field] = body[field];
  return out as unknown as FlagFields;
}

function sameFields(a: FlagFields, b: FlagFields): boolean {
  return FIELDS.every((f) => a[f] === b[f]);
}

function checkBodyKey(body: { key?: string | undefined }, key: string): void {
  if (body.key !== undefined && body.key !== key) {
    throw new RampartError('validation', `body key '${body.key}' does not match the URL key '${key}'`, { errors: [{ path: 'body.key', message: 'must equal the key in the URL' }] });
  }
}

function metaOf(request: FastifyRequest, bodyReason: string | undefined): ChangeMeta {
  const header = request.headers['x-change-reason'];
  let reason = bodyReason;
  if (reason === undefined && typeof header === 'string' && header !== '') {
    const parsed = changeReason.safeParse(header);
    if (!parsed.success) throw new RampartError('validation', 'X-Change-Reason must be at most 500 printable characters', { errors: [{ path: 'headers.x-change-reason', message: 'invalid' }] });
    reason = parsed.data;
  }
  return { actor: request.principal.name, source: 'api', at: new Date(), reason };
}


// RFC 9110: If-Match on a resource that does not exist fails the precondition (412).
function mismatch(key: string, current: Flag | undefined, wanted: number | '*'): RampartError {
  return current === undefined
    ? new RampartError('version-mismatch', `flag '${key}' does not exist, so If-Match: ${wanted === '*' ? '*' : `"${wanted}"`} cannot match`)
    : new RampartError('version-mismatch', `flag '${key}' is at version ${current.version}, not ${wanted}; re-read it and retry`);
}

/** Admin routes: `/flags` CRUD with compare-and-set, history and the "is this user in?" check. */
export function flagRoutes(store: FlagStore, audit: Logger) {
  const logChange = (key: string, before: Flag | undefined, after: Flag | undefined, meta: ChangeMeta): void => {
    audit.info({ flag: key, before: before ?? null, after: after ?? null, actor: meta.actor, source: meta.source, reason: meta.reason }, 'flag changed');
  };
  // A write that found the store unreachable fails the writes queued behind it, so no caller waits
  // longer than one store timeout (see KeyedQueue).
  const writes = new KeyedQueue({ shared: isStoreUnavailable });
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/flags', async () => {
      const { revision, flags } = await store.snapshot();
      return { revision, flags: [...flags].sort((a, b) => a.key.localeCompare(b.key)) };
    });

    app.get('/flags/:key', { schema: { params: keyParams } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const flag = await store.get(key);
      if (flag === undefined) throw new RampartError('not-found', `flag '${key}' does not exist`);
      const tag = etag(flag.version);
      void reply.header('etag', tag);
      if (notModified(request, tag)) return reply.code(304).send();
      return flag;
    });

    app.put('/flags/:key', { schema: { params: keyParams, body: putFlagBody } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const body = request.body as z.infer<typeof putFlagBody>;
      checkBodyKey(body, key);
      const createOnly = ifNoneMatchAny(request);
      const wanted = ifMatch(request);
      const meta = metaOf(request, body.reason);
      const fields = merge(defaultFields(key), body);
      return writes.run(key, async () => {
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const current = await store.get(key);
          if (createOnly && current !== undefined) throw new RampartError('already-exists', `flag '${key}' already exists (If-None-Match: *)`);
          if (wanted !== undefined && (current === undefined || (wanted !== '*' && current.version !== wanted))) throw mismatch(key, current, wanted);
          const result = await store.put(key, fields, current?.version ?? 0, meta);
          if (result.ok) {
            logChange(key, current, result.flag, meta);
            void reply.header('etag', etag(result.flag.version));
            if (result.created) void reply.header('location', `/flags/${key}`).code(201);
            return result.flag;
          }
          if (createOnly) throw new RampartError('already-exists', `flag '${key}' already exists (If-None-Match: *)`);
          if (wanted !== undefined) throw mismatch(key, result.current, wanted);
        }
        throw new RampartError('conflict', `flag '${key}' kept changing under this write; retry`);
      });
    });

    app.patch('/flags/:key', { schema: { params: keyParams, body: patchFlagBody } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const body = request.body as PatchFlagBody;
      checkBodyKey(body, key);
      const wanted = ifMatch(request);
      const meta = metaOf(request, body.reason);
      return writes.run(key, async () => {
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const current = await store.get(key);
          if (current === undefined) throw new RampartError('not-found', `flag '${key}' does not exist; create it with PUT`);
          if (wanted !== undefined && wanted !== '*' && current.version !== wanted) throw mismatch(key, current, wanted);
          const fields = merge(fieldsOf(current), body);
          if (sameFields(fields, fieldsOf(current))) {
            // A no-op changes nothing: no new version, no history entry.
            void reply.header('etag', etag(current.version));
            return current;
          }
          const result = await store.put(key, fields, current.version, meta);
          if (result.ok) {
            logChange(key, current, result.flag, meta);
            void reply.header('etag', etag(result.flag.version));
            return result.flag;
          }
          if (wanted !== undefined) throw mismatch(key, result.current, wanted);
        }
        throw new RampartError('conflict', `flag '${key}' kept changing under this write; retry`);
      });
    });

    app.delete('/flags/:key', { schema: { params: keyParams } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const wanted = ifMatch(request);
      const meta = metaOf(request, undefined);
      return writes.run(key, async () => {
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const current = await store.get(key);
          if (current === undefined) throw new RampartError('not-found', `flag '${key}' does not exist`);
          if (wanted !== undefined && wanted !== '*' && current.version !== wanted) throw mismatch(key, current, wanted);
          const result = await store.delete(key, current.version, meta);
          if (result.ok) {
            logChange(key, current, undefined, meta);
            return reply.code(204).send();
          }
          if (wanted !== undefined) throw mismatch(key, result.current, wanted);
        }
        throw new RampartError('conflict', `flag '${key}' kept changing under this delete; retry`);
      });
    });

    app.get('/flags/:key/history', { schema: { params: keyParams, querystring: historyQuery } }, async (request) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const { limit, before } = request.query as z.infer<typeof historyQuery>;
      const page = await store.history(key, { limit, before });
      if (page.entries.length === 0 && before === undefined && (await store.get(key)) === undefined) {
        throw new RampartError('not-found', `flag '${key}' does not exist and has no history`);
      }
      return page;
    });

    app.get('/flags/:key/evaluate', { schema: { params: keyParams, querystring: evaluateQuery } }, async (request) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const context = request.query as z.infer<typeof evaluateQuery>;
      const flag = await store.get(key);
      if (flag === undefined) throw new RampartError('not-found', `flag '${key}' does not exist`);
      const result = evaluateFlag(key, toFlagConfig(flag), context);
      const unitId = context[flag.stickiness];
      return {
        key,
        value: result.value,
        reason: result.reason,
        ...(result.errorCode === undefined ? {} : { errorCode: result.errorCode }),
        ...(result.bucket === undefined ? {} : { bucket: result.bucket }),
        threshold: percentageToThousandths(flag.percentage),
        enabled: flag.enabled,
        percentage: flag.percentage,
        groupId: flag.groupId,
        stickiness: flag.stickiness,
        ...(unitId === undefined ? {} : { unitId }),
        version: flag.version,
      };
    });
  };
}
