// The JSON shapes both store adapters write, and the parsing that turns what they read back
// (from Redis or from a file, so `unknown` by definition) into typed values.
import { z } from 'zod';
import { FLAG_KEY_PATTERN, nextFlag } from '../core/flag.js';
import { RampartError } from '../core/errors.js';
import type { ChangeMeta, ChangeSource, Flag, FlagChange, FlagFields, HistoryEntry } from '../core/flag.js';

const changeSourceSchema = z.enum(['api', 'guard']);

/**
 * The stored form of a flag, checked field by field when it is read back.
 *
 * @example
 * const flag = parseStored(flagSchema, text, 'flag x');
 */
export const flagSchema = z.object({
  key: z.string().min(1),
  description: z.string(),
  enabled: z.boolean(),
  percentage: z.number().min(0).max(100),
  groupId: z.string(),
  stickiness: z.string(),
  version: z.number().int().min(1),
  updatedAt: z.string(),
  updatedBy: z.string(),
});

/**
 * Who, when, from where and why: stored once per history entry.
 *
 * @example
 * const meta = parseStored(storedMetaSchema, fields.meta, 'entry 7');
 */
export const storedMetaSchema = z.object({
  at: z.string(),
  actor: z.string(),
  source: changeSourceSchema,
  reason: z.string().optional(),
});

/**
 * A history entry as the embedded store persists it (Redis keeps it as stream fields instead).
 *
 * @example
 * const entries = z.array(historyEntrySchema).parse(raw);
 */
export const historyEntrySchema = z.object({
  id: z.string(),
  flagKey: z.string(),
  revision: z.number().int().min(1),
  at: z.string(),
  actor: z.string(),
  source: changeSourceSchema,
  action: z.enum(['create', 'update', 'delete']),
  before: flagSchema.nullable(),
  after: flagSchema.nullable(),
  reason: z.string().optional(),
});

/**
 * A change as published on the Redis channel.
 *
 * @example
 * const change = toFlagChange(parseStored(flagChangeSchema, message, 'a change message'));
 */
export const flagChangeSchema = z.object({
  revision: z.number().int().min(1),
  key: z.string(),
  flag: flagSchema.nullable(),
});

/**
 * The stored part of a ChangeMeta: `at` as an ISO string.
 *
 * @example
 * const stored: StoredMeta = { at: '2025-01-01T00:00:00.000Z', actor: 'ana', source: 'api' };
 */
export type StoredMeta = z.infer<typeof storedMetaSchema>;

/**
 * Parses JSON text against `schema`; anything else is a corrupt store, reported with `where`.
 *
 * @example
 * const flag = parseStored(flagSchema, text, `flag 'checkout' in Redis`);
 */
