import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FlagConfig } from '@rampart/sdk';
import { toFlagConfig } from '../../core/flag.js';
import type { Gauge } from '../../prometheus.js';
import type { FlagChange } from '../../core/flag.js';
import { etag, notModified, tagNumber } from '../conditional.js';
import type { AppliedChanges, SnapshotCache } from '../snapshot-cache.js';

export interface StreamOptions {
  /** Gauge of open streams, exported on /metrics. */
  readonly subscribers?: Gauge;
  readonly heartbeatMs?: number;
  /** Open streams allowed per token; the next one gets 429. */
  readonly maxStreamsPerToken?: number;
  /**
   * A stream that has carried no event (heartbeats aside) for this long is closed, with up to 10%
   * jitter so streams opened together do not all come back together; the SDK reconnects with
   * Last-Event-ID and misses nothing. Reaps clients that vanished without closing, and moves
   * streams onto replicas added since they connected. 0 never closes. Default 10 minutes.
   */
  readonly idleTimeoutMs?: number;
}

/** Default {@link StreamOptions.idleTimeoutMs}: 10 minutes. */
export const STREAM_IDLE_TIMEOUT_MS = 10 * 60_000;

/** One SSE frame. `data` is a single line of JSON, so no line splitting is needed. */
function frame(event: string, id: number, data: string): string {
  return `event: ${event}\nid: ${id}\ndata: ${data}\n\n`;
}

/** A `change` frame: the changed flags, null for deleted ones. */
export function changeFrame(changes: readonly FlagChange[], revision: number): string {
  const flags: Record<string, FlagConfig | null> = {};
  for (const change of changes) flags[change.key] = change.flag === null ? null : toFlagConfig(change.flag);
  return frame('change', revision, JSON.stringify({ revision, flags }));
}

