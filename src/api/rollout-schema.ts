// The rollout plan as `PUT /flags/:key/rollout` accepts it, parsed into the core model. Every
// rule that can be checked without I/O is checked here, so a stored plan always makes sense.
import { isValidPercentage } from '@rampart/sdk';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { formatDuration, parseDuration } from '../core/duration.js';
import type { Criterion, RolloutPlan, SourceSpec, Stage } from '../core/rollout/plan.js';

const duration = z
  .string()
  .refine((text) => {
    try {
      return parseDuration(text) > 0;
    } catch {
      return false;
    }
  }, 'a duration is a positive number and one of ms, s, m, h, d, w (e.g. 15m)')
  .transform((text) => parseDuration(text));

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a name is 1-64 characters of letters, digits, ".", "_" and "-"');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).max(2048);
const redisUrl = z.string().max(2048).regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL');
const action = z.enum(['revert', 'step-back', 'disable', 'pause']);

const source = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('outcomes'), window: duration }),
    z.strictObject({
      type: z.literal('redis'),
      url: redisUrl.optional(),
      command: z.enum(['LLEN', 'GET', 'XLEN', 'ZCARD', 'HGET']),
      key: z.string().min(1).max(1024),
      field: z.string().min(1).max(1024).optional(),
    }),
    z.strictObject({ type: z.literal('prometheus'), url: httpUrl, query: z.string().min(1).max(4096) }),
    z.strictObject({
      type: z.literal('http'),
      url: httpUrl,
      path: z.string().max(512).regex(/^(\/[^/]*)*$/, 'a JSON pointer such as /errorRate'),
      headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(4096)).optional(),
    }),
  ],
  { error: 'unknown source type: use outcomes, redis, prometheus or http' },
);

const criterion = z
  .strictObject({
    name,
    source,
    metric: z.enum(['successRate', 'errorRate', 'count', 'p50', 'p95', 'p99']).optional(),
    op: z.enum(['<', '<=', '>', '>=', '==', '!=']).optional(),
    threshold: z.number().optional(),
    compare: z.literal('control').optional(),
    maxDrop: z.number().min(0).max(1).optional(),
    alpha: z.number().gt(0).lt(0.5).optional(),
    minSamples: z.number().int().min(0).optional(),
    for: duration.optional(),
    onFail: action.optional(),
    dryRun: z.boolean().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.compare === 'control') {
      if (c.source.type !== 'outcomes') ctx.addIssue({ code: 'custom', path: ['compare'], message: 'compare: control needs an outcomes source' });
      if (c.op !== undefined || c.threshold !== undefined) ctx.addIssue({ code: 'custom', path: ['op'], message: 'compare: control uses maxDrop, not op and threshold' });
      if (c.metric !== undefined && c.metric !== 'successRate') ctx.addIssue({ code: 'custom', path: ['metric'], message: 'compare: control compares successRate' });
    } else {
      if (c.op === undefined) ctx.addIssue({ code: 'custom', path: ['op'], message: 'op is required (or compare: control)' });
      if (c.threshold === undefined) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'threshold is required (or compare: control)' });
      if (c.maxDrop !== undefined || c.alpha !== undefined) ctx.addIssue({ code: 'custom', path: ['maxDrop'], message: 'maxDrop and alpha only go with compare: control' });
    }
    if (c.metric !== undefined && c.source.type !== 'outcomes') ctx.addIssue({ code: 'custom', path: ['metric'], message: 'metric only applies to an outcomes source' });
  });

const percentage = z.number().refine(isValidPercentage, 'percentage must be between 0 and 100 with at most 3 decimals');

const stage = z.strictObject({
  percentage,
  hold: duration.optional(),
  approval: z.boolean().optional(),
  criteria: z.array(criterion).max(20).optional(),
});

function validTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function validCron(cron: string): boolean {
  try {
    CronExpressionParser.parse(cron, { tz: 'UTC', strict: false }).next();
    return true;
  } catch {
    return false;
  }
}

/** The JSON body of `PUT /flags/:key/rollout`; parses into the core RolloutPlan. */
export const rolloutPlanBody = z
  .strictObject({
    stages: z.array(stage).min(1, 'a plan needs at least one stage').max(50),
    schedule: z
      .strictObject({
        cron: z.string().max(200).refine(validCron, 'not a valid cron expression (5 or 6 fields, e.g. "0 10 * * 1")'),
        timezone: z.string().max(100).refine(validTimezone, 'not a known IANA time zone (e.g. Europe/Berlin)').default('UTC'),
      })
      .optional(),
    sampleEvery: duration.default(60_000),
    criteria: z.array(criterion).max(20).default([]),
    onFailure: z.strictObject({ action: action.default('revert'), after: z.number().int().min(1).max(1000).default(2) }).default({ action: 'revert', after: 2 }),
    onNoData: z.strictObject({ after: duration, action }).optional(),
    dryRun: z.boolean().default(false),
    notify: z.array(z.strictObject({ url: httpUrl, format: z.enum(['slack', 'json']).default('slack') })).max(10).default([]),
    reason: z.string().max(500).optional(),
  })
  .superRefine((plan, ctx) => {
    plan.stages.forEach((s, i) => {
      const previous = plan.stages[i - 1];
      if (previous !== undefined && s.percentage <= previous.percentage) {
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'percentage'], message: `percentages must increase: ${s.percentage} after ${previous.percentage}` });
      }
    });
    const names = new Map<string, string>();
    const check = (list: readonly { name: string }[], path: (string | number)[]): void => {
      list.forEach((c, i) => {
        const where = [...path, i, 'name'].join('.');
        const seen = names.get(c.name);
        if (seen !== undefined) ctx.addIssue({ code: 'custom', path: [...path, i, 'name'], message: `criterion name '${c.name}' is used twice (also at ${seen})` });
        else names.set(c.name, where);
      });
    };
    check(plan.criteria, ['criteria']);
    const shared = new Map(names);
    plan.stages.forEach((s, i) => {
      names.clear();
      for (const [k, v] of shared) names.set(k, v);
      check(s.criteria ?? [], ['stages', i, 'criteria']);
    });
  });

