import { DEFAULT_STICKINESS } from '@rampart/sdk';
import type { FlagConfig, FlagSnapshot } from '@rampart/sdk';

/** Flag keys: lower-case, digits, `.`, `_`, `-`; 1 to 128 characters. */
export const FLAG_KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** The fields a person sets on a flag. */
export interface FlagFields {
  readonly description: string;
  readonly enabled: boolean;
  readonly percentage: number;
  readonly groupId: string;
  readonly stickiness: string;
}

/** A stored flag: its fields plus the bookkeeping the store maintains. */
export interface Flag extends FlagFields {
  readonly key: string;
  /** Grows by one with every write to this flag; the compare-and-set token (ETag). */
  readonly version: number;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

/** Where a change came from. */
export type ChangeSource = 'api' | 'guard';

/** Who made a change, from where, when and why. */
export interface ChangeMeta {
  readonly actor: string;
  readonly source: ChangeSource;
  readonly at: Date;
  readonly reason?: string | undefined;
}

/** One entry of a flag's audit history. */
export interface HistoryEntry {
  readonly id: string;
  readonly flagKey: string;
  readonly revision: number;
  readonly at: string;
  readonly actor: string;
  readonly source: ChangeSource;
  readonly action: 'create' | 'update' | 'delete';
  readonly before: Flag | null;
  readonly after: Flag | null;
  readonly reason?: string;
}

/** One entry of the global change feed: the flag as it is after `revision` (null: deleted). */
export interface FlagChange {
  readonly revision: number;
  readonly key: string;
  readonly flag: Flag | null;
}

/** Fields of a new flag where the request left them out. */
export function defaultFields(key: string): FlagFields {
  return { description: '', enabled: false, percentage: 0, groupId: key, stickiness: DEFAULT_STICKINESS };
}

/** The next stored state of a flag after a write of `fields`. */
export function nextFlag(key: string, fields: FlagFields, previous: Flag | undefined, meta: ChangeMeta): Flag {
  return {
    key,
    description: fields.description,
    enabled: fields.enabled,
    percentage: fields.percentage,
    groupId: fields.groupId,
    stickiness: fields.stickiness,
    version: (previous?.version ?? 0) + 1,
    updatedAt: meta.at.toISOString(),
    updatedBy: meta.actor,
  };
}

/** What the SDK needs of a flag. */
export function toFlagConfig(flag: Flag): FlagConfig {
  return { enabled: flag.enabled, percentage: flag.percentage, groupId: flag.groupId, stickiness: flag.stickiness };
}

/** The SDK snapshot of a set of flags at a revision. */
export function toSnapshot(revision: number, flags: Iterable<Flag>): FlagSnapshot {
  const out: Record<string, FlagConfig> = {};
  for (const flag of flags) out[flag.key] = toFlagConfig(flag);
  return { revision, flags: out };
}