function lastEventId(request: FastifyRequest): number | undefined {
  const header = request.headers['last-event-id'];
  const query = (request.query as Record<string, unknown> | undefined)?.lastEventId;
  const raw = typeof header === 'string' ? header : typeof query === 'string' ? query : undefined;
  if (raw === undefined || !/^\d{1,15}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

/** SDK delivery: the snapshot with ETag/304, and the server-sent event stream of changes. */
export function sdkRoutes(cache: SnapshotCache, options: StreamOptions = {}) {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxPerToken = options.maxStreamsPerToken ?? 1000;
  const idleTimeoutMs = options.idleTimeoutMs ?? STREAM_IDLE_TIMEOUT_MS;
  const openPerToken = new Map<string, number>();
  const open = new Set<FastifyReply>();
  // Every stream gets the same batch object: serialise it once, not once per connection.
  let lastBatch: AppliedChanges | undefined;
  let lastFrame = '';
  const frameOf = (applied: AppliedChanges): string => {
    if (applied !== lastBatch) {
      lastBatch = applied;
      lastFrame = changeFrame(applied.changes, applied.revision);
    }
    return lastFrame;
  };

  // The snapshot's ETag, made once per revision.
  let tagged = { revision: Number.NaN, tag: '' };
  const currentTag = (): string => {
    if (tagged.revision !== cache.revision) tagged = { revision: cache.revision, tag: etag(cache.revision) };
    return tagged.tag;
  };

  // A client that already saw a newer revision (on another replica) must not be sent back in
  // time: this replica re-reads the store first. Still behind after that means the store itself
  // went back (a Redis restored or reset), and then its older state is what there is.
  // One re-read serves every request waiting for it, so a burst of clients naming revisions that
  // do not exist costs one store call (a cheap one: the change feed after this replica's revision).
  // Synchronous when the replica is not behind, as on nearly every request: no promise to await.
  let catchingUp: Promise<void> | undefined;
  const catchUpTo = (revision: number | undefined): Promise<void> | undefined => {
    if (revision === undefined || revision <= cache.revision) return undefined;
    catchingUp ??= cache.resync().finally(() => {
      catchingUp = undefined;
    });
    return catchingUp;
  };

  return async (app: FastifyInstance): Promise<void> => {
    // preClose, not onClose: the server waits for open connections before onClose runs.
    app.addHook('preClose', async () => {
      for (const reply of open) reply.raw.end();
    });

    app.get('/sdk/v1/flags', { config: { access: 'sdk' } }, async (request, reply) => {
      const ifNoneMatch = request.headers['if-none-match'];
      // Naming the current revision, as nearly every poll does, cannot be ahead of it.
      if (ifNoneMatch !== undefined && ifNoneMatch !== currentTag()) {
        const behind = catchUpTo(tagNumber(ifNoneMatch));
        if (behind !== undefined) await behind;
      }
      const tag = currentTag();
      void reply.header('etag', tag).header('cache-control', 'no-cache');
      if (notModified(request, tag)) return reply.code(304).send();
      return reply.type('application/json; charset=utf-8').send(cache.snapshotJson);
    });

    app.get('/sdk/v1/stream', { config: { access: 'sdk' } }, async (request, reply) => {
      const token = request.principal.name;
      const count = openPerToken.get(token) ?? 0;
      if (count >= maxPerToken) {
        void reply.header('retry-after', '30');
        return reply.code(429).type('application/problem+json').send({
          type: 'https://rampart.dev/problems/rate-limited',
          title: 'Too many requests',
          status: 429,
          detail: `token '${token}' already has ${count} open streams (limit ${maxPerToken})`,
        });
      }
      openPerToken.set(token, count + 1);
      open.add(reply);
      options.subscribers?.inc({}, 1);

      // Changes that arrive while the catch-up is being read are queued, then sent in order.
      let sentRevision = -1;
      let pending: { text: string; revision: number }[] | undefined = [];
      const idle =
        idleTimeoutMs > 0
          ? setTimeout(() => {
              reply.raw.end(': idle, reconnect\n\n');
            }, idleTimeoutMs * (1 + Math.random() * 0.1))
          : undefined;
      const send = (text: string, revision: number): void => {
        if (revision <= sentRevision) return;
        sentRevision = revision;
        reply.raw.write(text);
        idle?.refresh();
      };
      const unsubscribe = cache.onChange((applied) => {
        const { revision } = applied;
        const text = frameOf(applied);
        if (pending === undefined) send(text, revision);
        else pending.push({ text, revision });
      });
      const heartbeat = setInterval(() => reply.raw.write(': heartbeat\n\n'), heartbeatMs);
      let cleaned = false;
      const cleanup = (): void => {
        if (cleaned) return;
        cleaned = true;
        clearInterval(heartbeat);
        clearTimeout(idle);
        unsubscribe();
        open.delete(reply);
        options.subscribers?.inc({}, -1);
        const left = (openPerToken.get(token) ?? 1) - 1;
        if (left <= 0) openPerToken.delete(token);
        else openPerToken.set(token, left);
      };
      // The client going away closes the request; the server ending the stream closes the response.
      request.raw.once('close', cleanup);
      reply.raw.once('close', cleanup);

      reply.hijack();
      reply.raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      reply.raw.write(`retry: 1000\n\n`);

      const since = lastEventId(request);
      const behind = catchUpTo(since);
      if (behind !== undefined) await behind;
      const missed = since === undefined ? undefined : await cache.changesSince(since).catch(() => undefined);
      if (missed === undefined) {
        send(frame('snapshot', cache.revision, cache.snapshotJson), cache.revision);
      } else if (missed.length > 0) {
        const last = missed[missed.length - 1]?.revision ?? cache.revision;
        send(changeFrame(missed, last), last);
      } else {
        sentRevision = since ?? -1;
      }
      // Replay what queued during the catch-up; frames at or below what was sent are skipped.
      const queued = pending;
      pending = undefined;
      for (const { text, revision } of queued) send(text, revision);
    });
  };
}