export type RolloutPlanBody = z.output<typeof rolloutPlanBody>;
type CriterionBody = z.output<typeof criterion>;

function toSource(s: CriterionBody['source']): SourceSpec {
  switch (s.type) {
    case 'outcomes':
      return { type: 'outcomes', windowMs: s.window };
    case 'redis':
      return { type: 'redis', command: s.command, key: s.key, ...(s.url === undefined ? {} : { url: s.url }), ...(s.field === undefined ? {} : { field: s.field }) };
    case 'prometheus':
      return { type: 'prometheus', url: s.url, query: s.query };
    case 'http':
      return { type: 'http', url: s.url, path: s.path, ...(s.headers === undefined ? {} : { headers: s.headers }) };
  }
}

function toCriterion(c: CriterionBody): Criterion {
  return {
    name: c.name,
    source: toSource(c.source),
    ...(c.metric === undefined ? {} : { metric: c.metric }),
    ...(c.op === undefined ? {} : { op: c.op }),
    ...(c.threshold === undefined ? {} : { threshold: c.threshold }),
    ...(c.compare === undefined ? {} : { compare: c.compare }),
    ...(c.maxDrop === undefined ? {} : { maxDrop: c.maxDrop }),
    ...(c.alpha === undefined ? {} : { alpha: c.alpha }),
    ...(c.minSamples === undefined ? {} : { minSamples: c.minSamples }),
    ...(c.for === undefined ? {} : { forMs: c.for }),
    ...(c.onFail === undefined ? {} : { onFail: c.onFail }),
    ...(c.dryRun === undefined ? {} : { dryRun: c.dryRun }),
  };
}

/**
 * The core plan of a parsed body.
 *
 * @example
 * const plan = toRolloutPlan(rolloutPlanBody.parse(json));
 */
export function toRolloutPlan(body: RolloutPlanBody): RolloutPlan {
  return {
    stages: body.stages.map((s): Stage => ({
      percentage: s.percentage,
      ...(s.hold === undefined ? {} : { holdMs: s.hold }),
      ...(s.approval === undefined ? {} : { approval: s.approval }),
      ...(s.criteria === undefined ? {} : { criteria: s.criteria.map(toCriterion) }),
    })),
    ...(body.schedule === undefined ? {} : { schedule: body.schedule }),
    sampleEveryMs: body.sampleEvery,
    criteria: body.criteria.map(toCriterion),
    onFailure: body.onFailure,
    ...(body.onNoData === undefined ? {} : { onNoData: { afterMs: body.onNoData.after, action: body.onNoData.action } }),
    dryRun: body.dryRun,
    notify: body.notify,
  };
}

function sourceJson(s: SourceSpec): Record<string, unknown> {
  return s.type === 'outcomes' ? { type: 'outcomes', window: formatDuration(s.windowMs) } : { ...s };
}

function criterionJson(c: Criterion): Record<string, unknown> {
  const { forMs, source: s, ...rest } = c;
  return { ...rest, source: sourceJson(s), ...(forMs === undefined ? {} : { for: formatDuration(forMs) }) };
}

/**
 * The plan in the JSON form it was submitted in (durations as `15m`), for `GET /flags/:key/rollout`.
 *
 * @example
 * planJson(plan).sampleEvery; // '1m'
 */
export function planJson(plan: RolloutPlan): Record<string, unknown> {
  return {
    stages: plan.stages.map((s) => ({
      percentage: s.percentage,
      ...(s.holdMs === undefined ? {} : { hold: formatDuration(s.holdMs) }),
      ...(s.approval === undefined ? {} : { approval: s.approval }),
      ...(s.criteria === undefined ? {} : { criteria: s.criteria.map(criterionJson) }),
    })),
    ...(plan.schedule === undefined ? {} : { schedule: plan.schedule }),
    sampleEvery: formatDuration(plan.sampleEveryMs),
    criteria: plan.criteria.map(criterionJson),
    onFailure: plan.onFailure,
    ...(plan.onNoData === undefined ? {} : { onNoData: { after: formatDuration(plan.onNoData.afterMs), action: plan.onNoData.action } }),
    dryRun: plan.dryRun,
    notify: plan.notify,
  };
}