export function parseStored<T>(schema: z.ZodType<T>, text: string, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RampartError('internal', `${where} is not valid JSON`, { cause: error });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new RampartError('internal', `${where} does not have the expected shape: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * Serialises a flag with a fixed field order, so equal flags are equal strings.
 *
 * @example
 * await redis.hset(dataKey, flag.key, encodeFlag(flag));
 */
export function encodeFlag(flag: Flag): string {
  const ordered: Flag = {
    key: flag.key,
    description: flag.description,
    enabled: flag.enabled,
    percentage: flag.percentage,
    groupId: flag.groupId,
    stickiness: flag.stickiness,
    version: flag.version,
    updatedAt: flag.updatedAt,
    updatedBy: flag.updatedBy,
  };
  return JSON.stringify(ordered);
}

/**
 * The flag a write produces when the version it replaces is `baseVersion` (0: never existed).
 * put() only knows the expected version, not the previous Flag, and core's nextFlag wants the
 * latter; the field mapping stays in core and only the version is taken from here.
 *
 * @example
 * const flag = nextFlagFromVersion('checkout', fields, 3, meta); // flag.version === 4
 */
export function nextFlagFromVersion(key: string, fields: FlagFields, baseVersion: number, meta: ChangeMeta): Flag {
  return { ...nextFlag(key, fields, undefined, meta), version: baseVersion + 1 };
}

/**
 * The part of a history entry that comes from the caller's ChangeMeta.
 *
 * @example
 * const stored = toStoredMeta({ actor: 'ana', source: 'api', at: new Date() });
 */
export function toStoredMeta(meta: ChangeMeta): StoredMeta {
  const stored: StoredMeta = { at: meta.at.toISOString(), actor: meta.actor, source: meta.source };
  if (meta.reason !== undefined) stored.reason = meta.reason;
  return stored;
}

/**
 * Assembles a history entry; `id` is the revision in decimal, unique across all flags.
 *
 * @example
 * const entry = toHistoryEntry('checkout', 7, 'update', before, after, toStoredMeta(meta));
 */
export function toHistoryEntry(
  flagKey: string,
  revision: number,
  action: HistoryEntry['action'],
  before: Flag | null,
  after: Flag | null,
  meta: { readonly at: string; readonly actor: string; readonly source: ChangeSource; readonly reason?: string | undefined },
): HistoryEntry {
  const base = { id: String(revision), flagKey, revision, at: meta.at, actor: meta.actor, source: meta.source, action, before, after };
  return meta.reason === undefined ? base : { ...base, reason: meta.reason };
}

/**
 * A history entry parsed back from storage, with an absent reason left absent.
 *
 * @example
 * const entry = fromStoredEntry(historyEntrySchema.parse(raw));
 */
export function fromStoredEntry(stored: z.infer<typeof historyEntrySchema>): HistoryEntry {
  return toHistoryEntry(stored.flagKey, stored.revision, stored.action, stored.before, stored.after, stored);
}

/**
 * A change parsed from a pub/sub message or file.
 *
 * @example
 * const change = toFlagChange(flagChangeSchema.parse(raw));
 */
export function toFlagChange(stored: z.infer<typeof flagChangeSchema>): FlagChange {
  return { revision: stored.revision, key: stored.key, flag: stored.flag };
}

const CURSOR_PREFIX = 'h1.';

/**
 * The opaque `next` cursor of a history page: the revision of the last entry returned, so the
 * following page starts strictly below it. Versioned so the format can change later.
 *
 * @example
 * const next = encodeCursor(42); // 'h1.NDI'
 */
export function encodeCursor(revision: number): string {
  return CURSOR_PREFIX + Buffer.from(String(revision), 'utf8').toString('base64url');
}

/**
 * The revision inside a cursor made by encodeCursor; a malformed cursor is a validation error.
 *
 * @example
 * decodeCursor(encodeCursor(42)); // 42
 */
export function decodeCursor(cursor: string): number {
  const digits = cursor.startsWith(CURSOR_PREFIX) ? Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8') : '';
  const revision = /^[1-9][0-9]{0,15}$/.test(digits) ? Number(digits) : Number.NaN;
  if (!Number.isSafeInteger(revision) || encodeCursor(revision) !== cursor) {
    throw new RampartError('validation', 'history cursor is not valid', { errors: [{ path: 'before', message: 'not a cursor returned by this API' }] });
  }
  return revision;
}

/**
 * Checks a history page size: a positive integer.
 *
 * @example
 * checkLimit(50);
 */
export function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RampartError('validation', `history limit must be a positive integer, got ${limit}`, { errors: [{ path: 'limit', message: 'must be a positive integer' }] });
  }
}

/**
 * Rejects keys outside FLAG_KEY_PATTERN before they reach a Redis key name or a file.
 *
 * @example
 * checkKey('checkout.v2');
 */
export function checkKey(key: string): void {
  if (!FLAG_KEY_PATTERN.test(key)) {
    throw new RampartError('validation', `flag key '${key}' is not valid`, { errors: [{ path: 'key', message: `must match ${FLAG_KEY_PATTERN.source}` }] });
  }
}

/**
 * Checks an expected version: 0 (must be absent) or a positive integer.
 *
 * @example
 * checkExpected(0);
 */
export function checkExpected(expected: number): void {
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw new RampartError('validation', `expected version must be a non-negative integer, got ${expected}`, { errors: [{ path: 'version', message: 'must be a non-negative integer' }] });
  }
}

/**
 * Checks a revision passed to changesSince.
 *
 * @example
 * checkRevision(12);
 */
export function checkRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 0) {
    throw new RampartError('validation', `revision must be a non-negative integer, got ${revision}`, { errors: [{ path: 'revision', message: 'must be a non-negative integer' }] });
  }
}

/**
 * Checks a numeric store option and returns it.
 *
 * @example
 * const limit = positive(options.historyLimit ?? 1000, 'historyLimit');
 */
export function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RampartError('validation', `${name} must be a positive integer, got ${value}`);
  return value;
}
