import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isStoreUnavailable, RampartError } from '../../core/errors.js';
import type { FieldError } from '../../core/errors.js';
import type { Flag } from '../../core/flag.js';
import { applyCommand } from '../../core/rollout/commands.js';
import type { RolloutCommand } from '../../core/rollout/commands.js';
import type { RolloutPlan } from '../../core/rollout/plan.js';
import { applyTarget, initialState, omit } from '../../core/rollout/state.js';
import type { FlagTarget, RolloutState } from '../../core/rollout/state.js';
import type { FlagStore } from '../../store/flag-store.js';
import type { NewDecision, RolloutRecord, RolloutStore } from '../../store/rollout-store.js';
import { KeyedQueue } from '../keyed-queue.js';
import { planJson, rolloutPlanBody, toRolloutPlan } from '../rollout-schema.js';
import type { RolloutPlanBody } from '../rollout-schema.js';
import { keyParams } from '../schemas.js';

/**
 * What the rollout routes need.
 *
 * @example
 * const deps: RolloutRoutesDeps = { flags: store, rollouts, storeRedis: true };
 */
export interface RolloutRoutesDeps {
  /** The flag store, unwrapped: writes made for the plan are not manual changes. */
  readonly flags: FlagStore;
  readonly rollouts: RolloutStore;
  /** Whether the store is one Redis (not the embedded store, not a cluster), so a Redis source without `url` has a Redis to read. */
  readonly storeRedis: boolean;
  readonly now?: () => number;
}

const decisionsQuery = z.strictObject({
  limit: z.coerce.number().int('limit must be a whole number').min(1).max(200).default(50),
  before: z.string().min(1).max(100).optional(),
});
// No body at all arrives as null; an empty object and an absent body mean the same.
const commandBody = z.strictObject({ reason: z.string().max(500).optional() }).nullish();

const COMMANDS: readonly RolloutCommand[] = ['pause', 'resume', 'approve', 'abort'];

/** The plan and its state as `GET /flags/:key/rollout` shows them. */
function view(record: RolloutRecord): Record<string, unknown> {
  const { state, plan } = record;
  const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
  const names = [...plan.criteria, ...(plan.stages[state.stage]?.criteria ?? [])].map((c) => c.name);
  return {
    flagKey: record.flagKey,
    version: record.version,
    status: state.status,
    stage: state.stage,
    percentage: plan.stages[state.stage]?.percentage ?? 0,
    stageStartedAt: iso(state.stageStartedAt),
    nextCheckAt: state.status === 'running' || state.status === 'awaiting-approval' ? iso(state.nextCheckAt) : null,
    ...(state.lastCheckAt === undefined ? {} : { lastCheckAt: iso(state.lastCheckAt) }),
    ...(state.reason === undefined ? {} : { reason: state.reason }),
    ...(state.approvedStage === undefined ? {} : { approvedStage: state.approvedStage }),
    ...(state.wouldHave === undefined ? {} : { wouldHave: { action: state.wouldHave.action, at: iso(state.wouldHave.at), reason: state.wouldHave.reason } }),
    criteria: names.map((name) => {
      const c = state.criteria[name];
      const latest = c?.latest;
      return {
        name,
        passes: c?.passes ?? 0,
        consecutiveFails: c?.consecutiveFails ?? 0,
        latest: latest === undefined ? null : { ...latest, at: iso(latest.at) },
      };
    }),
    plan: planJson(plan),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    updatedBy: record.updatedBy,
  };
}


// Redis sources without `url` read the store's Redis; the embedded store and a Redis Cluster
// (whose queues may sit on any node) give none to default to.
function redisUrlErrors(body: RolloutPlanBody): FieldError[] {
  const errors: FieldError[] = [];
  const scan = (list: RolloutPlanBody['criteria'], path: string): void => {
    list.forEach((c, i) => {
      if (c.source.type === 'redis' && c.source.url === undefined) {
        errors.push({ path: `${path}.${i}.source.url`, message: 'required: this server has no single store Redis to default to (it uses the embedded store or a Redis Cluster)' });
      }
    });
  };
  scan(body.criteria, 'body.criteria');
  body.stages.forEach((s, i) => {
    scan(s.criteria ?? [], `body.stages.${i}.criteria`);
  });
  return errors;
}

/**
 * Rollout plan routes: install, read, pause/resume/approve/abort and the decision history.
 * Registered only through `AppDeps.plugins` by the composition root.
 *
 * @example
 * await buildApp({ ...deps, plugins: [rolloutRoutes({ flags: store, rollouts, storeRedis: true })] });
 */
