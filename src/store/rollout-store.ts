// The rollout store contract and its storage format, shared by the Redis and embedded adapters.
import { z } from 'zod';
import type { FlagFields } from '../core/flag.js';
import type { RolloutPlan } from '../core/rollout/plan.js';
import type { FlagTarget, RolloutState } from '../core/rollout/state.js';
import type { CriterionSample } from '../core/rollout/verdict.js';

/** A flag write the plan has decided on; kept until it is known to be applied (write-ahead intent). */
export interface PendingFlagWrite {
  /** The flag version the write is a compare-and-set against. */
  readonly expectedVersion: number;
  readonly fields: FlagFields;
  readonly reason: string;
}

/** A flag's rollout plan and where it stands. */
export interface RolloutRecord {
  readonly flagKey: string;
  /** Grows by one with every write: the compare-and-set token of the plan. */
  readonly version: number;
  readonly plan: RolloutPlan;
  readonly state: RolloutState;
  /** The flag version the plan last wrote or accepted; any other means someone else wrote. */
  readonly flagVersion: number;
  readonly pending?: PendingFlagWrite;
  /** Highest lease token that wrote this record: an older token can no longer write. */
  readonly fence: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

/** One entry of a plan's decision history, append-only. */
export interface DecisionEntry {
  /** Store-assigned, orders entries; pass as `before` to page. */
  readonly id: string;
  readonly flagKey: string;
  readonly at: string;
  /** `guard`, or the person behind an API command. */
  readonly actor: string;
  readonly leaseToken?: number;
  readonly planVersion: number;
  /** Stage and status after the decision. */
  readonly stage: number;
  readonly status: string;
  readonly action: string;
  readonly reason: string;
  readonly samples: readonly CriterionSample[];
  readonly dryRun?: { readonly action: string; readonly reason: string };
  readonly flag?: FlagTarget;
  /** For guard decisions: the complete input of decide(), so the decision can be recomputed. */
  readonly input?: unknown;
}

export type NewDecision = Omit<DecisionEntry, 'id'>;

export interface DecisionPage {
  readonly entries: readonly DecisionEntry[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  readonly next?: string;
}

/** Proof that the writer holds the guard lease: a token and the holder id it was issued to. */
export interface Fence {
  readonly token: number;
  readonly holder: string;
}

export type RolloutWriteResult =
  | { readonly ok: true; readonly record: RolloutRecord; readonly decisionId?: string }
  | { readonly ok: false; readonly reason: 'version' | 'fence'; readonly current: RolloutRecord | undefined };

/**
 * Rollout plans, one per flag. Every write is a compare-and-set on the plan's version that
 * appends its decision (if any) in the same atomic step; a fenced write also requires the
 * guard lease to be held by `fence.holder` and no newer token to have written the record.
 */
export interface RolloutStore {
  get(key: string): Promise<RolloutRecord | undefined>;
  list(): Promise<readonly RolloutRecord[]>;
  /** Writes `record` (its `version` must be expected + 1) if the stored version is `expected` (0: absent). */
  write(record: RolloutRecord, expected: number, options?: { readonly decision?: NewDecision | undefined; readonly fence?: Fence | undefined }): Promise<RolloutWriteResult>;
  /** Newest first. */
  decisions(key: string, options: { readonly limit: number; readonly before?: string | undefined }): Promise<DecisionPage>;
  close(): Promise<void>;
}

// Storage format. Plans were validated at the API edge; these schemas catch corruption.
const action = z.enum(['revert', 'step-back', 'disable', 'pause']);
const sourceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('outcomes'), windowMs: z.number() }),
  z.object({
    type: z.literal('redis'),
    url: z.string().optional(),
    command: z.enum(['LLEN', 'GET', 'XLEN', 'ZCARD', 'HGET']),
    key: z.string(),
    field: z.string().optional(),
  }),
  z.object({ type: z.literal('prometheus'), url: z.string(), query: z.string() }),
  z.object({ type: z.literal('http'), url: z.string(), path: z.string(), headers: z.record(z.string(), z.string()).optional() }),
]);
const criterionSchema = z.object({
  name: z.string(),
  source: sourceSchema,
  metric: z.enum(['successRate', 'errorRate', 'count', 'p50', 'p95', 'p99']).optional(),
  op: z.enum(['<', '<=', '>', '>=', '==', '!=']).optional(),
  threshold: z.number().optional(),
  compare: z.literal('control').optional(),
  maxDrop: z.number().optional(),
  alpha: z.number().optional(),
  minSamples: z.number().optional(),
  forMs: z.number().optional(),
  onFail: action.optional(),
  dryRun: z.boolean().optional(),
});
const planSchema = z.object({
  stages: z.array(z.object({ percentage: z.number(), holdMs: z.number().optional(), approval: z.boolean().optional(), criteria: z.array(criterionSchema).optional() })),
  schedule: z.object({ cron: z.string(), timezone: z.string() }).optional(),
  sampleEveryMs: z.number(),
  criteria: z.array(criterionSchema),
  onFailure: z.object({ action, after: z.number() }),
  onNoData: z.object({ afterMs: z.number(), action }).optional(),
  dryRun: z.boolean(),
  notify: z.array(z.object({ url: z.string(), format: z.enum(['slack', 'json']) })),
});
const sampleSchema = z.object({
  criterion: z.string(),
  source: z.string(),
  verdict: z.enum(['pass', 'fail', 'insufficient', 'error']),
  value: z.number().optional(),
  samples: z.number().optional(),
  threshold: z.string(),
  detail: z.string(),
});
const criterionStateSchema = z.object({
  passes: z.number(),
  consecutiveFails: z.number(),
  failingSince: z.number().optional(),
  silentSince: z.number().optional(),
  consecutiveErrors: z.number(),
  latest: sampleSchema.extend({ at: z.number() }).optional(),
});
const stateSchema = z.object({
  status: z.enum(['running', 'awaiting-approval', 'paused', 'completed', 'rolled-back', 'aborted']),
  stage: z.number(),
  stageStartedAt: z.number(),
  anchorAt: z.number().optional(),
  approvedStage: z.number().optional(),
  criteria: z.record(z.string(), criterionStateSchema),
  lastCheckAt: z.number().optional(),
  nextCheckAt: z.number(),
  reason: z.string().optional(),
  wouldHave: z.object({ action: z.enum(['revert', 'step-back', 'disable', 'pause', 'advance', 'complete']), at: z.number(), reason: z.string() }).optional(),
});
const fieldsSchema = z.object({ description: z.string(), enabled: z.boolean(), percentage: z.number(), groupId: z.string(), stickiness: z.string() });

/** A stored rollout record. */
export const rolloutRecordSchema = z.object({
  flagKey: z.string(),
  version: z.number().int(),
  plan: planSchema,
  state: stateSchema,
  flagVersion: z.number().int(),
  pending: z.object({ expectedVersion: z.number().int(), fields: fieldsSchema, reason: z.string() }).optional(),
  fence: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
  updatedBy: z.string(),
});

/** A stored decision (without its id, which the store assigns). */
export const decisionSchema = z.object({
  flagKey: z.string(),
  at: z.string(),
  actor: z.string(),
  leaseToken: z.number().optional(),
  planVersion: z.number(),
  stage: z.number(),
  status: z.string(),
  action: z.string(),
  reason: z.string(),
  samples: z.array(sampleSchema),
  dryRun: z.object({ action: z.string(), reason: z.string() }).optional(),
  flag: z.object({ enabled: z.boolean().optional(), percentage: z.number().optional() }).optional(),
  input: z.unknown().optional(),
});