export function rolloutRoutes(deps: RolloutRoutesDeps) {
  const clock = deps.now ?? Date.now;
  // As for flag writes: a store outage fails the queued commands at once, not one timeout each.
  const queue = new KeyedQueue({ shared: isStoreUnavailable });

  const mustFlag = async (key: string): Promise<Flag> => {
    const flag = await deps.flags.get(key);
    if (flag === undefined) throw new RampartError('not-found', `flag '${key}' does not exist`);
    return flag;
  };
  const mustPlan = async (key: string): Promise<RolloutRecord> => {
    const record = await deps.rollouts.get(key);
    if (record === undefined) throw new RampartError('not-found', `flag '${key}' has no rollout plan; install one with PUT /flags/${key}/rollout`);
    return record;
  };

  /** Writes the flag fields a plan wants (compare-and-set, re-read on a concurrent change) and clears the pending write. */
  const applyFlag = async (record: RolloutRecord, target: FlagTarget, actor: string, reason: string, now: number): Promise<RolloutRecord> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const flag = await mustFlag(record.flagKey);
      const fields = applyTarget(flag, target);
      const unchanged = fields.enabled === flag.enabled && fields.percentage === flag.percentage;
      const result = unchanged ? { ok: true as const, flag } : await deps.flags.put(record.flagKey, fields, flag.version, { actor, source: 'api', at: new Date(now), reason });
      if (!result.ok) continue;
      for (let again = 0; again < 10; again++) {
        const current = await mustPlan(record.flagKey);
        const next: RolloutRecord = { ...omit(current, 'pending'), version: current.version + 1, flagVersion: result.flag.version };
        const written = await deps.rollouts.write(next, current.version);
        if (written.ok) return next;
      }
      throw new RampartError('conflict', `the plan of '${record.flagKey}' kept changing; retry`);
    }
    throw new RampartError('conflict', `flag '${record.flagKey}' kept changing under this write; retry`);
  };

  const writeState = async (
    key: string,
    actor: string,
    now: number,
    change: (record: RolloutRecord | undefined, flag: Flag) => { plan: RolloutPlan; state: RolloutState; flag?: FlagTarget | undefined; action: string; reason: string },
  ): Promise<{ record: RolloutRecord; created: boolean }> =>
    queue.run(key, async () => {
      for (let attempt = 0; attempt < 10; attempt++) {
        const flag = await mustFlag(key);
        const current = await deps.rollouts.get(key);
        const next = change(current, flag);
        const at = new Date(now).toISOString();
        const record: RolloutRecord = {
          flagKey: key,
          version: (current?.version ?? 0) + 1,
          plan: next.plan,
          state: next.state,
          // A command that sets no flag fields leaves the flag bookkeeping alone, including a
          // guard's pending flag write (a crash between its plan and flag writes must still finish).
          flagVersion: next.flag === undefined && current !== undefined ? current.flagVersion : flag.version,
          fence: current?.fence ?? 0,
          createdAt: current === undefined || next.action === 'install' ? at : current.createdAt,
          updatedAt: at,
          updatedBy: actor,
          ...(next.flag === undefined
            ? current?.pending === undefined
              ? {}
              : { pending: current.pending }
            : { pending: { expectedVersion: flag.version, fields: applyTarget(flag, next.flag), reason: next.reason.slice(0, 500) } }),
        };
        const decision: NewDecision = {
          flagKey: key, at, actor, planVersion: record.version, stage: next.state.stage, status: next.state.status,
          action: next.action, reason: next.reason, samples: [], ...(next.flag === undefined ? {} : { flag: next.flag }),
        };
        const written = await deps.rollouts.write(record, current?.version ?? 0, { decision });
        if (!written.ok) continue;
        const done = next.flag === undefined ? record : await applyFlag(record, next.flag, actor, next.reason.slice(0, 500), now);
        return { record: done, created: current === undefined };
      }
      throw new RampartError('conflict', `the plan of '${key}' kept changing under this request; retry`);
    });

  return async (app: FastifyInstance): Promise<void> => {
    app.put('/flags/:key/rollout', { schema: { params: keyParams, body: rolloutPlanBody } }, async (request, reply) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const body = request.body as RolloutPlanBody;
      if (!deps.storeRedis) {
        const errors = redisUrlErrors(body);
        const first = errors[0];
        if (first !== undefined) throw new RampartError('validation', `${first.path}: ${first.message}`, { errors });
      }
      const plan = toRolloutPlan(body);
      const now = clock();
      const actor = request.principal.name;
      const { record, created } = await writeState(key, actor, now, () => {
        const state = initialState(plan, now);
        return { plan, state, flag: { enabled: true, percentage: plan.stages[0]?.percentage ?? 0 }, action: 'install', reason: body.reason ?? `plan installed by ${actor}` };
      });
      if (created) void reply.code(201).header('location', `/flags/${key}/rollout`);
      return view(record);
    });

    app.get('/flags/:key/rollout', { schema: { params: keyParams } }, async (request) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      return view(await mustPlan(key));
    });

    for (const command of COMMANDS) {
      app.post(`/flags/:key/rollout/${command}`, { schema: { params: keyParams, body: commandBody } }, async (request: FastifyRequest) => {
        const { key } = request.params as z.infer<typeof keyParams>;
        const reasonText = (request.body as z.infer<typeof commandBody>)?.reason;
        await mustPlan(key);
        const now = clock();
        const actor = request.principal.name;
        const { record } = await writeState(key, actor, now, (current) => {
          if (current === undefined) throw new RampartError('not-found', `flag '${key}' has no rollout plan`);
          const result = applyCommand(current.plan, current.state, command, now, actor);
          const reason = reasonText === undefined ? result.reason : `${result.reason}: ${reasonText}`;
          return { plan: current.plan, state: result.state, flag: result.flag, action: command, reason };
        });
        return view(record);
      });
    }

    app.get('/flags/:key/rollout/decisions', { schema: { params: keyParams, querystring: decisionsQuery } }, async (request) => {
      const { key } = request.params as z.infer<typeof keyParams>;
      const { limit, before } = request.query as z.infer<typeof decisionsQuery>;
      const page = await deps.rollouts.decisions(key, { limit, before });
      if (page.entries.length === 0 && before === undefined) await mustPlan(key);
      return page;
    });
  };
}
